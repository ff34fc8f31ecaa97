"""Query generator and answer-by-answer comparison of two DNS servers.

gen_queries(gz, n, seed) makes a seeded list of Query objects for a zone made by
zonegen; exchange() sends one over UDP or TCP and returns the raw reply;
compare() returns the differences between two replies to the same query, strictly or
with a reference server's accepted differences (nsd_leeway, for NSD).

What is compared (per query, both servers):
  - the header: ID matches the query, QR, opcode, rcode (with the extended
    rcode), flags AA, TC, RD, RA, AD, CD;
  - the question section, byte for byte against the query (0x20 case included);
  - EDNS: whether an OPT record is present (its payload size and options are
    ignored: servers advertise different buffer sizes, e.g. Knot 1232);
  - when either reply has TC set: nothing more, but whether the answer section
    is empty in each is recorded as a non-failing note;
  - otherwise the answer section as RRsets (owner case-insensitive, class,
    type, every record's TTL and rdata, duplicates count);
  - the authority section as RRsets: SOA of negative replies, NS of referrals
    (also of a referral after a CNAME), anything else that shows up; the one
    exception is the apex NS RRset in a non-referral reply, which a server may
    add or leave out, together with its addresses (see _optional_apex_ns);
  - the additional section's RRsets (A/AAAA of in-bailiwick glue for
    referrals, of NS/MX/SRV targets for positive answers), OPT excluded,
    repeated identical records collapsed (see compare()).
"""

import random
import socket
import struct
import time
from dataclasses import dataclass, field

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.zone

T = dns.rdatatype

# Types asked for at names that do not have them (NODATA). No meta types
# (ANY, AXFR, IXFR, OPT), no DNSSEC types, DS only at delegation points.
NODATA_TYPES = [T.A, T.AAAA, T.MX, T.TXT, T.SRV, T.CAA, T.PTR, T.NAPTR, T.HINFO,
                T.NS, T.SOA, T.CNAME, T.DNAME, T.LOC, T.SSHFP, T.TLSA, T.SPF,
                65280, 65281]
COMMON_TYPES = [T.A, T.AAAA, T.MX, T.TXT, T.NS, T.SOA, T.CNAME, T.SRV]
# DNSSEC types, asked of the unsigned zone (NODATA, or NXDOMAIN) by the extra queries; DS
# at names that are not delegation points.
DNSSEC_TYPES = [T.RRSIG, T.NSEC, T.NSEC3, T.DNSKEY, T.NSEC3PARAM, T.CDS, T.CDNSKEY, T.DS]

FLAG_BITS = [("QR", dns.flags.QR), ("AA", dns.flags.AA), ("TC", dns.flags.TC),
             ("RD", dns.flags.RD), ("RA", dns.flags.RA), ("AD", dns.flags.AD),
             ("CD", dns.flags.CD)]


# ---------------------------------------------------------------- queries
@dataclass
class Query:
    idx: int
    kind: str
    qname: dns.name.Name        # with its randomized case
    qtype: int
    tcp: bool
    edns: int                   # -1: no EDNS, else advertised UDP payload size
    do: bool
    rd: bool
    qid: int
    qclass: int = dns.rdataclass.IN

    def wire(self):
        if self.edns >= 0:
            m = dns.message.make_query(self.qname, self.qtype, rdclass=self.qclass, use_edns=0,
                                       payload=self.edns, want_dnssec=self.do)
        else:
            m = dns.message.make_query(self.qname, self.qtype, rdclass=self.qclass, use_edns=False)
        m.id = self.qid
        m.flags = dns.flags.RD if self.rd else 0
        return m.to_wire()

    def qname_wire(self):
        return self.qname.to_wire()     # uncompressed, case kept

    def transport(self):
        t = "tcp" if self.tcp else "udp"
        if self.edns >= 0:
            t += "+edns%d" % self.edns
            if self.do:
                t += "+do"
        return t

    def describe(self):
        cls = "" if self.qclass == dns.rdataclass.IN else " " + dns.rdataclass.to_text(self.qclass)
        return "#%d %s %s%s %s %s%s" % (self.idx, self.kind, self.qname.to_text(), cls,
                                        dns.rdatatype.to_text(self.qtype), self.transport(),
                                        "" if self.rd else " (rd=0)")


def _mixcase(rng, name):
    labels = []
    for lab in name.labels:
        labels.append(bytes((c ^ 0x20) if (0x61 <= (c | 0x20) <= 0x7a and rng.random() < 0.5) else c
                            for c in lab))
    return dns.name.Name(labels)


def load_model(gz):
    """name (lower-case text) -> set of rdtypes, from the zone text as dnspython reads it."""
    zone = dns.zone.from_text(gz.text, origin=gz.origin, relativize=False, check_origin=True)
    model = {}
    for name, node in zone.nodes.items():
        model[name.to_text().lower()] = {rds.rdtype for rds in node.rdatasets}
    return model


def _below(name, parent):
    return name != parent and name.endswith("." + parent)


def gen_queries(gz, n=3000, seed=1, extra=False):
    """n queries of the kinds below for the zone; with `extra`, n/10 more of the extra kinds
    (QTYPE ANY, QCLASS ANY, DNSSEC types, small EDNS buffers) after them."""
    rng = random.Random("queries-%d" % seed)
    h = gz.hints
    apex = gz.origin
    model = load_model(gz)
    cuts = h["delegations"]
    dnames = h["dnames"]
    wild_parents = h["wildcard_parents"]

    def under_cut(nm):
        return any(_below(nm, c) for c in cuts)

    def under_dname(nm):
        return any(_below(nm, d) for d in dnames)

    auth = []       # authoritative names with data, not CNAME/DNAME owners, not wildcards
    for nm, types in model.items():
        if under_cut(nm) or nm in cuts or nm.startswith("*.") or under_dname(nm):
            continue
        if T.CNAME in types or T.DNAME in types:
            continue
        auth.append(nm)
    auth.sort()
    ents = [e for e in h["ents"] if not under_cut(e) and e not in model]
    existing = set(model) | set(h["ents"])

    def fresh_label():
        # fresh_under() checks the resulting name against every existing node
        return "q" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789")
                             for _ in range(rng.randint(1, 8)))

    def fresh_under(parent, depth=1):
        for _ in range(50):
            nm = ".".join(fresh_label() for _ in range(depth)) + "." + parent
            if nm not in existing:
                return nm
        return "qzzz." + parent

    def pick_type(types):
        return rng.choice(sorted(types))

    def lacking(types):
        cand = [t for t in NODATA_TYPES if t not in types]
        return rng.choice(cand)

    def q_exist():
        nm = rng.choice(auth)
        return nm, pick_type(model[nm])

    def q_nodata():
        nm = rng.choice(auth)
        return nm, lacking(model[nm])

    def q_ent():
        return rng.choice(ents), rng.choice(NODATA_TYPES)

    def q_nxdomain():
        r = rng.random()
        if r < 0.4:
            base = rng.choice([a for a in auth if a not in wild_parents])
            return fresh_under(base, rng.choice([1, 1, 2])), rng.choice(COMMON_TYPES)
        if r < 0.6:
            # below an empty non-terminal (includes c.b.x: b.x blocks *.x)
            base = rng.choice([e for e in ents if e not in wild_parents])
            return fresh_under(base), rng.choice(COMMON_TYPES)
        if r < 0.7:
            return fresh_under(rng.choice(h["blocked_by_ent"])), rng.choice([T.A, T.TXT, T.AAAA])
        if r < 0.8:
            # below an existing name next to a wildcard (closest encloser has no '*')
            return fresh_under(rng.choice(h["wildcard_siblings"])), rng.choice([T.A, T.TXT])
        if r < 0.9:
            # below a CNAME owner: the CNAME does not apply to its children
            return fresh_under(rng.choice(h["cname_heads"])), rng.choice([T.A, T.CNAME])
        return fresh_under(apex, rng.choice([1, 2, 3])), rng.choice(COMMON_TYPES)

    def q_wildcard():
        wp = rng.choice(wild_parents)
        nm = fresh_under(wp, rng.choice([1, 1, 1, 2, 3]))
        wtypes = model["*." + wp]
        r = rng.random()
        if r < 0.03:
            nm = "*." + wp          # the wildcard owner asked literally
        if r < 0.65:
            return nm, pick_type(wtypes)
        return nm, lacking(wtypes)

    def q_delegation():
        r = rng.random()
        cut = rng.choice(cuts)
        if r < 0.25:
            return cut, rng.choice([T.NS, T.A, T.SOA, T.MX, T.TXT, T.AAAA])
        if r < 0.35:
            return cut, T.DS        # answered by the parent side of the cut
        if r < 0.55:
            g = [x for x in h["glue"] if _below(x, cut)] or h["glue"]
            return rng.choice(g), rng.choice([T.A, T.AAAA, T.NS, T.TXT])
        if r < 0.75:
            return rng.choice(h["occluded"]), rng.choice([T.A, T.TXT, T.MX, T.AAAA])
        return fresh_under(cut, rng.choice([1, 2])), rng.choice(COMMON_TYPES)

    def q_cname():
        nm = rng.choice(h["cnames"])
        r = rng.random()
        if r < 0.5:
            return nm, rng.choice([T.A, T.AAAA])
        if r < 0.65:
            return nm, T.CNAME
        return nm, rng.choice([T.MX, T.TXT, T.SRV, T.NS, T.SOA, 65280])

    def q_dname():
        tgt = h["dname_targets"][0]
        dnin, dnout = dnames[0], dnames[1]
        if dnin.startswith("dnout"):
            dnin, dnout = dnout, dnin
        r = rng.random()
        if r < 0.15:
            return rng.choice(dnames), rng.choice([T.DNAME, T.A, T.TXT, T.CNAME, T.NS])
        if r < 0.6:
            # names that exist (or are ENTs) under the target
            below = [nm[: -len(tgt)] for nm in model if _below(nm, tgt)] + ["c."]
            return rng.choice(below) + dnin, rng.choice([T.A, T.AAAA, T.TXT, T.MX, T.CNAME])
        if r < 0.75:
            return fresh_under(dnin, rng.choice([1, 2])), rng.choice([T.A, T.TXT])
        return fresh_under(dnout, rng.choice([1, 2])), rng.choice([T.A, T.AAAA, T.MX])

    def q_big():
        return rng.choice(h["big"] + [("cbig." + apex)]), rng.choice([T.A, T.A, T.A, T.AAAA])

    def q_outside():
        return rng.choice(h["outside"]), rng.choice(COMMON_TYPES)

    def q_apex():
        if rng.random() < 0.8:
            return apex, rng.choice([T.SOA, T.NS, T.MX, T.TXT, T.A, T.AAAA, T.CAA])
        return apex, lacking(model[apex])

    kinds = [("exist", q_exist, 24), ("nodata", q_nodata, 9), ("ent", q_ent, 5),
             ("nxdomain", q_nxdomain, 12), ("wildcard", q_wildcard, 12),
             ("delegation", q_delegation, 10), ("cname", q_cname, 9), ("dname", q_dname, 6),
             ("big", q_big, 3), ("outside", q_outside, 4), ("apex", q_apex, 6)]
    names = [k[0] for k in kinds]
    weights = [k[2] for k in kinds]
    fns = {k[0]: k[1] for k in kinds}

    def transport():
        tr = rng.random()
        if tr < 0.30:
            return False, -1
        if tr < 0.50:
            return False, 1232
        if tr < 0.70:
            return False, 4096
        if tr < 0.85:
            return True, -1
        return True, rng.choice([1232, 4096])

    def make(i, kind, nm, qtype, tcp, edns, qclass=dns.rdataclass.IN):
        qname = _mixcase(rng, dns.name.from_text(nm))
        do = edns >= 0 and rng.random() < 0.3
        return Query(i, kind, qname, qtype, tcp, edns, do, rng.random() < 0.7,
                     rng.randrange(65536), qclass)

    queries = []
    for i in range(n):
        kind = rng.choices(names, weights)[0]
        nm, qtype = fns[kind]()
        qname = _mixcase(rng, dns.name.from_text(nm))
        tcp, edns = transport()
        do = edns >= 0 and rng.random() < 0.3
        queries.append(Query(i, kind, qname, qtype, tcp, edns, do, rng.random() < 0.7,
                             rng.randrange(65536)))
    if not extra:
        return queries

    # Extra queries, n/10 more, from a random stream of their own (the ones above stay what
    # they were for a seed): QTYPE ANY (RFC 8482), QCLASS ANY, DNSSEC types asked of an
    # unsigned zone, and the smallest EDNS buffers (512, and below 512, which means 512:
    # RFC 6891 6.2.5), where truncation and the choice of additional records show.
    rng = random.Random("queries-extra-%d" % seed)     # the closures above now draw from it

    def q_any():
        r = rng.random()
        if r < 0.3:
            nm = rng.choice(auth)
        elif r < 0.45:
            nm = rng.choice(h["cnames"])
        elif r < 0.6:
            nm = fresh_under(rng.choice(wild_parents))
        elif r < 0.7:
            nm = rng.choice(ents)
        elif r < 0.8:
            nm = rng.choice(cuts + h["glue"])
        elif r < 0.9:
            nm = rng.choice(dnames + [fresh_under(rng.choice(dnames))])
        else:
            nm = rng.choice([apex, fresh_under(apex)])
        return nm, T.ANY

    def q_dnssec():
        nm = rng.choice(auth + ents + [apex, fresh_under(apex)] + h["cnames"][:3])
        return nm, rng.choice(DNSSEC_TYPES)

    base = [k for k in names if k != "big"]
    for i in range(n, n + max(1, n // 10)):
        r = rng.random()
        if r < 0.35:
            nm, qtype = q_any()
            queries.append(make(i, "any", nm, qtype, *transport()))
        elif r < 0.55:
            kind = rng.choice(base)
            nm, qtype = fns[kind]()
            queries.append(make(i, "class-any", nm, qtype, *transport(), qclass=dns.rdataclass.ANY))
        elif r < 0.7:
            nm, qtype = q_dnssec()
            queries.append(make(i, "dnssec-type", nm, qtype, *transport()))
        else:
            kind = rng.choice(names + ["big", "big"])
            nm, qtype = fns[kind]()
            queries.append(make(i, "edns-small", nm, qtype, False, rng.choice([512, 512, 512, 256, 0])))
    return queries


# ---------------------------------------------------------------- transport
class NoReply(Exception):
    pass


def exchange(addr, query, timeout=2.0, udp_tries=3):
    """Send the query; return the raw reply bytes. Raises NoReply."""
    wire = query.wire()
    if query.tcp:
        return _tcp(addr, wire, timeout)
    last = None
    for _ in range(udp_tries):
        try:
            return _udp(addr, wire, query.qid, timeout)
        except (socket.timeout, OSError) as e:
            last = e
    raise NoReply("udp: %s" % last)


def _udp(addr, wire, qid, timeout):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.connect(addr)
        s.send(wire)
        end = time.monotonic() + timeout
        while True:
            data = s.recv(65535)
            if len(data) >= 2 and struct.unpack("!H", data[:2])[0] == qid:
                return data
            if time.monotonic() > end:
                raise socket.timeout("no reply with id %d" % qid)
    finally:
        s.close()


def _recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise NoReply("tcp: connection closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def _tcp(addr, wire, timeout):
    try:
        s = socket.create_connection(addr, timeout=timeout)
    except OSError as e:
        raise NoReply("tcp connect: %s" % e)
    try:
        s.settimeout(timeout)
        s.sendall(struct.pack("!H", len(wire)) + wire)
        (ln,) = struct.unpack("!H", _recv_exact(s, 2))
        return _recv_exact(s, ln)
    except (socket.timeout, OSError) as e:
        raise NoReply("tcp: %s" % e)
    finally:
        s.close()


# ---------------------------------------------------------------- analysis
@dataclass
class Reply:
    raw: bytes = b""
    error: str = ""             # no reply / malformed
    msg: object = None
    qd: tuple = None            # (qdcount, qname wire bytes, qtype, qclass) from the raw bytes
    sections: dict = field(default_factory=dict)   # 'answer'|'authority'|'additional' -> {key: [(ttl, digest)]}
    texts: dict = field(default_factory=dict)      # same keys -> {key: [text lines]}

    @property
    def tc(self):
        return bool(self.msg.flags & dns.flags.TC)

    @property
    def aa(self):
        return bool(self.msg.flags & dns.flags.AA)


def _raw_question(raw):
    if len(raw) < 12:
        return None
    qdcount = struct.unpack("!H", raw[4:6])[0]
    if qdcount == 0:
        return (0, b"", None, None)
    off = 12
    out = b""
    for _ in range(128):
        if off >= len(raw):
            return (qdcount, b"<overrun>", None, None)
        ln = raw[off]
        if ln & 0xC0:
            return (qdcount, b"<compression pointer>", None, None)
        out += raw[off:off + 1 + ln]
        off += 1 + ln
        if ln == 0:
            break
    if off + 4 > len(raw):
        return (qdcount, out, None, None)
    qtype, qclass = struct.unpack("!HH", raw[off:off + 4])
    return (qdcount, out, qtype, qclass)


def analyze(raw):
    r = Reply(raw=raw)
    try:
        r.msg = dns.message.from_wire(raw, one_rr_per_rrset=True)
    except Exception as e:      # any parse failure is a finding, not a crash
        r.error = "malformed reply (%s: %s), %d bytes: %s" % (type(e).__name__, e, len(raw), raw[:64].hex())
        return r
    r.qd = _raw_question(raw)
    for sec in ("answer", "authority", "additional"):
        d, t = {}, {}
        for rrset in getattr(r.msg, sec):
            key = (rrset.name.to_text().lower(), rrset.rdclass, rrset.rdtype)
            for rd in rrset:
                d.setdefault(key, []).append((rrset.ttl, rd.to_digestable()))
                t.setdefault(key, []).append("%s %d %s %s %s" % (
                    rrset.name.to_text(), rrset.ttl, dns.rdataclass.to_text(rrset.rdclass),
                    dns.rdatatype.to_text(rrset.rdtype), rd.to_text()))
        for k in d:
            order = sorted(range(len(d[k])), key=lambda i: d[k][i])
            d[k] = [d[k][i] for i in order]
            t[k] = [t[k][i] for i in order]
        r.sections[sec] = d
        r.texts[sec] = t
    return r


def category(r):
    m = r.msg
    if m.flags & dns.flags.TC:
        return "truncated"
    rc = m.rcode()
    if rc == dns.rcode.NXDOMAIN:
        return "nxdomain"
    if rc != dns.rcode.NOERROR:
        return dns.rcode.to_text(rc).lower()
    has_ns = any(k[2] == T.NS for k in r.sections["authority"])
    if not (m.flags & dns.flags.AA) and has_ns:
        return "referral"
    if not r.sections["answer"]:
        return "nodata"
    return "answer"


@dataclass
class Diff:
    category: str
    detail: str


def _flags_text(flags):
    return " ".join(n for n, b in FLAG_BITS if flags & b) or "-"


def _sec_diff(name_a, name_b, da, ta, db, tb, keys=None):
    """Lines describing how two {key: [(ttl, digest)]} maps differ (None if equal)."""
    keys = sorted(set(da) | set(db)) if keys is None else keys
    lines = []
    for k in keys:
        if da.get(k) == db.get(k):
            continue
        for line in ta.get(k, []) or ["(no %s %s)" % (k[0], dns.rdatatype.to_text(k[2]))]:
            lines.append("    %-8s %s" % (name_a + ":", line))
        for line in tb.get(k, []) or ["(no %s %s)" % (k[0], dns.rdatatype.to_text(k[2]))]:
            lines.append("    %-8s %s" % (name_b + ":", line))
    return "\n".join(lines) if lines else None


def _dedup_texts(texts):
    out = {}
    for k, lines in texts.items():
        seen = {}
        for line in lines:
            seen.setdefault(line.lower(), line)
        out[k] = list(seen.values())
    return out


def _optional_apex_ns(r, apex):
    """Split off what a server may add on its own to a reply from the zone's own data.

    Some servers (BIND style) put the apex NS RRset in the authority section of
    positive answers and the addresses of those name servers in the additional
    section (RFC 1034 4.3.2, RFC 2181 6.1), and RFC 2308 section 2.1/2.2 allows
    the apex NS next to the SOA in negative replies ("type 2"); Knot does
    neither. A referral's NS RRset is never the apex one, so it is unaffected.
    Returns (authority keys to ignore, additional keys to ignore) for this reply.
    Addresses that are needed for something else in the reply (targets of NS,
    MX or SRV records in the answer, or of a non-apex NS in the authority
    section) are not ignored.
    """
    auth_ignore, add_ignore = set(), set()
    apex_key = (apex, dns.rdataclass.IN, T.NS)
    if apex_key not in r.sections["authority"]:
        return auth_ignore, add_ignore
    auth_ignore.add(apex_key)
    ns_targets = set()
    for rrset in r.msg.authority:
        if rrset.rdtype == T.NS and rrset.name.to_text().lower() == apex:
            ns_targets |= {rd.target.to_text().lower() for rd in rrset}
    needed = set()
    for rrset in r.msg.answer:
        for rd in rrset:
            if rrset.rdtype in (T.NS, T.MX, T.SRV):
                tgt = rd.target if rrset.rdtype != T.MX else rd.exchange
                needed.add(tgt.to_text().lower())
    for rrset in r.msg.authority:
        if rrset.rdtype == T.NS and rrset.name.to_text().lower() != apex:
            needed |= {rd.target.to_text().lower() for rd in rrset}
    for k in r.sections["additional"]:
        if k[2] in (T.A, T.AAAA) and k[0] in ns_targets and k[0] not in needed:
            add_ignore.add(k)
    return auth_ignore, add_ignore


@dataclass
class Leeway:
    """What one comparison leaves out for one query: a reference server's accepted way of
    differing. Each rule that grants leeway also leaves a note, so the run counts them."""
    flags: set = field(default_factory=set)            # flag names not compared ("AA")
    answer: bool = False                               # answer section not compared
    additional: bool = False                           # additional section not compared
    authority_keys: set = field(default_factory=set)   # authority RRsets not compared
    notes: list = field(default_factory=list)


def _answer_sets(r):
    return sorted(r.sections["answer"])


def nsd_leeway(q, r_nsd, r_other):
    """NSD 4.6's accepted differences from Knot DNS, which tandem follows. Each is granted
    only for the exact pattern NSD shows, and only in the comparison with NSD; the
    comparison with Knot DNS checks these replies strictly. docs/conformance.md lists them.
    """
    lw = Leeway()
    if not (r_nsd.msg and r_other.msg):
        return lw
    mn, mo = r_nsd.msg, r_other.msg
    apex_soa = [k for k in r_other.sections["authority"] if k[2] == T.SOA]

    # QCLASS ANY (RFC 1035 3.2.5): NSD answers from its IN data but without AA, and its
    # negative answers carry no SOA, reading RFC 1034 6.2 ("the response should never be
    # authoritative unless the server can guarantee that the response covers all
    # classes") literally. Knot DNS and tandem, which serve class IN only, answer as for
    # class IN (AA set, the SOA for negative caching). Resolvers do not send class ANY;
    # tandem keeps Knot's answer.
    if q.qclass == dns.rdataclass.ANY:
        if not mn.flags & dns.flags.AA and mo.flags & dns.flags.AA:
            lw.flags.add("AA")
            lw.notes.append("class ANY answered without AA")
        if apex_soa and not any(k[2] == T.SOA for k in r_nsd.sections["authority"]):
            lw.authority_keys |= set(apex_soa)
            lw.notes.append("class ANY negative answer without SOA")

    # QTYPE ANY (RFC 8482 4.1): a server may answer with any one RRset of the name. NSD
    # picks another one than Knot DNS and tandem (e.g. the SOA at the apex, AAAA before
    # A), with that RRset's additional records. Only the choice is left out: both must
    # give one whole RRset owned by the query name, NOERROR; which RRset tandem gives, and
    # its content, are compared with Knot DNS.
    if q.qtype == T.ANY and mn.rcode() == mo.rcode() == dns.rcode.NOERROR:
        qn = q.qname.to_text().lower()
        sn, so = _answer_sets(r_nsd), _answer_sets(r_other)
        if (len(sn) == 1 and len(so) == 1 and sn != so and sn[0][0] == so[0][0] == qn):
            lw.answer = lw.additional = True
            lw.notes.append("ANY answered with another RRset: %s, not %s"
                            % (dns.rdatatype.to_text(sn[0][2]), dns.rdatatype.to_text(so[0][2])))
    return lw


def compare(q, ra, rb, name_a="knot", name_b="other", apex=None, leeway=None):
    """Differences between two replies to query q. Returns (diffs, notes).

    `leeway`: None for the strict comparison, or a function (q, ra, rb) -> Leeway naming
    what reference `a` may do differently for this query (see nsd_leeway)."""
    diffs, notes = [], []
    qwire = q.qname_wire()
    for nm, r in ((name_a, ra), (name_b, rb)):
        if r.error:
            diffs.append(Diff("no-reply" if r.error.startswith("no reply") else "malformed",
                              "%s: %s" % (nm, r.error)))
    if diffs:
        return diffs, notes
    ma, mb = ra.msg, rb.msg
    lw = leeway(q, ra, rb) if leeway else Leeway()
    notes += lw.notes

    # header
    for nm, r in ((name_a, ra), (name_b, rb)):
        if r.msg.id != q.qid:
            diffs.append(Diff("header", "%s: reply id %d for query id %d" % (nm, r.msg.id, q.qid)))
        if not r.msg.flags & dns.flags.QR:
            diffs.append(Diff("header", "%s: QR not set" % nm))
    if ma.opcode() != mb.opcode():
        diffs.append(Diff("header", "opcode %s: %s, %s: %s" % (name_a, ma.opcode(), name_b, mb.opcode())))
    if ma.rcode() != mb.rcode():
        diffs.append(Diff("rcode", "%s: %s, %s: %s" % (name_a, dns.rcode.to_text(ma.rcode()),
                                                       name_b, dns.rcode.to_text(mb.rcode()))))
    fa = ma.flags & ~dns.flags.QR & 0xFFFF
    fb = mb.flags & ~dns.flags.QR & 0xFFFF
    for fname, bit in FLAG_BITS[1:]:
        if (ma.flags & bit) != (mb.flags & bit) and fname not in lw.flags:
            diffs.append(Diff("flags", "%s differs: %s: [%s], %s: [%s]" % (
                fname, name_a, _flags_text(fa), name_b, _flags_text(fb))))

    # question: byte for byte against the query, 0x20 case included
    for nm, r in ((name_a, ra), (name_b, rb)):
        qd = r.qd
        want = (1, qwire, q.qtype, q.qclass)
        if qd != want:
            got = "qdcount=%s qname=%r qtype=%s qclass=%s" % (qd[0], qd[1], qd[2], qd[3]) if qd else "none"
            diffs.append(Diff("question", "%s: question is %s, query had qname=%r qtype=%d" % (
                nm, got, qwire, q.qtype)))

    # EDNS: presence only. The OPT payload size legitimately differs between
    # servers (Knot advertises 1232) and options are not asked for here.
    oa, ob = ma.edns >= 0, mb.edns >= 0
    if oa != ob:
        diffs.append(Diff("opt", "OPT present: %s: %s, %s: %s (query %s EDNS)" % (
            name_a, oa, name_b, ob, "with" if q.edns >= 0 else "without")))
    elif oa and q.edns >= 0 and bool(ma.ednsflags & dns.flags.DO) != bool(mb.ednsflags & dns.flags.DO):
        diffs.append(Diff("opt", "DO bit echo: %s: %s, %s: %s" % (
            name_a, bool(ma.ednsflags & dns.flags.DO), name_b, bool(mb.ednsflags & dns.flags.DO))))

    # Truncated replies: which partial data a server puts into a TC=1 reply is
    # its own choice (RFC 2181 9, RFC 9471), so only the header and question
    # (above) are compared; an answer section empty in one and not the other
    # is a note.
    if ma.flags & dns.flags.TC or mb.flags & dns.flags.TC:
        ea, eb = not ra.sections["answer"], not rb.sections["answer"]
        if (ma.flags & dns.flags.TC) and (mb.flags & dns.flags.TC) and ea != eb:
            notes.append("truncated reply, answer section empty: %s: %s, %s: %s" % (name_a, ea, name_b, eb))
        return diffs, notes

    ca, cb = category(ra), category(rb)
    if ca != cb and ma.rcode() == mb.rcode() and "AA" not in lw.flags:
        diffs.append(Diff("kind", "reply kind %s: %s, %s: %s" % (name_a, ca, name_b, cb)))

    # answer section
    d = None if lw.answer else _sec_diff(name_a, name_b, ra.sections["answer"], ra.texts["answer"],
                                         rb.sections["answer"], rb.texts["answer"])
    if d:
        diffs.append(Diff("answer", "answer section differs:\n" + d))

    # authority section
    ign_auth_a, ign_add_a = _optional_apex_ns(ra, apex) if apex else (set(), set())
    ign_auth_b, ign_add_b = _optional_apex_ns(rb, apex) if apex else (set(), set())
    ign_auth_a |= lw.authority_keys
    ign_auth_b |= lw.authority_keys
    auth_a = {k: v for k, v in ra.sections["authority"].items() if k not in ign_auth_a}
    auth_b = {k: v for k, v in rb.sections["authority"].items() if k not in ign_auth_b}
    d = _sec_diff(name_a, name_b, auth_a, ra.texts["authority"], auth_b, rb.texts["authority"])
    if d:
        differing = {k for k in set(auth_a) | set(auth_b) if auth_a.get(k) != auth_b.get(k)}
        if any(k[2] == T.SOA for k in differing):
            cat = "authority-soa"
        elif any(k[2] == T.NS for k in differing):
            cat = "authority-ns"
        else:
            cat = "authority"
        diffs.append(Diff(cat, "authority section differs:\n" + d))

    # additional section (OPT is not in dnspython's additional list). Repeated
    # identical records are collapsed here, and only here: Knot 3.2 adds a
    # target's A/AAAA RRset once per SRV (or MX) record that names it, so two
    # SRV records with one target give every address twice; a repeated record
    # says nothing new (RFC 2181 5: an RRset has no duplicates) and a server
    # that sends it once is not wrong. Duplicates still count in the answer
    # and authority sections.
    add_a = {k: sorted(set(v)) for k, v in ra.sections["additional"].items() if k not in ign_add_a}
    add_b = {k: sorted(set(v)) for k, v in rb.sections["additional"].items() if k not in ign_add_b}
    d = None if lw.additional else _sec_diff(name_a, name_b, add_a, _dedup_texts(ra.texts["additional"]),
                                             add_b, _dedup_texts(rb.texts["additional"]))
    if d:
        what = "glue" if "referral" in (ca, cb) else "additional"
        diffs.append(Diff(what, "additional section differs (%s):\n" % what + d))
    return diffs, notes

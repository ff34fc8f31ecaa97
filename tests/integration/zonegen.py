#!/usr/bin/python3
"""Seeded generator of a random, unsigned, authoritative test zone.

The zone exercises the parts of authoritative answering where servers tend to
differ: empty non-terminals, wildcards (including one blocked by an empty
non-terminal), delegations with glue and occluded data, CNAME chains (in zone,
out of zone, into NXDOMAIN, into a wildcard, into a delegation, through a
DNAME), DNAMEs, an RRset too large for a 512-byte UDP reply, RFC 3597 generic
rdata, mixed-case owners, $ORIGIN/$TTL directives and relative names.

Usable as a module:

    gz = zonegen.generate(seed)
    gz.origin      # 'z123456.test.' (lower case, absolute)
    gz.text        # zone file text
    gz.hints       # dict of interesting names for the query generator
    gz.records     # list of Record (owner, ttl, rdtype, rdata tokens)

and as a CLI:

    /usr/bin/python3 zonegen.py --seed 7 [--names 300] [--out FILE] [--hints]

The generator never emits CNAME loops, CNAME chains longer than 4, CNAME
next to other data, DNSSEC record types, or RRsets whose records disagree on
their TTL.
"""

import argparse
import json
import random
import sys
from dataclasses import dataclass, field

LABEL_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"

# Top-level labels (directly under the apex) used by the special structures.
# Random names never start with one of these, so the structures stay intact.
RESERVED_TOP = {
    "ns1", "ns2", "ns3", "big", "w1", "w2", "wc", "wcx", "wmx", "x", "ent",
    "d1", "d2", "d3", "d4p", "dnin", "dnout", "tgt", "nothere", "hosts",
    "srv", "generic", "cout", "cnx", "cnx2", "cwild", "cwildc", "cdeleg",
    "cdname", "cent", "cbig", "www", "mail", "cdnout",
}


class N:
    """A domain name inside rdata (absolute, lower case); rendered relative or not."""

    __slots__ = ("name",)

    def __init__(self, name):
        assert name.endswith("."), name
        self.name = name.lower()

    def __repr__(self):
        return "N(%r)" % self.name


@dataclass
class Record:
    owner: str          # absolute, lower case
    ttl: int
    rdtype: str         # 'A', 'MX', 'TYPE65280', ...
    rdata: list         # tokens: str literal or N(name)
    generic: bool = False   # rdata already in RFC 3597 '\# len hex' form


@dataclass
class GeneratedZone:
    origin: str
    text: str
    hints: dict
    records: list = field(default_factory=list)


class _Gen:
    def __init__(self, seed, n_names):
        self.seed = seed
        self.rng = random.Random(seed)
        self.n_names = n_names
        r = self.rng
        if r.random() < 0.5:
            self.origin = "z%06d.test." % r.randrange(10 ** 6)
        else:
            self.origin = "example%04d.net." % r.randrange(10 ** 4)
        self.records = []
        self.rrsets = {}            # (owner, rdtype) -> ttl
        self.hints = {
            "apex": self.origin,
            "delegations": [],      # cut names
            "glue": [],             # glue owner names
            "occluded": [],         # data below a cut that is not glue
            "wildcards": [],        # '*.w1.<apex>' ...
            "wildcard_parents": [], # 'w1.<apex>' (closest encloser of synthesis)
            "wildcard_siblings": [],# existing names next to a wildcard
            "blocked_by_ent": [],   # ENT names that block a wildcard above them
            "ents": [],             # empty non-terminals
            "cnames": [],           # CNAME owners (chain heads and inner links)
            "cname_heads": [],      # start of each chain
            "dnames": [],           # DNAME owners
            "dname_targets": [],    # in-zone DNAME target subtree roots
            "big": [],              # names with an RRset too big for 512 bytes
            "hosts": [],            # names with A and/or AAAA
            "outside": [],          # names outside the zone
        }

    # ------------------------------------------------------------ helpers
    def name(self, rel):
        if rel in ("", "@"):
            return self.origin
        return (rel + "." + self.origin).lower()

    def label(self, lo=1, hi=10):
        r = self.rng
        n = r.randint(lo, hi)
        s = r.choice("abcdefghijklmnopqrstuvwxyz")
        while len(s) < n:
            if len(s) < n - 1 and r.random() < 0.08:
                s += "-"
            else:
                s += r.choice(LABEL_CHARS)
        return s

    def ttl(self):
        return self.rng.choice([0, 1, 30, 60, 120, 300, 300, 600, 900, 1800,
                                3600, 3600, 3600, 7200, 86400, 604800])

    def add(self, owner, rdtype, rdata, ttl=None, generic=False):
        owner = owner.lower()
        key = (owner, rdtype)
        if key in self.rrsets:
            ttl = self.rrsets[key]      # one TTL per RRset, always
        else:
            if ttl is None:
                ttl = self.ttl()
            self.rrsets[key] = ttl
        self.records.append(Record(owner, ttl, rdtype, list(rdata), generic))

    def ipv4(self):
        r = self.rng
        net = r.choice(["192.0.2", "198.51.100", "203.0.113", "10.%d.%d" % (r.randrange(256), r.randrange(256))])
        return "%s.%d" % (net, r.randrange(1, 255))

    def ipv6(self):
        r = self.rng
        groups = ["2001", "db8"] + ["%x" % r.randrange(0x10000) for _ in range(6)]
        if r.random() < 0.5:
            # compressed form with a run of zero groups
            return "2001:db8:%x::%x" % (r.randrange(0x10000), r.randrange(1, 0x10000))
        return ":".join(groups)

    def add_host(self, owner, v4=True, v6=True, n4=1, n6=1):
        if v4:
            ttl = self.ttl()
            for a in self._distinct(self.ipv4, n4):
                self.add(owner, "A", [a], ttl)
        if v6:
            ttl = self.ttl()
            for a in self._distinct(self.ipv6, n6):
                self.add(owner, "AAAA", [a], ttl)
        self.hints["hosts"].append(owner.lower())

    def _distinct(self, fn, n):
        seen = []
        for _ in range(n * 20):
            v = fn()
            if v not in seen:
                seen.append(v)
            if len(seen) == n:
                break
        return seen

    def txt_strings(self):
        r = self.rng
        pieces = []
        for _ in range(r.randint(1, 3)):
            kind = r.random()
            if kind < 0.15:
                pieces.append('""')
            elif kind < 0.35:
                pieces.append(self.label(1, 12))          # unquoted
            else:
                words = []
                for _ in range(r.randint(1, 4)):
                    w = self.label(1, 8)
                    c = r.random()
                    if c < 0.12:
                        w += '\\"q\\"'                    # escaped quote
                    elif c < 0.2:
                        w += "\\\\"                       # escaped backslash
                    elif c < 0.28:
                        w += "\\%03d" % r.choice([0, 7, 65, 127, 200, 255])
                    elif c < 0.34:
                        w += ";semi"                      # not a comment in quotes
                    words.append(w)
                pieces.append('"' + " ".join(words) + '"')
        return pieces

    def target_host(self):
        return self.rng.choice(self.host_pool)

    # ----------------------------------------------------------- structure
    def build(self):
        r = self.rng
        o = self.origin
        hints = self.hints

        # Apex.
        ns_count = r.choice([2, 3])
        self.apex_ns = ["ns%d" % (i + 1) for i in range(ns_count)]
        self.soa_ttl = r.choice([3600, 7200, 86400])
        self.soa_min = r.choice([60, 300, 900])   # below the SOA TTL: negative TTL is the minimum
        # About one zone in three has an SOA TTL below its MINIMUM instead: negative answers
        # then carry the SOA TTL, the lesser of the two (RFC 2308 3 and 5). Drawn from a
        # stream of its own so that the rest of the zone stays what it was for a seed.
        alt = random.Random("soa-ttl-%d" % self.seed)
        if alt.random() < 0.35:
            self.soa_ttl = alt.choice([0, 1, 30, self.soa_min // 2, self.soa_min - 1])
        self.add(o, "SOA", [N("ns1." + o), N("hostmaster." + o),
                            str(r.randrange(1, 2 ** 31)), "7200", "900", "1209600",
                            str(self.soa_min)], self.soa_ttl)
        ns_ttl = r.choice([3600, 86400])
        for ns in self.apex_ns:
            self.add(o, "NS", [N(self.name(ns))], ns_ttl)
        for ns in self.apex_ns:
            self.add_host(self.name(ns), v6=r.random() < 0.8)

        # A pool of plain hosts used as MX/SRV/CNAME targets.
        self.host_pool = []
        for i in range(12):
            h = self.name("www") if i == 0 else self.name("%s.hosts" % self.label(2, 8))
            if h in self.host_pool:
                continue
            self.add_host(h, v4=r.random() < 0.9, v6=r.random() < 0.7,
                          n4=r.randint(1, 3), n6=r.randint(1, 2))
            self.host_pool.append(h)
        self.add_host(self.name("mail"), n4=2, n6=1)
        self.host_pool.append(self.name("mail"))
        # The apex itself: address, MX, TXT.
        self.add_host(o, v6=r.random() < 0.5)
        self.add(o, "MX", ["10", N(self.name("mail"))])
        self.add(o, "MX", ["20", N(self.target_host())])
        self.add(o, "MX", ["30", N("mx.example.com.")])
        self.add(o, "TXT", self.txt_strings())
        self.add(o, "TXT", ['"v=spf1 -all"'])
        self.add(o, "CAA", ["0", "issue", '"ca.example.net"'])

        self._random_names()
        self._big()
        self._generic()
        self._delegations()
        self._wildcards()
        self._ents()
        self._cnames()
        self._dnames()

        hints["outside"] = [
            "www.example.com.", "example.com.", "test.", ".", "net.",
            # names that share a suffix string but not a label boundary
            "x" + o, "a.b.x" + o,
            # parent of the apex
            o.split(".", 1)[1] if o.count(".") > 1 else "com.",
        ]

    def _random_names(self):
        r = self.rng
        made = []
        tries = 0
        while len(made) < self.n_names and tries < self.n_names * 20:
            tries += 1
            depth = r.choices([1, 2, 3, 4], weights=[30, 35, 22, 13])[0]
            if made and r.random() < 0.35:
                # grow a sibling/child under an existing random name's ancestry
                base = r.choice(made)
                rel = base[: -len(self.origin) - 1].split(".")
                keep = r.randint(1, len(rel))
                labels = rel[len(rel) - keep:]
                while len(labels) < depth:
                    labels.insert(0, self.label())
                if len(labels) > 4:
                    labels = labels[-4:]
            else:
                labels = [self.label() for _ in range(depth)]
            if labels[-1] in RESERVED_TOP:
                continue
            if r.random() < 0.05 and len(labels) <= 2:
                labels = ["_" + r.choice(["sip", "xmpp", "ldap", "http"]), "_" + r.choice(["tcp", "udp"])] + labels
            owner = self.name(".".join(labels))
            if owner in made or any(k[0] == owner for k in self.rrsets):
                continue
            made.append(owner)
        # ancestors of random names that are not owners themselves become ENTs
        for owner in made:
            self._fill(owner)

    def _fill(self, owner):
        r = self.rng
        kinds = ["A", "AAAA", "MX", "TXT", "SRV", "CAA", "PTR", "NAPTR", "HINFO", "TYPE65280"]
        weights = [30, 18, 10, 20, 6, 4, 4, 3, 3, 3]
        if owner.startswith("_"):
            chosen = ["SRV"] + (["TXT"] if r.random() < 0.3 else [])
        else:
            chosen = []
            for _ in range(r.randint(1, 3)):
                k = r.choices(kinds, weights)[0]
                if k not in chosen:
                    chosen.append(k)
        for k in chosen:
            ttl = self.ttl()
            if k == "A":
                for a in self._distinct(self.ipv4, r.randint(1, 3)):
                    self.add(owner, "A", [a], ttl)
                self.hints["hosts"].append(owner)
            elif k == "AAAA":
                for a in self._distinct(self.ipv6, r.randint(1, 2)):
                    self.add(owner, "AAAA", [a], ttl)
                self.hints["hosts"].append(owner)
            elif k == "MX":
                prefs = r.sample(range(0, 100), 3)
                for i in range(r.randint(1, 3)):
                    t = self.target_host() if r.random() < 0.7 else "mx%d.example.%s." % (r.randrange(5), r.choice(["com", "org"]))
                    self.add(owner, "MX", [str(prefs[i]), N(t)], ttl)
            elif k == "TXT":
                for _ in range(r.randint(1, 2)):
                    self.add(owner, "TXT", self.txt_strings(), ttl)
            elif k == "SRV":
                for i in range(r.randint(1, 2)):
                    self.add(owner, "SRV", [str(r.randrange(0, 20)), str(r.randrange(0, 100) + i * 100),
                                            str(r.choice([80, 443, 5060, 5222, 389])), N(self.target_host())], ttl)
            elif k == "CAA":
                self.add(owner, "CAA", ["0", "issue", '"%s.example.net"' % self.label(2, 6)], ttl)
                if r.random() < 0.5:
                    self.add(owner, "CAA", ["128", "iodef", '"mailto:sec@example.org"'], ttl)
            elif k == "PTR":
                t = self.target_host() if r.random() < 0.6 else "host%d.example.org." % r.randrange(100)
                self.add(owner, "PTR", [N(t)], ttl)
            elif k == "NAPTR":
                self.add(owner, "NAPTR", [str(r.choice([10, 100])), str(r.choice([10, 50])), '"U"',
                                          '"E2U+sip"', '"!^.*$!sip:info@example.com!"', "."], ttl)
                if r.random() < 0.4:
                    self.add(owner, "NAPTR", ["100", "20", '"S"', '"SIP+D2U"', '""',
                                              N("_sip._udp.example.com.")], ttl)
            elif k == "HINFO":
                self.add(owner, "HINFO", ['"%s"' % r.choice(["PC-Intel", "VAX 11/780", "ARM64"]),
                                          '"%s"' % r.choice(["Linux", "Plan 9", "UNIX"])], ttl)
            elif k == "TYPE65280":
                for _ in range(r.randint(1, 2)):
                    n = r.randint(0, 12)
                    data = bytes(r.randrange(256) for _ in range(n))
                    self.add(owner, "TYPE65280", ["\\#", str(n)] + ([data.hex()] if n else []), ttl, generic=True)

    def _big(self):
        # 40 A records: ~690 bytes in a reply, more than 512 without EDNS, fits in 1232.
        owner = self.name("big")
        ttl = self.ttl() or 300
        for i in range(40):
            self.add(owner, "A", ["192.0.2.%d" % (i + 1)], ttl)
        self.hints["big"].append(owner)
        self.add(self.name("cbig"), "CNAME", [N(owner)])
        self.hints["cnames"].append(self.name("cbig"))
        self.hints["cname_heads"].append(self.name("cbig"))

    def _generic(self):
        # RFC 3597 syntax: unknown types and a known type written generically.
        g = self.name("generic")
        self.add(g, "TYPE65280", ["\\#", "4", "0a0b0c0d"], 600, generic=True)
        self.add(g, "TYPE65280", ["\\#", "0"], 600, generic=True)
        self.add(g, "TYPE65534", ["\\#", "3", "abcdef"], 1200, generic=True)
        self.add(g, "A", ["\\#", "4", "c0000263"], 300, generic=True)   # 192.0.2.99
        self.hints["hosts"].append(g)

    def _delegations(self):
        r = self.rng
        h = self.hints
        # d1: two in-bailiwick name servers with A and AAAA glue; occluded data below.
        d1 = self.name("d1")
        ttl = r.choice([3600, 86400, 172800])
        self.add(d1, "NS", [N("ns1." + d1)], ttl)
        self.add(d1, "NS", [N("ns2." + d1)], ttl)
        self.add("ns1." + d1, "A", [self.ipv4()])
        self.add("ns1." + d1, "AAAA", [self.ipv6()])
        self.add("ns2." + d1, "A", [self.ipv4()])
        self.add("ns2." + d1, "AAAA", [self.ipv6()])
        h["glue"] += ["ns1." + d1, "ns2." + d1]
        self.add("www." + d1, "A", [self.ipv4()])
        self.add("deep.sub." + d1, "TXT", ['"occluded data"'])
        self.add("mx." + d1, "MX", ["10", N("www." + d1)])
        h["occluded"] += ["www." + d1, "deep.sub." + d1, "mx." + d1]
        # d2: only out-of-zone name servers.
        d2 = self.name("d2")
        ttl = r.choice([3600, 86400])
        self.add(d2, "NS", [N("ns1.example.net.")], ttl)
        self.add(d2, "NS", [N("ns2.example.org.")], ttl)
        # d3: one in-bailiwick (glue) and one out-of-zone name server.
        d3 = self.name("d3")
        ttl = r.choice([300, 3600])
        self.add(d3, "NS", [N("ns." + d3)], ttl)
        self.add(d3, "NS", [N("ns.ext-dns.example.")], ttl)
        self.add("ns." + d3, "A", [self.ipv4()])
        self.add("ns." + d3, "A", [self.ipv4()])
        self.add("ns." + d3, "AAAA", [self.ipv6()])
        h["glue"].append("ns." + d3)
        # d4: a delegation three labels down; its parents are empty non-terminals.
        d4 = self.name("deleg.a.d4p")
        ttl = r.choice([600, 3600])
        self.add(d4, "NS", [N("ns." + d4)], ttl)
        self.add(d4, "NS", [N("ns.b." + d4)], ttl)
        self.add("ns." + d4, "AAAA", [self.ipv6()])
        self.add("ns.b." + d4, "A", [self.ipv4()])
        h["glue"] += ["ns." + d4, "ns.b." + d4]
        h["ents"] += [self.name("a.d4p"), self.name("d4p")]
        h["delegations"] += [d1, d2, d3, d4]

    def _wildcards(self):
        h = self.hints
        # *.w1: A, TXT, MX; with an existing sibling 'exists.w1'.
        w1 = self.name("*.w1")
        ttl = self.ttl()
        for a in self._distinct(self.ipv4, 2):
            self.add(w1, "A", [a], ttl)
        self.add(w1, "TXT", ['"wildcard w1"', '"second string"'])
        self.add(w1, "MX", ["10", N(self.name("mail"))])
        self.add(w1, "MX", ["20", N("mx.example.com.")])
        self.add(self.name("exists.w1"), "TXT", ['"not from the wildcard"'])
        h["wildcard_siblings"].append(self.name("exists.w1"))
        # *.deep.w2: w2 and deep.w2 are empty non-terminals.
        w2 = self.name("*.deep.w2")
        self.add(w2, "A", [self.ipv4()])
        self.add(w2, "AAAA", [self.ipv6()])
        self.add(w2, "TXT", ['"wildcard two levels down"'])
        h["ents"] += [self.name("w2"), self.name("deep.w2")]
        # *.wc: CNAME to an in-zone host; *.wcx: CNAME out of zone.
        self.add(self.name("*.wc"), "CNAME", [N(self.target_host())])
        self.add(self.name("*.wcx"), "CNAME", [N("target.example.com.")])
        # *.wmx: MX only, targets in zone (additional section from a synthesized answer).
        self.add(self.name("*.wmx"), "MX", ["5", N(self.host_pool[1])])
        self.add(self.name("*.wmx"), "MX", ["15", N(self.name("mail"))])
        # *.x with a.b.x: b.x is an empty non-terminal that blocks *.x for c.b.x.
        self.add(self.name("*.x"), "A", [self.ipv4()])
        self.add(self.name("*.x"), "TXT", ['"x wildcard"'])
        self.add(self.name("a.b.x"), "A", [self.ipv4()])
        self.add(self.name("a.b.x"), "TXT", ['"below an ENT"'])
        h["ents"].append(self.name("b.x"))
        h["blocked_by_ent"].append(self.name("b.x"))
        h["wildcard_siblings"].append(self.name("a.b.x"))
        for w in ["*.w1", "*.deep.w2", "*.wc", "*.wcx", "*.wmx", "*.x"]:
            h["wildcards"].append(self.name(w))
            h["wildcard_parents"].append(self.name(w[2:]))

    def _ents(self):
        h = self.hints
        # Data only at leaf.e1.e2.ent: e1.e2.ent, e2.ent and ent are empty non-terminals.
        self.add(self.name("leaf.e1.e2.ent"), "A", [self.ipv4()])
        self.add(self.name("leaf.e1.e2.ent"), "TXT", ['"leaf"'])
        self.add(self.name("other.e2.ent"), "AAAA", [self.ipv6()])
        h["ents"] += [self.name("e1.e2.ent"), self.name("e2.ent"), self.name("ent")]
        h["hosts"] += [self.name("leaf.e1.e2.ent")]
        # ENTs made by random names
        owners = {k[0] for k in self.rrsets}
        ents = set()
        for o in owners:
            rel = o[: -len(self.origin)].rstrip(".")
            if not rel:
                continue
            labels = rel.split(".")
            for i in range(1, len(labels)):
                anc = ".".join(labels[i:]) + "." + self.origin
                if anc not in owners:
                    ents.add(anc)
        # only the ones not already below a cut / wildcard area listed elsewhere
        for e in sorted(ents):
            if e not in h["ents"] and not any(e == d or e.endswith("." + d) for d in h["delegations"]):
                h["ents"].append(e)

    def _cnames(self):
        h = self.hints
        # chains of length 1..4 ending at an in-zone host
        for i in range(6):
            length = 1 + (i % 4)
            names = [self.name("c%d-%d" % (i, j)) for j in range(length)]
            # chain 5 ends at an empty non-terminal (NODATA for every type)
            final = self.target_host() if i != 5 else self.name("e2.ent")
            for j, n in enumerate(names):
                nxt = names[j + 1] if j + 1 < length else final
                self.add(n, "CNAME", [N(nxt)])
            h["cnames"] += names
            h["cname_heads"].append(names[0])
        # out of zone
        self.add(self.name("cout"), "CNAME", [N("www.example.org.")])
        # to a nonexistent in-zone name (direct, and at the end of a 2-chain)
        self.add(self.name("cnx"), "CNAME", [N(self.name("nothere"))])
        self.add(self.name("cnx2"), "CNAME", [N(self.name("cnx"))])
        # to a wildcard-covered name, and to a name covered by a CNAME wildcard
        self.add(self.name("cwild"), "CNAME", [N(self.name("%s.w1" % self.label(2, 6)))])
        self.add(self.name("cwildc"), "CNAME", [N(self.name("%s.wc" % self.label(2, 6)))])
        # to a name below a delegation (answer = CNAME + referral)
        self.add(self.name("cdeleg"), "CNAME", [N("www." + self.name("d1"))])
        # through an in-zone DNAME
        self.add(self.name("cdname"), "CNAME", [N(self.name("a.dnin"))])
        # through an out-of-zone DNAME
        self.add(self.name("cdnout"), "CNAME", [N(self.name("host.dnout"))])
        # to an empty non-terminal
        self.add(self.name("cent"), "CNAME", [N(self.name("e2.ent"))])
        for c in ["cout", "cnx", "cnx2", "cwild", "cwildc", "cdeleg", "cdname", "cdnout", "cent"]:
            h["cnames"].append(self.name(c))
            h["cname_heads"].append(self.name(c))

    def _dnames(self):
        h = self.hints
        dnin = self.name("dnin")
        tgt = self.name("tgt")
        self.add(dnin, "DNAME", [N(tgt)])
        self.add(dnin, "TXT", ['"data next to a DNAME"'])
        self.add(tgt, "TXT", ['"dname target"'])
        self.add("a." + tgt, "A", [self.ipv4()])
        self.add("a." + tgt, "AAAA", [self.ipv6()])
        self.add("b.c." + tgt, "TXT", ['"deeper under the target"'])
        self.add("m." + tgt, "MX", ["10", N(self.name("mail"))])
        self.add("cn." + tgt, "CNAME", [N(self.host_pool[0])])
        h["ents"].append("c." + tgt)
        dnout = self.name("dnout")
        self.add(dnout, "DNAME", [N("ext.example.org.")])
        h["dnames"] += [dnin, dnout]
        h["dname_targets"].append(tgt)

    # ------------------------------------------------------------- writing
    def render(self):
        r = self.rng
        o = self.origin
        out = []
        out.append("; generated by tests/integration/zonegen.py; do not edit")
        default_ttl = 3600
        out.append("$TTL %d" % default_ttl)
        out.append("$ORIGIN %s" % self.mixcase(o))
        state = {"origin": o, "default": default_ttl, "last_ttl": None, "last_owner": None}

        # Group records by owner, keep RRsets together; SOA first.
        by_owner = {}
        for rec in self.records:
            by_owner.setdefault(rec.owner, []).append(rec)
        owners = list(by_owner)
        owners.remove(o)
        r.shuffle(owners)
        owners.insert(0, o)

        for idx, owner in enumerate(owners):
            # Occasionally switch $ORIGIN to the owner's parent, or change $TTL.
            if idx > 0 and r.random() < 0.06:
                parent = owner.split(".", 1)[1] if owner != o else o
                if parent.endswith(o) and parent != state["origin"]:
                    state["origin"] = parent
                    out.append("$ORIGIN %s" % self.mixcase(parent))
                    state["last_owner"] = None
            elif idx > 0 and state["origin"] != o and r.random() < 0.3:
                state["origin"] = o
                out.append("$ORIGIN %s" % self.mixcase(o))
                state["last_owner"] = None
            if idx > 0 and r.random() < 0.03:
                state["default"] = r.choice([300, 600, 3600, 86400])
                out.append("$TTL %d" % state["default"])
                state["last_owner"] = None
            if r.random() < 0.05:
                out.append("; comment before %s" % self.mixcase(owner))
            recs = by_owner[owner]
            # records of one owner grouped by type, in random type order
            types = []
            for rec in recs:
                if rec.rdtype not in types:
                    types.append(rec.rdtype)
            if owner != o:
                r.shuffle(types)
            else:
                types.remove("SOA")
                types.insert(0, "SOA")
            for t in types:
                for rec in [x for x in recs if x.rdtype == t]:
                    out.append(self.line(rec, state))
        out.append("")
        return "\n".join(out)

    def mixcase(self, name):
        r = self.rng
        if r.random() < 0.6:
            return name
        return "".join(c.upper() if c.isalpha() and r.random() < 0.5 else c for c in name)

    def rel(self, name, origin, allow_at=False):
        r = self.rng
        if name == origin:
            if allow_at and r.random() < 0.7:
                return "@"
            return self.mixcase(name)
        if name.endswith("." + origin) and r.random() < 0.75:
            return self.mixcase(name[: -len(origin) - 1])
        return self.mixcase(name)

    def line(self, rec, state):
        r = self.rng
        if state["last_owner"] == rec.owner and r.random() < 0.5:
            owner_txt = ""          # blank owner: same as the previous line
        else:
            owner_txt = self.rel(rec.owner, state["origin"], allow_at=True)
        state["last_owner"] = rec.owner
        # The TTL may be left out only when both readings of an omitted TTL agree:
        # the $TTL default (RFC 2308) and the previous record's TTL (RFC 1035).
        omit_ttl = (rec.ttl == state["default"] and state["last_ttl"] == rec.ttl and r.random() < 0.6)
        state["last_ttl"] = rec.ttl
        parts = []
        cls = "IN" if r.random() < 0.7 else None
        ttl = None if omit_ttl else str(rec.ttl)
        if ttl and r.random() < 0.1:
            # TTL units (BIND style) are understood by zscanner and dnspython alike
            t = rec.ttl
            if t and t % 3600 == 0:
                ttl = "%dH" % (t // 3600) if r.random() < 0.5 else "%dh" % (t // 3600)
        # (RFC 1035 also allows "IN 300 A"; dnspython, our cross-check, does not read it.)
        parts += [x for x in (ttl, cls) if x]
        parts.append(rec.rdtype if r.random() < 0.85 else rec.rdtype.lower())
        rd = []
        for tok in rec.rdata:
            if isinstance(tok, N):
                rd.append(self.rel(tok.name, state["origin"]))
            else:
                rd.append(tok)
        if rec.rdtype == "SOA" and r.random() < 0.7:
            body = "%s %s (\n\t\t%s ; serial\n\t\t%s %s %s\n\t\t%s )" % tuple(rd)
        else:
            body = " ".join(rd)
        return "%s\t%s %s" % (owner_txt, " ".join(parts), body)


def generate(seed, n_names=300):
    """Build the zone for this seed; same seed, same zone, same file text."""
    g = _Gen(seed, n_names)
    g.build()
    text = g.render()
    hints = {k: (sorted(set(v)) if isinstance(v, list) else v) for k, v in g.hints.items()}
    return GeneratedZone(origin=g.origin, text=text, hints=hints, records=g.records)


def generate_perturbed(seed, n_names=300, edits=3):
    """The zone for this seed with a few small semantic edits, for testing the tester.

    Returns (text, [description of each edit]). Edits: a changed TTL on one
    RRset, one record dropped from an RRset of several, one rdata changed.
    """
    g = _Gen(seed, n_names)
    g.build()
    r = random.Random("perturb-%d" % seed)
    done = []
    recs = g.records
    by_key = {}
    for i, rec in enumerate(recs):
        by_key.setdefault((rec.owner, rec.rdtype), []).append(i)
    keys = sorted(k for k in by_key if k[1] not in ("SOA",) and not recs[by_key[k][0]].generic)
    for n in range(edits):
        what = n % 3
        if what == 0:
            k = r.choice(keys)
            new_ttl = recs[by_key[k][0]].ttl + 1
            for i in by_key[k]:
                recs[i].ttl = new_ttl
            done.append("TTL of %s %s set to %d" % (k[0], k[1], new_ttl))
        elif what == 1:
            multi = [k for k in keys if len(by_key[k]) > 1 and k[1] != "NS"]
            k = r.choice(multi)
            i = by_key[k][-1]
            done.append("dropped %s %s %s" % (k[0], k[1], " ".join(map(str, recs[i].rdata))))
            recs[i] = None
        else:
            a = [k for k in keys if k[1] == "A" and not k[0].startswith("*")]
            k = r.choice(a)
            i = by_key[k][0]
            if recs[i] is not None:
                recs[i].rdata = ["192.0.2.254"]
                done.append("first A of %s changed to 192.0.2.254" % k[0])
    g.records = [x for x in recs if x is not None]
    return g.render(), done


def check_with_dnspython(gz):
    """Parse the text with dnspython and check it holds exactly the generated records.

    Returns a list of problems (empty when the file says what the generator meant).
    """
    import dns.name
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype
    import dns.zone

    zone = dns.zone.from_text(gz.text, origin=gz.origin, relativize=False, check_origin=True)
    got = {}
    for name, node in zone.nodes.items():
        for rds in node.rdatasets:
            key = (name.to_text().lower(), dns.rdatatype.to_text(rds.rdtype))
            got[key] = (rds.ttl, sorted(rd.to_digestable() for rd in rds))
    want = {}
    origin = dns.name.from_text(gz.origin)
    for rec in gz.records:
        key = (rec.owner, rec.rdtype)
        text = " ".join(t.name if isinstance(t, N) else t for t in rec.rdata)
        rd = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(rec.rdtype), text, origin=origin, relativize=False)
        ttl, lst = want.setdefault(key, (rec.ttl, []))
        d = rd.to_digestable()
        if d not in lst:
            lst.append(d)
    want = {k: (v[0], sorted(v[1])) for k, v in want.items()}
    problems = []
    for k in sorted(set(got) | set(want)):
        if got.get(k) != want.get(k):
            problems.append("%s %s: file=%r generator=%r" % (k[0], k[1], got.get(k), want.get(k)))
    return problems


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--names", type=int, default=300, help="number of random owner names")
    ap.add_argument("--out", help="write the zone file here (default: stdout)")
    ap.add_argument("--hints", action="store_true", help="print the hints as JSON to stderr")
    ap.add_argument("--check", action="store_true", help="parse the result with dnspython and compare")
    args = ap.parse_args(argv)
    gz = generate(args.seed, args.names)
    if args.out:
        with open(args.out, "w") as f:
            f.write(gz.text)
        print(gz.origin)
    else:
        sys.stdout.write(gz.text)
    if args.hints:
        json.dump(gz.hints, sys.stderr, indent=1)
        sys.stderr.write("\n")
    if args.check:
        problems = check_with_dnspython(gz)
        for p in problems[:20]:
            print("MISMATCH", p, file=sys.stderr)
        if problems:
            return 1
        print("zone %s: %d records, dnspython agrees" % (gz.origin, len(gz.records)), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""tandemd as the primary of a generated zone, with Knot DNS, NSD and a second tandemd as
its secondaries.

    /usr/bin/python3 tests/integration/test_primary.py --tandemd build/tandemd

What is checked:

1. Bootstrap. tandemd (the primary, "tandem1") serves a zonegen.py zone with
   allow_transfer = 127.0.0.0/8, a [[tsig]] key and NOTIFY to four secondaries: knotd
   (transfers signed with the key), NSD (no key), a second tandemd ("tandem2", sources =
   tandem1, no key) and a third ("tandem4", sources = tandem1 with the key). Each must
   serve the zone's serial and say (its log; tandem1's log for NSD) that it got it by
   AXFR; knot, nsd and tandem2 must hold exactly tandem1's records (an AXFR from each
   compared with one from tandem1, and tandem1's with the zone file as dnspython reads it)
   and answer ~600 generated queries exactly as tandem1 does (dnsdiff.compare).
2. An edit. The zone file is changed (serial + 1; records added, changed, removed, an
   RRset's TTL changed; zonegen re-renders the file, so names inside RDATA change case
   too) and tandem1 gets SIGHUP. tandem1 must log each NOTIFY as acknowledged; each
   secondary must serve the new serial (within seconds: their SOA refresh is 2 hours, so
   only the NOTIFY explains it), Knot and tandem2 by IXFR (their logs), NSD by IXFR or
   AXFR (recorded: NSD logs the size of what it received, compared here with the sizes
   of an IXFR and an AXFR from tandem1); the copies and the answers are compared again,
   with queries for the edited names. IXFR from the old serial through dnspython gives
   the RFC 1995 sequence, from an unknown serial the whole zone.
3. TSIG. An AXFR signed with the right key (dnspython verifies every message) holds the
   zone; one signed with a wrong secret (a raw signed request, and kdig -y) is answered
   NOTAUTH with TSIG error BADSIG. An SOA query signed with the key (what a secondary
   sends before a transfer) must get a signed answer, and knot must never have failed to
   verify tandem1's answers.
4. allow_transfer. Another tandemd ("tandem3") with allow_transfer = ["127.0.0.2/32"]:
   AXFR and IXFR from 127.0.0.1 are REFUSED; from 127.0.0.2 the AXFR works (when the host
   lets us bind 127.0.0.2). AXFR over UDP is answered NOTIMP.

Everything listens on 127.0.0.1; every process is stopped by pid at the end; every wait
has a deadline.

Exit status: 0 when every check passes, 1 when one fails, 2 when the test could not run.
"""

import argparse
import base64
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dns.exception  # noqa: E402
import dns.message  # noqa: E402
import dns.name  # noqa: E402
import dns.query  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rdata  # noqa: E402
import dns.rdataclass  # noqa: E402
import dns.rdatatype  # noqa: E402
import dns.rrset  # noqa: E402
import dns.tsigkeyring  # noqa: E402
import dns.zone  # noqa: E402

import dnsdiff  # noqa: E402
import procs  # noqa: E402
import zonegen  # noqa: E402
from test_differential import report, run_queries  # noqa: E402

DEFAULT_SEED = 20250301
KEY_NAME = "xfr-key"
KEY_ALG = "hmac-sha256"
KEY_SECRET = base64.b64encode(bytes(range(100, 132))).decode()
WRONG_SECRET = base64.b64encode(bytes(range(1, 33))).decode()
T = dns.rdatatype


class Setup(Exception):
    """The test could not run (exit 2)."""


class Checks:
    def __init__(self, log):
        self.log = log
        self.failed = []
        self.passed = 0

    def expect(self, cond, what, detail=""):
        if cond:
            self.passed += 1
            self.log("ok   %s" % what)
        else:
            self.failed.append(what)
            self.log("FAIL %s%s" % (what, ("\n     " + detail.replace("\n", "\n     ")) if detail else ""))
        return cond


# ---------------------------------------------------------------- the zone and its edit

def edited_zone(seed, n_names, new_serial):
    """The zone of `seed` with an edit: the serial set to new_serial, records added (a new
    name; a record in an existing RRset), changed (an address; the TTL of a whole RRset),
    removed (one record of an RRset of several; every record of one name). Returns
    (GeneratedZone, [descriptions], {name: what happened}) where the names are the edited
    owners, for targeted queries."""
    g = zonegen._Gen(seed, n_names)
    g.build()
    o = g.origin
    recs = g.records
    for r in recs:
        if r.rdtype == "SOA":
            r.rdata[2] = str(new_serial)
    top = lambda owner: owner[: -len(o) - 1].split(".")[-1]  # noqa: E731
    plain = [r for r in recs if r.owner != o and top(r.owner) not in zonegen.RESERVED_TOP
             and not r.owner.startswith("_") and not r.generic]
    owners = sorted({r.owner for r in recs})
    by_key = {}
    for r in plain:
        by_key.setdefault((r.owner, r.rdtype), []).append(r)
    rng = zonegen.random.Random("edit-%d" % seed)
    done, touched = [], {}

    # removed: one record of an A RRset with several
    multi_a = sorted(k for k, v in by_key.items() if k[1] == "A" and len(v) > 1)
    k = rng.choice(multi_a)
    victim = by_key[k][-1]
    recs.remove(victim)
    done.append("removed %s A %s" % (k[0], victim.rdata[0]))
    touched[k[0]] = T.A
    # removed: every record of a leaf name (no other owner below it)
    leaves = sorted(x for x in {r.owner for r in plain}
                    if not any(y != x and y.endswith("." + x) for y in owners) and x != k[0])
    gone = rng.choice(leaves)
    types = sorted({r.rdtype for r in recs if r.owner == gone})
    recs[:] = [r for r in recs if r.owner != gone]
    done.append("removed the name %s (%s)" % (gone, " ".join(types)))
    touched[gone] = T.A
    # changed: the first A of another name
    single_a = sorted(k2 for k2, v in by_key.items() if k2[1] == "A" and k2[0] not in touched)
    k2 = rng.choice(single_a)
    by_key[k2][0].rdata = ["198.51.100.77"]
    done.append("changed the first A of %s to 198.51.100.77" % k2[0])
    touched[k2[0]] = T.A
    # changed: the TTL of a whole TXT RRset
    txts = sorted(k3 for k3 in by_key if k3[1] == "TXT" and k3[0] not in touched)
    k3 = rng.choice(txts)
    new_ttl = by_key[k3][0].ttl + 7
    for r in by_key[k3]:
        r.ttl = new_ttl
    done.append("TTL of %s TXT set to %d" % (k3[0], new_ttl))
    touched[k3[0]] = T.TXT
    # added: a record to an existing AAAA or A RRset
    grow = sorted(k4 for k4 in by_key if k4[1] in ("A", "AAAA") and k4[0] not in touched)
    k4 = rng.choice(grow)
    val = "192.0.2.213" if k4[1] == "A" else "2001:db8:ffff::213"
    recs.append(zonegen.Record(k4[0], by_key[k4][0].ttl, k4[1], [val]))
    done.append("added %s %s %s" % (k4[0], k4[1], val))
    touched[k4[0]] = T.A if k4[1] == "A" else T.AAAA
    # added: a new name with A, TXT and MX
    new = "added-by-edit." + o
    assert new not in owners
    recs.append(zonegen.Record(new, 600, "A", ["203.0.113.99"]))
    recs.append(zonegen.Record(new, 600, "TXT", ['"added by the edit"']))
    recs.append(zonegen.Record(new, 900, "MX", ["10", zonegen.N("mail." + o)]))
    done.append("added the name %s (A TXT MX)" % new)
    touched[new] = T.A

    text = g.render()
    gz = zonegen.GeneratedZone(origin=o, text=text, hints=dict(g.hints), records=recs)
    return gz, done, touched


def targeted_queries(names, start_idx, seed):
    """Queries for the edited names: the type touched, ANY-free, over UDP and TCP."""
    rng = zonegen.random.Random("targeted-%d" % seed)
    out = []
    i = start_idx
    for name, rdtype in sorted(names.items()):
        for qtype in sorted({rdtype, T.A, T.TXT, T.AAAA, T.MX}):
            for tcp in (False, True):
                out.append(dnsdiff.Query(i, "edited", dns.name.from_text(name), qtype, tcp,
                                         1232 if tcp else -1, False, True, rng.randrange(65536)))
                i += 1
    return out


# ---------------------------------------------------------------- transfers from the test

def _rr_tuples(rrset):
    return [(rrset.name.to_text().lower(), rrset.ttl, rrset.rdclass, rrset.rdtype,
             rd.to_digestable()) for rd in rrset]


def axfr_records(addr, zone, keyring=None, keyname=None, source=None, timeout=10.0):
    """The records of an AXFR from addr (dnspython, verifying TSIG when keyring is given):
    (list of record tuples without the closing SOA, number of messages)."""
    msgs = list(dns.query.xfr(addr[0], zone, rdtype=T.AXFR, port=addr[1], timeout=timeout,
                              lifetime=timeout * 3, keyring=keyring, keyname=keyname,
                              keyalgorithm=KEY_ALG, relativize=False, source=source))
    recs = []
    for m in msgs:
        for rrset in m.answer:
            recs += _rr_tuples(rrset)
    if len(recs) < 2 or recs[0][3] != T.SOA or recs[-1] != recs[0]:
        raise AssertionError("AXFR stream does not start and end with the same SOA")
    return recs[:-1], len(msgs)


def zone_file_records(gz):
    """The zone as dnspython reads the file: record tuples."""
    z = dns.zone.from_text(gz.text, origin=gz.origin, relativize=False, check_origin=True)
    recs = []
    for name, node in z.nodes.items():
        for rds in node.rdatasets:
            for rd in rds:
                recs.append((name.to_text().lower(), rds.ttl, rds.rdclass, rds.rdtype, rd.to_digestable()))
    return recs


def diff_records(a, b, name_a, name_b, limit=8):
    """'' when the multisets are equal, else a few lines of what differs."""
    from collections import Counter
    ca, cb = Counter(a), Counter(b)
    if ca == cb:
        return ""
    lines = []
    for r in sorted((ca - cb).elements())[:limit]:
        lines.append("only in %s: %s %d %s" % (name_a, r[0], r[1], T.to_text(r[3])))
    for r in sorted((cb - ca).elements())[:limit]:
        lines.append("only in %s: %s %d %s" % (name_b, r[0], r[1], T.to_text(r[3])))
    return "%d records in %s, %d in %s\n" % (len(a), name_a, len(b), name_b) + "\n".join(lines)


def _recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def raw_tcp_exchange(addr, wire, source=None, timeout=5.0):
    """Sends one message over TCP; returns the first reply message's bytes."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        if source:
            s.bind((source, 0))
        s.connect(addr)
        s.sendall(struct.pack("!H", len(wire)) + wire)
        (ln,) = struct.unpack("!H", _recv_exact(s, 2))
        return _recv_exact(s, ln)
    finally:
        s.close()


def xfr_query(zone, rdtype, serial=None, keyring=None, wrong=False):
    q = dns.message.make_query(zone, rdtype)
    if rdtype == T.IXFR:
        soa = dns.rrset.from_text(zone, 0, "IN", "SOA", ". . %d 0 0 0 0" % serial)
        q.authority.append(soa)
    if keyring is not None:
        q.use_tsig(keyring, keyname=KEY_NAME, algorithm=KEY_ALG)
    return q


def raw_xfr_size(addr, zone, rdtype, serial=None, timeout=10.0):
    """Octets of the messages of a transfer (without the TCP length fields), read until
    the server closes the connection (tandemd closes it after the stream)."""
    wire = xfr_query(zone, rdtype, serial=serial).to_wire()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    total = 0
    try:
        s.settimeout(timeout)
        s.connect(addr)
        s.sendall(struct.pack("!H", len(wire)) + wire)
        while True:
            head = s.recv(2, socket.MSG_WAITALL)
            if len(head) < 2:
                return total
            (ln,) = struct.unpack("!H", head)
            total += len(_recv_exact(s, ln))
    finally:
        s.close()


def header_rcode(raw):
    return raw[3] & 0x0F if len(raw) >= 4 else None


def tsig_error(raw):
    """The Error field of a TSIG record ending the additional section, read by hand (no
    key needed); None when there is none."""
    try:
        qd, an, ns, ar = struct.unpack("!HHHH", raw[4:12])
        pos = 12
        for _ in range(qd):
            _, used = dns.name.from_wire(raw, pos)
            pos += used + 4
        found = None
        for _ in range(an + ns + ar):
            _, used = dns.name.from_wire(raw, pos)
            pos += used
            rtype, _, _, rdlen = struct.unpack("!HHIH", raw[pos:pos + 10])
            pos += 10
            if rtype == T.TSIG:
                _, alg_len = dns.name.from_wire(raw, pos)
                p = pos + alg_len + 6 + 2  # algorithm, time signed, fudge
                (mac_len,) = struct.unpack("!H", raw[p:p + 2])
                p += 2 + mac_len + 2       # MAC, original ID
                (found,) = struct.unpack("!H", raw[p:p + 2])
            pos += rdlen
        return found
    except (struct.error, dns.exception.DNSException, IndexError):
        return None


# ---------------------------------------------------------------- the test

def main(argv=None):
    ap = argparse.ArgumentParser(description="tandemd as a primary of Knot DNS, NSD and tandemd")
    ap.add_argument("--tandemd", required=True)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--names", type=int, default=200, help="random owner names in the zone")
    ap.add_argument("--queries", type=int, default=600)
    ap.add_argument("--show", type=int, default=10, help="differing queries to print")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--knotd", default="knotd")
    ap.add_argument("--nsd", default="nsd")
    ap.add_argument("--kdig", default="kdig")
    args = ap.parse_args(argv)

    def log(msg=""):
        print(msg, flush=True)

    tandemd = os.path.abspath(args.tandemd)
    if not (os.path.isfile(tandemd) and os.access(tandemd, os.X_OK)):
        log("tandemd binary not found or not executable: %s" % tandemd)
        return 2
    procs.stop_on_sigterm()
    t_start = time.monotonic()
    checks = Checks(log)
    servers = []
    try:
        with procs.TempDir(prefix="tandem-primary-", keep=args.keep) as tmp:
            if args.keep:
                log("temporary directory: %s" % tmp)
            try:
                run(args, tmp, tandemd, servers, checks, log)
            except (Setup, procs.ServerError) as e:
                log("could not run: %s" % e)
                return 2
            finally:
                for srv in reversed(servers):
                    srv.stop()
    finally:
        log("%d checks passed, %d failed; %.1f s" % (checks.passed, len(checks.failed),
                                                     time.monotonic() - t_start))
    if checks.failed:
        log("FAILED: " + "; ".join(checks.failed))
        return 1
    log("PASSED")
    return 0


def tandem_primary_config(port, state, zone, zone_file, allow, notify, key=True):
    text = '[server]\nmode = "socket"\nlisten = ["%s:%d"]\nworkers = 1\nstate_dir = "%s"\n' % (
        procs.LOOPBACK, port, state)
    if key:
        text += '\n[[tsig]]\nname = "%s"\nalgorithm = "%s"\nsecret = "%s"\n' % (KEY_NAME, KEY_ALG, KEY_SECRET)
    text += '\n[[zone]]\nname = "%s"\nfile = "%s"\nallow_transfer = [%s]\nnotify = [%s]\n' % (
        zone, zone_file, ", ".join('"%s"' % a for a in allow), ", ".join('"%s"' % n for n in notify))
    return text


def tandem_secondary_config(port, state, zone, primary_port, key=False):
    text = '[server]\nmode = "socket"\nlisten = ["%s:%d"]\nworkers = 1\nstate_dir = "%s"\n' % (
        procs.LOOPBACK, port, state)
    if key:
        text += '\n[[tsig]]\nname = "%s"\nalgorithm = "%s"\nsecret = "%s"\n' % (KEY_NAME, KEY_ALG, KEY_SECRET)
    text += '\n[[zone]]\nname = "%s"\nsources = [{ name = "tandem1", address = "%s:%d"%s }]\n' % (
        zone, procs.LOOPBACK, primary_port, (', tsig = "%s"' % KEY_NAME) if key else "")
    text += 'allow_transfer = ["127.0.0.0/8"]\n'
    return text


def distinct_ports(n):
    ports = []
    for _ in range(100):
        p = procs.free_port()
        if p not in ports:
            ports.append(p)
        if len(ports) == n:
            return ports
    raise Setup("no %d distinct free ports" % n)


def compare_copies(checks, primary, secondaries, zone, phase, log):
    try:
        ref, n_msgs = axfr_records(primary.addr, zone)
    except Exception as e:  # noqa: BLE001
        checks.expect(False, "%s: AXFR from %s" % (phase, primary.name), "%s: %s" % (type(e).__name__, e))
        return None
    log("     %s AXFR: %d records in %d messages" % (primary.name, len(ref), n_msgs))
    for sec in secondaries:
        try:
            got, _ = axfr_records(sec.addr, zone)
            d = diff_records(ref, got, primary.name, sec.name)
        except Exception as e:  # noqa: BLE001
            d = "AXFR from %s failed: %s: %s" % (sec.name, type(e).__name__, e)
        checks.expect(not d, "%s: %s holds exactly %s's records" % (phase, sec.name, primary.name), d)
    return ref


def compare_answers(checks, queries, primary, secondaries, apex, phase, show, log):
    for sec in secondaries:
        deadline = time.monotonic() + 120
        results = run_queries(queries, primary, sec, apex, deadline, lambda m: log("     " + m))
        n_fail = report(results, len(queries), primary, sec, show, lambda m: log("     " + m))
        checks.expect(n_fail == 0 and len(results) == len(queries),
                      "%s: %s answers %d queries as %s does" % (phase, sec.name, len(queries), primary.name),
                      "%d of %d queries differ (%d sent)" % (n_fail, len(queries), len(results)))


def run(args, tmp, tandemd, servers, checks, log):
    gz = zonegen.generate(args.seed, args.names)
    problems = zonegen.check_with_dnspython(gz)
    if problems:
        raise Setup("zone generator bug:\n" + "\n".join(problems[:10]))
    zone = gz.origin
    serial1 = next(int(r.rdata[2]) for r in gz.records if r.rdtype == "SOA")
    serial2 = (serial1 + 1) % 2 ** 32
    log("seed %d: zone %s, %d records, serial %d" % (args.seed, zone, len(gz.records), serial1))

    pdir = os.path.join(tmp, "tandem1")
    os.makedirs(pdir, exist_ok=True)
    zone_file = os.path.join(pdir, "zone.db")
    with open(zone_file, "w") as f:
        f.write(gz.text)
    # Every port chosen at once (the primary's config names the secondaries' ports).
    p_t1, p_knot, p_nsd, p_t2, p_t4 = distinct_ports(5)
    notify = ["%s:%d" % (procs.LOOPBACK, p) for p in (p_knot, p_nsd, p_t2, p_t4)]

    # ---- 1. bootstrap -------------------------------------------------------------------
    t1 = procs.start_tandemd_pulled(
        tandemd, tmp, zone,
        lambda port: tandem_primary_config(port, os.path.join(pdir, "state"), zone, zone_file,
                                           ["127.0.0.0/8"], notify),
        name="tandem1", port=p_t1)
    servers.append(t1)
    t1.wait_ready(zone, timeout=10)
    t1.log_path = t1.stderr_path
    primary = "%s@%d" % (procs.LOOPBACK, t1.port)
    # knot signs its transfers with the key (tandem1 verifies and signs every message);
    # nsd and tandem2 transfer without a key; tandem4 signs with the key.
    knot = procs.start_knot_secondary(tmp, zone, primary, name="knot", port=p_knot,
                                      key=(KEY_NAME, KEY_ALG, KEY_SECRET), knotd=args.knotd)
    servers.append(knot)
    nsd = procs.start_nsd_secondary(tmp, zone, primary, name="nsd", port=p_nsd, nsd=args.nsd)
    servers.append(nsd)
    t2 = procs.start_tandemd_pulled(
        tandemd, tmp, zone,
        lambda port: tandem_secondary_config(port, os.path.join(tmp, "tandem2", "state"), zone, t1.port),
        name="tandem2", port=p_t2)
    servers.append(t2)
    t2.log_path = t2.stderr_path
    t4 = procs.start_tandemd_pulled(
        tandemd, tmp, zone,
        lambda port: tandem_secondary_config(port, os.path.join(tmp, "tandem4", "state"), zone, t1.port, key=True),
        name="tandem4", port=p_t4)
    servers.append(t4)
    t4.log_path = t4.stderr_path
    secondaries = [knot, nsd, t2]
    log("tandem1 (primary) on %d; knot %d (TSIG), nsd %d, tandem2 %d, tandem4 %d (TSIG)"
        % (t1.port, knot.port, nsd.port, t2.port, t4.port))

    t4_ok = False
    for sec in secondaries + [t4]:
        try:
            took = procs.wait_serial(sec, zone, serial1, timeout=30 if sec is not t4 else 10)
            checks.expect(True, "bootstrap: %s serves serial %d (after %.1f s)" % (sec.name, serial1, took))
            t4_ok |= sec is t4
        except procs.ServerError as e:
            checks.expect(False, "bootstrap: %s serves serial %d%s" % (
                sec.name, serial1, " (TSIG-signed transfers from tandem1)" if sec is t4 else ""),
                "%s\nlog:\n%s" % (e, procs.read_log(sec.log_path)[-1500:]))
    # How each got it: their logs, and tandem1's.
    m = procs.wait_log(knot.log_path, r"AXFR, incoming, remote %s, finished" % re.escape(primary), timeout=5)
    checks.expect(m is not None, "bootstrap: knot's log shows a finished incoming AXFR from tandem1 (signed)",
                  procs.read_log(knot.log_path)[-2000:])
    m = procs.wait_log(nsd.log_path, r"received update to serial %d [^\n]*from %s[^\n]*" % (serial1, re.escape(primary)), timeout=5)
    checks.expect(m is not None, "bootstrap: nsd's log shows the update to serial %d from tandem1 (%s)"
                  % (serial1, m.group(0) if m else "-"), procs.read_log(nsd.log_path)[-2000:])
    m = procs.wait_log(t2.log_path, r"source tandem1[^\n]*: AXFR serial %d" % serial1, timeout=5)
    checks.expect(m is not None, "bootstrap: tandem2's log shows an AXFR of serial %d" % serial1,
                  procs.read_log(t2.log_path)[-2000:])
    kinds = re.findall(r"transfer of \S+ serial %d to [^:]+:\d+: ([A-Z][^,]*)," % serial1, procs.read_log(t1.log_path))
    log("     tandem1 served before any test transfer: %s" % (", ".join(kinds) or "nothing logged"))
    if t4_ok:
        secondaries.append(t4)     # then it takes part in every later check too
    checks.expect(kinds.count("AXFR") >= len(secondaries) and all(k in ("AXFR", "IXFR (up to date)") for k in kinds),
                  "bootstrap: tandem1 logged an AXFR for each of %s and no other transfer of data (nsd got AXFR)"
                  % ", ".join(x.name for x in secondaries),
                  procs.read_log(t1.log_path)[-2000:])

    ref = compare_copies(checks, t1, secondaries, zone, "bootstrap", log)
    if ref is not None:
        d = diff_records(zone_file_records(gz), ref, "zone file", "tandem1 AXFR")
        checks.expect(not d, "bootstrap: tandem1's AXFR holds exactly the zone file's records", d)
    queries = dnsdiff.gen_queries(gz, args.queries, args.seed)
    compare_answers(checks, queries, t1, secondaries, zone, "bootstrap", args.show, log)

    # ---- 2. edit, SIGHUP, NOTIFY, IXFR -----------------------------------------------------
    gz2, edits, touched = edited_zone(args.seed, args.names, serial2)
    problems = zonegen.check_with_dnspython(gz2)
    if problems:
        raise Setup("edited zone does not hold what was meant:\n" + "\n".join(problems[:10]))
    log("edit: serial %d -> %d; %s" % (serial1, serial2, "; ".join(edits)))
    marks = {s.name: procs.log_size(s.log_path) for s in [t1] + secondaries}
    tmpf = zone_file + ".tmp"
    with open(tmpf, "w") as f:
        f.write(gz2.text)
    os.replace(tmpf, zone_file)
    os.kill(t1.proc.pid, signal.SIGHUP)
    try:
        procs.wait_serial(t1, zone, serial2, timeout=15)
        checks.expect(True, "edit: tandem1 serves serial %d after SIGHUP" % serial2)
    except procs.ServerError as e:
        checks.expect(False, "edit: tandem1 serves serial %d after SIGHUP" % serial2, str(e))
        return
    for sec in secondaries:
        try:
            took = procs.wait_serial(sec, zone, serial2, timeout=30)
            checks.expect(True, "edit: %s serves serial %d (after %.1f s)" % (sec.name, serial2, took))
        except procs.ServerError as e:
            checks.expect(False, "edit: %s serves serial %d" % (sec.name, serial2),
                          "%s\nlog:\n%s" % (e, procs.read_log(sec.log_path, marks[sec.name])[-3000:]))
    for sec in secondaries:
        m = procs.wait_log(t1.log_path, r"NOTIFY serial %d to 127\.0\.0\.1:%d acknowledged" % (serial2, sec.port),
                           start=marks["tandem1"], timeout=10)
        checks.expect(m is not None, "edit: tandem1's NOTIFY of serial %d to %s acknowledged" % (serial2, sec.name),
                      procs.read_log(t1.log_path, marks["tandem1"])[-2000:])
    m = procs.wait_log(knot.log_path, r"IXFR, incoming, remote %s, finished" % re.escape(primary),
                       start=marks["knot"], timeout=5)
    new_knot = procs.read_log(knot.log_path, marks["knot"])
    checks.expect(m is not None and "AXFR, incoming" not in new_knot,
                  "edit: knot fetched the change by IXFR (its log)", new_knot[-2500:])
    m = procs.wait_log(t2.log_path, r"source tandem1[^\n]*: IXFR serial %d" % serial2, start=marks["tandem2"], timeout=5)
    checks.expect(m is not None, "edit: tandem2 fetched the change by IXFR (its log)",
                  procs.read_log(t2.log_path, marks["tandem2"])[-2000:])
    m = procs.wait_log(nsd.log_path, r"received update to serial %d [^\n]*" % serial2, start=marks["nsd"], timeout=5)
    checks.expect(m is not None, "edit: nsd's log shows the update to serial %d (%s)" % (serial2, m.group(0) if m else "-"),
                  procs.read_log(nsd.log_path, marks["nsd"])[-2000:])
    if t4_ok:
        m = procs.wait_log(t4.log_path, r"source tandem1[^\n]*: IXFR serial %d" % serial2, start=marks["tandem4"], timeout=5)
        checks.expect(m is not None, "edit: tandem4 fetched the change by IXFR (its log)",
                      procs.read_log(t4.log_path, marks["tandem4"])[-2000:])
    # NSD does not log the kind of transfer, only its size: compare that with the sizes of
    # an IXFR from the old serial and of an AXFR, fetched here from tandem1 the same way.
    kinds = re.findall(r"transfer of \S+ serial %d to [^:]+:\d+: ([A-Z][^,]*)," % serial2,
                       procs.read_log(t1.log_path, marks["tandem1"]))
    log("     tandem1 served after the edit: %s" % (", ".join(kinds) or "nothing logged"))
    nsd_kind = "unknown"
    if m:
        size = re.search(r"of (\d+) bytes", procs.read_log(nsd.log_path, marks["nsd"]))
        try:
            ixfr_size = raw_xfr_size(t1.addr, zone, T.IXFR, serial1)
            axfr_size = raw_xfr_size(t1.addr, zone, T.AXFR)
            got = int(size.group(1)) if size else -1
            nsd_kind = {ixfr_size: "IXFR", axfr_size: "AXFR"}.get(got, "unknown (%d bytes; IXFR %d, AXFR %d)"
                                                                     % (got, ixfr_size, axfr_size))
        except (OSError, EOFError, ValueError) as e:
            nsd_kind = "unknown (%s)" % e
    nsd_fallback = "starting AXFR" in procs.read_log(nsd.log_path, marks["nsd"])
    checks.expect(nsd_kind in ("IXFR", "AXFR"), "edit: nsd fetched serial %d by %s%s (the size in its log)"
                  % (serial2, nsd_kind, " after an IXFR it could not apply" if nsd_fallback else ""),
                  procs.read_log(nsd.log_path, marks["nsd"])[-1500:])
    diff_file = sorted(os.listdir(os.path.join(pdir, "state", "primary", zone.rstrip("."), "ixfr")))
    if diff_file:
        with open(os.path.join(pdir, "state", "primary", zone.rstrip("."), "ixfr", diff_file[-1])) as f:
            signs = [line[0] for line in f]
        log("     tandem1's recorded difference: %d removed, %d added (names in RDATA whose case the"
            " re-rendered file changed count as changed)" % (signs.count("-"), signs.count("+")))

    ref2 = compare_copies(checks, t1, secondaries, zone, "edit", log)
    if ref2 is not None:
        d = diff_records(zone_file_records(gz2), ref2, "zone file", "tandem1 AXFR")
        checks.expect(not d, "edit: tandem1's AXFR holds exactly the edited zone file's records", d)
    # The edit is visible in tandem1's answers.
    added = dnsdiff.exchange(t1.addr, targeted_queries({"added-by-edit." + zone: T.A}, 0, 1)[0])
    r = dns.message.from_wire(added)
    checks.expect(r.rcode() == dns.rcode.NOERROR and any(rd.to_text() == "203.0.113.99" for rs in r.answer for rd in rs),
                  "edit: tandem1 answers the added name", r.to_text())
    queries2 = dnsdiff.gen_queries(gz2, args.queries, args.seed + 1)
    queries2 += targeted_queries(touched, len(queries2), args.seed)
    compare_answers(checks, queries2, t1, secondaries, zone, "edit", args.show, log)

    # IXFR from the test itself (dnspython): from serial1, and from an unknown serial.
    try:
        msgs = list(dns.query.xfr(t1.addr[0], zone, rdtype=T.IXFR, serial=serial1, port=t1.port,
                                  timeout=10, lifetime=30, relativize=False))
        rrs = [rr for m in msgs for rrset in m.answer for rr in _rr_tuples(rrset)]
        soas = [i for i, rr in enumerate(rrs) if rr[3] == T.SOA]
        serials = [dns.rdata.from_wire(dns.rdataclass.IN, T.SOA, rrs[i][4], 0, len(rrs[i][4])).serial for i in soas]
        ok = serials == [serial2, serial1, serial2, serial2] and soas[0] == 0 and soas[-1] == len(rrs) - 1
        checks.expect(ok, "IXFR from serial %d (dnspython): SOA %d, SOA %d, removed, SOA %d, added, SOA %d"
                      % (serial1, serial2, serial1, serial2, serial2),
                      "SOA serials in the stream: %s at %s of %d records" % (serials, soas, len(rrs)))
    except Exception as e:  # noqa: BLE001
        checks.expect(False, "IXFR from serial %d (dnspython)" % serial1, "%s: %s" % (type(e).__name__, e))
    try:
        msgs = list(dns.query.xfr(t1.addr[0], zone, rdtype=T.IXFR, serial=(serial1 - 1000) % 2 ** 32,
                                  port=t1.port, timeout=10, lifetime=30, relativize=False))
        rrs = [rr for m in msgs for rrset in m.answer for rr in _rr_tuples(rrset)]
        d = diff_records(ref2 or [], rrs[:-1], "tandem1 AXFR", "IXFR from an unknown serial")
        checks.expect(not d and rrs and rrs[1][3] != T.SOA,
                      "IXFR from an unknown serial: the whole zone, AXFR-style", d)
    except Exception as e:  # noqa: BLE001
        checks.expect(False, "IXFR from an unknown serial", "%s: %s" % (type(e).__name__, e))

    # ---- 3. TSIG ------------------------------------------------------------------------
    good = dns.tsigkeyring.from_text({KEY_NAME: KEY_SECRET})
    try:
        recs, n = axfr_records(t1.addr, zone, keyring=good, keyname=KEY_NAME)
        d = diff_records(ref2 or [], recs, "unsigned AXFR", "signed AXFR")
        checks.expect(not d, "TSIG: AXFR signed with the key works, every message verified (%d messages)" % n, d)
    except Exception as e:  # noqa: BLE001
        checks.expect(False, "TSIG: AXFR signed with the key", "%s: %s" % (type(e).__name__, e))
    wrong = dns.tsigkeyring.from_text({KEY_NAME: WRONG_SECRET})
    raw = raw_tcp_exchange(t1.addr, xfr_query(zone, T.AXFR, keyring=wrong).to_wire())
    err = tsig_error(raw)
    checks.expect(header_rcode(raw) == dns.rcode.NOTAUTH and err == dns.rcode.BADSIG,
                  "TSIG: AXFR signed with a wrong secret is answered NOTAUTH (TSIG error %s)" % err,
                  "rcode %s, TSIG error %s, %d bytes" % (header_rcode(raw), err, len(raw)))
    try:
        list(dns.query.xfr(t1.addr[0], zone, port=t1.port, keyring=wrong, keyname=KEY_NAME,
                           keyalgorithm=KEY_ALG, timeout=5, lifetime=10))
        checks.expect(False, "TSIG: dnspython AXFR with a wrong secret fails", "the transfer succeeded")
    except Exception as e:  # noqa: BLE001
        checks.expect(True, "TSIG: dnspython AXFR with a wrong secret fails (%s: %s)" % (type(e).__name__, e))
    try:
        out = subprocess.run([args.kdig, "@%s" % procs.LOOPBACK, "-p", str(t1.port), "+tcp", "+time=5", "+retry=0",
                              "-y", "%s:%s:%s" % (KEY_ALG, KEY_NAME, WRONG_SECRET), "AXFR", zone],
                             stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
        text = out.stdout + out.stderr
        checks.expect("NOTAUTH" in text or "BADSIG" in text,
                      "TSIG: kdig -y with a wrong secret gets NOTAUTH/BADSIG", text[-1500:])
    except (OSError, subprocess.TimeoutExpired) as e:
        checks.expect(False, "TSIG: kdig -y with a wrong secret", str(e))
    # A signed ordinary query (the SOA query a secondary sends before a transfer) must get
    # a signed answer (RFC 8945 5.3), else the secondary cannot verify it.
    for transport in ("+notcp", "+tcp"):
        try:
            out = subprocess.run([args.kdig, "@%s" % procs.LOOPBACK, "-p", str(t1.port), transport, "+time=3", "+retry=0",
                                  "-y", "%s:%s:%s" % (KEY_ALG, KEY_NAME, KEY_SECRET), "SOA", zone],
                                 stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
            text = out.stdout + out.stderr
            checks.expect("NOERROR" in text and "WARNING" not in text and re.search(r"\bTSIG\b", text),
                          "TSIG: an SOA query signed with the key (kdig %s) gets a signed answer" % transport,
                          text[-1200:])
        except (OSError, subprocess.TimeoutExpired) as e:
            checks.expect(False, "TSIG: signed SOA query (kdig %s)" % transport, str(e))
    bad = re.findall(r"[^\n]*failed to verify TSIG[^\n]*", procs.read_log(knot.log_path))
    checks.expect(not bad, "TSIG: knot (key on its remote) never failed to verify tandem1's answers",
                  "\n".join(bad[:4]))

    # ---- 4. allow_transfer ----------------------------------------------------------------
    t3dir = os.path.join(tmp, "tandem3")
    os.makedirs(t3dir, exist_ok=True)
    t3 = procs.start_tandemd_with(
        tandemd, tmp, zone,
        lambda port: tandem_primary_config(port, os.path.join(t3dir, "state"), zone, zone_file,
                                           ["127.0.0.2/32"], [], key=False),
        name="tandem3")
    servers.append(t3)
    for rdtype in (T.AXFR, T.IXFR):
        raw = raw_tcp_exchange(t3.addr, xfr_query(zone, rdtype, serial=serial1).to_wire())
        checks.expect(header_rcode(raw) == dns.rcode.REFUSED,
                      "allow_transfer: %s from 127.0.0.1 to tandem3 (allows 127.0.0.2/32) is REFUSED" % T.to_text(rdtype),
                      "rcode %s" % header_rcode(raw))
    try:
        list(dns.query.xfr(t3.addr[0], zone, port=t3.port, timeout=5, lifetime=10))
        checks.expect(False, "allow_transfer: dnspython AXFR from 127.0.0.1 fails", "the transfer succeeded")
    except dns.query.TransferError as e:
        checks.expect(e.rcode == dns.rcode.REFUSED, "allow_transfer: dnspython AXFR from 127.0.0.1 raises TransferError REFUSED",
                      str(e))
    except Exception as e:  # noqa: BLE001
        checks.expect(False, "allow_transfer: dnspython AXFR from 127.0.0.1 raises TransferError REFUSED",
                      "%s: %s" % (type(e).__name__, e))
    try:
        recs, _ = axfr_records(t3.addr, zone, source="127.0.0.2")
        d = diff_records(ref2 or [], recs, "tandem1", "tandem3 to 127.0.0.2")
        checks.expect(not d, "allow_transfer: AXFR from 127.0.0.2 to tandem3 works", d)
    except OSError as e:
        log("     (127.0.0.2 not usable as a source here: %s; positive case skipped)" % e)
    except Exception as e:  # noqa: BLE001
        checks.expect(False, "allow_transfer: AXFR from 127.0.0.2 to tandem3 works", "%s: %s" % (type(e).__name__, e))
    q = dns.message.make_query(zone, T.AXFR)
    try:
        r = dns.query.udp(q, t1.addr[0], port=t1.port, timeout=3)
        checks.expect(r.rcode() == dns.rcode.NOTIMP and not r.answer, "AXFR over UDP is answered NOTIMP",
                      "rcode %s" % dns.rcode.to_text(r.rcode()))
    except dns.exception.Timeout:
        checks.expect(False, "AXFR over UDP is answered NOTIMP", "no reply")
    for srv in [t1] + secondaries + ([] if t4 in secondaries else [t4]) + [t3]:
        checks.expect(srv.alive(), "%s still running at the end" % srv.name,
                      "status %s; stderr:\n%s" % (srv.proc.returncode, srv.stderr_text()))


if __name__ == "__main__":
    sys.exit(main())

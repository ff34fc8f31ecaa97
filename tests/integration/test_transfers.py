#!/usr/bin/python3
"""Zone transfers, secondary side: tandemd pulling zones from Knot DNS, NSD and a
scriptable fake primary (fakeprimary.py).

    /usr/bin/python3 tests/integration/test_transfers.py --tandemd build/tandemd [--only NAME]

Scenarios (each run on its own, reported ok/FAIL):
  knot      Knot as primary: first load by AXFR, answers identical to Knot's on generated
            queries; an edit of Knot's zone file, reloaded: NOTIFY, IXFR, identical again
            (and a second edit, IXFR on top of IXFR).
  nsd       NSD as primary: the same; the change may come by IXFR or, after an IXFR
            attempt, by AXFR.
  restart   tandemd killed (SIGKILL), the primary stopped, tandemd started again: its first
            answer (within 1 s) is the saved copy's serial, AA set.
  fallback  IXFR failures fall back to AXFR: a correct IXFR first (the fake primary's own
            check), then broken IXFR sequences (differences that do not chain, a first
            difference from a serial we do not have, no closing SOA) and NOTIMP.
  tsig      Knot requiring a TSIG key: the right key loads the zone, a wrong secret does not
            (SERVFAIL; the log names TSIG).
  cut       An AXFR cut in the middle leaves the served copy unchanged and answering.
  axfrchecks  Complete but invalid AXFRs are refused (out-of-zone record, closing SOA of
            another serial, a serial older than ours) and the served copy kept.
  maxsize   A transfer larger than max_transfer_size is refused.
  expire    With the primary gone, SERVFAIL after the SOA expire time; serving again once
            the primary is back.

Exit status: 0 when every scenario passes, 1 when one fails, 2 when the test could not run.
"""

import argparse
import os
import random
import re
import signal
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import dns.exception  # noqa: E402
import dns.flags      # noqa: E402
import dns.message    # noqa: E402
import dns.name       # noqa: E402
import dns.query      # noqa: E402
import dns.rcode      # noqa: E402
import dns.rdata      # noqa: E402
import dns.rdataclass  # noqa: E402
import dns.rdataset   # noqa: E402
import dns.rdatatype  # noqa: E402
import dns.zone       # noqa: E402

import dnsdiff            # noqa: E402
import fakeprimary        # noqa: E402
import procs              # noqa: E402
from procs import Failure, expect  # noqa: E402
import test_differential  # noqa: E402
import zonegen            # noqa: E402

T = dns.rdatatype
SEED = 20240613
NAMES = 150
QUERIES = 800
LO = procs.LOOPBACK


def log(msg=""):
    print(msg, flush=True)


# ---------------------------------------------------------------------------- context
class Ctx:
    """What one scenario started: stopped (by pid) and reported at the end."""

    def __init__(self, args, workdir):
        self.args = args
        self.tandemd = os.path.abspath(args.tandemd)
        self.workdir = workdir
        self.servers = []
        self.tandems = []
        self.fakes = []

    def add(self, srv):
        self.servers.append(srv)
        if srv.name.startswith("tandemd"):
            self.tandems.append(srv)
        return srv

    def fake(self, origin, port, **kw):
        fp = fakeprimary.FakePrimary(origin, port, **kw)
        self.fakes.append(fp)
        return fp

    def cleanup(self):
        for fp in self.fakes:
            fp.stop()
        for srv in reversed(self.servers):
            srv.stop()

    def dump(self):
        for srv in self.servers:
            limit = 12000 if srv in self.tandems else 3000
            log("  ---- %s stderr (port %d) ----" % (srv.name, srv.port))
            for line in srv.stderr_text(limit=limit).splitlines():
                log("  | " + line)


# ---------------------------------------------------------------------------- helpers
def soa(addr, zone, timeout=0.5):
    """(rcode, aa, serial or None) of an SOA query over UDP; raises on no reply."""
    r = procs.soa_probe(addr, zone, timeout=timeout)
    serial = None
    for rrset in r.answer:
        if rrset.rdtype == T.SOA:
            serial = rrset[0].serial
    return r.rcode(), bool(r.flags & dns.flags.AA), serial


def served(srv, zone):
    """The serial srv serves (NOERROR, AA), or a text saying what it answers instead."""
    try:
        rc, aa, serial = soa(srv.addr, zone)
    except (OSError, dns.exception.DNSException) as e:
        return "no reply (%s)" % e
    if rc == dns.rcode.NOERROR and aa and serial is not None:
        return serial
    return "rcode %s aa=%s serial=%s" % (dns.rcode.to_text(rc), aa, serial)


def wait_serial(srv, zone, serial, timeout):
    """Poll until srv serves `serial`; returns the seconds it took."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    last = None
    while time.monotonic() < deadline:
        if not srv.alive():
            raise Failure("%s exited (status %s)" % (srv.name, srv.proc.returncode))
        last = served(srv, zone)
        if last == serial:
            return time.monotonic() - t0
        time.sleep(0.1)
    raise Failure("%s did not serve %s serial %d within %.0f s (it answers: %s)"
                  % (srv.name, zone, serial, timeout, last))


def wait_rcode(srv, zone, rcode, timeout):
    t0 = time.monotonic()
    last = None
    while time.monotonic() < t0 + timeout:
        try:
            rc, aa, serial = soa(srv.addr, zone)
            last = "rcode %s aa=%s serial=%s" % (dns.rcode.to_text(rc), aa, serial)
            if rc == rcode:
                return time.monotonic() - t0
        except (OSError, dns.exception.DNSException) as e:
            last = "no reply (%s)" % e
        time.sleep(0.1)
    raise Failure("%s did not answer %s for SOA %s within %.0f s (last: %s)"
                  % (srv.name, dns.rcode.to_text(rcode), zone, timeout, last))


def stderr_from(srv, offset=0):
    try:
        with open(srv.stderr_path, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def log_offset(srv):
    try:
        return os.path.getsize(srv.stderr_path)
    except OSError:
        return 0


def wait_log(srv, pattern, timeout, offset=0, count=1):
    """Poll srv's stderr (from byte `offset`) until `pattern` (a regex) matched `count`
    lines; returns the matching lines."""
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while True:
        lines = [ln for ln in stderr_from(srv, offset).splitlines() if rx.search(ln)]
        if len(lines) >= count:
            return lines
        if time.monotonic() > deadline:
            raise Failure("%s: no%s log line matching %r within %.0f s (found %d)"
                          % (srv.name, "" if count == 1 else " %d" % count, pattern, timeout,
                             len(lines)))
        time.sleep(0.1)


def pulled_config(port, zones, state_dir, tsig=(), zone_extra=""):
    """tandemd config text: zones as [(name, [(source name, "addr:port", tsig or "")])],
    tsig keys as [(name, algorithm, secret)], `zone_extra` lines added to every zone."""
    text = ('[server]\nmode = "socket"\nlisten = ["%s:%d"]\nworkers = 1\nstate_dir = "%s"\n'
            % (LO, port, state_dir))
    for name, alg, secret in tsig:
        text += '\n[[tsig]]\nname = "%s"\nalgorithm = "%s"\nsecret = "%s"\n' % (name, alg, secret)
    for zname, sources in zones:
        text += '\n[[zone]]\nname = "%s"\n' % zname
        text += 'refresh_min = "1s"\nretry_min = "1s"\n' + zone_extra
        text += "sources = [\n"
        for sname, addr, key in sources:
            text += '  { name = "%s", address = "%s"%s },\n' % (
                sname, addr, (', tsig = "%s"' % key) if key else "")
        text += "]\n"
    return text


def start_tandemd(ctx, zone, sources, name="tandemd", port=None, tsig=(), zone_extra="",
                  state_dir=None):
    state = state_dir or os.path.join(ctx.workdir, name + "-state")
    os.makedirs(state, exist_ok=True)
    srv = procs.start_tandemd_pulled(
        ctx.tandemd, ctx.workdir, zone,
        lambda p: pulled_config(p, [(zone, sources)], state, tsig=tsig, zone_extra=zone_extra),
        name=name, port=port)
    srv.state_dir = state
    return ctx.add(srv)


# ------------------------------------------------------------- zone texts and edits
def parse_zone(text, origin):
    return dns.zone.from_text(text, origin=origin, relativize=False, check_origin=True)


def zone_text(z):
    return z.to_text(relativize=False) + "\n"


def set_soa(z, serial, refresh=None, retry=None, expire=None):
    rds = z.find_rdataset(z.origin, T.SOA)
    old = rds[0]
    new = old.replace(serial=serial,
                      refresh=old.refresh if refresh is None else refresh,
                      retry=old.retry if retry is None else retry,
                      expire=old.expire if expire is None else expire)
    z.replace_rdataset(z.origin, dns.rdataset.from_rdata(rds.ttl, new))


def zone_serial(z):
    return z.find_rdataset(z.origin, T.SOA)[0].serial


def _below_or_at(name, parents):
    return any(name == p or name.is_subdomain(p) for p in parents)


def edit_zone(z, gz, rng, tag):
    """Edits a generated zone in place: records changed, added, removed (never the SOA,
    which the caller bumps). Returns (descriptions, names touched)."""
    cuts = [dns.name.from_text(c) for c in gz.hints.get("delegations", [])]
    dnames = [dns.name.from_text(d) for d in gz.hints.get("dnames", [])]
    avoid = cuts + dnames
    names = sorted(n for n in z.nodes if n != z.origin and not _below_or_at(n, avoid)
                   and not n.labels[0].startswith(b"*"))
    with_a = [n for n in names if z.get_rdataset(n, T.A) is not None
              and z.get_rdataset(n, T.CNAME) is None]
    desc, touched = [], []
    picks = rng.sample(with_a, 6)
    # rdata changed (3 names)
    for i, n in enumerate(picks[:3]):
        rds = z.get_rdataset(n, T.A)
        new = dns.rdataset.from_text("IN", "A", rds.ttl, "203.0.113.%d" % (10 + i + 20 * len(tag)))
        z.replace_rdataset(n, new)
        desc.append("changed A of %s" % n)
        touched.append(n)
    # TTL changed
    n = picks[3]
    rds = z.get_rdataset(n, T.A)
    z.replace_rdataset(n, dns.rdataset.from_rdata_list(rds.ttl + 17, list(rds)))
    desc.append("TTL of A %s: %d -> %d" % (n, rds.ttl, rds.ttl + 17))
    touched.append(n)
    # a record added to an RRset
    n = picks[4]
    rds = z.get_rdataset(n, T.A)
    z.replace_rdataset(n, dns.rdataset.from_rdata_list(
        rds.ttl, list(rds) + [dns.rdata.from_text("IN", "A", "203.0.113.250")]))
    desc.append("A 203.0.113.250 added to %s" % n)
    touched.append(n)
    # a record removed from an RRset of several
    multi = [m for m in with_a if m not in picks and len(z.get_rdataset(m, T.A)) >= 2]
    if multi:
        n = rng.choice(multi)
        rds = z.get_rdataset(n, T.A)
        z.replace_rdataset(n, dns.rdataset.from_rdata_list(rds.ttl, list(rds)[1:]))
        desc.append("one A removed from %s" % n)
        touched.append(n)
    # whole names removed: leaves (no name below them)
    leaves = [m for m in names if m not in picks and m not in touched
              and not any(o != m and o.is_subdomain(m) for o in z.nodes)]
    for n in rng.sample(leaves, 2):
        z.delete_node(n)
        desc.append("removed %s" % n)
        touched.append(n)
    # names added, one of them below an existing name
    for i in range(3):
        n = dns.name.from_text("%s-new%d" % (tag, i), z.origin)
        z.replace_rdataset(n, dns.rdataset.from_text("IN", "A", 300, "198.18.%d.%d" % (len(tag), i + 1)))
        z.replace_rdataset(n, dns.rdataset.from_text("IN", "TXT", 300, '"added by %s"' % tag))
        touched.append(n)
    parent = picks[5]
    n = dns.name.from_text("%s-child" % tag, parent)
    z.replace_rdataset(n, dns.rdataset.from_text("IN", "AAAA", 600, "2001:db8:%x::1" % len(tag)))
    touched.append(n)
    desc.append("added %s-new0..2 (A, TXT) and %s (AAAA)" % (tag, n))
    return desc, touched


def write_file(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def extra_queries(names, seed, start_idx):
    """Queries for the names an edit touched: A, AAAA, TXT, over UDP and TCP."""
    rng = random.Random(seed)
    out = []
    for n in names:
        for qt in (T.A, T.AAAA, T.TXT):
            out.append(dnsdiff.Query(start_idx + len(out), "edited", n, qt, rng.random() < 0.3,
                                     1232, False, False, rng.randrange(65536)))
    return out


def compare(ref, cand, gz_like, queries, label):
    deadline = time.monotonic() + 120
    results = test_differential.run_queries(queries, ref, cand, gz_like.origin, deadline,
                                            lambda m: log("    " + m))
    big = set(gz_like.hints.get("big", [])) | {"cbig." + gz_like.origin}
    n_fail = test_differential.report(results, len(queries), ref, cand, 10,
                                      lambda m: log("    " + m), big)
    expect(len(results) == len(queries), "%s: only %d of %d queries ran"
           % (label, len(results), len(queries)))
    expect(n_fail == 0, "%s: %d of %d queries answered differently by %s and %s"
           % (label, n_fail, len(queries), ref.name, cand.name))
    log("    %s: %d queries, answers identical (%s vs %s)" % (label, len(queries), ref.name, cand.name))


def versioned(gz, text):
    return zonegen.GeneratedZone(origin=gz.origin, text=text, hints=gz.hints, records=[])


def check_content(srv, zone, version, absent=()):
    """Every RRset of `version` (fakeprimary.Version) is answered as it is there, and
    every name of `absent` is NXDOMAIN."""
    for (name, rdtype), (ttl, texts) in sorted(version.rrsets().items()):
        q = dns.message.make_query(name, rdtype)
        r = dns.query.udp(q, LO, port=srv.port, timeout=1.0)
        got = set()
        for rrset in r.answer:
            if rrset.name == name and rrset.rdtype == rdtype:
                got |= {rd.to_text() for rd in rrset}
        expect(r.rcode() == dns.rcode.NOERROR and got == texts,
               "%s: %s %s answered %s %s, expected %s"
               % (srv.name, name, T.to_text(rdtype), dns.rcode.to_text(r.rcode()),
                  sorted(got), sorted(texts)))
    for n in absent:
        q = dns.message.make_query(dns.name.from_text(n, dns.name.from_text(zone)), T.A)
        r = dns.query.udp(q, LO, port=srv.port, timeout=1.0)
        expect(r.rcode() == dns.rcode.NXDOMAIN, "%s: %s should be NXDOMAIN, answered %s"
               % (srv.name, n, dns.rcode.to_text(r.rcode())))


def transfer_lines(srv, offset, zone):
    return [ln for ln in stderr_from(srv, offset).splitlines()
            if ("zone %s" % zone) in ln and re.search(r"(AXFR|IXFR)", ln)]


# ----------------------------------------------------------- scenarios with Knot/NSD
def primary_scenario(ctx, kind):
    """Knot or NSD as primary: AXFR, identical answers, NOTIFY + IXFR, identical again."""
    args = ctx.args
    gz = zonegen.generate(args.seed, NAMES)
    origin = gz.origin
    z = parse_zone(gz.text, origin)
    s1 = 1000
    if kind == "nsd":
        # NSD 4.6.1 fails to create IXFR data (create-ixfr) for a zone holding a record of
        # an unknown type ("could not write ...spoolzone...", then it answers IXFR with the
        # whole zone): leave TYPE65280 records out so that NSD serves real differences.
        stripped = 0
        for n in list(z.nodes):
            node = z.nodes[n]
            for rds in list(node.rdatasets):
                if rds.rdtype >= 65280:
                    node.rdatasets.remove(rds)
                    stripped += len(rds)
            if not node.rdatasets:
                del z.nodes[n]
        log("    %d records of private types left out for NSD" % stripped)
    # A long SOA refresh: a change seen within seconds came by NOTIFY.
    set_soa(z, s1, refresh=600, retry=2, expire=3600)
    v1 = zone_text(z)
    # The zone file in the primary's own directory (NSD: its zonesdir).
    os.makedirs(os.path.join(ctx.workdir, kind), exist_ok=True)
    zfile = os.path.join(ctx.workdir, kind, "zone.db")
    write_file(zfile, v1)
    tport = procs.free_port()
    notify = ["%s@%d" % (LO, tport)]
    if kind == "knot":
        prim = ctx.add(procs.start_knot_primary(ctx.workdir, origin, zfile, name="knot",
                                                notify=notify))
    else:
        prim = ctx.add(procs.start_nsd_primary(ctx.workdir, origin, zfile, name="nsd",
                                               notify=notify))
    log("    %s primary on port %d, zone %s serial %d (%d names)"
        % (prim.name, prim.port, origin, s1, len(z.nodes)))
    tan = start_tandemd(ctx, origin, [("primary", "%s:%d" % (LO, prim.port), "")], port=tport)
    took = wait_serial(tan, origin, s1, 20)
    wait_log(tan, r"zone %s source primary \(.*\): AXFR serial %d:" % (re.escape(origin), s1), 5)
    log("    first load by AXFR, serving serial %d %.1f s after start" % (s1, took))
    queries = dnsdiff.gen_queries(versioned(gz, v1), QUERIES, args.seed)
    compare(prim, tan, versioned(gz, v1), queries, "after AXFR")

    for step, tag in ((1, "e1"), (2, "e2")):
        rng = random.Random("%s-%d-%d" % (kind, args.seed, step))
        desc, touched = edit_zone(z, gz, rng, tag)
        old = zone_serial(z)
        new = old + 10
        set_soa(z, new)
        text = zone_text(z)
        off = log_offset(tan)
        poff = log_offset(prim)
        before = os.stat(zfile).st_mtime_ns
        write_file(zfile, text)
        if os.stat(zfile).st_mtime_ns == before:
            os.utime(zfile, ns=(before + 10**9, before + 10**9))
        t0 = time.monotonic()
        if kind == "knot":
            r = subprocess.run(["knotc", "-s", prim.control_socket, "zone-reload", origin],
                               capture_output=True, text=True, timeout=30)
            expect(r.returncode == 0, "knotc zone-reload failed: %s %s" % (r.stdout, r.stderr))
        else:
            os.kill(prim.proc.pid, signal.SIGHUP)
        # The primary serves the new serial first (or the test is wrong), then tandemd.
        try:
            wait_serial(prim, origin, new, 15)
        except Failure as e:
            raise Failure("the primary did not take the edit: %s" % e)
        took = wait_serial(tan, origin, new, 10)
        lines = transfer_lines(tan, off, origin)
        log("    edit %d (%s): serial %d -> %d; tandemd serves it %.1f s after the reload"
            % (step, "; ".join(desc[:3]) + "; ...", old, new, time.monotonic() - t0))
        for ln in lines:
            log("      tandemd: " + ln.strip())
        got = [ln for ln in lines if re.search(r": (IXFR|IXFR \(whole zone\)|AXFR) serial %d:" % new, ln)]
        expect(got, "no transfer log line for serial %d" % new)
        m = re.search(r": (IXFR|IXFR \(whole zone\)|AXFR) serial %d:" % new, got[-1])
        if kind == "knot" or m.group(1).startswith("IXFR"):
            # Knot has the differences in its journal: an incremental IXFR. NSD may answer
            # an IXFR with the whole zone (RFC 1995 allows it).
            expect(m.group(1) == "IXFR" or kind != "knot",
                   "serial %d was not fetched by an incremental IXFR: %s" % (new, got[-1]))
            expect(not any("falling back to AXFR" in ln for ln in lines),
                   "an IXFR fallback was logged for serial %d" % new)
            how = m.group(1)
        else:
            # NSD may not serve IXFR: an AXFR after an IXFR attempt that failed.
            expect(any("IXFR failed" in ln and "falling back to AXFR" in ln for ln in lines),
                   "serial %d came by %s without an IXFR attempt logged" % (new, got[-1]))
            how = "AXFR after an IXFR attempt"
        if kind == "knot":
            expect(re.search(r"notify", stderr_from(prim, poff), re.I),
                   "Knot logged no outgoing NOTIFY after the reload")
        expect(took < 8, "serial %d took %.1f s to arrive: NOTIFY not acted on?" % (new, took))
        log("    serial %d fetched by %s" % (new, how))
        gzv = versioned(gz, text)
        if step == 1:
            queries = dnsdiff.gen_queries(gzv, QUERIES, args.seed + step)
        else:
            queries = []
        queries += extra_queries(touched, args.seed + step, len(queries))
        compare(prim, tan, gzv, queries, "after edit %d" % step)


def scenario_knot(ctx):
    primary_scenario(ctx, "knot")


def scenario_nsd(ctx):
    primary_scenario(ctx, "nsd")


def small_zone_text(origin, serial, refresh=3600, retry=600, expire=86400, extra=(), txt=0):
    v = fakeprimary.small_zone(origin, serial, refresh=refresh, retry=retry, expire=expire,
                               extra=extra, txt=txt)
    lines = ["%s %d IN %s %s" % (n.to_text(), ttl, T.to_text(rd.rdtype), rd.to_text())
             for n, ttl, rd in [v.soa] + v.others]
    return "\n".join(lines) + "\n", v


def scenario_restart(ctx):
    origin = "restart.test."
    serial = 777
    # refresh 2 s: the restarted tandemd tries the (stopped) primary soon after its start
    text, version = small_zone_text(origin, serial, refresh=2, retry=1, expire=3600)
    zfile = os.path.join(ctx.workdir, "restart.db")
    write_file(zfile, text)
    knot = ctx.add(procs.start_knot_primary(ctx.workdir, origin, zfile, name="knot"))
    sources = [("primary", "%s:%d" % (LO, knot.port), "")]
    tan = start_tandemd(ctx, origin, sources, name="tandemd")
    wait_serial(tan, origin, serial, 20)
    saved = os.path.join(tan.state_dir, "zones", "restart.test", "primary.zone")
    expect(os.path.isfile(saved), "no saved copy at %s" % saved)
    log("    serial %d loaded and saved (%s)" % (serial, os.path.relpath(saved, ctx.workdir)))
    os.kill(tan.proc.pid, signal.SIGKILL)
    tan.proc.wait(timeout=10)
    knot.stop()
    log("    tandemd killed (SIGKILL), Knot stopped")

    # Start again (a new port, the same state_dir) and ask at once.
    port = procs.free_port()
    conf = os.path.join(ctx.workdir, "tandemd2.toml")
    with open(conf, "w") as f:
        f.write(pulled_config(port, [(origin, sources)], tan.state_dir))
    tan2 = ctx.add(procs.Server("tandemd-restarted", [ctx.tandemd, "--config", conf],
                                ctx.workdir, port))
    t0 = time.monotonic()
    tan2.start()
    first = None
    while time.monotonic() < t0 + 5:
        expect(tan2.alive(), "the restarted tandemd exited (status %s)" % tan2.proc.returncode)
        try:
            first = soa(tan2.addr, origin, timeout=0.1)
            break
        except (OSError, dns.exception.DNSException):
            time.sleep(0.02)
    took = time.monotonic() - t0
    expect(first is not None, "the restarted tandemd did not answer within 5 s")
    rc, aa, got = first
    log("    first answer %.2f s after the start: %s aa=%s serial %s"
        % (took, dns.rcode.to_text(rc), aa, got))
    expect(rc == dns.rcode.NOERROR and aa and got == serial,
           "first answer after the restart: %s aa=%s serial %s, expected NOERROR, AA, serial %d"
           % (dns.rcode.to_text(rc), aa, got, serial))
    expect(took <= 1.0, "first answer came %.2f s after the start (more than 1 s)" % took)
    wait_log(tan2, r"serving the saved copy, serial %d" % serial, 2)
    # It keeps serving it while the primary is down (expire is a day), and it has tried.
    wait_log(tan2, r"refresh failed", 8)
    expect(served(tan2, origin) == serial, "the saved copy stopped being served: %s"
           % served(tan2, origin))
    check_content(tan2, origin, version)
    log("    still serving serial %d while the primary is down" % serial)
    # Knot back (same port, same journal) with an edited zone: IXFR on top of the saved copy.
    text2, version2 = small_zone_text(origin, serial + 1, refresh=2, retry=1, expire=3600,
                                      extra=[("after-restart", 300, "A", "192.0.2.77")])
    write_file(zfile, text2)
    off = log_offset(tan2)
    knot.start()
    knot.wait_ready(origin, timeout=20)
    wait_serial(tan2, origin, serial + 1, 10)
    # Knot's journal holds no history across this restart (journal-content: changes), so
    # it may answer the IXFR with the whole zone: either is right, an IXFR it must be.
    lines = wait_log(tan2, r": IXFR( \(whole zone\))? serial %d:" % (serial + 1), 2, offset=off)
    check_content(tan2, origin, version2)
    log("    Knot back with serial %d: %s" % (serial + 1, lines[0].split("): ", 1)[-1]))


# ----------------------------------------------------------- scenarios with fakeprimary
def next_version(origin, serial, tag):
    """A small zone with something that only this version has."""
    return fakeprimary.small_zone(origin, serial, extra=[
        ("only-%s" % tag, 300, "A", "192.0.2.%d" % (serial % 250 + 1)),
        ("www", 300, "TXT", '"version %s"' % tag)])


def start_fake_and_tandemd(ctx, origin, v1, zone_extra="", per_message=20):
    fport = procs.free_port()
    fp = ctx.fake(origin, fport, per_message=per_message)
    fp.add_version(v1)
    fp.start()
    tan = start_tandemd(ctx, origin, [("primary", "%s:%d" % (LO, fport), "")],
                        zone_extra=zone_extra)
    wait_serial(tan, origin, v1.serial, 15)
    wait_log(tan, r"AXFR serial %d:" % v1.serial, 3)
    return fp, tan


def scenario_fallback(ctx):
    origin = "fallback.test."
    v = next_version(origin, 10, "a")
    fp, tan = start_fake_and_tandemd(ctx, origin, v)
    log("    serial 10 loaded by AXFR from the fake primary")
    serial = 10
    prev_tag = "a"
    for mode in ("ok", "chain", "start", "truncated", "notimp"):
        serial += 10
        v = next_version(origin, serial, mode)
        fp.ixfr_mode = mode
        ixfr0, axfr0 = fp.count("IXFR"), fp.count("AXFR")
        off = log_offset(tan)
        fp.add_version(v)
        rc = fp.notify(tan.addr)
        expect(rc == dns.rcode.NOERROR, "NOTIFY answered %s" % (rc if rc is None else dns.rcode.to_text(rc)))
        wait_serial(tan, origin, serial, 10)
        lines = transfer_lines(tan, off, origin)
        ixfrs, axfrs = fp.count("IXFR") - ixfr0, fp.count("AXFR") - axfr0
        if mode == "ok":
            expect(any(re.search(r": IXFR serial %d:" % serial, ln) for ln in lines),
                   "a correct IXFR was not logged as one: %s" % lines)
            expect(axfrs == 0, "an AXFR was asked for after a correct IXFR")
            log("    correct IXFR (serial %d): applied by IXFR" % serial)
        else:
            fb = [ln for ln in lines if "IXFR failed" in ln and "falling back to AXFR" in ln]
            expect(fb, "IXFR mode %s: no fallback logged; log: %s" % (mode, lines))
            expect(any(re.search(r": AXFR serial %d:" % serial, ln) for ln in lines),
                   "IXFR mode %s: no AXFR of serial %d logged" % (mode, serial))
            expect(ixfrs >= 1 and axfrs >= 1, "IXFR mode %s: the fake primary saw %d IXFR and %d AXFR"
                   % (mode, ixfrs, axfrs))
            log("    IXFR %s (serial %d): %s" % (mode, serial, fb[0].split(": ", 1)[-1][:200]))
        check_content(tan, origin, v, absent=["ixfr-only", "only-%s" % prev_tag])
        prev_tag = mode


def scenario_tsig(ctx):
    import base64
    origin = "tsig.test."
    serial = 4242
    # 1500 TXT records: an AXFR of several messages, each with its TSIG. Refresh 2 s: the
    # edit below is found by the SOA refresh (no NOTIFY configured).
    text, version = small_zone_text(origin, serial, refresh=2, retry=1, txt=1500)
    zfile = os.path.join(ctx.workdir, "tsig.db")
    write_file(zfile, text)
    secret = base64.b64encode(os.urandom(32)).decode()
    wrong = base64.b64encode(os.urandom(32)).decode()
    key = ("xfr-key", "hmac-sha256", secret)
    knot = ctx.add(procs.start_knot_primary(ctx.workdir, origin, zfile, name="knot", key=key))
    sources = [("primary", "%s:%d" % (LO, knot.port), "xfr-key")]
    good = start_tandemd(ctx, origin, sources, name="tandemd-rightkey", tsig=[key])
    bad = start_tandemd(ctx, origin, sources, name="tandemd-wrongkey",
                        tsig=[("xfr-key", "hmac-sha256", wrong)])
    wait_serial(good, origin, serial, 15)
    line = wait_log(good, r"AXFR serial %d:" % serial, 3)[0]
    check_content(good, origin, version)
    log("    right key: %s" % line.split("): ", 1)[-1])
    m = re.search(r"(\d+) messages", line)
    expect(m and int(m.group(1)) >= 2, "the AXFR was expected to take several messages: %s" % line)
    # An IXFR under TSIG.
    text2, version2 = small_zone_text(origin, serial + 1, refresh=2, retry=1, txt=1500,
                                      extra=[("signed-change", 300, "A", "192.0.2.55")])
    write_file(zfile, text2)
    off = log_offset(good)
    r = subprocess.run(["knotc", "-s", knot.control_socket, "zone-reload", origin],
                       capture_output=True, text=True, timeout=30)
    expect(r.returncode == 0, "knotc zone-reload failed: %s %s" % (r.stdout, r.stderr))
    wait_serial(good, origin, serial + 1, 10)
    line = wait_log(good, r": IXFR serial %d:" % (serial + 1), 2, offset=off)[0]
    check_content(good, origin, version2)
    log("    right key: %s" % line.split("): ", 1)[-1])
    lines = wait_log(bad, r"refresh failed.*TSIG", 10, count=2)
    rc, aa, got = soa(bad.addr, origin)
    expect(rc == dns.rcode.SERVFAIL, "wrong key: SOA answered %s serial %s, expected SERVFAIL"
           % (dns.rcode.to_text(rc), got))
    expect(not re.search(r"(AXFR|IXFR) serial", stderr_from(bad)), "wrong key: a transfer was logged")
    expect(wrong not in stderr_from(bad) and secret not in stderr_from(bad),
           "a TSIG secret appears in the log")
    log("    wrong secret: SERVFAIL; %s" % lines[0].split(": ", 1)[-1][:200])


def scenario_cut(ctx):
    origin = "cut.test."
    v1 = next_version(origin, 100, "v1")
    fp, tan = start_fake_and_tandemd(ctx, origin, v1, per_message=8)
    v2 = next_version(origin, 110, "v2")
    fp.axfr_mode = "cut"
    fp.ixfr_mode = "cut"
    off = log_offset(tan)
    axfr0 = fp.count("AXFR")
    fp.add_version(v2)
    fp.notify(tan.addr)
    t0 = time.monotonic()
    # At least two cut AXFRs (the NOTIFY's, then the retry's), served copy unchanged all along.
    while fp.count("AXFR") - axfr0 < 2:
        expect(time.monotonic() < t0 + 15, "tandemd asked for %d AXFR in 15 s"
               % (fp.count("AXFR") - axfr0))
        s = served(tan, origin)
        expect(s == 100, "during cut transfers tandemd answers %s, expected serial 100" % s)
        time.sleep(0.1)
    lines = wait_log(tan, r"refresh failed", 5, offset=off)
    expect(not re.search(r"(AXFR|IXFR) serial 110", stderr_from(tan, off)),
           "a transfer of serial 110 was logged as done")
    expect(served(tan, origin) == 100, "after cut transfers: %s" % served(tan, origin))
    check_content(tan, origin, v1, absent=["only-v2"])
    log("    %d cut AXFRs: still serving serial 100; %s"
        % (fp.count("AXFR") - axfr0, lines[0].split(": ", 1)[-1][:200]))
    fp.axfr_mode = "ok"
    wait_serial(tan, origin, 110, 10)
    check_content(tan, origin, v2, absent=["only-v1"])
    log("    the primary repaired: serial 110 by AXFR")


def scenario_axfrchecks(ctx):
    """AXFRs that are complete but invalid are refused: out-of-zone data, a closing SOA
    unlike the first, a serial older than ours (the SOA query having said newer)."""
    origin = "checks.test."
    v1 = next_version(origin, 500, "v1")
    fp, tan = start_fake_and_tandemd(ctx, origin, v1)
    fp.ixfr_mode = "notimp"
    old = next_version(origin, 480, "old")
    fp.add_version(old, make_current=False)
    fp.older_serial = 480
    v2 = next_version(origin, 510, "v2")
    fp.add_version(v2)
    for mode in ("outzone", "mismatch", "older"):
        fp.axfr_mode = mode
        off = log_offset(tan)
        axfr0 = fp.count("AXFR")
        fp.notify(tan.addr)
        t0 = time.monotonic()
        # Two attempts (the NOTIFY's, the retry's): the second surely saw this mode.
        while fp.count("AXFR") < axfr0 + 2:
            expect(time.monotonic() < t0 + 10, "AXFR %s: %d AXFR asked for in 10 s"
                   % (mode, fp.count("AXFR") - axfr0))
            expect(served(tan, origin) == 500, "AXFR %s: tandemd answers %s, expected serial 500"
                   % (mode, served(tan, origin)))
            time.sleep(0.05)
        lines = wait_log(tan, r"refresh failed", 5, offset=off, count=2)
        expect(not re.search(r"(AXFR|IXFR)[^:]* serial \d+:", stderr_from(tan, off)),
               "AXFR %s: a transfer was logged as done: %s" % (mode, stderr_from(tan, off)))
        expect(served(tan, origin) == 500, "AXFR %s: tandemd answers %s, expected serial 500"
               % (mode, served(tan, origin)))
        check_content(tan, origin, v1, absent=["only-v2", "only-old"])
        log("    AXFR %s refused: %s" % (mode, lines[-1].split("retry in ", 1)[-1][:200]))
    fp.axfr_mode = "ok"
    wait_serial(tan, origin, 510, 10)
    check_content(tan, origin, v2, absent=["only-v1"])
    log("    the primary repaired: serial 510 by AXFR")


def scenario_maxsize(ctx):
    origin = "maxsize.test."
    limit = 6000
    v1 = next_version(origin, 7, "v1")
    fp, tan = start_fake_and_tandemd(ctx, origin, v1, zone_extra="max_transfer_size = %d\n" % limit)
    big = fakeprimary.small_zone(origin, 8, txt=300)
    off = log_offset(tan)
    axfr0 = fp.count("AXFR")
    fp.add_version(big)
    fp.notify(tan.addr)
    lines = wait_log(tan, r"refresh failed.*larger than the limit", 10, offset=off)
    t0 = time.monotonic()
    while fp.count("AXFR") == axfr0 and time.monotonic() < t0 + 5:
        time.sleep(0.1)
    expect(fp.count("AXFR") > axfr0, "no AXFR was attempted after the IXFR")
    expect(served(tan, origin) == 7, "after a refused transfer: %s" % served(tan, origin))
    expect(not re.search(r"(AXFR|IXFR) serial 8", stderr_from(tan, off)),
           "the oversized transfer was logged as done")
    check_content(tan, origin, v1)
    log("    serial 8 (%d records) refused, serial 7 still served; %s"
        % (len(big.others) + 1, lines[0].split(": ", 1)[-1][:200]))


def scenario_expire(ctx):
    origin = "expire.test."
    v1 = fakeprimary.small_zone(origin, 1000, refresh=2, retry=1, expire=4)
    fp, tan = start_fake_and_tandemd(ctx, origin, v1, zone_extra='expire_min = "1s"\n')
    time.sleep(0.5)
    fp.stop()
    t0 = time.monotonic()
    off = log_offset(tan)
    expect(served(tan, origin) == 1000, "right after the primary stopped: %s" % served(tan, origin))
    wait_rcode(tan, origin, dns.rcode.SERVFAIL, 10)
    took = time.monotonic() - t0
    log("    primary stopped; SERVFAIL %.1f s later (SOA expire 4 s, refresh 2 s)" % took)
    expect(took >= 1.0, "SERVFAIL %.1f s after the primary stopped: before the expire time" % took)
    expect(took <= 7.0, "SERVFAIL only %.1f s after the primary stopped (expire is 4 s)" % took)
    wait_log(tan, r"refresh failed", 1, offset=off)
    fp2 = ctx.fake(origin, fp.port)
    fp2.add_version(v1)
    t1 = time.monotonic()
    deadline = t1 + 5
    while True:
        try:
            fp2.start()
            break
        except OSError:
            expect(time.monotonic() < deadline, "could not start the fake primary again")
            time.sleep(0.2)
    took = wait_serial(tan, origin, 1000, 10)
    log("    primary back: serving serial 1000 again %.1f s later" % took)
    check_content(tan, origin, v1)


SCENARIOS = [
    ("knot", "Knot primary: AXFR, NOTIFY, IXFR, identical answers", scenario_knot),
    ("nsd", "NSD primary: AXFR, NOTIFY, IXFR or AXFR, identical answers", scenario_nsd),
    ("restart", "restart serves the saved copy at once", scenario_restart),
    ("fallback", "IXFR failures fall back to AXFR", scenario_fallback),
    ("tsig", "TSIG: right key loads, wrong secret does not", scenario_tsig),
    ("cut", "a cut AXFR leaves the served copy", scenario_cut),
    ("axfrchecks", "invalid AXFRs are refused", scenario_axfrchecks),
    ("maxsize", "max_transfer_size refuses a large transfer", scenario_maxsize),
    ("expire", "SERVFAIL after expire, served again when the primary is back", scenario_expire),
]


def main(argv=None):
    ap = argparse.ArgumentParser(description="zone transfer tests: tandemd as a secondary")
    ap.add_argument("--tandemd", required=True)
    ap.add_argument("--only", action="append", help="run only these scenarios (repeatable)")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directories")
    args = ap.parse_args(argv)
    if not (os.path.isfile(args.tandemd) and os.access(args.tandemd, os.X_OK)):
        log("tandemd binary not found or not executable: %s" % args.tandemd)
        return 2
    procs.stop_on_sigterm()
    chosen = [s for s in SCENARIOS if not args.only or s[0] in args.only]
    if not chosen:
        log("no scenario matches %s; known: %s" % (args.only, ", ".join(s[0] for s in SCENARIOS)))
        return 2
    results = []
    t_all = time.monotonic()
    for name, title, fn in chosen:
        log("== %s: %s" % (name, title))
        t0 = time.monotonic()
        with procs.TempDir(prefix="tandem-xfr-%s-" % name, keep=args.keep) as tmp:
            if args.keep:
                log("    temporary directory: %s" % tmp)
            ctx = Ctx(args, tmp)
            ok, why = False, ""
            try:
                fn(ctx)
                ok = True
            except Failure as e:
                why = str(e)
            except procs.ServerError as e:
                why = "server error: %s" % e
            except Exception as e:  # noqa: BLE001 - any error fails this scenario only
                why = "%s: %s\n%s" % (type(e).__name__, e, traceback.format_exc())
            finally:
                if not ok:
                    log("    FAIL: %s" % why)
                    ctx.dump()
                ctx.cleanup()
        dt = time.monotonic() - t0
        log("%s %s (%.1f s)" % ("ok  " if ok else "FAIL", name, dt))
        results.append((name, ok, dt))
    log("")
    log("summary (%.1f s):" % (time.monotonic() - t_all))
    for name, ok, dt in results:
        log("  %-4s %-10s %5.1f s" % ("ok" if ok else "FAIL", name, dt))
    failed = [n for n, ok, _ in results if not ok]
    if failed:
        log("FAILED: %s" % ", ".join(failed))
        return 1
    log("PASSED: %d scenarios" % len(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

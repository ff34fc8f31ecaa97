#!/usr/bin/python3
"""Failover between primary and secondary sources: acceptance tests (real processes).

    /usr/bin/python3 tests/integration/test_failover.py \
        --tandemd build/tandemd --tandemctl build/tandemctl [--only NAME,...]

Setup "pair" (loopback): Knot DNS primary of example.com, NSD secondary pulling from it
(Knot notifies NSD and tandemd), tandemd with both as sources ([health] interval 500ms,
timeout 400ms, fall 3, rise 3, overload 250ms, hold 2s).

  kill      (1) under a steady dnsperf load (3000 qps), SIGKILL the primary: the active
            source becomes the secondary within fall x interval + interval of the kill;
  failback  (2) the primary restarted with its zone at a newer serial: tandem answers from
            it again, at the new serial, within rise x interval + interval of its first
            answer; dnsperf (across 1 and 2) lost no query and got 100% NOERROR;
  stop      (4) SIGSTOP of the primary (its probes time out): swap to the secondary within
            the same bound; SIGCONT: back to the primary after rise probes, once hold has
            passed since the swap (same serial on both);
  older     (3) the primary killed, the secondary given a newer copy (NSD restarted with a
            zone file of a newer serial), the primary restarted at a serial older than the
            secondary's (but newer than tandem's copy of it): it comes UP and is not made
            active, and the secondary's newer serial stays answered;
  rollback  (3b) the primary killed and restarted from scratch with a serial older than
            the copy tandem holds from it and than the secondary's: the older serial is
            never answered and the primary is not made active.

Setup "slow": Knot DNS "primary" behind a relay that can hold its UDP replies back
(procs.DelayProxy; this kernel has no netem for `tc qdisc ... netem delay`), an independent
Knot DNS "secondary" with the same zone (SOA refresh 2, expire 5; tandemd's expire_min 1s),
tandemd with both as sources (the primary's probe timeout 1s).

  overload  (4) the primary's replies delayed 400 ms (they arrive, slower than overload
            250 ms): the primary goes DOWN "overloaded" and the secondary is answered; the
            delay removed: back to the primary;
  stall     (4) under dnsperf load, SIGSTOP of the primary just as a refresh check of it
            falls due (`tandemctl refresh`, as a NOTIFY or the SOA refresh timer would):
            the swap within fall x interval + interval + (probe timeout - interval), not
            after the check's transfer_timeout; no query lost, 100% NOERROR;
  expire    (5) both sources killed: both DOWN, the active copy keeps being answered (no
            SERVFAIL) until its SOA expire after the last refresh, then SERVFAIL.

Setup "dpdk": tandemd in dpdk mode (net_af_packet on a veth, netns.Testbed), Knot and NSD
on the server namespace's loopback (the control plane probes them over the kernel stack),
dnsperf from the client namespace at 198.18.0.1:53.

  dpdk      (6) the primary SIGKILLed under load: swap within the bound, no query lost,
            100% NOERROR.

Each check prints ok/FAIL with what was measured. Exit status 0 when all pass, 1 when one
fails (the stderr of tandemd and of its sources is printed), 2 when the test could not run.
The "dpdk" setup needs root (network namespaces) and is skipped without it.
Processes are stopped by pid and namespaces deleted at the end, also on failure.
"""

import argparse
import calendar
import os
import shutil
import signal
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import dns.flags      # noqa: E402
import dns.message    # noqa: E402
import dns.query      # noqa: E402
import dns.rcode      # noqa: E402
import dns.rdatatype  # noqa: E402

import netns  # noqa: E402
import procs  # noqa: E402
from procs import Failure  # noqa: E402

ZONE = "example.com"
INTERVAL = 0.5
TIMEOUT = 0.4
FALL = 3
RISE = 3
HOLD = 2.0
HEALTH = {"interval": "500ms", "timeout": "400ms", "fall": FALL, "rise": RISE,
          "overload": "250ms", "hold": "2s"}
SWAP_BOUND = FALL * INTERVAL + INTERVAL        # from the failure to the swap
BACK_BOUND = RISE * INTERVAL + INTERVAL        # from the source answering to its return
LOAD_QPS = 3000
POLL = 0.05


class Run:
    """Results and the processes to show when something failed."""

    def __init__(self, args):
        self.args = args
        self.failures = []
        self.results = []
        self.show = []          # Servers whose stderr is printed on a failure

    def log(self, msg=""):
        print(msg, flush=True)

    def check(self, cond, what):
        self.log(("ok: " if cond else "FAIL: ") + what)
        self.results.append((bool(cond), what))
        if not cond:
            self.failures.append(what)
        return bool(cond)


def wait_until(fn, timeout, poll=POLL):
    """Calls fn() until it returns something true or `timeout` passes; returns
    (value, seconds waited); the value is the last one returned (maybe false)."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    v = None
    while True:
        v = fn()
        if v or time.monotonic() >= deadline:
            return v, time.monotonic() - t0
        time.sleep(poll)


class Tandem:
    """A running tandemd with its control socket; helpers over tandemctl --json."""

    def __init__(self, run, srv, socket_path, metrics=None, query_addr=None, inside=None):
        self.run = run
        self.srv = srv
        self.socket = socket_path
        self.metrics = metrics
        self.query_addr = query_addr or srv.addr
        self.inside = inside     # namespace to query from (dpdk), else None

    def sources(self):
        return procs.tandemctl_json(self.run.args.tandemctl, self.socket, "sources", ZONE)

    def source(self, doc, name):
        for s in doc.get("sources", []):
            if s.get("name") == name:
                return s
        return {}

    def active(self):
        return self.sources().get("active_source")

    def wait_active(self, name, timeout, serial=None):
        """Polls until `name` is the active source (with `serial`); returns (doc, seconds)
        where doc is the last sources document (None-ish on a timeout)."""
        last = {}

        def probe():
            nonlocal last
            last = self.sources()
            ok = last.get("active_source") == name and (serial is None or last.get("serial") == serial)
            return last if ok else None

        doc, waited = wait_until(probe, timeout)
        return doc, waited, last

    def logged_swap(self, source, since_wall, timeout=2.0):
        """Seconds from the wall-clock time `since_wall` to the first swap to `source` that
        tandemd logged after it ("... answering from SOURCE serial ..."; millisecond
        timestamps), or None."""
        import re
        rx = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{3})Z .*: answering from %s serial"
                        % re.escape(source), re.M)
        deadline = time.monotonic() + timeout
        while True:
            for m in rx.finditer(procs.read_log(self.srv.stderr_path)):
                when = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")) + int(m.group(2)) / 1000.0
                if when >= since_wall - 0.001:
                    return when - since_wall
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)

    def soa_serial(self, timeout=0.5):
        if self.inside:
            with netns.Inside(self.inside):
                return procs.soa_serial(self.query_addr, ZONE, timeout=timeout)
        return procs.soa_serial(self.query_addr, ZONE, timeout=timeout)

    def ctl(self, *args):
        return procs.tandemctl_json(self.run.args.tandemctl, self.socket, *args)


class Swap:
    """A swap waited for after an event: `doc` the sources document once `source` was
    active (None if it never was), `logged` the seconds from the event to tandemd's log line
    of the swap (millisecond timestamps), `observed` the seconds until tandemctl showed it.
    `took` is the logged time when there is one."""

    def __init__(self, t, source, event_wall, event_mono, timeout=10, serial=None):
        self.doc, _, self.last = t.wait_active(source, timeout, serial=serial)
        self.observed = time.monotonic() - event_mono
        self.logged = t.logged_swap(source, event_wall) if self.doc else None
        self.took = self.logged if self.logged is not None else self.observed

    def text(self):
        if not self.doc:
            return "never within %.0f s: %s" % (self.observed, brief(self.last))
        return "%.2f s (logged; seen by tandemctl after %.2f s)" % (self.took, self.observed) \
            if self.logged is not None else "%.2f s (seen by tandemctl; no log line)" % self.took


def brief(doc):
    """One line of a sources document."""
    if not doc:
        return "(no answer from tandemctl)"
    if not doc.get("ok", True) and "error" in doc:
        return "error: %s" % doc["error"]
    parts = ["active=%s serial=%s swaps=%s" % (doc.get("active_source"), doc.get("serial"), doc.get("swaps"))]
    for s in doc.get("sources", []):
        parts.append("%s:%s copy=%s probe=%s%s" % (s.get("name"), s.get("state"), s.get("serial"),
                                                   s.get("probe_serial"),
                                                   (" err=" + s["probe_error"]) if s.get("probe_error") else ""))
    parts.append("reason=%r" % doc.get("last_swap_reason"))
    return "; ".join(parts)


# ---------------------------------------------------------------------------------------
# Setup "pair": Knot DNS primary, NSD secondary, tandemd on loopback.

class Pair:
    def __init__(self, run, tmp):
        self.run = run
        self.tmp = tmp
        self.knot = self.nsd = self.tandem = None
        self.knot_zone = os.path.join(tmp, "primary.zone")
        self.queries = os.path.join(tmp, "queries.txt")
        self.n_queries = procs.write_query_file(self.queries, ZONE)
        self.stopped = False     # the primary is SIGSTOPped

    def start(self):
        args = self.run.args
        procs.write_failover_zone(self.knot_zone, ZONE, 1000, marker="knot-1000")
        nsd_port = procs.free_port()
        tandem_port = procs.free_port()
        self.knot = procs.start_knot_primary(
            self.tmp, ZONE, self.knot_zone, name="knot-primary",
            notify=["%s@%d" % (procs.LOOPBACK, nsd_port), "%s@%d" % (procs.LOOPBACK, tandem_port)])
        self.run.show.append(self.knot)
        self.nsd = procs.start_nsd_secondary(self.tmp, ZONE, "%s@%d" % (procs.LOOPBACK, self.knot.port),
                                             name="nsd-secondary", port=nsd_port)
        self.run.show.append(self.nsd)
        procs.wait_serial(self.nsd, ZONE, 1000, timeout=20)
        d = os.path.join(self.tmp, "tandemd")
        os.makedirs(d, exist_ok=True)
        sock = os.path.join(d, "control.sock")
        metrics_port = procs.free_port()
        self.metrics = (procs.LOOPBACK, metrics_port)

        def config(port):
            return procs.failover_tandem_config(
                ZONE, [("primary", "%s:%d" % (procs.LOOPBACK, self.knot.port)),
                       ("secondary", "%s:%d" % (procs.LOOPBACK, self.nsd.port))],
                os.path.join(d, "state"), sock, listen=["%s:%d" % (procs.LOOPBACK, port)],
                metrics="%s:%d" % self.metrics, health=HEALTH)

        srv = procs.start_tandemd_pulled(args.tandemd, self.tmp, ZONE, config, name="tandemd",
                                         port=tandem_port)
        self.run.show.insert(0, srv)
        self.tandem = Tandem(self.run, srv, sock, metrics=self.metrics)
        doc, waited, last = self.tandem.wait_active("primary", 20, serial=1000)
        if not doc:
            raise Failure("tandemd did not answer from the primary at serial 1000 within 20 s: %s" % brief(last))
        both, _ = wait_until(lambda: all(s.get("serial") == 1000 and s.get("state") == "UP"
                                         for s in self.tandem.sources().get("sources", [])), 20)
        if not both:
            raise Failure("both sources not UP at serial 1000: %s" % brief(self.tandem.sources()))
        self.run.log("pair: knotd pid %d port %d, nsd pid %d port %d, tandemd pid %d port %d"
                     % (self.knot.proc.pid, self.knot.port, self.nsd.proc.pid, self.nsd.port,
                        srv.proc.pid, srv.port))

    def stop(self):
        if self.stopped and self.knot and self.knot.alive():
            os.kill(self.knot.proc.pid, signal.SIGCONT)
        for s in (self.tandem.srv if self.tandem else None, self.nsd, self.knot):
            if s:
                s.stop()

    def dnsperf(self, seconds, name):
        argv = procs.dnsperf_argv(procs.LOOPBACK, self.tandem.srv.port, self.queries, seconds,
                                  qps=LOAD_QPS, n_queries=self.n_queries)
        return procs.Dnsperf(argv, os.path.join(self.tmp, name + ".out")).start()

    def restart_knot(self, serial, fresh=False):
        """Restart the primary on its port with its zone file at `serial`; `fresh`: without
        its journal (as if rebuilt from a backup). Returns (t_start, seconds to ready)."""
        procs.write_failover_zone(self.knot_zone, ZONE, serial, marker="knot-%d" % serial)
        if fresh:
            storage = os.path.join(self.tmp, "knot-primary", "storage")
            shutil.rmtree(storage, ignore_errors=True)
            os.makedirs(storage, exist_ok=True)
        t0 = time.monotonic()
        ready = procs.restart_server(self.knot, ZONE, timeout=20)
        return t0, ready


def dump_logs(run, since):
    """Prints the stderr (and NSD's log) of the processes in run.show when checks failed
    since `since` failures; called before the setup's directory is removed."""
    if len(run.failures) > since:
        for srv in run.show:
            run.log("---- %s stderr (pid %s) ----\n%s" % (srv.name, srv.proc.pid if srv.proc else "-",
                                                         srv.stderr_text(6000)))
            if getattr(srv, "log_path", None) and srv.log_path != srv.stderr_path:
                run.log("---- %s log ----\n%s" % (srv.name, procs.read_log(srv.log_path)[-3000:]))
    run.show = []


def check_load(run, perf, what):
    r = perf.wait()
    sent, lost = r["sent"], r["lost"]
    noerror = r["rcodes"].get("NOERROR")
    others = {k: v for k, v in r["rcodes"].items() if k != "NOERROR" and v}
    run.log("  dnsperf: %s" % " ".join(perf.argv))
    ok = run.check(r["exit"] == 0 and sent and lost == 0,
                   "%s: dnsperf lost no query (sent %s, completed %s, lost %s, %.0f qps)"
                   % (what, sent, r["completed"], lost, r["qps"] or 0))
    ok &= run.check(sent and noerror == r["completed"] and not others,
                    "%s: 100%% NOERROR (NOERROR %s of %s completed; others %s)"
                    % (what, noerror, r["completed"], others or "none"))
    if not ok:
        run.log(r["text"][-2000:])


def scenario_kill_failback(run, pair):
    """(1) kill the primary under load, (2) restart it at a newer serial: fail back."""
    t = pair.tandem
    perf = pair.dnsperf(10, "dnsperf-kill")
    try:
        time.sleep(1.5)     # the load runs before the kill
        t_kill, w_kill = time.monotonic(), time.time()
        procs.kill_server(pair.knot, signal.SIGKILL)
        sw = Swap(t, "secondary", w_kill, t_kill)
        doc = sw.doc
        run.check(doc and sw.took <= SWAP_BOUND,
                  "kill: the secondary is active %s after SIGKILL of the primary (bound %.1f s = "
                  "fall %d x interval %.1f s + interval)" % (sw.text(), SWAP_BOUND, FALL, INTERVAL))
        if doc:
            run.check("primary DOWN" in doc.get("last_swap_reason", "") and
                      t.source(doc, "primary").get("state") == "DOWN",
                      "kill: primary DOWN, swap reason %r" % doc.get("last_swap_reason"))
            text = procs.scrape_metrics(pair.metrics)
            act = procs.metric_value(text, "tandem_zone_active_source", source="secondary")
            up = procs.metric_value(text, "tandem_source_up", source="primary")
            swaps = procs.metric_value(text, "tandem_zone_swaps_total")
            run.check(act == 1 and up == 0 and swaps and swaps >= 1,
                      "kill: metrics active_source{secondary}=%s source_up{primary}=%s swaps_total=%s"
                      % (act, up, swaps))

        # (2) The primary comes back with a newer serial. Knot notifies NSD, so the
        # secondary may hold the new serial first: the return is then a swap between copies
        # of one serial, which waits for hold after the last swap. The primary is restarted
        # once hold has passed, so that what is measured is the rise of the primary.
        t_swap = t_kill + sw.took
        time.sleep(max(0.0, t_swap + HOLD - time.monotonic()))
        w_start = time.time()
        t_start, ready = pair.restart_knot(1001)
        sw = Swap(t, "primary", w_start, t_start, timeout=15, serial=1001)
        doc = sw.doc
        from_ready = sw.took - ready
        run.check(doc and from_ready <= BACK_BOUND,
                  "failback: the primary is active again at serial 1001 %.2f s after knotd answered "
                  "(%s after its restart; bound %.2f s = rise %d x interval + interval)"
                  % (from_ready, sw.text(), BACK_BOUND, RISE))
        if doc:
            run.log("  swap reason: %r" % doc.get("last_swap_reason"))
        served = t.soa_serial()
        run.check(served == 1001, "failback: tandemd answers SOA serial %s (want 1001)" % served)
    finally:
        check_load(run, perf, "kill+failback")
        perf.stop()


def scenario_stop(run, pair):
    """(4) SIGSTOP: probes time out, swap; SIGCONT: back after rise probes and hold."""
    t = pair.tandem
    doc, _, last = t.wait_active("primary", 10)
    if not doc:
        raise Failure("stop: the primary is not active before the test: %s" % brief(last))
    t_stop, w_stop = time.monotonic(), time.time()
    os.kill(pair.knot.proc.pid, signal.SIGSTOP)
    pair.stopped = True
    sw = Swap(t, "secondary", w_stop, t_stop)
    doc = sw.doc
    t_swap = t_stop + sw.took
    bound = FALL * INTERVAL + max(INTERVAL, TIMEOUT)
    run.check(doc and sw.took <= bound,
              "stop: the secondary is active %s after SIGSTOP of the primary (bound %.1f s = fall x "
              "interval + interval)" % (sw.text(), bound))
    if doc:
        run.check("timeout" in doc.get("last_swap_reason", ""),
                  "stop: swap reason %r names the timeout" % doc.get("last_swap_reason"))
    t_cont, w_cont = time.monotonic(), time.time()
    os.kill(pair.knot.proc.pid, signal.SIGCONT)
    pair.stopped = False
    up, up_after = wait_until(lambda: t.source(t.sources(), "primary").get("state") == "UP", 10)
    sw = Swap(t, "primary", w_cont, t_cont, timeout=15)
    doc = sw.doc
    # Same serial on both: back when the primary is UP (rise probes) and hold has passed
    # since the swap; the policy notices the end of hold within a second.
    since_swap = t_cont + sw.took - t_swap
    bound = max(HOLD - (t_cont - t_swap) + 1.0, BACK_BOUND) + 0.1
    run.check(up and doc and sw.took <= bound,
              "stop: after SIGCONT the primary is UP (seen after %.2f s) and active again %s "
              "(%.2f s after the swap; hold %.1f s; bound %.2f s)"
              % (up_after, sw.text(), since_swap, HOLD, bound))
    if doc:
        run.check(since_swap >= HOLD - 0.05,
                  "stop: the return to the primary waited for hold (%.2f s after the swap >= %.1f s); "
                  "reason %r" % (since_swap, HOLD, doc.get("last_swap_reason")))


def watch(t, seconds, record):
    """Polls tandem for `seconds`: record(doc, served serial) on every round."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        record(t.sources(), t.soa_serial(timeout=0.3))
        time.sleep(0.1)


def scenario_rollback(run, pair):
    """(3b) The primary comes back from scratch with a serial older than every copy."""
    t = pair.tandem
    procs.kill_server(pair.knot, signal.SIGKILL)
    doc, _, last = t.wait_active("secondary", 10)
    if not run.check(doc, "rollback: secondary active after the kill: %s" % brief(last)):
        return
    held = t.source(doc, "primary").get("serial")
    pair.restart_knot(999, fresh=True)
    up, up_after = wait_until(lambda: t.source(t.sources(), "primary").get("state") == "UP", 10)
    run.check(up, "rollback: the primary (serial 999) is UP again after %.2f s" % up_after)
    seen_active, served = [], set()

    def record(d, serial):
        seen_active.append(d.get("active_source"))
        served.add(serial)

    watch(t, HOLD + 2 * INTERVAL + 1.0, record)
    doc = t.sources()
    p = t.source(doc, "primary")
    run.log("  %s" % brief(doc))
    served.discard(None)
    run.check(served == {1001},
              "rollback: the older serial 999 is never answered (served %s)" % sorted(served))
    run.check("primary" not in seen_active,
              "rollback: a primary back at serial 999 (tandem holds %s from it, the secondary 1001) "
              "is not made active (active seen: %s; primary copy %s, probe serial %s; last swap: %r)"
              % (held, sorted(set(x for x in seen_active if x)), p.get("serial"), p.get("probe_serial"),
                 doc.get("last_swap_reason")))


def scenario_older(run, pair):
    """(3) The secondary newer than the primary that comes back: not made active."""
    t = pair.tandem
    procs.kill_server(pair.knot, signal.SIGKILL)
    doc, _, last = t.wait_active("secondary", 10)
    if not run.check(doc, "older: secondary active after the kill: %s" % brief(last)):
        return
    # Give NSD a newer copy: stopped, its zone file replaced by serial 1005, started again.
    pair.nsd.stop()
    nsd_dir = os.path.join(pair.tmp, "nsd-secondary")
    procs.write_failover_zone(os.path.join(nsd_dir, "secondary.zone"), ZONE, 1005, marker="nsd-1005")
    for f in ("xfrd.state",):
        try:
            os.unlink(os.path.join(nsd_dir, f))
        except OSError:
            pass
    procs.restart_server(pair.nsd, ZONE, timeout=20)
    nsd_serial = procs.soa_serial(pair.nsd.addr, ZONE)
    if not run.check(nsd_serial == 1005, "older: NSD serves the newer serial 1005 (it says %s)" % nsd_serial):
        return
    doc, waited, last = t.wait_active("secondary", 10, serial=1005)
    run.check(doc, "older: tandem answers the secondary's serial 1005 after %.2f s" % waited +
              ("" if doc else ": " + brief(last)))
    # The primary comes back at 1002: newer than tandem's copy of it, older than 1005.
    pair.restart_knot(1002, fresh=True)
    got, waited = wait_until(lambda: (lambda p: p.get("state") == "UP" and p.get("serial") == 1002)(
        t.source(t.sources(), "primary")), 10)
    run.check(got, "older: the primary is UP with its copy at 1002 after %.2f s" % waited)
    seen_active, served = [], set()

    def record(d, serial):
        seen_active.append(d.get("active_source"))
        served.add(serial)

    watch(t, HOLD + 2 * INTERVAL + 1.0, record)
    doc = t.sources()
    run.log("  %s" % brief(doc))
    served.discard(None)
    run.check(set(seen_active) == {"secondary"} and served == {1005},
              "older: the primary back at the older serial 1002 is not made active (active seen %s, "
              "served %s)" % (sorted(set(x for x in seen_active if x)), sorted(x for x in served if x)))


def run_pair(run, only):
    with procs.TempDir(prefix="tandem-failover-") as tmp:
        pair = Pair(run, tmp)
        since = len(run.failures)
        try:
            pair.start()
            for name, fn in (("kill", scenario_kill_failback), ("stop", scenario_stop),
                             ("rollback", scenario_rollback), ("older", scenario_older)):
                if only and name not in only and not (name == "kill" and "failback" in only):
                    continue
                run.log("== pair: %s ==" % name)
                try:
                    fn(run, pair)
                except Failure as e:
                    run.check(False, "%s: %s" % (name, e))
        except (Failure, procs.ServerError) as e:
            run.check(False, "pair: %s" % e)
        finally:
            pair.stop()
            dump_logs(run, since)


# ---------------------------------------------------------------------------------------
# Setup "slow": a primary whose UDP replies can be held back (procs.DelayProxy: this
# kernel has no netem), an independent secondary, short SOA timers.

def run_slow(run, only):
    args = run.args
    with procs.TempDir(prefix="tandem-failover-slow-") as tmp:
        servers = []
        proxy = None
        since = len(run.failures)
        try:
            zone_a = os.path.join(tmp, "a.zone")
            zone_b = os.path.join(tmp, "b.zone")
            queries = os.path.join(tmp, "queries.txt")
            n_queries = procs.write_query_file(queries, ZONE)
            for z in (zone_a, zone_b):
                procs.write_failover_zone(z, ZONE, 2000, refresh=2, retry=1, expire=5, marker="same")
            knot_a = procs.start_knot_primary(tmp, ZONE, zone_a, name="knot-a")
            servers.append(knot_a)
            run.show.append(knot_a)
            proxy = procs.DelayProxy(knot_a.addr).start()
            knot_b = procs.start_knot_primary(tmp, ZONE, zone_b, name="knot-b")
            servers.append(knot_b)
            run.show.append(knot_b)
            d = os.path.join(tmp, "tandemd")
            os.makedirs(d, exist_ok=True)
            sock = os.path.join(d, "control.sock")

            def config(port):
                return procs.failover_tandem_config(
                    ZONE, [("primary", "%s:%d" % proxy.addr, {"timeout": "1s"}),
                           ("secondary", "%s:%d" % (procs.LOOPBACK, knot_b.port))],
                    os.path.join(d, "state"), sock, listen=["%s:%d" % (procs.LOOPBACK, port)],
                    health=HEALTH, zone_keys={"expire_min": "1s"})

            srv = procs.start_tandemd_pulled(args.tandemd, tmp, ZONE, config, name="tandemd-slow")
            servers.append(srv)
            run.show.insert(0, srv)
            t = Tandem(run, srv, sock)
            doc, _, last = t.wait_active("primary", 20, serial=2000)
            if not doc:
                raise Failure("slow: tandemd did not answer from the primary at 2000: %s" % brief(last))
            both, _ = wait_until(lambda: all(s.get("serial") == 2000 and s.get("state") == "UP"
                                             for s in t.sources().get("sources", [])), 20)
            if not both:
                raise Failure("slow: both sources not UP at 2000: %s" % brief(t.sources()))
            run.log("slow: knotd A pid %d port %d behind the relay on port %d, knotd B pid %d port %d, "
                    "tandemd pid %d port %d" % (knot_a.proc.pid, knot_a.port, proxy.port, knot_b.proc.pid,
                                                knot_b.port, srv.proc.pid, srv.port))

            if not only or "overload" in only:
                run.log("== slow: overload ==")
                t_delay, w_delay = time.monotonic(), time.time()
                proxy.delay = 0.4
                sw = Swap(t, "secondary", w_delay, t_delay)
                doc = sw.doc
                t_swap = t_delay + sw.took
                bound = FALL * INTERVAL + INTERVAL + 0.4
                p = t.source(doc or sw.last, "primary")
                run.check(doc and sw.took <= bound,
                          "overload: replies delayed 400 ms: the secondary is active %s (bound %.1f s = "
                          "fall x interval + interval + the delay)" % (sw.text(), bound))
                run.check(doc and "overloaded" in doc.get("last_swap_reason", "") and p.get("state") == "DOWN",
                          "overload: primary DOWN, reason %r (last probe %.0f ms: %r)"
                          % ((doc or {}).get("last_swap_reason"), p.get("probe_latency_ms", 0),
                             p.get("probe_error")))
                t_clear, w_clear = time.monotonic(), time.time()
                proxy.delay = 0.0
                sw = Swap(t, "primary", w_clear, t_clear, timeout=15)
                bound = max(HOLD - (t_clear - t_swap) + 1.0, BACK_BOUND) + 0.1
                run.check(sw.doc and sw.took <= bound,
                          "overload: delay removed: the primary is active again %s (bound %.2f s: rise "
                          "probes, and hold after the swap)" % (sw.text(), bound))

            if not only or "stall" in only:
                # The primary stops answering just as a refresh check of its zone falls due
                # (`tandemctl refresh`, as a NOTIFY or the SOA refresh timer would make it):
                # the swap must not wait for that check to time out (transfer_timeout 10 s).
                run.log("== slow: stall ==")
                doc, _, last = t.wait_active("primary", 10)
                if not doc:
                    raise Failure("stall: the primary is not active before the test: %s" % brief(last))
                argv = procs.dnsperf_argv(procs.LOOPBACK, srv.port, queries, 20, qps=LOAD_QPS,
                                          n_queries=n_queries)
                perf = procs.Dnsperf(argv, os.path.join(tmp, "dnsperf-stall.out")).start()
                try:
                    time.sleep(1.0)
                    t_stop, w_stop = time.monotonic(), time.time()
                    os.kill(knot_a.proc.pid, signal.SIGSTOP)
                    try:
                        r = t.ctl("refresh", ZONE)
                        run.log("  tandemctl refresh %s: %s" % (ZONE, r.get("message") or r.get("error")))
                        sw = Swap(t, "secondary", w_stop, t_stop, timeout=15)
                    finally:
                        os.kill(knot_a.proc.pid, signal.SIGCONT)
                    # Probes of a source do not overlap: with its probe timeout (1 s) above the
                    # interval, each failed probe takes the timeout.
                    bound = FALL * max(INTERVAL, 1.0) + INTERVAL + 0.4
                    run.check(sw.doc and sw.took <= bound,
                              "stall: SIGSTOP of the primary as a refresh check of it falls due: the "
                              "secondary is active %s (bound %.1f s = fall x max(interval, probe timeout "
                              "1 s) + interval + 0.4 s)" % (sw.text(), bound))
                    sw = Swap(t, "primary", time.time(), time.monotonic(), timeout=15)
                    run.check(sw.doc, "stall: after SIGCONT the primary is active again %s" % sw.text())
                    time.sleep(2.5)     # past dnsperf's -t 2: what is unanswered by now is lost
                    perf.interrupt()
                finally:
                    check_load(run, perf, "stall")
                    perf.stop()

            if not only or "expire" in only:
                run.log("== slow: expire ==")
                doc, _, last = t.wait_active("primary", 10)
                if not doc:
                    raise Failure("expire: the primary is not active before the test: %s" % brief(last))
                t_kill = time.monotonic()
                procs.kill_server(knot_b, signal.SIGKILL)      # the secondary first: the primary stays active
                proxy.stop()        # before the primary: no moment where the relay takes queries for a dead server
                procs.kill_server(knot_a, signal.SIGKILL)
                answers = []        # (seconds after the kill, rcode or None, both DOWN, wall time)
                first_servfail = None
                active, expires, exp_wall = None, "", None
                deadline = t_kill + 5 + 4.0
                while time.monotonic() < deadline:
                    d = t.sources()
                    down = bool(d.get("sources")) and all(s.get("state") == "DOWN" for s in d["sources"])
                    if down and active is None:
                        # The copy answered once every source is DOWN is the one that must last
                        # until its expiry (a second-precision time in tandemctl's output).
                        active = d.get("active_source")
                        expires = t.source(d, active).get("expires", "")
                        try:
                            exp_wall = calendar.timegm(time.strptime(expires, "%Y-%m-%dT%H:%M:%SZ"))
                        except ValueError:
                            exp_wall = None
                    try:
                        r = procs.udp_query(srv.addr, "www." + ZONE, dns.rdatatype.A, timeout=0.5)
                        rc = r.rcode()
                    except Exception:  # noqa: BLE001 - a timeout is recorded as None
                        rc = None
                    answers.append((time.monotonic() - t_kill, rc, down, time.time()))
                    if rc == dns.rcode.SERVFAIL and first_servfail is None:
                        first_servfail = answers[-1]
                    if first_servfail and answers[-1][0] > first_servfail[0] + 0.5:
                        break
                    time.sleep(POLL)
                before = [a for a in answers if first_servfail is None or a[0] < first_servfail[0]]
                served_down = [a for a in before if a[2] and a[1] == dns.rcode.NOERROR]
                run.check(before and all(a[1] == dns.rcode.NOERROR for a in before) and served_down,
                          "expire: both sources killed: NOERROR until the copy expires (%d answers, %d of "
                          "them with both sources DOWN, from %.2f s after the kill)"
                          % (len(before), len(served_down), served_down[0][0] if served_down else -1))
                if first_servfail:
                    late = first_servfail[3] - exp_wall if exp_wall else None
                    run.check(exp_wall is not None and -0.05 <= late <= 2.0,
                              "expire: SERVFAIL from %.2f s after the kill, %.2f s after the expiry time %s of "
                              "the copy answered (%s's; SOA expire 5 s from its last refresh, expire_min 1s; "
                              "bound: within the second after it, + 1 s for the policy)"
                              % (first_servfail[0], late if late is not None else float("nan"), expires, active))
                    after = [a for a in answers if a[0] >= first_servfail[0]]
                    run.check(all(a[1] == dns.rcode.SERVFAIL for a in after),
                              "expire: SERVFAIL from then on (%d answers)" % len(after))
                else:
                    run.check(False, "expire: no SERVFAIL within %.0f s of the kill (expiry %s): %s"
                              % (deadline - t_kill, expires, brief(t.sources())))
        except (Failure, procs.ServerError) as e:
            run.check(False, "slow: %s" % e)
        finally:
            if proxy:
                proxy.stop()
            for s in reversed(servers):
                s.stop()
            dump_logs(run, since)


# ---------------------------------------------------------------------------------------
# Setup "dpdk": tandemd in poll mode on a veth, Knot and NSD in its namespace.

def run_dpdk(run, only):
    args = run.args
    with procs.TempDir(prefix="tandem-failover-dpdk-") as tmp, netns.Testbed() as bed:
        servers = []
        since = len(run.failures)
        try:
            zone = os.path.join(tmp, "primary.zone")
            procs.write_failover_zone(zone, ZONE, 3000)
            queries = os.path.join(tmp, "queries.txt")
            n_queries = procs.write_query_file(queries, ZONE)
            ns = ["ip", "netns", "exec", bed.server_ns]
            kp, np_ = 5301, 5302
            dk = os.path.join(tmp, "knot-primary")
            os.makedirs(dk, exist_ok=True)
            with open(os.path.join(dk, "knot.conf"), "w") as f:
                f.write(procs.knot_primary_config(dk, kp, ZONE, zone, notify=["127.0.0.1@%d" % np_]))
            knot = procs.Server("knot-primary-ns", ns + ["knotd", "-c", os.path.join(dk, "knot.conf")], dk, kp)
            dn = os.path.join(tmp, "nsd-secondary")
            os.makedirs(dn, exist_ok=True)
            with open(os.path.join(dn, "nsd.conf"), "w") as f:
                f.write(procs.nsd_secondary_config(dn, np_, ZONE, "127.0.0.1@%d" % kp))
            nsd = procs.Server("nsd-secondary-ns", ns + ["nsd", "-d", "-c", os.path.join(dn, "nsd.conf")], dn, np_)
            with netns.Inside(bed.server_ns):
                knot.start()
                servers.append(knot)
                run.show.append(knot)
                knot.wait_ready(ZONE, timeout=20)
                nsd.start()
                servers.append(nsd)
                run.show.append(nsd)
                procs.wait_serial(nsd, ZONE, 3000, timeout=20)
            eal = ["--no-huge", "-m", "512", "--no-pci", "--file-prefix=tfo%d" % os.getpid(),
                   "--vdev=net_af_packet0,iface=%s" % bed.server_if, "-l", "0-1", "--log-level=warning"]
            dpdk = ('[dpdk]\neal_args = [%s]\naddress = ["%s/24"]\nexception_iface = "%s"\n'
                    % (", ".join('"%s"' % a for a in eal), netns.SERVER_V4, bed.exception_if))
            sock = os.path.join(tmp, "control.sock")
            conf = os.path.join(tmp, "tandem.toml")
            with open(conf, "w") as f:
                f.write(procs.failover_tandem_config(
                    ZONE, [("primary", "127.0.0.1:%d" % kp), ("secondary", "127.0.0.1:%d" % np_)],
                    os.path.join(tmp, "state"), sock, server_extra={"mode": "dpdk"}, health=HEALTH,
                    extra_sections=dpdk))
            srv = procs.AddrServer("tandemd-dpdk", ns + [args.tandemd, "--config", conf], tmp,
                                   netns.SERVER_V4, 53)
            srv.start()
            servers.append(srv)
            run.show.insert(0, srv)
            t = Tandem(run, srv, sock, inside=bed.client_ns)
            with netns.Inside(bed.client_ns):
                srv.wait_ready(ZONE, timeout=30)
            doc, _, last = t.wait_active("primary", 20, serial=3000)
            if not doc:
                raise Failure("dpdk: tandemd did not answer from the primary at 3000: %s" % brief(last))
            both, _ = wait_until(lambda: all(s.get("serial") == 3000 and s.get("state") == "UP"
                                             for s in t.sources().get("sources", [])), 20)
            if not both:
                raise Failure("dpdk: both sources not UP at 3000: %s" % brief(t.sources()))
            run.log("== dpdk: kill ==")
            argv = procs.dnsperf_argv(netns.SERVER_V4, 53, queries, 8, qps=LOAD_QPS, n_queries=n_queries,
                                      prefix=["ip", "netns", "exec", bed.client_ns])
            perf = procs.Dnsperf(argv, os.path.join(tmp, "dnsperf-dpdk.out")).start()
            try:
                time.sleep(1.5)
                t_kill, w_kill = time.monotonic(), time.time()
                procs.kill_server(knot, signal.SIGKILL)
                sw = Swap(t, "secondary", w_kill, t_kill)
                doc = sw.doc
                run.check(doc and sw.took <= SWAP_BOUND,
                          "dpdk: the secondary is active %s after SIGKILL of the primary (bound %.1f s)"
                          % (sw.text(), SWAP_BOUND))
                if doc:
                    run.log("  swap reason: %r" % doc.get("last_swap_reason"))
            finally:
                check_load(run, perf, "dpdk")
                perf.stop()
        except (Failure, procs.ServerError) as e:
            run.check(False, "dpdk: %s" % e)
        finally:
            for s in reversed(servers):
                s.stop()
            dump_logs(run, since)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tandemd", required=True)
    ap.add_argument("--tandemctl", required=True)
    ap.add_argument("--only", default="", help="comma-separated: kill,stop,rollback,older,overload,stall,expire,dpdk")
    args = ap.parse_args()
    args.tandemd = os.path.abspath(args.tandemd)
    args.tandemctl = os.path.abspath(args.tandemctl)
    procs.stop_on_sigterm()
    only = set(x for x in args.only.split(",") if x)
    for tool in ("knotd", "nsd", "dnsperf"):
        if not shutil.which(tool):
            print("cannot run: %s not found" % tool)
            return 2
    run = Run(args)
    t0 = time.monotonic()
    setups = [("pair", run_pair, {"kill", "failback", "stop", "rollback", "older"}),
              ("slow", run_slow, {"overload", "stall", "expire"}),
              ("dpdk", run_dpdk, {"dpdk"})]
    for name, fn, names in setups:
        if only and not (only & names):
            continue
        if name == "dpdk" and os.geteuid() != 0:
            run.log("== %s: skipped (needs root for network namespaces) ==" % name)
            continue
        try:
            fn(run, only)
        except (Failure, procs.ServerError) as e:
            run.check(False, "%s: %s" % (name, e))
        except Exception as e:  # noqa: BLE001 - reported, then the next setup runs
            run.check(False, "%s: %s: %s\n%s" % (name, type(e).__name__, e, traceback.format_exc()))
    run.log("failover: %d checks, %d failed, %.0f s" % (len(run.results), len(run.failures), time.monotonic() - t0))
    if run.failures:
        run.log("FAILED:\n  " + "\n  ".join(f.splitlines()[0] for f in run.failures))
        return 1
    run.log("PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())

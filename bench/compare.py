#!/usr/bin/python3
"""tandem side by side with Knot DNS, NSD and BIND on this machine: same zone, same query
mix, same load generator, the servers alternated over several rounds; prints medians and
ratios to tandem as a Markdown report (and the raw numbers with --json). A benchmark, not
a test. Run it through scripts/bench-compare; see docs/benchmarks.md.

Sections (--only):
  socket  one worker each (tandem socket mode, knotd udp-workers 1, nsd server-count 1,
          named -n 1) on loopback, dnsperf for a fixed time: queries per second, the
          server's CPU use, and queries per CPU-second of the server.
  xdp     tandem in dpdk mode (net_af_xdp) and Knot DNS in XDP mode on the same veth,
          kxdpgun from a client network namespace at the other end: replies per second
          and the fraction of queries answered, at one offered rate (--xdp-qps) above
          what kxdpgun can send: each server gets as much as the generator can give.
  xdp-rates  the same servers and veth, kxdpgun at each of a list of offered rates
          (--xdp-rates): up to which rate each server answers every query it is sent.
  memory  the four servers loading the same zone of a million hosts: proportional set
          size (Pss of the process tree) and the time from the process start until the
          zone's SOA is answered over UDP.

Every server is pinned to --server-cpu and every load generator to --loadgen-cpu, so on
two cores each has a core of its own. bench/core_pingpong measures the round trip of a
cache line between those two CPUs just before and just after every run (the host of a VM
moves its vCPUs near each other and far apart within seconds, and every figure here
crosses between the two); the report counts the runs in each state. Load goes only to
127.0.0.1 and to the namespaces this script creates; they are removed at the end, also on
an error or a signal.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

import crosscore  # noqa: E402
import loadgen  # noqa: E402
import netns  # noqa: E402
import peers  # noqa: E402
import report  # noqa: E402
import workload  # noqa: E402

SECTIONS = ("socket", "xdp", "xdp-rates", "memory")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def _sigterm(signum, frame):
    raise SystemExit("bench-compare: stopped by signal %d" % signum)


def check_pinning(srv, cpus, notes):
    """Notes (once per server) threads allowed on other CPUs than `cpus`."""
    other = {c: n for c, n in srv.affinities().items() if c != cpus}
    if other and srv.label not in notes:
        notes[srv.label] = ("%s has threads pinned elsewhere than CPU %s: %s"
                            % (srv.label, cpus, ", ".join("%d on CPU %s" % (n, c)
                                                          for c, n in sorted(other.items()))))
        log("warning: " + notes[srv.label])


def pct(v):
    return "  -" if v is None else "%3.0f%%" % (100 * v)


def busy_text(cpus):
    return ", ".join("CPU %d busy %.0f%% (softirq %.0f%%)" % (c, 100 * u["busy"], 100 * u["softirq"])
                     for c, u in sorted(cpus.items()))


def cross_core_text(r):
    return "cross-core round trip %s before / after" % crosscore.text(r.get("cross_core_ns") or [None, None])


def first_cpu(spec):
    """The first CPU of a taskset list such as "1-3" or "2,4"."""
    return int(spec.replace("-", ",").split(",")[0])


def rotated(items, n):
    """The servers in a different order each round, so none always runs first or after
    the same neighbour."""
    n %= len(items)
    return items[n:] + items[:n]


def available(kinds):
    binaries = {"knot": "knotd", "nsd": "nsd", "bind": "named"}
    out, missing = [], []
    for k in kinds:
        if k in binaries and not shutil.which(binaries[k]):
            missing.append(binaries[k])
        else:
            out.append(k)
    return out, missing


class CrossCore:
    """bench/core_pingpong between the server's CPU and the load generator's (crosscore.py),
    set up once from the options."""

    path = None
    cpus = (0, 1)
    nice = 0

    @classmethod
    def setup(cls, args):
        if args.core_pingpong:
            cls.path = crosscore.find(args.core_pingpong)
            if cls.path is None:
                sys.exit("bench-compare: --core-pingpong %s: not an executable file"
                         % args.core_pingpong)
        else:
            cls.path = crosscore.find(
                os.path.join(os.path.dirname(args.tandemd), "bench", "core_pingpong"),
                os.path.join(HERE, "..", "build-bench", "bench", "core_pingpong"))
        cls.cpus = (first_cpu(args.server_cpu), first_cpu(args.loadgen_cpu))
        cls.nice = args.nice
        if cls.path is None:
            log("bench/core_pingpong not built: the cross-core round trip is not measured")

    @classmethod
    def ns(cls):
        return crosscore.measure(cls.path, cls.cpus[0], cls.cpus[1], cls.nice)


def measured(srv, load, gen_procs=1):
    """Runs load() (a load generator's run, returning its figures) and adds the server's
    CPU and waiting shares, the machine's per-CPU use and `others`: how many cores'
    worth of time went to processes other than the server and the generator (the
    machine's busy time less softirq, the server's and the generator's; kernel work
    charged to neither, such as some of the veth's, counts too)."""
    load0 = os.getloadavg()[0]
    (run0, wait0), cpus0, t0 = srv.sched(), peers.cpu_times(), time.monotonic()
    r = load()
    (run1, wait1), cpus1 = srv.sched(), peers.cpu_times()
    wall = time.monotonic() - t0
    cpus = peers.cpu_usage(cpus0, cpus1)
    own = (run1 - run0) / wall + (r["gen_cpu_share"] or 0) * gen_procs
    r.update(loadavg=load0, wall_seconds=wall, cpu_seconds=run1 - run0,
             cpu_share=(run1 - run0) / wall, wait_share=(wait1 - wait0) / wall, cpus=cpus,
             others=max(0.0, sum(u["busy"] - u["softirq"] for u in cpus.values()) - own))
    return r


def undisturbed(args, what, run_once):
    """run_once() again, up to --retries times, while other processes took more than
    --max-others cores' worth of time during it; the last result, with "attempts" and
    "cross_core_ns" (bench/core_pingpong just before the run and just after it)."""
    for attempt in range(args.retries + 1):
        # Around the run, not during it: a server that polls (tandem's DPDK worker) would
        # share the CPU with the probe.
        before = CrossCore.ns()
        r = run_once()
        r["cross_core_ns"] = [before, CrossCore.ns()]
        r["attempts"] = attempt + 1
        if r["others"] <= args.max_others:
            break
        log("%s: other processes took %.0f%% of a core meanwhile%s"
            % (what, 100 * r["others"], ", again" if attempt < args.retries else ", kept"))
    return r


LO_RPS = "/sys/class/net/lo/queues/rx-0/rps_cpus"


class LoopbackSteering:
    """With --loopback-rps: loopback's receive processing steered (RPS) to the load
    generator's CPU for the socket section, the former mask restored afterwards (also on
    an error or a signal). On loopback the receive side of a datagram runs in softirq on
    the sending CPU, so without it each server's CPU time includes delivering its replies
    into dnsperf's socket and waking dnsperf: the same work per reply for every server,
    which narrows every ratio. A machine-wide setting, for the section's duration."""

    def __init__(self, cpu):
        self.mask = "%x" % (1 << cpu)
        self.saved = None

    def __enter__(self):
        try:
            with open(LO_RPS) as f:
                self.saved = f.read().strip()
            with open(LO_RPS, "w") as f:
                f.write(self.mask)
        except OSError as e:
            sys.exit("bench-compare: --loopback-rps: cannot set %s (%s; it needs root)"
                     % (LO_RPS, e.strerror))
        log("socket: loopback receive processing steered to CPU mask %s (was %s)"
            % (self.mask, self.saved))
        return self

    def __exit__(self, *exc):
        if self.saved is not None:
            with open(LO_RPS, "w") as f:
                f.write(self.saved)
        return False


def socket_section(args, tmp, zone_file, query_file):
    kinds, missing = available(list(args.servers))
    gen = loadgen.Dnsperf(query_file, args.duration, clients=args.dnsperf_clients,
                          threads=args.dnsperf_threads, outstanding=args.dnsperf_outstanding,
                          procs=args.dnsperf_procs, cpus=args.loadgen_cpu, nice=args.nice)
    runs = {k: [] for k in kinds}
    notes = {}

    def run_once(kind, rnd):
        srv = peers.socket_server(kind, tmp, zone_file, args.tandemd, cpus=args.server_cpu,
                                  nice=args.nice, udp_coalesce_us=args.udp_coalesce_us)
        try:
            srv.start()
            srv.ready(args.start_timeout)
            check_pinning(srv, args.server_cpu, notes)
            if args.warmup > 0:
                loadgen.Dnsperf(query_file, args.warmup, clients=args.dnsperf_clients,
                                cpus=args.loadgen_cpu, nice=args.nice).run(
                                    srv.addr, os.path.join(tmp, "warmup"))
            out = os.path.join(tmp, "dnsperf-%s-%d" % (kind, rnd))
            r = measured(srv, lambda: gen.run(srv.addr, out), gen_procs=args.dnsperf_procs)
        finally:
            srv.stop()
        r["per_cpu_second"] = (r["completed"] / r["cpu_seconds"]) if r["cpu_seconds"] > 0 else None
        return r

    for rnd in range(args.rounds):
        for kind in rotated(kinds, rnd):
            what = "socket round %d %-6s" % (rnd + 1, kind)
            r = undisturbed(args, what, lambda: run_once(kind, rnd))
            r["round"] = rnd
            runs[kind].append(r)
            log("%s %8.0f qps; server CPU %s, waiting %s; %6.0f queries per CPU-second; "
                "dnsperf CPU %s, waiting %s; lost %d; %s; others %.0f%%; load %.1f; %s"
                % (what, r["qps"], pct(r["cpu_share"]), pct(r["wait_share"]),
                   r["per_cpu_second"] or 0, pct(r["gen_cpu_share"]), pct(r["gen_wait_share"]),
                   r["lost"], busy_text(r["cpus"]), 100 * r["others"], r["loadavg"],
                   cross_core_text(r)))
    return {"runs": runs, "missing": missing, "dnsperf": " ".join(gen.argv(("127.0.0.1", "PORT"))),
            "procs": args.dnsperf_procs, "notes": list(notes.values())}


def veth_rx_dropped(bed):
    """The server-side veth's receive drops: frames its XDP program could not hand to the
    server's AF_XDP socket (its receive ring full, or no buffer in its fill ring)."""
    out = netns.sh("cat", "/sys/class/net/%s/statistics/rx_dropped" % bed.server_if,
                   ns=bed.server_ns, check=False).stdout.strip()
    return int(out) if out.isdigit() else None


def tandem_counters(tandemd, workdir):
    """tandemd's own counters at the end of a run (tandemctl stats over its control socket,
    bench/peers.py): its port's and its worker's; {} when they cannot be read."""
    ctl = os.path.join(os.path.dirname(os.path.abspath(tandemd)), "tandemctl")
    try:
        p = subprocess.run([ctl, "--socket", os.path.join(workdir, "control.sock"), "--json", "stats"],
                           capture_output=True, text=True, timeout=10)
        if p.returncode != 0:
            raise OSError(p.stderr.strip() or "exit status %d" % p.returncode)
        doc = json.loads(p.stdout)
    except (OSError, ValueError, subprocess.TimeoutExpired) as e:
        log("tandemd's counters not read (%s): %s" % (ctl, e))
        return {}
    ports = doc.get("ports", [])
    lcores = [w["counters"] for w in doc.get("workers", []) if w["name"].startswith("lcore")]
    if not ports:
        return {}

    def lcore_sum(key):
        return sum(c.get(key, 0) for c in lcores)

    return {"port_rx": sum(x.get("rx_packets", 0) for x in ports),
            "port_missed": sum(x.get("rx_missed", 0) for x in ports),
            "worker_rx": lcore_sum("rx_packets"), "worker_tx": lcore_sum("tx_packets"),
            "worker_tx_dropped": lcore_sum("tx_dropped")}


def xdp_section(args, tmp, zone_file, query_file, rates=None):
    """The xdp section, or with `rates` (offered queries per second) the xdp-rates one:
    each round runs every server at each rate, lowest first."""
    if os.geteuid() != 0:
        return {"skipped": "needs root (network namespaces, XDP)"}
    if not shutil.which("kxdpgun"):
        return {"skipped": "kxdpgun not installed (Debian package knot-dnsutils)"}
    subprocess.run("mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf", shell=True,
                   check=False)
    kinds = ["tandem-xdp"] + (["knot-xdp"] if "knot" in args.servers else [])
    runs = {k: [] for k in kinds}
    notes = {}
    with netns.Testbed(tag="bc%d" % os.getpid()) as bed:
        mac = bed.server_mac()
        # Knot in XDP mode answers no ARP: the client knows the server's MAC beforehand.
        netns.sh("ip", "neigh", "replace", netns.SERVER_V4, "lladdr", mac, "dev", bed.client_if,
                 "nud", "permanent", ns=bed.client_ns)
        duration = args.xdp_rate_duration if rates else args.xdp_duration
        gens = [loadgen.Kxdpgun(query_file, duration, qps, bed.client_ns, bed.client_if,
                                netns.CLIENT_V4, mac, first_cpu(args.loadgen_cpu), nice=args.nice)
                for qps in (rates or [args.xdp_qps])]

        def probe(addr):
            with netns.Inside(bed.client_ns):
                return peers.soa_answered(addr)

        def run_once(kind, rnd, gen):
            # The previous server's XDP program may still be attached.
            netns.sh("ip", "link", "set", "dev", bed.server_if, "xdp", "off", ns=bed.server_ns,
                     check=False)
            if kind == "tandem-xdp":
                srv = peers.tandem_xdp(tmp, zone_file, args.tandemd, bed, netns.SERVER_V4,
                                       worker_cpu=first_cpu(args.server_cpu),
                                       main_cpu=first_cpu(args.loadgen_cpu), nice=args.nice)
            else:
                srv = peers.knot_xdp(tmp, zone_file, bed, netns.SERVER_V4, args.server_cpu,
                                     nice=args.nice)
            try:
                srv.start()
                srv.ready(args.start_timeout, probe=probe)
                if kind == "knot-xdp":     # tandem's main lcore is on the other CPU by design
                    check_pinning(srv, args.server_cpu, notes)
                out = os.path.join(tmp, "kxdpgun-%s-%d-%d.out" % (kind, rnd, gen.qps))
                dropped0 = veth_rx_dropped(bed)
                r = measured(srv, lambda: gen.run(netns.SERVER_V4, out))
                dropped1 = veth_rx_dropped(bed)
                if dropped0 is not None and dropped1 is not None:
                    r["veth_dropped"] = dropped1 - dropped0
                if kind == "tandem-xdp":
                    r["tandem_counters"] = tandem_counters(args.tandemd, srv.workdir)
                return r
            finally:
                srv.stop()

        for rnd in range(args.rounds):
            for step, gen in enumerate(gens):
                for kind in rotated(kinds, rnd + step):
                    what = "xdp round %d %-10s" % (rnd + 1, kind)
                    if rates:
                        what += " at %7d/s" % gen.qps
                    r = undisturbed(args, what, lambda: run_once(kind, rnd, gen))
                    r["round"] = rnd
                    r["offered"] = gen.qps
                    runs[kind].append(r)
                    log_xdp_run(what, r)
    result = {"runs": runs, "kxdpgun": " ".join(gens[-1].argv(netns.SERVER_V4)),
              "notes": list(notes.values())}
    if rates:
        result["rates"] = list(rates)
    return result


def log_xdp_run(what, r):
    log("%s sent %8d/s, %8d replies/s, %5.1f%% answered; server CPU %s, waiting %s; "
        "kxdpgun CPU %s, waiting %s; %s; others %.0f%%; load %.1f; %s"
        % (what, r["sent_pps"], r["replies_pps"], 100 * r["answered"],
           pct(r["cpu_share"]), pct(r["wait_share"]), pct(r["gen_cpu_share"]),
           pct(r["gen_wait_share"]), busy_text(r["cpus"]), 100 * r["others"],
           r["loadavg"], cross_core_text(r)))
    if "veth_dropped" in r:
        log("%s: the server's veth dropped %d queries (its XDP socket's ring was full)"
            % (what, r["veth_dropped"]))
    if r.get("tandem_counters"):
        c = r["tandem_counters"]
        log("%s of %d queries sent: port received %d, missed %d; worker received %d, "
            "sent %d, could not send %d" % (what, r["sent"], c["port_rx"],
                                            c["port_missed"], c["worker_rx"],
                                            c["worker_tx"], c["worker_tx_dropped"]))


def memory_section(args, tmp, zone_file):
    kinds, missing = available(list(args.servers))
    runs = {k: [] for k in kinds}
    for rnd in range(args.rounds):
        for kind in rotated(kinds, rnd):
            srv = peers.socket_server(kind, tmp, zone_file, args.tandemd, cpus=args.server_cpu,
                                      nice=args.nice)
            try:
                srv.start()
                load_s = srv.ready(args.load_timeout)
                time.sleep(args.settle)       # NSD forks its server process after loading
                pss = srv.pss_kib()
                nproc = len(srv.pids())
            finally:
                srv.stop()
            runs[kind].append({"round": rnd, "load_seconds": load_s, "pss_kib": pss, "processes": nproc})
            log("memory round %d %-6s load %6.2f s, Pss %7.1f MiB (%d processes)"
                % (rnd + 1, kind, load_s, pss / 1024.0, nproc))
    return {"runs": runs, "missing": missing}


def machine():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), cpu)
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / float(1 << 30)
    return {"nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
            "memory_gib": round(mem_gib, 1), "loadavg_start": os.getloadavg()}


def versions(tandemd):
    def first_line(argv):
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            return ((r.stdout or r.stderr).strip().splitlines() or ["?"])[0]
        except (OSError, subprocess.TimeoutExpired):
            return "not installed"

    repo = os.path.join(HERE, "..")
    rev = first_line(["git", "-C", repo, "describe", "--always", "--dirty"])
    return {"tandem": "%s (git %s)" % (tandemd, rev), "knotd": first_line(["knotd", "-V"]),
            "nsd": first_line(["nsd", "-v"]), "named": first_line(["named", "-v"]),
            "dnsperf": _dnsperf_version(),
            "kxdpgun": first_line(["kxdpgun", "-V"])}


def _dnsperf_version():
    try:
        r = subprocess.run(["dnsperf", "-h"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    for line in (r.stdout + r.stderr).splitlines():
        if line.startswith("Version"):
            return "dnsperf " + line.split()[-1]
    return "dnsperf"


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tandemd", help="the tandemd binary (a release build)")
    ap.add_argument("--from-json", metavar="FILE",
                    help="print the report of an earlier run's --json FILE, run nothing")
    ap.add_argument("--only", default=",".join(SECTIONS),
                    help="sections: socket,xdp,xdp-rates,memory")
    ap.add_argument("--rounds", type=int, default=3, help="rounds over the servers (median)")
    ap.add_argument("--quick", action="store_true",
                    help="1 round, 3 s runs, small zones: a check that everything runs (< 2 min)")
    ap.add_argument("--servers", default=",".join(peers.KINDS),
                    help="which of tandem,knot,nsd,bind (the xdp sections: tandem and knot)")
    ap.add_argument("--zone-names", type=int, default=100000, help="hosts in the socket and xdp zone")
    ap.add_argument("--memory-names", type=int, default=1000000, help="hosts in the memory zone")
    ap.add_argument("--queries", type=int, default=200000, help="lines of the query file")
    ap.add_argument("--duration", type=int, default=10, help="seconds of dnsperf per run")
    ap.add_argument("--warmup", type=float, default=1, help="seconds of dnsperf before each run")
    ap.add_argument("--dnsperf-clients", type=int, default=4, help="dnsperf -c")
    ap.add_argument("--dnsperf-threads", type=int, default=1, help="dnsperf -T")
    ap.add_argument("--dnsperf-outstanding", type=int, default=100, help="dnsperf -q")
    ap.add_argument("--dnsperf-procs", type=int, default=1, help="dnsperf processes side by side")
    ap.add_argument("--udp-coalesce-us", type=int, default=None,
                    help="socket section: tandem's [server] udp_coalesce_us (default: its own, 50)")
    ap.add_argument("--xdp-duration", type=int, default=10, help="seconds of kxdpgun per run")
    ap.add_argument("--xdp-qps", type=int, default=1000000, help="kxdpgun -Q (offered rate)")
    ap.add_argument("--xdp-rates", default=",".join(str(r) for r in range(250000, 700001, 50000)),
                    help="xdp-rates section: the offered rates (kxdpgun -Q), comma-separated")
    ap.add_argument("--xdp-rate-duration", type=int, default=5,
                    help="xdp-rates section: seconds of kxdpgun per rate")
    ap.add_argument("--server-cpu", default="0",
                    help="the CPU every server is pinned to (0: Knot DNS binds its UDP worker to "
                         "CPU 0 whatever it was started on)")
    ap.add_argument("--loadgen-cpu", default="1", help="the CPU the load generators are pinned to")
    ap.add_argument("--nice", type=int, default=-10 if os.geteuid() == 0 else 0,
                    help="niceness of servers and load generators (default -10 as root: other "
                         "work on the machine then takes little of their cores; 0 to turn off)")
    ap.add_argument("--start-timeout", type=float, default=60, help="seconds for a server to answer")
    ap.add_argument("--load-timeout", type=float, default=600, help="memory section: seconds to load")
    ap.add_argument("--settle", type=float, default=1.0, help="memory section: seconds before Pss")
    ap.add_argument("--max-others", type=float, default=0.75,
                    help="a run during which other processes took more than this many cores' "
                         "worth of time is run again (approximate: kernel work not charged to "
                         "the server or the generator, e.g. the veth's, counts as others)")
    ap.add_argument("--retries", type=int, default=2,
                    help="a disturbed run is done again at most this many times")
    ap.add_argument("--loopback-rps", action="store_true",
                    help="socket section: steer loopback's receive processing to the load "
                         "generator's CPU (RPS on lo, restored after), so that a server's CPU "
                         "time leaves out delivering its replies into dnsperf's socket (root)")
    ap.add_argument("--core-pingpong", metavar="PATH",
                    help="bench/core_pingpong, run before and after every run (default: beside "
                         "--tandemd's build, else build-bench's)")
    ap.add_argument("--json", help="write the raw numbers to this file")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args(argv)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    for s in args.only:
        if s not in SECTIONS:
            ap.error("--only: unknown section %r (socket, xdp, xdp-rates, memory)" % s)
    for s in args.servers:
        if s not in peers.KINDS:
            ap.error("--servers: unknown server %r (tandem, knot, nsd, bind)" % s)
    if "tandem" not in args.servers:
        args.servers.insert(0, "tandem")
    try:
        args.xdp_rates = sorted({int(r) for r in args.xdp_rates.split(",") if r.strip()})
    except ValueError:
        ap.error("--xdp-rates: %r is not a comma-separated list of queries per second"
                 % args.xdp_rates)
    if not args.xdp_rates or args.xdp_rates[0] <= 0:
        ap.error("--xdp-rates: give at least one rate above 0")
    if args.quick:
        args.rounds = 1
        args.duration = min(args.duration, 3)
        args.xdp_duration = min(args.xdp_duration, 3)
        args.xdp_rate_duration = min(args.xdp_rate_duration, 2)
        args.xdp_rates = sorted({args.xdp_rates[0], args.xdp_rates[-1]})
        args.warmup = 0
        args.zone_names = min(args.zone_names, 10000)
        args.memory_names = min(args.memory_names, 100000)
        args.queries = min(args.queries, 20000)
        args.settle = min(args.settle, 0.5)
        args.retries = min(args.retries, 1)
    if args.from_json:
        return args
    if not args.tandemd:
        ap.error("--tandemd is required")
    args.tandemd = os.path.abspath(args.tandemd)
    if not os.access(args.tandemd, os.X_OK):
        ap.error("--tandemd %s: not an executable" % args.tandemd)
    return args


def main(argv):
    args = parse_args(argv)
    if args.from_json:
        try:
            with open(args.from_json) as f:
                doc = json.load(f)
            text = report.markdown(doc)
        except OSError as e:
            sys.exit("bench-compare: --from-json %s: %s" % (args.from_json, e.strerror))
        except ValueError as e:
            sys.exit("bench-compare: --from-json %s: not JSON: %s" % (args.from_json, e))
        except (KeyError, TypeError, AttributeError) as e:
            sys.exit("bench-compare: --from-json %s: not a run this version can print (%s %s "
                     "missing or of another kind; an older bench-compare wrote it?)"
                     % (args.from_json, type(e).__name__, e))
        print(text)
        return 0
    # Also SIGINT: started in the background by a script, we would inherit it ignored.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _sigterm)
    started = time.monotonic()
    CrossCore.setup(args)
    doc = {"command": os.environ.get("BENCH_COMPARE_COMMAND") or " ".join(sys.argv),
           "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "machine": dict(machine(), cross_core_ns_start=CrossCore.ns()),
           "versions": versions(args.tandemd),
           "settings": {k: v for k, v in vars(args).items() if k != "json"}, "sections": {}}
    tmp = tempfile.mkdtemp(prefix="tandem-bench-compare-")
    try:
        zone_file = os.path.join(tmp, "bench.zone")
        query_file = os.path.join(tmp, "queries.txt")
        if {"socket", "xdp", "xdp-rates"} & set(args.only):
            doc["zone_records"] = workload.write_zone(zone_file, args.zone_names)
            workload.write_queries(query_file, args.zone_names, args.queries)
        for section in SECTIONS:
            if section not in args.only:
                continue
            t0 = time.monotonic()
            if section == "socket":
                if args.loopback_rps:
                    with LoopbackSteering(first_cpu(args.loadgen_cpu)) as steering:
                        res = socket_section(args, tmp, zone_file, query_file)
                    res["loopback_rps"] = steering.mask
                else:
                    res = socket_section(args, tmp, zone_file, query_file)
            elif section == "xdp":
                res = xdp_section(args, tmp, zone_file, query_file)
            elif section == "xdp-rates":
                res = xdp_section(args, tmp, zone_file, query_file, rates=args.xdp_rates)
            else:
                mem_zone = os.path.join(tmp, "memory.zone")
                log("memory: writing a zone of %d hosts" % args.memory_names)
                doc["memory_records"] = workload.write_zone(mem_zone, args.memory_names)
                res = memory_section(args, tmp, mem_zone)
            res["seconds"] = time.monotonic() - t0
            doc["sections"][section] = res
    finally:
        if args.keep:
            log("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    doc["seconds"] = time.monotonic() - started
    doc["machine"]["loadavg_end"] = os.getloadavg()
    doc["machine"]["cross_core_ns_end"] = CrossCore.ns()
    print(report.markdown(doc))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

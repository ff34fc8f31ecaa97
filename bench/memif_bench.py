#!/usr/bin/python3
"""tandemd in dpdk mode with one worker lcore on a net_memif port, under bench/memif_loadgen
as the other end of the link (not a test: it prints what it measured).

  /usr/bin/python3 bench/memif_bench.py --build build [--names 100000] [--duration 10]
      [--rate 0,2e6,4e6] [--runs 3] [--ceiling] [--nice -15] [--json]

  tandemd   lcore 0 (control) on CPU 0, its worker lcore on CPU 1 (--server-lcore); memif
            role=server (--tandem-role); in a network namespace of its own, so that its
            exception interface and the address on it touch nothing on the host
  loadgen   one lcore on CPU 0 (--loadgen-lcore); memif role=client; static MACs (tandem
            answers frames sent to its port's MAC, so nobody needs ARP)

The zone is bench/answer_bench.cc's: --names hosts hN.bench.test with an A record, every
4th with AAAA, a wildcard, a CNAME, a delegation, a TXT. The load generator sends the same
mix as answer_bench (about 75% existing A/AAAA, 10% NXDOMAIN, the rest wildcard, CNAME,
referral, TXT) as fast as the link takes (--rate 0) or paced, checks every reply (id,
question, rcode, empty answer or not) and reports sent, received, correct, wrong and lost
(sent - received after a drain), the average rate and the best one-second rate.

--ceiling also measures the load generator itself, without tandemd, against a macswap
forwarder on the other core: its own (memif_loadgen --mode reflect) and, when installed
(Debian package dpdk-dev), dpdk-testpmd --forward-mode=macswap. Their runs alternate with
tandemd's, and they take tandemd's side of the link as it is set up: its memif role
(--tandem-role) and, with --zero-copy, as zero-copy clients (zero-copy=yes, one memory file
the load generator maps: --single-file-segments).

The link's speed depends on how fast the two cores pass cache lines, which on a shared VM
changes when the host moves its vCPUs: here the same reflector carries about 21 M frames a
second with the two near each other and 7-8 M with them far apart, and the host moves them
within seconds. So bench/core_pingpong (when built) measures the cross-core round trip
before every run (before its peer starts: a polling peer would share the CPU with it, so
this is up to the peer's start-up time, a few seconds, ahead of the run) and just after
it; each row shows the two figures, and the last lines give each peer's median answered
rate over its runs that began and ended near (at most crosscore.FAR_NS), far, or changed
between.

Each run has a new peer process. DPDK 22.11's memif can segfault an lcore polling a link
whose peer disconnects, so the load generator stays connected, idle, after its report
(--linger) until the peer (tandemd, which stops its lcores before its port) has exited.

Every process is stopped by pid; the namespace, the memif sockets, DPDK's runtime files and
the temporary directory are removed at the end. Exit status 0 when no reply was wrong and
no peer crashed, 1 otherwise, 2 when the setup failed.
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from procs import stop_process as stop  # noqa: E402  (SIGTERM by pid, then SIGKILL)
import crosscore  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TANDEM_MAC = "02:00:00:00:00:01"
LOADGEN_MAC = "02:00:00:00:00:02"
TANDEM_IP = "198.18.0.1"
LOADGEN_IP = "198.18.0.2"


class SetupError(RuntimeError):
    pass


def zone_text(names):
    """The zone of bench/answer_bench.cc (MakeZoneText)."""
    lines = ["$ORIGIN bench.test.", "$TTL 300", "@ SOA ns1 hostmaster 1 7200 900 1209600 300",
             "@ NS ns1", "ns1 A 192.0.2.1", "*.wild A 192.0.2.2", "alias CNAME h1",
             "sub NS ns.sub", "ns.sub A 192.0.2.3", 'txt TXT "hello world"']
    for i in range(names):
        lines.append("h%d A 10.%d.%d.%d" % (i, (i >> 16) & 255, (i >> 8) & 255, i & 255))
        if i % 4 == 0:
            lines.append("h%d AAAA 2001:db8::%x:%x" % (i, i >> 16, i & 0xffff))
    return "\n".join(lines) + "\n"


def memif_vdev(role, socket_path, mac, extra=""):
    return ("--vdev=net_memif0,role=%s,socket=%s,socket-abstract=no,mac=%s%s"
            % (role, socket_path, mac, "," + extra if extra else ""))


def eal_args(lcores, prefix, vdev, mem=256):
    return ["-l", lcores, "--no-huge", "-m", str(mem), "--no-pci", "--file-prefix=" + prefix,
            "--log-level=warning", vdev]


def tail(path, n=1500):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-n:]
    except OSError:
        return ""


class Bench:
    def __init__(self, args):
        self.args = args
        self.tag = "%d" % os.getpid()
        self.tmp = tempfile.mkdtemp(prefix="tandem-memif-")
        self.netns = "tmemif%s" % self.tag
        self.prefixes = []
        self.procs = []
        self.sockets = []
        self.netns_made = False
        self.rows = []
        self.crashes = []
        self.forwarder_role = args.tandem_role  # the ceiling's link is set up as tandemd's

    def cross_core(self):
        """bench/core_pingpong between the two CPUs of a run, when it is built."""
        a = self.args
        return crosscore.measure(a.core_pingpong, a.server_lcore, a.loadgen_lcore, a.nice)

    # --- processes ---------------------------------------------------------------------

    def spawn(self, name, argv, stdin=subprocess.DEVNULL):
        if self.args.nice:
            argv = ["nice", "-n", str(self.args.nice)] + argv
        out = open(os.path.join(self.tmp, name + ".out"), "w")
        err = open(os.path.join(self.tmp, name + ".err"), "w")
        p = subprocess.Popen(argv, stdin=stdin, stdout=out, stderr=err, start_new_session=True)
        p.name, p.out_path, p.err_path = name, out.name, err.name
        out.close()
        err.close()
        self.procs.append(p)
        if self.args.nice:
            # Each process leads a session of its own, so the scheduler puts it in an
            # autogroup of its own, where its nice value counts for nothing against other
            # sessions: give the group the same nice value.
            try:
                with open("/proc/%d/autogroup" % p.pid, "w") as f:
                    f.write(str(self.args.nice))
            except OSError:
                pass
        return p

    def prefix(self, name):
        p = "tmemif-%s-%s" % (self.tag, name)
        self.prefixes.append(p)
        return p

    def socket_path(self, name):
        path = os.path.join(self.tmp, name + ".sock")
        self.sockets.append(path)
        return path

    def wait_socket(self, path, server, timeout=60.0):
        deadline = time.monotonic() + timeout
        while not os.path.exists(path):
            if server.poll() is not None:
                raise SetupError("%s exited with %s before listening on %s:\n%s"
                                 % (server.name, server.returncode, path, tail(server.err_path)))
            if time.monotonic() > deadline:
                raise SetupError("%s did not create %s in %.0f s" % (server.name, path, timeout))
            time.sleep(0.05)

    # --- the load generator ----------------------------------------------------------------

    def spawn_loadgen(self, name, socket_path, mode, rate, role):
        a = self.args
        vdev = memif_vdev(role, socket_path, LOADGEN_MAC, a.memif_devargs)
        argv = ([a.loadgen] + eal_args(str(a.loadgen_lcore), self.prefix(name), vdev)
                + ["--", "--mode", mode, "--names", str(a.names), "--duration", str(a.duration),
                   "--rate", "%d" % rate, "--dst-mac", TANDEM_MAC, "--src-ip", LOADGEN_IP,
                   "--dst-ip", TANDEM_IP, "--wait", str(a.wait), "--linger", "--json"]
                + a.loadgen_args)
        if a.count:
            argv += ["--count", str(a.count)]
        if role == "server":
            argv.append("--listening")
        return self.spawn(name, argv)

    def wait_result(self, lg):
        """The JSON line the load generator prints before it lingers."""
        deadline = time.monotonic() + self.args.duration + self.args.wait + 60
        while time.monotonic() < deadline:
            exited = lg.poll() is not None
            with open(lg.out_path) as f:
                lines = [l for l in f.read().splitlines() if l.startswith("{")]
            if lines:
                return json.loads(lines[-1])
            if exited:
                raise SetupError("%s (exit %s) printed no result:\n%s"
                                 % (lg.name, lg.returncode, tail(lg.err_path)))
            time.sleep(0.1)
        raise SetupError("%s did not finish:\n%s" % (lg.name, tail(lg.err_path)))

    def run(self, name, start_peer, peer_role, mode, rate, stats=None):
        """One run: a new peer (started by start_peer(socket)) and a new load generator on
        a new memif socket; returns the load generator's result and stats() of the peer."""
        sock = self.socket_path(name)
        peer = lg = None
        cross = [self.cross_core()]
        try:
            if peer_role == "server":
                peer = start_peer(sock)
                self.wait_socket(sock, peer)
                lg = self.spawn_loadgen("loadgen-" + name, sock, mode, rate, "client")
            else:
                lg = self.spawn_loadgen("loadgen-" + name, sock, mode, rate, "server")
                self.wait_socket(sock, lg)
                peer = start_peer(sock)
            result = self.wait_result(lg)
            result["cross_core_ns"] = cross
            counters = stats() if stats else {}
            when = "during the run" if peer.poll() is not None else "when stopped"
            # The peer first, while the load generator lingers idle (see the docstring).
            stop(peer)
            if peer.returncode not in (0, -signal.SIGTERM):
                self.crashes.append("%s exited with %s %s:\n%s"
                                    % (peer.name, peer.returncode, when, tail(peer.err_path, 600)))
            return result, counters
        finally:
            stop(peer)
            stop(lg)
            cross.append(self.cross_core())

    # --- the ceiling: the load generator against a forwarder -------------------------------

    def forwarder_eal(self, lcores, prefix, sock, mem=256):
        """A forwarder's EAL arguments: on the memif link in tandemd's role (--tandem-role),
        and as a zero-copy client with --zero-copy, so that the ceiling is measured over the
        same kind of link as tandemd's runs."""
        a = self.args
        vdev = memif_vdev(self.forwarder_role, sock, TANDEM_MAC, a.memif_devargs)
        if a.zero_copy:
            vdev += ",zero-copy=yes"
        eal = eal_args(lcores, prefix, vdev, mem=mem)
        if a.zero_copy:
            eal.append("--single-file-segments")
        return eal

    def ceiling_peers(self):
        """The forwarders the load generator's ceiling is measured against: (name, start)."""
        a = self.args

        def reflector(sock):
            return self.spawn("reflector", [a.loadgen] + self.forwarder_eal(
                str(a.server_lcore), self.prefix("refl%d" % len(self.prefixes)), sock)
                + ["--", "--mode", "reflect"])

        def testpmd(sock):
            # Non-interactive testpmd waits for a key on stdin: keep a pipe open, stop by signal.
            return self.spawn("testpmd", [shutil.which("dpdk-testpmd")] + self.forwarder_eal(
                "%d,%d" % (a.loadgen_lcore, a.server_lcore),
                self.prefix("pmd%d" % len(self.prefixes)), sock, mem=512)
                + ["--", "--forward-mode=macswap", "--auto-start", "--total-num-mbufs=16384",
                   "--nb-cores=1", "--burst=64", "--stats-period=0"], stdin=subprocess.PIPE)

        peers = [("reflector", reflector)]
        if shutil.which("dpdk-testpmd"):
            peers.append(("testpmd-macswap", testpmd))
        else:
            print("dpdk-testpmd not found (package dpdk-dev): ceiling against the reflector only",
                  flush=True)
        return peers

    def measure(self):
        """Every run of every rate; with --ceiling, the forwarders' runs alternate with
        tandemd's (reflector, testpmd, tandemd, reflector, ...), so that neither side's
        runs all fall in one state of the machine (see by_state)."""
        a = self.args
        peers = self.ceiling_peers() if a.ceiling else []
        if not a.no_tandem:
            self.prepare_tandem()
        label = "tandemd" + (" zero-copy" if a.zero_copy else "")
        for rate in a.rates:
            for n in range(a.runs):
                for peer, start in peers:
                    r, _ = self.run("%s-%d-%d" % (peer, rate, n), start, self.forwarder_role,
                                    "echo", rate)
                    self.add_row("ceiling: " + peer, r, {})
                if not a.no_tandem:
                    r, t = self.run("tandem-%d-%d" % (rate, n), self.start_tandem, a.tandem_role,
                                    "dns", rate, self.tandem_stats)
                    self.add_row(label, r, t)

    def by_state(self):
        """Per peer and offered rate: the answered rates of its runs that began and ended
        with the two CPUs near each other, of those far apart at both ends, and of those
        that changed between (crosscore.FAR_NS). The host moves the two vCPUs within
        seconds, so runs are compared state with state rather than one after the other."""
        groups = {}
        for peer, r, _ in self.rows:
            state = crosscore.state(r.get("cross_core_ns"))
            if state is None:
                continue
            groups.setdefault((peer, r["rate"]), {}).setdefault(state, []).append(r["answered_qps"])
        return groups

    # --- tandemd ---------------------------------------------------------------------------

    def prepare_tandem(self):
        """The zone, the state directory and the network namespace, once."""
        self.zone_file = os.path.join(self.tmp, "bench.test.zone")
        with open(self.zone_file, "w") as f:
            f.write(zone_text(self.args.names))
        self.state = os.path.join(self.tmp, "state")
        os.makedirs(self.state, exist_ok=True)
        self.control = os.path.join(self.tmp, "control.sock")
        subprocess.run(["ip", "netns", "add", self.netns], check=True)
        self.netns_made = True
        subprocess.run(["ip", "-n", self.netns, "link", "set", "lo", "up"], check=True)

    def start_tandem(self, socket_path):
        """tandemd on the memif socket, in its namespace, in the role --tandem-role says."""
        a = self.args
        n = len(self.prefixes)
        vdev = memif_vdev(a.tandem_role, socket_path, TANDEM_MAC, a.memif_devargs)
        if a.zero_copy:
            vdev += ",zero-copy=yes"
        eal = eal_args("0-1", self.prefix("tandemd%d" % n), vdev, mem=512)
        if a.zero_copy:
            eal.append("--single-file-segments")
        if a.server_lcore != 1 or a.loadgen_lcore != 0:
            eal[0:2] = ["--lcores", "0@%d,1@%d" % (a.loadgen_lcore, a.server_lcore)]
        conf = os.path.join(self.tmp, "tandemd%d.toml" % n)
        with open(conf, "w") as f:
            f.write('[server]\nmode = "dpdk"\nworkers = 1\nstate_dir = "%s"\n\n' % self.state)
            f.write("[dpdk]\neal_args = [%s]\n" % ", ".join('"%s"' % e for e in eal))
            f.write('address = ["%s/24"]\nexception_iface = "tmx%s"\n\n'
                    % (TANDEM_IP, self.tag[-8:]))
            f.write('[control]\nsocket = "%s"\n\n' % self.control)
            f.write('[[zone]]\nname = "bench.test"\nfile = "%s"\n' % self.zone_file)
        return self.spawn("tandemd%d" % n, ["ip", "netns", "exec", self.netns, a.tandemd,
                                             "--config", conf])

    def tandem_stats(self):
        """tandemd's counters (tandemctl stats), when tandemctl is there."""
        if not self.args.tandemctl:
            return {}
        r = subprocess.run([self.args.tandemctl, "--socket", self.control, "--json", "stats"],
                           capture_output=True, text=True, timeout=10)
        try:
            doc = json.loads(r.stdout) if r.returncode == 0 else {}
        except ValueError:
            return {}
        total = dict(doc.get("total", {}))
        if doc.get("ports"):  # the memif port's own count of frames it had no room for
            total["port_missed"] = sum(p.get("rx_missed", 0) for p in doc["ports"])
        return total

    # --- output ----------------------------------------------------------------------------

    HEADER = ("%-24s %8s %8s %9s %9s %11s %6s %8s %7s  %s"
              % ("peer", "offered", "sent", "answered", "best 1s", "correct", "wrong", "lost",
                 "lost%", "cross-core before / after, tandem rx/tx/tx_dropped/port missed"))

    def add_row(self, peer, r, t):
        self.rows.append((peer, r, t))
        if self.args.json:
            return
        if len(self.rows) == 1:
            print(self.HEADER)
        offered = "max" if not r["rate"] else "%.2fM" % (r["rate"] / 1e6)
        lost_pct = 100.0 * r["lost"] / r["sent"] if r["sent"] else 0.0
        best = max(r.get("answered_qps_by_second") or [r["answered_qps"]])
        tandem = ("%d/%d/%d/%s" % (t.get("rx_packets", 0), t.get("tx_packets", 0),
                                   t.get("tx_dropped", 0), t.get("port_missed", "-"))
                  if t else "")
        print("%-24s %8s %7.2fM %8.2fM %8.2fM %11d %6d %8d %6.3f%%  %s  %s"
              % (peer, offered, r["sent_pps"] / 1e6, r["answered_qps"] / 1e6, best / 1e6,
                 r["correct"], r["wrong"], r["lost"], lost_pct,
                 crosscore.text(r.get("cross_core_ns") or [None, None]), tandem), flush=True)
        if r["wrong"]:
            print("  wrong: id %d, question %d, rcode %d, answer %d, checksum %d, malformed %d"
                  % (r["wrong_id"], r["wrong_question"], r["wrong_rcode"], r["wrong_answer"],
                     r["bad_checksum"], r["malformed"]), flush=True)

    # --- cleanup ---------------------------------------------------------------------------

    def close(self):
        for p in reversed(self.procs):
            stop(p)
        if self.netns_made:
            subprocess.run(["ip", "netns", "del", self.netns], check=False)
        for s in self.sockets:
            try:
                os.unlink(s)
            except OSError:
                pass
        for p in self.prefixes:  # DPDK's runtime directory of each process
            shutil.rmtree(os.path.join("/var/run/dpdk", p), ignore_errors=True)
        if self.args.keep:
            print("kept %s" % self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"),
                    help="build directory holding tandemd, tandemctl and bench/memif_loadgen")
    ap.add_argument("--tandemd")
    ap.add_argument("--tandemctl")
    ap.add_argument("--loadgen")
    ap.add_argument("--names", type=int, default=100000)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds of sending per run")
    ap.add_argument("--count", type=int, default=0, help="queries per run (0: --duration only)")
    ap.add_argument("--rate", default="0", help="offered pps, comma-separated for a sweep; 0: max")
    ap.add_argument("--runs", type=int, default=1, help="runs per rate")
    ap.add_argument("--wait", type=float, default=30.0,
                    help="seconds for the link and a first answer")
    ap.add_argument("--ceiling", action="store_true", help="also measure the load generator alone")
    ap.add_argument("--no-tandem", action="store_true", help="with --ceiling: only the ceiling")
    ap.add_argument("--tandem-role", choices=("server", "client"), default="server",
                    help="tandemd's memif role (with --ceiling, the forwarders' too)")
    ap.add_argument("--zero-copy", action="store_true",
                    help="tandemd as a zero-copy memif client (implies --tandem-role client); "
                         "with --ceiling the forwarders are zero-copy clients too")
    ap.add_argument("--memif-devargs", default="",
                    help="more net_memif devargs for both ends, e.g. rsize=11,bsize=1024")
    ap.add_argument("--server-lcore", type=int, default=1, help="CPU of tandemd's worker")
    ap.add_argument("--loadgen-lcore", type=int, default=0, help="CPU of the load generator")
    ap.add_argument("--loadgen-arg", action="append", default=[], dest="loadgen_args",
                    help="one more memif_loadgen option (repeatable), e.g. --loadgen-arg=--edns")
    ap.add_argument("--nice", type=int, default=0,
                    help="run tandemd and the load generator at this nice value, their "
                         "scheduler autogroups too (e.g. -15 on a machine shared with builds)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    a = ap.parse_args()
    a.tandemd = os.path.abspath(a.tandemd or os.path.join(a.build, "tandemd"))
    a.loadgen = os.path.abspath(a.loadgen or os.path.join(a.build, "bench", "memif_loadgen"))
    ctl = a.tandemctl or os.path.join(a.build, "tandemctl")
    a.tandemctl = os.path.abspath(ctl) if os.path.exists(ctl) else None
    a.core_pingpong = crosscore.find(os.path.join(a.build, "bench", "core_pingpong"))
    a.rates = [int(float(r)) for r in a.rate.split(",")]
    if a.zero_copy:
        a.tandem_role = "client"
    for path in (a.loadgen,) + (() if a.no_tandem else (a.tandemd,)):
        if not os.access(path, os.X_OK):
            ap.error("%s is not an executable (build with -Dbenchmarks=true)" % path)
    return a


def main():
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda s, f: sys.exit("terminated by signal %d" % s))
    bench = Bench(args)
    try:
        bench.measure()
    except SetupError as e:
        print("setup failed: %s" % e, file=sys.stderr)
        return 2
    finally:
        bench.close()
    for c in bench.crashes:
        print("CRASH: " + c, file=sys.stderr)
    groups = bench.by_state()
    if groups and not args.json:
        print("answered/s by the two CPUs' state at the run's start and end (near: a cross-core "
              "round trip of at most %d ns), median (runs):" % crosscore.FAR_NS)
        for (peer, rate), states in groups.items():
            print("  %-34s %s" % (peer + ("" if not rate else " at %.2fM" % (rate / 1e6)),
                                  "; ".join("%s %.2fM (%d)" % (st, statistics.median(v) / 1e6, len(v))
                                            for st in ("near", "changed", "far")
                                            for v in [states.get(st)] if v)))
    if args.json:
        print(json.dumps([{"peer": p, "loadgen": r, "tandem": t} for p, r, t in bench.rows],
                         indent=1))
    return 0 if not bench.crashes and all(r["wrong"] == 0 for _, r, _ in bench.rows) else 1


if __name__ == "__main__":
    sys.exit(main())

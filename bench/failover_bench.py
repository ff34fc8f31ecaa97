#!/usr/bin/python3
"""Failover benchmark (not a test: it prints what it measured). A Knot DNS primary and an
NSD secondary of example.com on loopback, tandemd (socket mode) with both as sources.

  /usr/bin/python3 bench/failover_bench.py --tandemd build/tandemd --tandemctl build/tandemctl

(a) Publish time of a swap: the copy answered is pinned back and forth
    (`tandemctl use example.com secondary` / `primary`); each pin swaps the snapshot. For
    every swap: tandemd's `tandem_snapshot_publish_seconds` (the pointer store and the RCU
    grace period) and the time from the pin command to the new snapshot's publication
    (`tandem_snapshot_published_timestamp_seconds`; includes starting tandemctl), idle.
(b) Queries lost during repeated swaps at full load: dnsperf as fast as it goes (no -Q)
    for --seconds while another loop pins primary / secondary every --swap-every seconds;
    queries sent, lost (must be 0), swaps done (tandem_zone_swaps_total), qps; the publish
    times of those swaps; and the same dnsperf without swaps first, for comparison.

Runs on loopback only; every process is stopped by pid at the end. Exit status 0 when no
query was lost, 1 otherwise, 2 when the setup failed.
"""

import argparse
import os
import platform
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

import procs  # noqa: E402

ZONE = "example.com"


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def summary(values, unit=1e6, name="us"):
    if not values:
        return "no samples"
    return ("n=%d min %.1f median %.1f p90 %.1f p99 %.1f max %.1f %s"
            % (len(values), min(values) * unit, statistics.median(values) * unit, pct(values, 90) * unit,
               pct(values, 99) * unit, max(values) * unit, name))


class Bench:
    def __init__(self, args, tmp):
        self.args = args
        self.tmp = tmp
        self.servers = []
        self.commands = []

    def log(self, msg=""):
        print(msg, flush=True)

    def start(self):
        a = self.args
        zone = os.path.join(self.tmp, "primary.zone")
        procs.write_failover_zone(zone, ZONE, 1)
        self.queries = os.path.join(self.tmp, "queries.txt")
        self.n_queries = procs.write_query_file(self.queries, ZONE)
        nsd_port = procs.free_port()
        self.knot = procs.start_knot_primary(self.tmp, ZONE, zone, name="knot-primary",
                                             notify=["%s@%d" % (procs.LOOPBACK, nsd_port)])
        self.servers.append(self.knot)
        self.nsd = procs.start_nsd_secondary(self.tmp, ZONE, "%s@%d" % (procs.LOOPBACK, self.knot.port),
                                             name="nsd-secondary", port=nsd_port)
        self.servers.append(self.nsd)
        procs.wait_serial(self.nsd, ZONE, 1, timeout=20)
        d = os.path.join(self.tmp, "tandemd")
        os.makedirs(d, exist_ok=True)
        self.sock = os.path.join(d, "control.sock")
        self.metrics = (procs.LOOPBACK, procs.free_port())

        def config(port):
            return procs.failover_tandem_config(
                ZONE, [("primary", "%s:%d" % (procs.LOOPBACK, self.knot.port)),
                       ("secondary", "%s:%d" % (procs.LOOPBACK, self.nsd.port))],
                os.path.join(d, "state"), self.sock, listen=["%s:%d" % (procs.LOOPBACK, port)],
                metrics="%s:%d" % self.metrics, server_extra={"workers": a.workers},
                health={"interval": "500ms", "timeout": "400ms", "fall": 3, "rise": 3,
                        "overload": "250ms", "hold": "2s"})

        self.tandem = procs.start_tandemd_pulled(a.tandemd, self.tmp, ZONE, config, name="tandemd")
        self.servers.insert(0, self.tandem)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            doc = self.ctl("sources", ZONE)
            if all(s.get("serial") == 1 and s.get("state") == "UP" for s in doc.get("sources", [{}])):
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("both sources not UP at serial 1: %s" % doc)
        self.commands.append(("tandemd", "%s --config %s" % (a.tandemd, self.tandem.config)))

    def stop(self):
        for s in self.servers:
            s.stop()

    def ctl(self, *args):
        return procs.tandemctl_json(self.args.tandemctl, self.sock, *args)

    def scrape(self):
        text = procs.scrape_metrics(self.metrics)
        return {
            "publish": procs.metric_value(text, "tandem_snapshot_publish_seconds"),
            "published": procs.metric_value(text, "tandem_snapshot_published_timestamp_seconds"),
            "swaps": procs.metric_value(text, "tandem_zone_swaps_total"),
        }

    def pin(self, source):
        r = procs.run_tandemctl(self.args.tandemctl, self.sock, "use", ZONE, source, timeout=10)
        return r.returncode == 0

    def pin_and_wait(self, source, before):
        """Pins `source`; waits (bounded) until a snapshot newer than `before` is published.
        Returns (publish seconds, seconds from the command to the publication) or None."""
        t0 = time.time()
        if not self.pin(source):
            return None
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            m = self.scrape()
            if m["published"] and m["published"] > before:
                return m["publish"], m["published"] - t0, m["published"]
            time.sleep(0.002)
        return None

    def publish_idle(self, n):
        self.log("(a) publish time of a swap, idle: %d pins alternating secondary / primary" % n)
        self.commands.append(("pin", "%s --socket %s use %s secondary|primary"
                              % (self.args.tandemctl, self.sock, ZONE)))
        publish, latency = [], []
        before = self.scrape()["published"] or 0
        swaps0 = self.scrape()["swaps"] or 0
        for i in range(n):
            r = self.pin_and_wait("secondary" if i % 2 == 0 else "primary", before)
            if r is None:
                self.log("  pin %d: no publication seen within 2 s" % i)
                continue
            publish.append(r[0])
            latency.append(r[1])
            before = r[2]
        self.pin("auto")
        swaps = (self.scrape()["swaps"] or 0) - swaps0
        self.log("  swaps counted by tandemd: %d" % swaps)
        self.log("  tandem_snapshot_publish_seconds (pointer store + RCU grace period): %s" % summary(publish))
        self.log("  pin command -> snapshot published (includes starting tandemctl): %s"
                 % summary(latency, 1e3, "ms"))
        return publish

    def dnsperf(self, seconds, name):
        argv = procs.dnsperf_argv(procs.LOOPBACK, self.tandem.port, self.queries, seconds, qps=None,
                                  n_queries=self.n_queries, clients=self.args.clients, timeout=2)
        argv += ["-q", str(self.args.outstanding)]
        return procs.Dnsperf(argv, os.path.join(self.tmp, name + ".out"))

    def load(self, seconds, swap_every, baseline):
        results = {}
        if baseline:
            self.log("(b0) dnsperf at full speed for %d s, no swaps" % seconds)
            perf = self.dnsperf(seconds, "dnsperf-baseline")
            self.commands.append(("dnsperf (baseline)", " ".join(perf.argv)))
            perf.start()
            r = perf.wait()
            self.log("  sent %s, completed %s, lost %s, %.0f qps, rcodes %s"
                     % (r["sent"], r["completed"], r["lost"], r["qps"] or 0, r["rcodes"]))
            results["baseline"] = r
        self.log("(b) dnsperf at full speed for %d s, the copy pinned primary / secondary every %.0f ms"
                 % (seconds, swap_every * 1000))
        perf = self.dnsperf(seconds, "dnsperf-swaps")
        self.commands.append(("dnsperf (swaps)", " ".join(perf.argv)))
        swaps0 = self.scrape()["swaps"] or 0
        stop = threading.Event()
        pins = {"ok": 0, "failed": 0, "publish": []}

        def swapper():
            i = 0
            last_pub = self.scrape()["published"] or 0
            next_t = time.monotonic()
            while not stop.is_set():
                if self.pin("primary" if i % 2 else "secondary"):
                    pins["ok"] += 1
                else:
                    pins["failed"] += 1
                i += 1
                m = self.scrape()
                if m["published"] and m["published"] > last_pub:
                    pins["publish"].append(m["publish"])
                    last_pub = m["published"]
                next_t += swap_every
                stop.wait(max(0.0, next_t - time.monotonic()))

        perf.start()
        time.sleep(0.5)        # dnsperf is up to speed before the swaps start
        th = threading.Thread(target=swapper, daemon=True)
        th.start()
        try:
            r = perf.wait()
        finally:
            stop.set()
            th.join(timeout=15)
        self.pin("auto")
        swaps = (self.scrape()["swaps"] or 0) - swaps0
        self.log("  sent %s, completed %s, lost %s, %.0f qps, rcodes %s"
                 % (r["sent"], r["completed"], r["lost"], r["qps"] or 0, r["rcodes"]))
        self.log("  pins: %d ok, %d failed; swaps counted by tandemd: %d (%.1f per second)"
                 % (pins["ok"], pins["failed"], swaps, swaps / float(seconds)))
        self.log("  tandem_snapshot_publish_seconds under load (sampled after each pin): %s"
                 % summary(pins["publish"]))
        results["swaps"] = r
        results["swap_count"] = swaps
        return results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tandemd", required=True)
    ap.add_argument("--tandemctl", required=True)
    ap.add_argument("--pins", type=int, default=40, help="pins for (a)")
    ap.add_argument("--seconds", type=int, default=20, help="dnsperf duration for (b)")
    ap.add_argument("--swap-every", type=float, default=0.1, help="seconds between pins in (b)")
    ap.add_argument("--workers", type=int, default=1, help="tandemd UDP workers")
    ap.add_argument("--clients", type=int, default=4, help="dnsperf -c")
    ap.add_argument("--outstanding", type=int, default=100, help="dnsperf -q")
    ap.add_argument("--no-baseline", action="store_true", help="skip the run without swaps")
    args = ap.parse_args()
    args.tandemd = os.path.abspath(args.tandemd)
    args.tandemctl = os.path.abspath(args.tandemctl)
    procs.stop_on_sigterm()

    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass
    print("machine: nproc %d, %s, Linux %s; knotd, NSD and dnsperf on the same host; "
          "load average %.2f %.2f %.2f" % ((os.cpu_count(), cpu or "cpu unknown", platform.release())
                                           + os.getloadavg()), flush=True)
    with procs.TempDir(prefix="tandem-failover-bench-") as tmp:
        b = Bench(args, tmp)
        try:
            try:
                b.start()
            except Exception as e:  # noqa: BLE001
                print("setup failed: %s" % e)
                for s in b.servers:
                    print("---- %s stderr ----\n%s" % (s.name, s.stderr_text(3000)))
                return 2
            b.log("tandemd pid %d on %s:%d (workers %d), knotd pid %d port %d, nsd pid %d port %d"
                  % (b.tandem.proc.pid, procs.LOOPBACK, b.tandem.port, args.workers, b.knot.proc.pid,
                     b.knot.port, b.nsd.proc.pid, b.nsd.port))
            b.publish_idle(args.pins)
            res = b.load(args.seconds, args.swap_every, not args.no_baseline)
        finally:
            b.stop()
        b.log("load average at the end: %.2f %.2f %.2f" % os.getloadavg())
        b.log("commands:")
        for what, cmd in b.commands:
            b.log("  %s: %s" % (what, cmd))
        r = res["swaps"]
        ok = r["exit"] == 0 and r["lost"] == 0 and r["sent"]
        b.log("result: %s queries sent, %s lost, %d swaps, %.0f qps%s"
              % (r["sent"], r["lost"], res["swap_count"], r["qps"] or 0,
                 (" (without swaps: %.0f qps)" % (res["baseline"]["qps"] or 0)) if "baseline" in res else ""))
        if not ok:
            b.log("LOST QUERIES (or dnsperf failed):\n" + r["text"][-2000:])
            return 1
        return 0


if __name__ == "__main__":
    sys.exit(main())

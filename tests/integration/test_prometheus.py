#!/usr/bin/python3
"""tandemd's metrics as a real Prometheus server sees them.

    /usr/bin/python3 tests/integration/test_prometheus.py --tandemd build/tandemd

tandemd serves one zone with [metrics] listen on a free loopback port; a Prometheus
server (Debian `prometheus`) scrapes it every second. After some UDP queries:

(a) tandemd's own /metrics answers in the Prometheus text format, with the zone's serial.
(b) Prometheus's API returns tandem_zone_serial{zone="example.com."} = the zone's serial
    and up{job="tandem"} = 1 (polled for at most 60 s).
(c) Prometheus's tandem_queries_total{transport="udp"} reaches the count tandemd reports
    after the queries, and that count covers every query sent.

Only 127.0.0.1 is used; every process started here is stopped by pid in a finally block,
and the temporary directory is removed. Exit status: 0 when every check passes, 1 when one
fails, 2 when the test could not run, 77 (skipped) when prometheus is not installed.
"""

import argparse
import json
import os
import shutil
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dns.rcode      # noqa: E402
import dns.rdatatype  # noqa: E402

import procs  # noqa: E402
from procs import Failure, expect  # noqa: E402

ZONE = "example.com"
SERIAL = 2024050501
QUERIES = 25
DEADLINE = 60.0   # seconds for Prometheus to show a scraped value


def http_get(url, timeout=2.0):
    """The body of a GET as text; raises OSError on failure."""
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode("utf-8", "replace")


def text_sample(text, series):
    """The value of the line `SERIES VALUE` in Prometheus text, or None."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return None


# ---------------------------------------------------------------------------------------
# The processes.

class Env:
    def __init__(self, args, workdir):
        self.args = args
        self.workdir = workdir
        self.tandemd = None
        self.prometheus = None
        self.metrics_port = None

    def start_tandemd(self):
        zone_file = os.path.join(self.workdir, "example.com.zone")
        procs.write_zone(zone_file, ZONE, SERIAL)

        def config(port):
            # A fresh metrics port with every attempt, in case the last one was taken.
            self.metrics_port = procs.free_port()
            return (procs.tandem_config_zones(port, [(ZONE, zone_file)],
                                              state_dir=os.path.join(self.workdir, "state"))
                    + '\n[metrics]\nlisten = "%s:%d"\n' % (procs.LOOPBACK, self.metrics_port))

        self.tandemd = procs.start_tandemd_with(self.args.tandemd, self.workdir, ZONE, config)

    @property
    def metrics_url(self):
        return "http://%s:%d/metrics" % (procs.LOOPBACK, self.metrics_port)

    def start_prometheus(self, attempts=3):
        """Prometheus scraping tandemd every second; waits until it is ready."""
        for _ in range(attempts):
            self.prometheus = self._prometheus(procs.free_port()).start()
            if self._wait_ready(timeout=30.0):
                return
            self.prometheus.stop()   # maybe lost a port race: another port
        raise procs.ServerError("prometheus did not become ready; stderr:\n%s"
                                % self.prometheus.stderr_text())

    def _prometheus(self, port):
        d = os.path.join(self.workdir, "prometheus-%d" % port)
        os.makedirs(d)
        conf = os.path.join(d, "prometheus.yml")
        with open(conf, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: tandem\n    static_configs:\n"
                    "      - targets: ['%s:%d']\n" % (procs.LOOPBACK, self.metrics_port))
        argv = [self.args.prometheus, "--config.file=" + conf,
                "--storage.tsdb.path=" + os.path.join(d, "data"),
                "--web.listen-address=%s:%d" % (procs.LOOPBACK, port)]
        return procs.Server("prometheus", argv, d, port)

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.prometheus.alive():
            try:
                http_get("http://%s:%d/-/ready" % self.prometheus.addr, timeout=1.0)
                return True
            except OSError:
                time.sleep(0.2)
        return False

    def stop(self):
        for server in (self.prometheus, self.tandemd):
            if server is not None:
                server.stop()

    # Prometheus's HTTP API.

    def query(self, expr):
        """The instant vector of `expr`: [(labels, value)]."""
        host, port = self.prometheus.addr
        url = "http://%s:%d/api/v1/query?%s" % (host, port, urllib.parse.urlencode({"query": expr}))
        body = json.loads(http_get(url))
        if body.get("status") != "success":
            raise Failure("query %s: %s" % (expr, body))
        return [(r["metric"], float(r["value"][1])) for r in body["data"]["result"]]

    def wait_value(self, expr, want, log):
        """Polls `expr` until one sample equals `want`, for at most DEADLINE seconds."""
        deadline = time.monotonic() + DEADLINE
        last = "no answer"
        while time.monotonic() < deadline:
            expect(self.tandemd.alive(), "tandemd exited", self.tandemd.stderr_text())
            expect(self.prometheus.alive(), "prometheus exited", self.prometheus.stderr_text())
            try:
                last = self.query(expr)
                if any(value == want for _, value in last):
                    log("      %s = %s" % (expr, want))
                    return last
            except (OSError, ValueError, KeyError) as e:
                last = "%s: %s" % (type(e).__name__, e)
            time.sleep(0.5)
        raise Failure("%s did not reach %s within %.0f s (last: %s)" % (expr, want, DEADLINE, last))


# ---------------------------------------------------------------------------------------
# The checks.

def send_queries(env):
    answered = 0
    for i in range(QUERIES):
        name = "www.%s" % ZONE if i % 2 == 0 else "missing.%s" % ZONE
        r = procs.udp_query(env.tandemd.addr, name, dns.rdatatype.A)
        answered += r.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN)
    expect(answered == QUERIES, "%d of %d queries answered" % (answered, QUERIES))


def check_endpoint(env, log):
    text = http_get(env.metrics_url)
    series = 'tandem_zone_serial{zone="%s."}' % ZONE
    expect(text_sample(text, series) == SERIAL, "%s is not %d in /metrics" % (series, SERIAL), text)
    expect("# TYPE tandem_queries_total counter" in text, "no counter type for tandem_queries_total", text)


def check_serial(env, log):
    result = env.wait_value("tandem_zone_serial", SERIAL, log)
    zones = [labels.get("zone") for labels, _ in result]
    expect(zones == ["%s." % ZONE], "zone labels %s" % zones, result)
    env.wait_value('up{job="tandem"}', 1, log)


def check_queries(env, log):
    udp = 'tandem_queries_total{transport="udp"}'
    count = text_sample(http_get(env.metrics_url), udp)
    # The readiness probes of procs.start_tandemd_with count too.
    expect(count is not None and count >= QUERIES, "tandemd counts %s UDP queries, sent %d" % (count, QUERIES))
    env.wait_value(udp, count, log)
    nxdomain = env.wait_value('tandem_responses_total{rcode="NXDOMAIN"}', QUERIES // 2, log)
    expect(len(nxdomain) == 1, "one NXDOMAIN series", nxdomain)


def run_checks(env, log):
    failed = 0
    for name, check in (("(a) tandemd serves /metrics", check_endpoint),
                        ("(b) Prometheus has the zone serial", check_serial),
                        ("(c) Prometheus has the query count", check_queries)):
        try:
            check(env, log)
            log("ok    %s" % name)
        except Exception as e:  # noqa: BLE001 - reported, then the next check runs
            failed += 1
            log("FAIL  %s: %s: %s" % (name, type(e).__name__, e))
    return failed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tandemd", required=True)
    ap.add_argument("--prometheus", default="prometheus")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    procs.stop_on_sigterm()
    if shutil.which(args.prometheus) is None:
        print("prometheus is not installed (apt-get install prometheus): skipped")
        return 77

    def log(msg):
        print(msg, flush=True)

    with procs.TempDir(prefix="tandem-prom-", keep=args.keep) as workdir:
        env = Env(args, workdir)
        try:
            env.start_tandemd()
            send_queries(env)
            env.start_prometheus()
            failed = run_checks(env, log)
        except (procs.ServerError, Failure) as e:
            log("could not run: %s" % e)
            return 2
        finally:
            env.stop()
    log("prometheus: %s" % ("all checks passed" if failed == 0 else "%d checks failed" % failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

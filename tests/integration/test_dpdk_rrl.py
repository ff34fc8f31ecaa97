#!/usr/bin/python3
"""Response rate limiting on the poll-mode path: one tandemd in dpdk mode on a veth
(net_af_packet; net_af_xdp with --vdev af_xdp) with [rrl], bursts of UDP queries from a
client network namespace, every answer classified as in test_rrl.py (whole, slipped with TC,
dropped) and checked against the rate and slip; another address in the client's /24 shares
its allowance, an address in another /24 has its own, the allowance comes back after a
second; the counts the clients saw equal rrl_dropped and rrl_slipped in tandemctl stats and
tandem_rrl_responses_total in /metrics. Needs root (network namespaces).

    /usr/bin/python3 tests/integration/test_dpdk_rrl.py --tandemd build/tandemd \
        --tandemctl build/tandemctl

Exit status: 0 when every check passes, 1 when one fails, 2 when the test could not run,
77 when skipped (not root, or af_xdp not usable here).
"""

import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import netns  # noqa: E402
import procs  # noqa: E402
import test_dpdk  # noqa: E402
import test_rrl  # noqa: E402
from test_rrl import RATE, SLIP, Failure, burst, check_limited, expect  # noqa: E402

ZONE = test_rrl.ZONE
METRICS_PORT = 9153        # in the server namespace the test makes, so free
SAME_PREFIX_V4 = "198.18.0.3"   # another client address in CLIENT_V4's /24
OTHER_PREFIX_V4 = "198.18.1.2"  # a client address in another /24


def rrl_config(tmp, bed, zone_file, vdev):
    return (test_dpdk.tandem_dpdk_config(tmp, bed, ZONE, zone_file, vdev)
            + "\n[rrl]\nrate = %d\nslip = %d\nipv4_prefix = 24\n" % (RATE, SLIP)
            + '\n[metrics]\nlisten = "127.0.0.1:%d"\n' % METRICS_PORT)


def counters(args, tmp, bed):
    """(tandemctl stats totals, /metrics text scraped in the server namespace)."""
    stats = procs.tandemctl_json(args.tandemctl, os.path.join(tmp, "control.sock"), "stats")
    expect(stats.get("ok"), "tandemctl stats failed: %r" % stats)
    with netns.Inside(bed.server_ns):
        text = procs.scrape_metrics(("127.0.0.1", METRICS_PORT))
    return stats.get("total") or stats.get("totals") or {}, text


def bursts(server, log):
    """The bursts and their checks; returns them for the counter comparison."""
    www = "www.%s." % ZONE

    # One name, one client: RATE whole, then every SLIP-th slipped, the rest dropped.
    b1 = burst(server, [www] * 200, source=netns.CLIENT_V4)
    log("%s, www A x200: %r" % (netns.CLIENT_V4, b1))
    check_limited(b1, "one name from one client", RATE)
    expect(b1.dropped > 0 and b1.slipped > 0, "nothing limited on the poll-mode path: %r" % b1)

    # Another address in the same /24 has nothing left for that name (but the refill)...
    b2 = burst(server, [www] * 20, source=SAME_PREFIX_V4)
    log("%s, www A x20: %r" % (SAME_PREFIX_V4, b2))
    expect(b2.whole <= int((b2.end - b1.end) * RATE) + 1 and not b2.other,
           "%s shares %s's /24 bucket, yet: %r" % (SAME_PREFIX_V4, netns.CLIENT_V4, b2))

    # ...while an address in another /24 has its own allowance.
    b3 = burst(server, [www] * 100, source=OTHER_PREFIX_V4)
    log("%s, www A x100: %r" % (OTHER_PREFIX_V4, b3))
    check_limited(b3, "another /24", RATE)

    # A second later the first client's bucket holds a second's worth again.
    time.sleep(1.1)
    b4 = burst(server, [www] * 40, source=netns.CLIENT_V4)
    log("%s after 1.1 s, www A x40: %r" % (netns.CLIENT_V4, b4))
    check_limited(b4, "after a second", RATE)
    return [b1, b2, b3, b4]


def run(args, log):
    with procs.TempDir(prefix="tandem-dpdk-rrl-") as tmp, netns.Testbed() as bed:
        for addr in (SAME_PREFIX_V4, OTHER_PREFIX_V4):
            netns.sh("ip", "addr", "add", addr + "/24", "dev", bed.client_if, ns=bed.client_ns)
        zone_file = os.path.join(tmp, "rrl.test.zone")
        procs.write_zone(zone_file, ZONE, 1)
        vdev = "net_%s0,iface=%s" % (args.vdev, bed.server_if)
        conf = os.path.join(tmp, "tandem.toml")
        with open(conf, "w") as f:
            f.write(rrl_config(tmp, bed, zone_file, vdev))
        tandem = test_dpdk.PortServer("tandemd-rrl-%s" % args.vdev,
                                      ["ip", "netns", "exec", bed.server_ns, args.tandemd,
                                       "--config", conf], tmp, netns.SERVER_V4)
        ok = False
        try:
            tandem.start()
            bed.enter_client()
            try:
                tandem.wait_ready(ZONE, timeout=30)
            except procs.ServerError as e:
                if args.vdev == "af_xdp":
                    log("SKIP: af_xdp not usable here: %s" % str(e).splitlines()[0])
                    return 77
                raise
            time.sleep(1.1)  # the start-up SOA probes and ARP are behind us

            bs = bursts(tandem.addr, log)

            bed.leave_client()
            dropped = sum(b.dropped for b in bs)
            slipped = sum(b.slipped for b in bs)
            total, text = counters(args, tmp, bed)
            log("tandemctl stats: rrl_dropped %s, rrl_slipped %s (clients saw %d dropped, %d "
                "slipped)" % (total.get("rrl_dropped"), total.get("rrl_slipped"), dropped, slipped))
            expect(total.get("rrl_slipped") == slipped and total.get("rrl_dropped") == dropped,
                   "tandemctl stats rrl_dropped %r rrl_slipped %r, the clients saw %d and %d "
                   "(a query lost before the port, or an answer after it, shows here); totals: %r"
                   % (total.get("rrl_dropped"), total.get("rrl_slipped"), dropped, slipped, total))
            m_dropped = procs.metric_value(text, "tandem_rrl_responses_total", action="dropped")
            m_slipped = procs.metric_value(text, "tandem_rrl_responses_total", action="slipped")
            log("/metrics: tandem_rrl_responses_total dropped %s, slipped %s"
                % (m_dropped, m_slipped))
            expect(m_dropped == dropped and m_slipped == slipped,
                   "/metrics: dropped %r slipped %r, the clients saw %d and %d"
                   % (m_dropped, m_slipped, dropped, slipped))
            expect(tandem.alive(), "tandemd exited during the test")
            ok = True
        finally:
            bed.leave_client()
            tandem.stop()
            if not ok:
                log("tandemd stderr:\n" + tandem.stderr_text(4000))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tandemd", required=True)
    ap.add_argument("--tandemctl", required=True)
    ap.add_argument("--vdev", choices=["af_packet", "af_xdp"], default="af_packet")
    args = ap.parse_args()
    args.tandemd = os.path.abspath(args.tandemd)
    args.tandemctl = os.path.abspath(args.tandemctl)
    procs.stop_on_sigterm()
    if os.geteuid() != 0:
        print("SKIP: needs root for network namespaces")
        return 77

    def log(msg=""):
        print(msg, flush=True)

    if args.vdev == "af_xdp":
        subprocess.run("mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf", shell=True)
    start = time.monotonic()
    try:
        status = run(args, log)
    except Failure as e:
        log("FAIL: %s" % e)
        return 1
    except procs.ServerError as e:
        log("could not run: %s" % e)
        return 2
    if status == 0:
        log("PASS (%.1f s)" % (time.monotonic() - start))
    return status


if __name__ == "__main__":
    sys.exit(main())

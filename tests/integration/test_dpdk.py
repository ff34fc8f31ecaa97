#!/usr/bin/python3
"""tandemd in dpdk mode on a veth (net_af_packet, and net_af_xdp where the kernel allows),
checked from a client network namespace:

- UDP answers (IPv4 and IPv6) identical to Knot DNS's, and to NSD's but for NSD's
  accepted differences, on a generated zone, with TCP queries answered through the
  exception path (the differential comparison of test_differential.py, run against
  198.18.0.1:53);
- ARP and ping (IPv4 and IPv6) answered through the exception interface;
- no kernel UDP socket on port 53 in tandemd's namespace;
- malformed frames sent at the port never stop it answering.

Namespaces, links and processes are removed at the end, also on failure.
"""

import argparse
import json
import os
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dns.flags  # noqa: E402
import dns.message  # noqa: E402
import dns.query  # noqa: E402

import dnsdiff  # noqa: E402
import netns  # noqa: E402
import procs  # noqa: E402
import test_differential  # noqa: E402
import test_malformed  # noqa: E402
import zonegen  # noqa: E402


class PortServer(procs.Server):
    """tandemd answering on the poll-mode path at a namespace address."""

    def __init__(self, name, argv, workdir, address, port=53):
        super().__init__(name, argv, workdir, port)
        self.address = address

    @property
    def addr(self):
        return (self.address, self.port)


def tandem_dpdk_config(tmp, bed, zone, zone_file, vdev, malformed_zone=False):
    state = os.path.join(tmp, "state")
    os.makedirs(state, exist_ok=True)
    eal = ["--no-huge", "-m", "512", "--no-pci", "--file-prefix=tandem%d" % os.getpid(),
           "--vdev=%s" % vdev, "-l", "0-1", "--log-level=warning"]
    eal_toml = ", ".join('"%s"' % a for a in eal)
    return f"""\
[server]
mode = "dpdk"
workers = 1
state_dir = "{state}"
identity = "{test_malformed.IDENTITY}"

[dpdk]
eal_args = [{eal_toml}]
address = ["{netns.SERVER_V4}/24", "{netns.SERVER_V6}/64"]
exception_iface = "{bed.exception_if}"

[control]
socket = "{tmp}/control.sock"

[[zone]]
name = "{zone}"
file = "{zone_file}"
""" + (f"""
[[zone]]
name = "{test_malformed.ZONE}"
file = "{tmp}/malformed.zone"
""" if malformed_zone else "")


def malformed_over_udp(tandem, refs, log):
    """test_malformed's packets over UDP: tandem on the poll-mode path against Knot DNS and
    NSD (configured as in that test) on the client's loopback. Returns (cases, failures);
    a failure is a packet tandem answers unlike both, or tandem not answering a normal
    query after a packet. (TCP reaches the same kernel listener as in socket mode, which
    test_malformed covers.)"""
    failures = []
    cases = test_malformed.build_cases()
    for case, wire in cases:
        got = test_malformed.udp_outcome(tandem.addr, wire)
        others = [test_malformed.udp_outcome(r.addr, wire) for r in refs]
        if not any(got.key == o.key for o in others):
            failures.append("%s: tandem %s, %s" % (case, got, ", ".join(
                "%s %s" % (r.name, o) for r, o in zip(refs, others))))
        ok, _, what = test_malformed.normal_query_ok(tandem.addr, "udp")
        if not ok:
            failures.append("%s: no answer to a normal query afterwards (%s)" % (case, what))
            break
    log("malformed messages over UDP: %d cases, %d failures" % (len(cases), len(failures)))
    return len(cases), failures


def check(cond, what, failures, log):
    log(("ok: " if cond else "FAIL: ") + what)
    if not cond:
        failures.append(what)


def udp53_sockets(bed):
    out = netns.sh("ss", "-Hulnp", ns=bed.server_ns).stdout
    return [line for line in out.splitlines() if ":53 " in line]


def send_malformed(ifname, dst_mac, log):
    """Raw frames at the port: short, bad lengths, bad checksums, foreign MAC."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((ifname, 0))
    src = bytes.fromhex("020000000002")
    dst = bytes.fromhex(dst_mac.replace(":", ""))
    ip_dst = socket.inet_aton(netns.SERVER_V4)
    ip_src = socket.inet_aton(netns.CLIENT_V4)
    frames = [dst + src + b"\x08\x00",                                   # no IP header
              dst + src + b"\x08\x00" + b"\x45" + b"\x00" * 10]          # truncated IP
    base_ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + 8 + 12, 1, 0, 64, 17, 0, ip_src, ip_dst)
    udp = struct.pack("!HHHH", 4000, 53, 8 + 12, 0) + b"\x12\x34\x01\x00" + b"\x00\x01" + b"\x00" * 6
    frames.append(dst + src + b"\x08\x00" + base_ip + udp)               # bad IP checksum
    long_ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 1400, 1, 0, 64, 17, 0, ip_src, ip_dst)
    frames.append(dst + src + b"\x08\x00" + long_ip + udp)               # length past the frame
    frames.append(dst + src + b"\x86\xdd" + b"\x60\x00\x00\x00\x05\xdc\x11\x40")  # IPv6 payload past the frame
    frames.append(bytes(6) + src + b"\x08\x00" + base_ip + udp)          # not our MAC
    sent = 0
    for _ in range(200):
        for f in frames:
            s.send(f.ljust(60, b"\x00"))
            sent += 1
        time.sleep(0.002)  # paced: the veth's AF_PACKET ring holds a few hundred frames
    s.close()
    log("sent %d malformed frames" % sent)


def run_once(args, vdev_kind, log):
    failures = []
    gz = zonegen.generate(args.seed, args.names)
    queries = dnsdiff.gen_queries(gz, args.queries, args.seed, extra=True)
    with procs.TempDir(prefix="tandem-dpdk-") as tmp, netns.Testbed() as bed:
        zone_file = os.path.join(tmp, "zone.db")
        with open(zone_file, "w") as f:
            f.write(gz.text)
        malformed_zone = os.path.join(tmp, "malformed.zone")
        with open(malformed_zone, "w") as f:
            f.write(test_malformed.ZONE_TEXT)
        vdev = ("net_af_packet0,iface=%s" % bed.server_if if vdev_kind == "af_packet"
                else "net_af_xdp0,iface=%s" % bed.server_if)
        conf = os.path.join(tmp, "tandem.toml")
        with open(conf, "w") as f:
            f.write(tandem_dpdk_config(tmp, bed, gz.origin, zone_file, vdev))
        tandem = PortServer("tandemd-%s" % vdev_kind,
                            ["ip", "netns", "exec", bed.server_ns, args.tandemd, "--config", conf],
                            tmp, netns.SERVER_V4)
        servers = []
        try:
            tandem.start()
            servers.append(tandem)
            bed.enter_client()
            try:
                tandem.wait_ready(gz.origin, timeout=30)
            except procs.ServerError as e:
                if vdev_kind == "af_xdp":
                    log("af_xdp not usable here, skipped: %s" % str(e).splitlines()[0])
                    return None
                raise
            # The references run in the client namespace, on its loopback.
            knot = procs.start_knotd(tmp, gz.origin, zone_file, name="knot")
            servers.append(knot)
            nsd = procs.start_nsd(tmp, gz.origin, zone_file, name="nsd")
            servers.append(nsd)

            # Answers: the whole differential run, UDP (with and without EDNS) and TCP,
            # strictly against Knot DNS and with NSD's accepted differences against NSD.
            deadline = time.monotonic() + args.time_limit
            results = test_differential.run_queries(queries, [knot, nsd], tandem, gz.origin,
                                                    deadline, log, test_differential.LEEWAY)
            big = set(gz.hints["big"]) | {"cbig." + gz.origin}
            for ref, what in ((knot, "identical to Knot DNS"),
                              (nsd, "identical to NSD but for its accepted differences")):
                log("== compared with %s" % ref.name)
                n_fail = test_differential.report(results[ref.name], len(queries), ref, tandem, 10,
                                                  log, big)
                n = len(results[ref.name])
                check(n_fail == 0 and n == len(queries),
                      "%d queries over %s %s" % (n, vdev_kind, what), failures, log)

            # IPv6 on the poll-mode path.
            q6 = dns.message.make_query(gz.origin, "SOA")
            r6 = dns.query.udp(q6, netns.SERVER_V6, port=53, timeout=2)
            check(r6.rcode() == 0 and len(r6.answer) == 1 and r6.flags & dns.flags.AA,
                  "SOA over IPv6 UDP answered", failures, log)
            r6t = dns.query.tcp(q6, netns.SERVER_V6, port=53, timeout=2)
            check(r6t.rcode() == 0 and len(r6t.answer) == 1, "SOA over IPv6 TCP answered", failures, log)

            # The exception path: ping answers, ARP resolution to the port's MAC.
            ping4 = subprocess.run(["ping", "-c", "3", "-i", "0.2", "-W", "1", netns.SERVER_V4],
                                   capture_output=True, timeout=20)
            check(ping4.returncode == 0, "ping %s" % netns.SERVER_V4, failures, log)
            ping6 = subprocess.run(["ping", "-6", "-c", "3", "-i", "0.2", "-W", "1", netns.SERVER_V6],
                                   capture_output=True, timeout=20)
            check(ping6.returncode == 0, "ping %s" % netns.SERVER_V6, failures, log)
            neigh = subprocess.run(["ip", "neigh", "show", netns.SERVER_V4], capture_output=True,
                                   text=True, timeout=10).stdout
            mac = bed.server_mac()
            check(mac in neigh, "ARP resolves %s to the port's MAC %s" % (netns.SERVER_V4, mac),
                  failures, log)

            # Hostile frames, then still answering.
            send_malformed(bed.client_if, mac, log)
            time.sleep(0.5)
            r = procs.soa_probe(tandem.addr, gz.origin, timeout=2)
            check(tandem.alive() and r.rcode() == 0, "still answering after malformed frames",
                  failures, log)
            stats = subprocess.run([args.tandemctl, "--socket", os.path.join(tmp, "control.sock"),
                                    "--json", "stats"], capture_output=True, text=True, timeout=10)
            reply = json.loads(stats.stdout) if stats.returncode == 0 else {}
            total = reply.get("total", {})
            # Each of the 1000 malformed and 200 foreign frames is counted; a few may be lost
            # in the veth's receive ring on a loaded machine before tandem sees them.
            check(total.get("malformed", 0) >= 900 and total.get("not_for_us", 0) >= 180,
                  "malformed frames counted (malformed %s, not_for_us %s)"
                  % (total.get("malformed"), total.get("not_for_us")), failures, log)
            # The port's own counters: every frame the worker lcore took came through the
            # port, and every answer it sent went out through it (with the kernel's frames).
            # A driver counts a frame before the worker does, and tandemd reads the workers'
            # counters before the ports': the port's figures are never behind.
            ports = reply.get("ports", [])
            port = ports[0] if len(ports) == 1 else {}
            lcores = [w["counters"] for w in reply.get("workers", []) if w["name"].startswith("lcore")]
            lc_rx = sum(c.get("rx_packets", 0) for c in lcores)
            lc_tx = sum(c.get("tx_packets", 0) + c.get("from_kernel", 0) for c in lcores)
            check(port.get("name", "").startswith("net_af_") and
                  port.get("rx_packets", 0) >= lc_rx > 1000 and
                  port.get("tx_packets", 0) >= lc_tx > 100 and
                  all(k in port for k in ("rx_missed", "rx_errors", "rx_no_mbuf", "tx_errors")),
                  "tandemctl stats reports the port's counters (%s; worker lcores rx %d, tx %d)"
                  % (ports, lc_rx, lc_tx), failures, log)

            # Malformed and unusual DNS messages on the poll-mode path, against Knot DNS and
            # NSD serving test_malformed's zone with the same identity settings. The zone is
            # added by a reload (the differential run above expects it out of zone).
            with open(conf, "w") as f:
                f.write(tandem_dpdk_config(tmp, bed, gz.origin, zone_file, vdev, malformed_zone=True))
            reload = subprocess.run([args.tandemctl, "--socket", os.path.join(tmp, "control.sock"),
                                     "reload"], capture_output=True, text=True, timeout=30)
            check(reload.returncode == 0, "tandemctl reload adds %s: %s%s"
                  % (test_malformed.ZONE, reload.stdout, reload.stderr), failures, log)
            mknot = procs.start_knotd(tmp, test_malformed.ZONE, malformed_zone, name="knot-m",
                                      server_extra=test_malformed.KNOT_IDENTITY)
            servers.append(mknot)
            mnsd = procs.start_nsd(tmp, test_malformed.ZONE, malformed_zone, name="nsd-m",
                                   server_extra=test_malformed.NSD_IDENTITY)
            servers.append(mnsd)
            n_cases, bad = malformed_over_udp(tandem, [mknot, mnsd], log)
            for b in bad[:10]:
                log("  " + b)
            check(not bad, "%d malformed messages over %s answered as Knot DNS or NSD"
                  % (n_cases, vdev_kind), failures, log)

            bed.leave_client()
            check(udp53_sockets(bed) == [], "no kernel UDP socket on port 53 in dpdk mode",
                  failures, log)
        finally:
            bed.leave_client()
            for srv in reversed(servers):
                srv.stop()
            if failures:
                log("tandemd stderr:\n" + tandem.stderr_text(4000))
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tandemd", required=True)
    ap.add_argument("--tandemctl", required=True)
    ap.add_argument("--seed", type=int, default=test_differential.DEFAULT_SEED)
    ap.add_argument("--queries", type=int, default=1500)
    ap.add_argument("--names", type=int, default=300)
    ap.add_argument("--time-limit", type=float, default=240.0)
    ap.add_argument("--vdev", choices=["af_packet", "af_xdp", "both"], default="both")
    args = ap.parse_args()
    args.tandemd = os.path.abspath(args.tandemd)
    args.tandemctl = os.path.abspath(args.tandemctl)
    procs.stop_on_sigterm()
    if os.geteuid() != 0:
        print("SKIP: needs root for network namespaces")
        return 77

    def log(msg=""):
        print(msg, flush=True)

    kinds = ["af_packet", "af_xdp"] if args.vdev == "both" else [args.vdev]
    all_failures = []
    for kind in kinds:
        if kind == "af_xdp":
            subprocess.run("mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf", shell=True)
        log("== %s ==" % kind)
        failures = run_once(args, kind, log)
        if failures is None:
            continue
        all_failures += ["%s: %s" % (kind, f) for f in failures]
    if all_failures:
        log("FAILED:\n  " + "\n  ".join(all_failures))
        return 1
    log("PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())

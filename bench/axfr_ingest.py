#!/usr/bin/python3
"""AXFR ingest, side by side: Knot DNS serves a generated zone as the primary; tandemd and
a Knot DNS secondary each pull it by AXFR, in turns, for several rounds (medians printed).
Reported for each: seconds from start until the secondary answers the zone's serial
(transfer, checks, build, serving), the CPU seconds the secondary used by then (a steadier
figure than the time on a shared machine), and its proportional set size once settled;
for tandemd also its log line for the transfer. Runs on loopback only.

  /usr/bin/python3 bench/axfr_ingest.py --tandemd build/tandemd --names 1000000 --rounds 3
"""

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import dns.message
import dns.query


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def write_zone(path, names, aaaa_every=3):
    with open(path, "w") as f:
        f.write("$ORIGIN bench.test.\n$TTL 300\n@ SOA ns1 hostmaster 1 7200 900 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n")
        for i in range(names):
            f.write("h%d A 10.%d.%d.%d\n" % (i, (i >> 16) & 255, (i >> 8) & 255, i & 255))
            if i % aaaa_every == 0:
                f.write("h%d AAAA 2001:db8::%x\n" % (i, i & 0xffff))
    return names + (names + aaaa_every - 1) // aaaa_every + 3


def cpu_seconds(pid):
    """User and system time of the process (all its threads)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return None


def pss_mb(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def serial_of(port):
    try:
        # A short timeout: before the server binds its port a query goes unanswered (no ICMP
        # error reaches an unconnected socket), and a long one would be counted as load time.
        r = dns.query.udp(dns.message.make_query("bench.test.", "SOA"), "127.0.0.1", port=port, timeout=0.05)
        for rrset in r.answer:
            return rrset[0].serial
    except Exception:
        return None
    return None


def wait_serial(port, deadline):
    while time.monotonic() < deadline:
        if serial_of(port) == 1:
            return True
        time.sleep(0.01)
    return False


def knot_conf(d, port, primary_port=None, zone_file=None):
    os.makedirs(d, exist_ok=True)
    zone = ("    file: %s\n" % zone_file) if zone_file else ("    master: primary\n")
    remote = ("remote:\n  - id: primary\n    address: 127.0.0.1@%d\n" % primary_port) if primary_port else ""
    acl = "acl:\n  - id: xfr\n    address: 127.0.0.0/8\n    action: transfer\n" if zone_file else ""
    text = f"""server:
  listen: 127.0.0.1@{port}
  rundir: {d}
  background-workers: 1
log:
  - target: stderr
    any: warning
database:
  storage: {d}
{remote}{acl}zone:
  - domain: bench.test
{zone}    zonefile-sync: -1
    journal-content: none
    semantic-checks: off
{"    acl: xfr" if zone_file else ""}
"""
    path = os.path.join(d, "knot.conf")
    with open(path, "w") as f:
        f.write(text)
    return path


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def run_secondary(kind, tmp, round_no, pport, args):
    """Starts one secondary, waits for the zone; -> (seconds, cpu seconds, PSS MB, note)."""
    port = free_port()
    d = os.path.join(tmp, "%s-%d" % (kind, round_no))
    os.makedirs(d)
    log = open(os.path.join(d, "stderr.log"), "w+")
    if kind == "tandemd":
        conf = os.path.join(d, "tandem.toml")
        with open(conf, "w") as f:
            f.write(f'[server]\nlisten = ["127.0.0.1:{port}"]\nstate_dir = "{d}/state"\n'
                    f'[[zone]]\nname = "bench.test"\nsources = [{{ name = "primary", address = "127.0.0.1:{pport}" }}]\n')
        cmd = [args.tandemd, "--config", conf]
    else:
        cmd = ["knotd", "-c", knot_conf(d, port, primary_port=pport)]
    start = time.monotonic()
    p = subprocess.Popen(cmd, stderr=log)
    try:
        if not wait_serial(port, time.monotonic() + args.timeout):
            return None
        secs = time.monotonic() - start
        cpu = cpu_seconds(p.pid)
        time.sleep(args.settle)  # tandemd saves its copy after serving it; Knot its timers
        pss = pss_mb(p.pid)
        note = ""
        if kind == "tandemd":
            log.flush()
            log.seek(0)
            m = re.search(r"AXFR serial 1: .*", log.read())
            note = m.group(0) if m else "?"
        return secs, cpu, pss, note
    finally:
        stop(p)
        log.close()
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tandemd", required=True)
    ap.add_argument("--names", type=int, default=1000000)
    ap.add_argument("--aaaa-every", type=int, default=3, help="every Nth name also has AAAA")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--settle", type=float, default=3.0, help="seconds after serving before PSS is read")
    ap.add_argument("--pause", type=float, default=1.0, help="seconds between two secondaries' runs")
    ap.add_argument("--timeout", type=float, default=600)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="tandem-axfr-bench-")
    primary = None
    try:
        zone_file = os.path.join(tmp, "bench.zone")
        records = write_zone(zone_file, args.names, args.aaaa_every)
        pport = free_port()
        primary = subprocess.Popen(["knotd", "-c", knot_conf(os.path.join(tmp, "primary"), pport, zone_file=zone_file)],
                                   stderr=subprocess.DEVNULL)
        if not wait_serial(pport, time.monotonic() + args.timeout):
            sys.exit("primary did not load the zone")
        print("zone: %d names, %d records" % (args.names, records))
        results = {"tandemd": [], "knot": []}
        for r in range(args.rounds):
            # Alternate who goes first: the machine's noise drifts.
            for kind in (("tandemd", "knot") if r % 2 == 0 else ("knot", "tandemd")):
                time.sleep(args.pause)  # the previous secondary's exit settles first
                got = run_secondary(kind, tmp, r, pport, args)
                if got is None:
                    print("round %d: %s did not serve the zone in time" % (r + 1, kind), flush=True)
                    continue
                results[kind].append(got)
                secs, cpu, pss, note = got
                print("round %d: %-8s start to serving %.2f s (%.0f records/s), cpu %.2f s, PSS %.0f MB %s"
                      % (r + 1, kind, secs, records / secs, cpu, pss, note), flush=True)
        med = {}
        print("median over %d rounds:" % args.rounds)
        for kind, rows in results.items():
            if not rows:
                continue
            med[kind] = [statistics.median(x[i] for x in rows) for i in range(3)]
            print("  %-8s start to serving %.2f s, cpu %.2f s, PSS %.0f MB" % (kind, *med[kind]))
        if "tandemd" in med and "knot" in med:
            print("  tandemd / knot: time %.2f, cpu %.2f, PSS %.2f"
                  % tuple(med["tandemd"][i] / med["knot"][i] for i in range(3)))
    finally:
        if primary is not None:
            stop(primary)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

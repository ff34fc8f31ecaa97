#!/usr/bin/python3
"""AXFR ingest, side by side: Knot DNS serves a generated zone as the primary; tandemd and
a Knot DNS secondary each pull it by AXFR. Reported for each: seconds from start until the
secondary answers the zone's serial (transfer, checks, build, serving), and records per
second; for tandemd also the transfer alone, from its log. Runs on loopback only.

  /usr/bin/python3 bench/axfr_ingest.py --tandemd build/tandemd --names 1000000
"""

import argparse
import os
import re
import shutil
import signal
import socket
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


def write_zone(path, names):
    with open(path, "w") as f:
        f.write("$ORIGIN bench.test.\n$TTL 300\n@ SOA ns1 hostmaster 1 7200 900 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n")
        for i in range(names):
            f.write("h%d A 10.%d.%d.%d\n" % (i, (i >> 16) & 255, (i >> 8) & 255, i & 255))
            if i % 3 == 0:
                f.write("h%d AAAA 2001:db8::%x\n" % (i, i & 0xffff))
    return names + names // 3 + 3


def serial_of(port):
    try:
        r = dns.query.udp(dns.message.make_query("bench.test.", "SOA"), "127.0.0.1", port=port, timeout=0.5)
        for rrset in r.answer:
            return rrset[0].serial
    except Exception:
        return None
    return None


def wait_serial(port, deadline):
    while time.monotonic() < deadline:
        if serial_of(port) == 1:
            return True
        time.sleep(0.02)
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tandemd", required=True)
    ap.add_argument("--names", type=int, default=1000000)
    ap.add_argument("--timeout", type=float, default=600)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="tandem-axfr-bench-")
    procs = []
    try:
        zone_file = os.path.join(tmp, "bench.zone")
        records = write_zone(zone_file, args.names)
        pport = free_port()
        primary = subprocess.Popen(["knotd", "-c", knot_conf(os.path.join(tmp, "primary"), pport, zone_file=zone_file)],
                                   stderr=subprocess.DEVNULL)
        procs.append(primary)
        if not wait_serial(pport, time.monotonic() + args.timeout):
            sys.exit("primary did not load the zone")
        results = {}
        # tandemd
        tport = free_port()
        conf = os.path.join(tmp, "tandem.toml")
        with open(conf, "w") as f:
            f.write(f'[server]\nlisten = ["127.0.0.1:{tport}"]\nstate_dir = "{tmp}/tstate"\n'
                    f'[[zone]]\nname = "bench.test"\nsources = [{{ name = "primary", address = "127.0.0.1:{pport}" }}]\n')
        log = open(os.path.join(tmp, "tandemd.log"), "w+")
        start = time.monotonic()
        t = subprocess.Popen([args.tandemd, "--config", conf], stderr=log)
        procs.append(t)
        ok = wait_serial(tport, time.monotonic() + args.timeout)
        results["tandemd"] = time.monotonic() - start if ok else None
        log.flush()
        log.seek(0)
        m = re.search(r"AXFR serial 1: (\d+) records, (\d+) messages, (\d+) bytes, (\S+)", log.read())
        transfer_note = m.group(0) if m else "?"
        # Knot as a secondary of the same primary
        kport = free_port()
        start = time.monotonic()
        k = subprocess.Popen(["knotd", "-c", knot_conf(os.path.join(tmp, "secondary"), kport, primary_port=pport)],
                             stderr=subprocess.DEVNULL)
        procs.append(k)
        ok = wait_serial(kport, time.monotonic() + args.timeout)
        results["knot"] = time.monotonic() - start if ok else None
        print("zone: %d names, %d records" % (args.names, records))
        for name, secs in results.items():
            if secs is None:
                print("%-8s did not serve the zone in time" % name)
            else:
                print("%-8s start to serving: %.2f s (%.0f records/s)" % (name, secs, records / secs))
        print("tandemd transfer: " + transfer_note)
        if results.get("tandemd") and results.get("knot"):
            print("tandemd / knot time: %.2f" % (results["tandemd"] / results["knot"]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Zone file load, side by side: tandemd, Knot DNS and NSD each load the same generated zone
file (the zone of bench/answer_bench.cc's MakeZoneText: N hosts with an A record, every
4th also AAAA). For each server, one after another on loopback ports, in several rounds
(each round starting with the next server):

  load   seconds from the process start until it answers the zone's SOA (and the CPU
         seconds the first process used by then: NSD forks, its children are not counted);
  PSS    proportional set size once the load has settled: the sum of Pss in
         /proc/PID/smaps_rollup over the server's processes (NSD forks), in MB.

Medians over the rounds are printed, with tandemd's ratio to each peer. The machine may be
shared and noisy: the servers run in turns within each round, so they see the same noise.

  /usr/bin/python3 bench/zone_load.py --tandemd build/control/tandemd --names 1000000
"""

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time

import dns.message
import dns.query

ZONE = "bench.test."


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def write_zone(path, names):
    """The same records as MakeZoneText in bench/answer_bench.cc; returns the record count."""
    with open(path, "w") as f:
        f.write("$ORIGIN bench.test.\n$TTL 300\n@ SOA ns1 hostmaster 1 7200 900 1209600 300\n"
                "@ NS ns1\nns1 A 192.0.2.1\n*.wild A 192.0.2.2\nalias CNAME h1\n"
                "sub NS ns.sub\nns.sub A 192.0.2.3\ntxt TXT \"hello world\"\n")
        lines = []
        for i in range(names):
            lines.append("h%d A 10.%d.%d.%d\n" % (i, (i >> 16) & 255, (i >> 8) & 255, i & 255))
            if i % 4 == 0:
                lines.append("h%d AAAA 2001:db8::%x:%x\n" % (i, i >> 16, i & 0xffff))
            if len(lines) >= 100000:
                f.writelines(lines)
                lines = []
        f.writelines(lines)
    return 8 + names + (names + 3) // 4


def answers_soa(port):
    try:
        # A short timeout: before the server binds its port a query goes unanswered (no ICMP
        # error reaches an unconnected socket), and a long one would be counted as load time.
        r = dns.query.udp(dns.message.make_query(ZONE, "SOA"), "127.0.0.1", port=port, timeout=0.05)
        return any(rrset.rdtype == 6 for rrset in r.answer)
    except Exception:
        return False


def tree(pid):
    """pid and every descendant, from /proc."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def pss_kb(pid):
    total = 0
    for p in tree(pid):
        try:
            with open("/proc/%d/smaps_rollup" % p) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def cpu_seconds(pid):
    """User and system time of the process and its threads (its children not counted)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return float("nan")


def settled_pss(pid, settle, limit=15.0):
    """PSS once it stops moving: after `settle` s, sampled every 0.5 s until three samples
    agree within 1% (or `limit` s pass)."""
    time.sleep(settle)
    samples = [pss_kb(pid)]
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        time.sleep(0.5)
        samples.append(pss_kb(pid))
        last = samples[-3:]
        if len(last) == 3 and max(last) - min(last) <= 0.01 * max(last):
            break
    return samples[-1]


def tandem_conf(d, port, zone_file):
    path = os.path.join(d, "tandem.toml")
    with open(path, "w") as f:
        f.write(f'[server]\nlisten = ["127.0.0.1:{port}"]\nstate_dir = "{d}/state"\n'
                f'[[zone]]\nname = "bench.test"\nfile = "{zone_file}"\n')
    return path


def knot_conf(d, port, zone_file):
    path = os.path.join(d, "knot.conf")
    with open(path, "w") as f:
        f.write(f"""server:
  listen: 127.0.0.1@{port}
  rundir: {d}
log:
  - target: stderr
    any: warning
database:
  storage: {d}
zone:
  - domain: bench.test
    file: {zone_file}
    zonefile-sync: -1
    journal-content: none
""")
    return path


def nsd_conf(d, port, zone_file):
    path = os.path.join(d, "nsd.conf")
    with open(path, "w") as f:
        f.write(f"""server:
  ip-address: 127.0.0.1@{port}
  server-count: 1
  username: ""
  chroot: ""
  zonesdir: "{d}"
  database: ""
  zonelistfile: "{d}/zone.list"
  xfrdfile: "{d}/xfrd.state"
  xfrdir: "{d}"
  pidfile: "{d}/nsd.pid"
  logfile: "{d}/nsd.log"
  verbosity: 0
  rrl-ratelimit: 0
remote-control:
  control-enable: no
zone:
  name: bench.test
  zonefile: "{zone_file}"
""")
    return path


def command(server, d, port, zone_file, tandemd):
    if server == "tandemd":
        return [tandemd, "--config", tandem_conf(d, port, zone_file)]
    if server == "knot":
        return ["knotd", "-c", knot_conf(d, port, zone_file)]
    return ["nsd", "-d", "-c", nsd_conf(d, port, zone_file)]


def run_one(server, tmp, round_no, zone_file, args):
    d = os.path.join(tmp, "%s-%d" % (server, round_no))
    os.makedirs(d)
    port = free_port()
    log = open(os.path.join(d, "stderr.log"), "w")
    start = time.monotonic()
    p = subprocess.Popen(command(server, d, port, zone_file, args.tandemd), stdout=log, stderr=log)
    try:
        deadline = start + args.timeout
        loaded = None
        while time.monotonic() < deadline and p.poll() is None:
            if answers_soa(port):
                loaded = time.monotonic() - start
                cpu = cpu_seconds(p.pid)
                break
            time.sleep(0.01)
        if loaded is None:
            return None, None, None
        return loaded, cpu, settled_pss(p.pid, args.settle) / 1024.0
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        log.close()
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tandemd", required=True)
    ap.add_argument("--names", type=int, default=1000000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--servers", default="tandemd,knot,nsd")
    ap.add_argument("--settle", type=float, default=2.0, help="seconds before PSS is sampled")
    ap.add_argument("--pause", type=float, default=1.0, help="seconds between two servers' runs")
    ap.add_argument("--timeout", type=float, default=300)
    args = ap.parse_args()
    servers = args.servers.split(",")
    tmp = tempfile.mkdtemp(prefix="tandem-zone-load-")
    try:
        zone_file = os.path.join(tmp, "bench.zone")
        records = write_zone(zone_file, args.names)
        print("zone: %d names, %d records, %.0f MB file" % (args.names, records, os.path.getsize(zone_file) / 1e6))
        load = {s: [] for s in servers}
        pss = {s: [] for s in servers}
        for r in range(args.rounds):
            # Each round starts with another server, and each server waits for the previous
            # one's exit to settle (memory freed, files written): the noise falls on all.
            for s in servers[r % len(servers):] + servers[:r % len(servers)]:
                time.sleep(args.pause)
                secs, cpu, mb = run_one(s, tmp, r, zone_file, args)
                if secs is None:
                    print("round %d: %s did not answer the zone's SOA in time" % (r + 1, s))
                    continue
                load[s].append(secs)
                pss[s].append(mb)
                print("round %d: %-8s load %.2f s (cpu %.2f s of the first process)  PSS %.0f MB"
                      % (r + 1, s, secs, cpu, mb), flush=True)
        print("median over %d rounds:" % args.rounds)
        for s in servers:
            if load[s]:
                print("  %-8s load %.2f s  PSS %.0f MB" % (s, statistics.median(load[s]), statistics.median(pss[s])))
        if load.get("tandemd"):
            t_load, t_pss = statistics.median(load["tandemd"]), statistics.median(pss["tandemd"])
            for s in servers:
                if s != "tandemd" and load[s]:
                    print("  tandemd / %s: load %.2f, PSS %.2f" % (
                        s, t_load / statistics.median(load[s]), t_pss / statistics.median(pss[s])))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

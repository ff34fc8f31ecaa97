"""The Markdown report of bench/compare.py: the machine and the command, one table per
section (medians over the rounds, ratios to tandem, the spread), and what limited each
figure, worked out from the measurements themselves.
"""

import statistics

import crosscore
import peers
import workload

SATURATED = 0.90      # a server using less of its core than this was not the bottleneck


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _n(v, digits=0):
    if v is None:
        return "-"
    return "{:,.{d}f}".format(v, d=digits)


def _pct(v):
    return "-" if v is None else _n(100 * v) + "%"


def _ratio(runs, ref_runs, field):
    """The median over rounds of runs[i][field] / ref_runs[i][field]: each server is
    compared with tandem's run of the same round, so a drift of the machine's load
    across rounds cancels out."""
    pairs = [(r[field], t[field]) for r, t in zip(runs, ref_runs)
             if r.get(field) is not None and t.get(field)]
    if not pairs:
        return "-"
    return "%.2f" % statistics.median([a / b for a, b in pairs])


def _spread(values, digits=0):
    values = [v for v in values if v is not None]
    if len(values) < 2:
        return "-"
    return "%s - %s" % (_n(min(values), digits), _n(max(values), digits))


def _cores(runs):
    """One sentence: how busy each CPU was during the runs (median over every run)."""
    per = {}
    for rs in runs.values():
        for r in rs:
            for cpu, u in (r.get("cpus") or {}).items():
                per.setdefault(int(cpu), []).append(u)
    if not per:
        return []
    parts = ["CPU %d %s%% busy (softirq %s%%)" % (cpu, _n(100 * _median([u["busy"] for u in us])),
                                                _n(100 * _median([u["softirq"] for u in us])))
             for cpu, us in sorted(per.items())]
    return ["Whole machine during the runs (median; every process, not only these): %s."
            % ", ".join(parts)]


FAR_NS = crosscore.FAR_NS  # bench/core_pingpong: above it, the two CPUs were far apart


def _cross_core(runs):
    """One sentence: the cross-core round trip around the runs, and how many runs began and
    ended with the two CPUs near each other, far apart, or one then the other (the host
    moves them within seconds, so a run's two probes bound its state only roughly)."""
    values, states = [], {"near": 0, "far": 0, "changed": 0}
    for rs in runs.values():
        for r in rs:
            st = crosscore.state(r.get("cross_core_ns"))
            if st is None:
                continue
            values += [v for v in r["cross_core_ns"] if v is not None]
            states[st] += 1
    if not values:
        return []
    return ["Cross-core round trip between the server's and the load generator's CPU "
            "(bench/core_pingpong, just before and just after each run): median %s ns, %s - %s; "
            "of %d runs, %d began and ended near (at most %d ns), %d far, %d changed between "
            "(everything that crosses between the two cores, replies included, is slower far)."
            % (_n(_median(values)), _n(min(values)), _n(max(values)), sum(states.values()),
               states["near"], FAR_NS, states["far"], states["changed"])]


def _disturbed(doc, runs):
    """How much other processes took during the runs, and the runs done again for it."""
    if "max_others" not in doc["settings"]:
        return []  # a run from before others were measured (an older --json file)
    limit = doc["settings"]["max_others"]
    others = [r.get("others", 0) for rs in runs.values() for r in rs]
    again = sum(r.get("attempts", 1) - 1 for rs in runs.values() for r in rs)
    kept = [o for o in others if o > limit]
    text = ("Other processes (and kernel work charged to neither the server nor the generator) "
            "took %s%% of a core's time during a run, median (at most %s%%)"
            % (_n(100 * _median(others)), _n(100 * max(others))))
    if again:
        text += "; %d run(s) above %s%% were done again" % (again, _n(100 * limit))
    if kept:
        text += ", %d still above after %d tries and kept" % (len(kept), doc["settings"]["retries"] + 1)
    return [text + "."]


def _cross_core_header(m):
    start, end = m.get("cross_core_ns_start"), m.get("cross_core_ns_end")
    if start is None and end is None:
        return ""
    return ("; cross-core round trip %s ns at the start, %s ns at the end"
            % (_n(start) if start is not None else "-", _n(end) if end is not None else "-"))


def _header(doc):
    m, v, s = doc["machine"], doc["versions"], doc["settings"]
    lines = ["# bench-compare: tandem, Knot DNS, NSD and BIND", "",
             "- Date: %s; run time %.0f s" % (doc["date"], doc["seconds"]),
             "- Command: `%s`" % doc["command"],
             "- Machine: nproc %d, %s, Linux %s, %.1f GiB; load average %.2f at the start, "
             "%.2f at the end%s" % (m["nproc"], m["cpu"], m["kernel"], m["memory_gib"],
                                    m["loadavg_start"][0], m["loadavg_end"][0], _cross_core_header(m)),
             "- Versions: %s; %s; NSD %s; %s; %s; %s"
             % (v["tandem"], v["knotd"], v["nsd"].replace("NSD version ", ""), v["named"],
                v["dnsperf"], v["kxdpgun"]),
             "- Every server pinned to CPU %s, every load generator to CPU %s%s; %d round(s), the "
             "servers alternated, medians (spread: lowest - highest round)"
             % (s["server_cpu"], s["loadgen_cpu"], (", all at nice %d" % s["nice"]) if s.get("nice") else "",
                s["rounds"]), ""]
    return lines


def _socket_limit(m):
    """What held a socket-mode run back: the server's core or dnsperf's (it ran, or was
    ready to run and waited for the core, 90% of the time or more), or neither."""
    for who, cpu, wait in (("server", m["cpu_share"], m["wait_share"]),
                           ("dnsperf", m["gen_cpu_share"], m["gen_wait_share"])):
        if cpu is not None and wait is not None and cpu + wait >= SATURATED:
            return who
    return "neither: round trips"


def _steering(sec):
    """Where loopback's receive side ran (--loopback-rps), in a sentence."""
    mask = sec.get("loopback_rps")
    if not mask:
        return (" Loopback's receive side runs on the sending CPU, so each server's CPU time "
                "includes delivering its replies into dnsperf's socket.")
    cpus = [i for i in range(64) if int(mask, 16) >> i & 1]
    return (" Loopback's receive side was steered to CPU %s (`--loopback-rps`), so a server's "
            "CPU time leaves out delivering its replies into dnsperf's socket, and dnsperf's "
            "core does that work too." % ",".join(str(c) for c in cpus))


def _socket(doc, sec):
    s = doc["settings"]
    runs = sec["runs"]
    fields = ("qps", "cpu_share", "wait_share", "per_cpu_second", "gen_cpu_share", "gen_wait_share")
    med = {k: {f: _median([r[f] for r in rs]) for f in fields} for k, rs in runs.items()}
    ref = runs.get("tandem", [])
    lines = ["## Socket mode: UDP on loopback, one worker each", "",
             "Zone: %s hosts (%s records). Queries: %s. Load: `%s`%s, %d s per run.%s"
             % (_n(s["zone_names"]), _n(doc.get("zone_records")), workload.MIX_TEXT, sec["dnsperf"],
                (" (%d processes at once)" % sec["procs"]) if sec["procs"] > 1 else "",
                s["duration"], _steering(sec)), "",
             "| server | queries/s | x tandem | queries per server CPU-second | x tandem "
             "| server CPU / waiting | dnsperf CPU / waiting | limited by | lost | reply bytes "
             "| average latency | queries/s, spread |",
             "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|"]
    limits = {}
    for kind, rs in runs.items():
        m = med[kind]
        limits[kind] = _socket_limit(m)
        latency = _median([r.get("latency_us") for r in rs])
        lines.append("| %s | %s | %s | %s | %s | %s / %s | %s / %s | %s | %s | %s | %s | %s |"
                     % (peers.LABELS[kind], _n(m["qps"]), _ratio(rs, ref, "qps"),
                        _n(m["per_cpu_second"]), _ratio(rs, ref, "per_cpu_second"),
                        _pct(m["cpu_share"]), _pct(m["wait_share"]),
                        _pct(m["gen_cpu_share"]), _pct(m["gen_wait_share"]), limits[kind],
                        _n(sum(r["lost"] for r in rs)),
                        _n(_median([r.get("response_bytes") for r in rs])),
                        ("%d µs" % round(latency)) if latency is not None else "-",
                        _spread([r["qps"] for r in rs])))
    lines += ["", "CPU and waiting: the share of the run's wall time the process tree ran on a CPU, "
              "and was runnable but waited for one (from /proc/PID/task/*/schedstat; one core = 100%)."]
    lines += _cores(runs) + _cross_core(runs) + _disturbed(doc, runs)
    if not all(v == "server" for v in limits.values()):
        lines.append("Where the server is not the limit, queries/s measures the load generator or "
                     "the round trips, and its ratio does not compare the servers; queries per "
                     "server CPU-second (user and system time of every thread and child process) "
                     "still does.")
    else:
        lines.append("Every server kept its core busy: queries/s is what one core of each answered.")
    lines += sec.get("notes", [])
    seen = {c for rs in runs.values() for r in rs for c in r.get("rcodes", {})}
    odd = sorted(seen - {"NOERROR", "NXDOMAIN"})
    if odd:
        lines.append("Unexpected response codes were counted (%s): see the JSON." % ", ".join(odd))
    if sec.get("missing"):
        lines.append("Not installed, left out: %s." % ", ".join(sec["missing"]))
    return lines + [""]


def _losses(runs):
    """Where the queries a server did not answer were lost, per round: at the server-side
    veth (its AF_XDP socket's ring full), and for tandem by its own counters."""
    lines = []
    for kind, rs in runs.items():
        parts = []
        for r in rs:
            if not r.get("sent") or "veth_dropped" not in r:
                continue
            unanswered = _unanswered(r)
            text = ("round %d: %s of %s unanswered, %s dropped at the veth"
                    % (r.get("round", 0) + 1, _n(unanswered), _n(r["sent"]),
                       _n(r["veth_dropped"])))
            if unanswered > r["veth_dropped"]:
                text += ", %s elsewhere" % _n(unanswered - r["veth_dropped"])
            c = r.get("tandem_counters")
            if c:
                text += (" (port received %s, missed %s; worker answered %s, could not send %s)"
                         % (_n(c["port_rx"]), _n(c["port_missed"]), _n(c["worker_tx"]),
                            _n(c["worker_tx_dropped"])))
            parts.append(text)
        if parts:
            lines.append("%s: %s." % (peers.LABELS[kind], "; ".join(parts)))
    if not lines:
        return []
    return (["Unanswered queries, by where they were lost. The veth drops a query when its XDP "
             "program cannot hand it to the server's AF_XDP socket (the socket's receive ring "
             "is full: the server's core was busy elsewhere); tandem's counters come from "
             "`tandemctl stats` and include a few frames besides the load:", ""]
            + ["- " + x for x in lines] + [""])


def _xdp(doc, sec):
    lines = ["## Kernel bypass: XDP on a veth, one worker each", ""]
    if sec.get("skipped"):
        return lines + ["Skipped: %s." % sec["skipped"], ""]
    s = doc["settings"]
    runs = sec["runs"]
    fields = ("sent_pps", "replies_pps", "answered", "cpu_share", "wait_share", "gen_cpu_share",
              "gen_wait_share")
    med = {k: {f: _median([r[f] for r in rs]) for f in fields} for k, rs in runs.items()}
    ref = runs.get("tandem-xdp", [])
    lines += ["Zone: %s hosts (%s records), the same queries. Load: `%s` from the client "
              "namespace, %d s per run, offered %s queries/s."
              % (_n(s["zone_names"]), _n(doc.get("zone_records")), sec["kxdpgun"], s["xdp_duration"],
                 _n(s["xdp_qps"])), "",
              "| server | queries sent/s | replies/s | x tandem | answered | server CPU / waiting "
              "| kxdpgun CPU / waiting | replies/s, spread |",
              "|---|---:|---:|---:|---:|---:|---:|---|"]
    for kind, rs in runs.items():
        m = med[kind]
        lines.append("| %s | %s | %s | %s | %s%% | %s / %s | %s / %s | %s |"
                     % (peers.LABELS[kind], _n(m["sent_pps"]), _n(m["replies_pps"]),
                        _ratio(rs, ref, "replies_pps"), _n(100 * m["answered"], 1),
                        _pct(m["cpu_share"]), _pct(m["wait_share"]),
                        _pct(m["gen_cpu_share"]), _pct(m["gen_wait_share"]),
                        _spread([r["replies_pps"] for r in rs])))
    lines += [""] + _cores(runs) + _cross_core(runs) + _disturbed(doc, runs) + sec.get("notes", [])
    lines += _losses(runs)
    full = [peers.LABELS[k] for k, m in med.items() if m["answered"] >= 0.99]
    if full:
        lines.append("%s answered (nearly) everything kxdpgun sent: the load generator was the "
                     "limit there, and replies/s is a lower bound of what the server can do."
                     % ", ".join(full))
    if len(full) < len(med):
        lines.append("A server answering less than it was sent was past its limit: its replies/s "
                     "is what it answered under that overload, which can be less than at its limit "
                     "(the xdp-rates section measures up to where each answers everything). "
                     "tandem's worker polls, so its CPU is near 100% whatever the load.")
    return lines + [""]


def _unanswered(r):
    """Queries a run sent that got no reply."""
    return max(0, r.get("sent", 0) - r.get("replies", 0))


def _full(r):
    """Whether a run had every query it sent answered."""
    return r.get("sent", 0) > 0 and _unanswered(r) == 0


def _full_up_to(rs, rates):
    """Per round, the highest offered rate that run and every lower rate's run answered in
    full (0: not even the lowest): the zero-loss rate of RFC 2544's throughput, over the
    rates tried. {round: rate}."""
    out = {}
    for rnd in sorted({r["round"] for r in rs}):
        best = 0
        by_rate = {r["offered"]: r for r in rs if r["round"] == rnd}
        for rate in rates:
            if rate not in by_rate or not _full(by_rate[rate]):
                break
            best = rate
        out[rnd] = best
    return out


def _xdp_rates(doc, sec):
    lines = ["## Kernel bypass at offered rates: up to where every query is answered", ""]
    if sec.get("skipped"):
        return lines + ["Skipped: %s." % sec["skipped"], ""]
    s = doc["settings"]
    runs, rates = sec["runs"], sec["rates"]
    kinds = list(runs)
    lines += ["The xdp setup (zone: %s hosts, the same queries), kxdpgun offering each rate for "
              "%d s (`%s` at the highest), the rates lowest first in each round and the servers "
              "alternated. answered: median over the rounds of replies / queries sent; all: "
              "rounds in which every query sent was answered."
              % (_n(s["zone_names"]), s["xdp_rate_duration"], sec["kxdpgun"]), "",
              "| offered/s | " + " | ".join("%s replies/s | answered | all" % peers.LABELS[k]
                                           for k in kinds) + " |",
              "|---:|" + "---:|---:|---:|" * len(kinds)]
    short = []
    for rate in rates:
        cells = []
        for k in kinds:
            at = [r for r in runs[k] if r["offered"] == rate]
            if not at:
                cells.append("- | - | -")
                continue
            cells.append("%s | %s%% | %d of %d" % (
                _n(_median([r["replies_pps"] for r in at])),
                _n(100 * _median([r["answered"] for r in at]), 3),
                sum(_full(r) for r in at), len(at)))
            if any(r["sent_pps"] < 0.97 * rate for r in at):
                short.append("%s at %s/s" % (peers.LABELS[k], _n(rate)))
        lines.append("| %s | %s |" % (_n(rate), " | ".join(cells)))
    lines.append("")
    ups = {k: _full_up_to(runs[k], rates) for k in kinds}
    parts = []
    for k in kinds:
        per = ups[k]
        found = [v for v in per.values() if v]
        text = "%s %s" % (peers.LABELS[k], " / ".join(_n(v) if v else "below " + _n(rates[0])
                                                     for v in per.values()))
        if found and len(found) < len(per):
            text += " (median of the %d round(s) with a rate: %s)" % (len(found), _n(_median(found)))
        elif found:
            text += " (median %s)" % _n(_median(found))
        parts.append(text)
    lines.append("Answered in full up to, per round (the highest rate at which it, and every lower "
                 "rate, had every query answered): %s." % "; ".join(parts))
    ref = ups.get("tandem-xdp")
    for k in kinds:
        if k == "tandem-xdp" or ref is None:
            continue
        ratios = [ref[rnd] / ups[k][rnd] for rnd in ref if ups[k].get(rnd) and ref[rnd]]
        if ratios:
            lines.append("tandem / %s per round: %s; median %.2f (each rate is the highest one "
                         "tried that was answered in full: the limit lies between it and the next "
                         "rate tried)."
                         % (peers.LABELS[k], " / ".join("%.2f" % x for x in ratios),
                            statistics.median(ratios)))
    top = [peers.LABELS[k] for k in kinds if ups[k] and min(ups[k].values()) == rates[-1]]
    if top:
        lines.append("%s answered every rate tried in full: its limit is above %s/s, so a ratio "
                     "with it is a lower bound." % (", ".join(top), _n(rates[-1])))
    peak = {}
    for k in kinds:
        per_rate = {rate: _median([r["replies_pps"] for r in runs[k] if r["offered"] == rate])
                    for rate in rates}
        per_rate = {rate: v for rate, v in per_rate.items() if v is not None}
        if per_rate:
            peak[k] = max(per_rate.items(), key=lambda kv: kv[1])
    if peak:
        text = "; ".join("%s %s at %s offered" % (peers.LABELS[k], _n(v), _n(rate))
                         for k, (rate, v) in peak.items())
        if "tandem-xdp" in peak:
            text += "; " + ", ".join("tandem / %s %.2f" % (peers.LABELS[k], peak["tandem-xdp"][1] / v)
                                     for k, (rate, v) in peak.items() if k != "tandem-xdp" and v)
        lines.append("Most replies per second at any offered rate (median over the rounds): %s." % text)
    for k in kinds:
        rs = [r for r in runs[k] if "veth_dropped" in r]
        unanswered = sum(_unanswered(r) for r in rs)
        dropped = sum(r["veth_dropped"] for r in rs)
        if unanswered:
            lines.append("%s: %s queries unanswered over the runs, %s of them dropped at the "
                         "server's veth (its AF_XDP socket's ring full)."
                         % (peers.LABELS[k], _n(unanswered), _n(dropped)))
    if short:
        lines.append("kxdpgun sent less than 97%% of the offered rate (%s): there the generator, "
                     "not the server, set the rate." % ", ".join(short))
    lines += [""] + _cores(runs) + _cross_core(runs) + _disturbed(doc, runs) + sec.get("notes", [])
    return lines + [""]


def _memory(doc, sec):
    runs = sec["runs"]
    med = {k: {f: _median([r[f] for r in rs]) for f in ("pss_kib", "load_seconds")}
           for k, rs in runs.items()}
    ref = runs.get("tandem", [])
    lines = ["## Memory and load time", "",
             "Zone: %s hosts (%s records) from one zone file. Pss: proportional set size of the "
             "server's processes (the sum of Pss in /proc/PID/smaps_rollup) %.1f s after it first "
             "answered. Load time: from the process start until it answers the zone's SOA over UDP."
             % (_n(doc["settings"]["memory_names"]), _n(doc.get("memory_records")),
                doc["settings"]["settle"]), "",
             "| server | Pss (MiB) | x tandem | load time (s) | x tandem | processes "
             "| load time, spread |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for kind, rs in runs.items():
        m = med[kind]
        lines.append("| %s | %s | %s | %s | %s | %d | %s |"
                     % (peers.LABELS[kind], _n(m["pss_kib"] / 1024.0, 1), _ratio(rs, ref, "pss_kib"),
                        _n(m["load_seconds"], 2), _ratio(rs, ref, "load_seconds"),
                        rs[-1]["processes"], _spread([r["load_seconds"] for r in rs], 2)))
    if sec.get("missing"):
        lines += ["", "Not installed, left out: %s." % ", ".join(sec["missing"])]
    return lines + [""]


def markdown(doc):
    lines = _header(doc)
    secs = doc["sections"]
    if "socket" in secs:
        lines += _socket(doc, secs["socket"])
    if "xdp" in secs:
        lines += _xdp(doc, secs["xdp"])
    if "xdp-rates" in secs:
        lines += _xdp_rates(doc, secs["xdp-rates"])
    if "memory" in secs:
        lines += _memory(doc, secs["memory"])
    lines.append("x tandem: the server's figure divided by tandem's in the same round, median "
                 "over the rounds (above 1: more queries, more memory or a longer load than tandem).")
    return "\n".join(lines)

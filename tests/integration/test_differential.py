#!/usr/bin/python3
"""Differential conformance test: tandemd against Knot DNS and NSD, answer by answer.

Generates a random zone (zonegen.py), serves it with knotd and NSD (the references) and
with tandemd (or, with --self-check, a second knotd), sends all of them the same few
thousand queries (dnsdiff.py) and compares the candidate's reply with each reference's.
The comparison with Knot DNS is strict; the one with NSD allows NSD's few accepted
differences (dnsdiff.nsd_leeway, docs/conformance.md), each counted as a note. Every
--seed given is a separate zone and query set, with fresh servers.

    /usr/bin/python3 tests/integration/test_differential.py --tandemd build/tandemd
    /usr/bin/python3 tests/integration/test_differential.py --tandemd build/tandemd --seed 1 --seed 2
    /usr/bin/python3 tests/integration/test_differential.py --self-check

Exit status: 0 when no reply differs, 1 when some do (the first differences are
printed), 2 when the test could not run (a server did not start, bad arguments).
"""

import argparse
import collections
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dnsdiff  # noqa: E402
import procs    # noqa: E402
import zonegen  # noqa: E402

DEFAULT_SEED = 20240611


# The accepted differences of a reference server, by its Server.name here.
LEEWAY = {"nsd": dnsdiff.nsd_leeway}


def run_queries(queries, refs, cand, apex, deadline, log, leeway=None):
    """Sends each query to every reference and to the candidate and compares the
    candidate's reply with each reference's. `refs`: a list of Servers, for which the
    result is {ref.name: [(query, (ref reply, cand reply), diffs, notes)]}, or one Server,
    for which it is that list alone. `leeway`: {ref.name: dnsdiff leeway function} for
    the references compared with their accepted differences (LEEWAY); the others are
    compared strictly."""
    if not isinstance(refs, (list, tuple)):
        return run_queries(queries, [refs], cand, apex, deadline, log, leeway)[refs.name]
    leeway = leeway or {}
    servers = list(refs) + [cand]
    results = {ref.name: [] for ref in refs}
    start = time.monotonic()
    silent = {srv.name: 0 for srv in servers}     # consecutive queries without a reply
    max_silent = 20
    for i, q in enumerate(queries):
        if time.monotonic() > deadline:
            log("query loop deadline reached after %d of %d queries" % (i, len(queries)))
            break
        replies = {}
        for srv in servers:
            try:
                raw = dnsdiff.exchange(srv.addr, q)
                replies[srv.name] = dnsdiff.analyze(raw)
            except dnsdiff.NoReply as e:
                replies[srv.name] = dnsdiff.Reply(error="no reply (%s)" % e)
        rc = replies[cand.name]
        for ref in refs:
            rr = replies[ref.name]
            diffs, notes = dnsdiff.compare(q, rr, rc, ref.name, cand.name, apex=apex,
                                           leeway=leeway.get(ref.name))
            results[ref.name].append((q, (rr, rc), diffs, notes))
        for srv in servers:
            silent[srv.name] = silent[srv.name] + 1 if replies[srv.name].error.startswith("no reply") else 0
        stuck = [n for n, c in silent.items() if c >= max_silent]
        if stuck:
            log("giving up at query %d: no reply from %s to %d queries in a row"
                % (i, ", ".join(stuck), max_silent))
            break
        gone = [srv for srv in servers if replies[srv.name].error and not srv.alive()]
        for srv in gone:
            log("%s has exited (status %s) at query %d; stderr:\n%s"
                % (srv.name, srv.proc.returncode, i, srv.stderr_text()))
        if gone:
            break
    n = len(next(iter(results.values()))) if results else 0
    log("%d queries to %d servers in %.1f s" % (n, len(servers), time.monotonic() - start))
    return results


def report(results, n_wanted, ref, cand, max_shown, log, big_names=()):
    by_cat = collections.Counter()
    by_kind = collections.Counter()
    by_kind_diff = collections.Counter()
    notes = collections.Counter()
    note_examples = {}
    failing = []
    biggest = (0, None)
    for q, replies, diffs, qnotes in results:
        by_kind[q.kind] += 1
        for n in qnotes:
            notes[n.split(":")[0]] += 1
            note_examples.setdefault(n.split(":")[0], (q, n))
        if diffs:
            failing.append((q, replies, diffs))
            by_kind_diff[q.kind] += 1
            for d in {d.category for d in diffs}:
                by_cat[d] += 1
        r = replies[0]
        if not r.error and q.qname.to_text().lower() not in big_names and len(r.raw) > biggest[0]:
            biggest = (len(r.raw), q)

    log("queries sent: %d (of %d); by kind: %s" % (
        len(results), n_wanted, ", ".join("%s %d" % kv for kv in sorted(by_kind.items()))))
    if biggest[1] is not None:
        log("largest %s reply outside the 40-record RRset: %d bytes (%s)"
            % (ref.name, biggest[0], biggest[1].describe()))
    for n, c in sorted(notes.items()):
        q, text = note_examples[n]
        log("note (not a failure): %d x %s; e.g. %s: %s" % (c, n, q.describe(), text))
    log("queries with differences: %d" % len(failing))
    if failing:
        log("  by category (a query can count in several): " +
            ", ".join("%s %d" % kv for kv in by_cat.most_common()))
        log("  by query kind: " + ", ".join("%s %d" % kv for kv in by_kind_diff.most_common()))
        log("")
        log("first %d differing queries:" % min(max_shown, len(failing)))
        for q, replies, diffs in failing[:max_shown]:
            log("- %s" % q.describe())
            for r, srv in zip(replies, (ref, cand)):
                if r.error:
                    log("    %s: %s" % (srv.name, r.error))
                else:
                    m = r.msg
                    log("    %s: %s [%s] an=%d ns=%d ar=%d %dB" % (
                        srv.name, dnsdiff.dns.rcode.to_text(m.rcode()), dnsdiff._flags_text(m.flags),
                        len(m.answer), len(m.authority), len(m.additional), len(r.raw)))
            for d in diffs:
                log("  [%s] %s" % (d.category, d.detail))
    return len(failing)


def run_seed(args, seed, log):
    """One zone and query set against fresh servers. Returns (queries wanted,
    {reference: (queries compared, queries differing)}, incomplete), or None when a server
    did not start."""
    gz = zonegen.generate(seed, args.names)
    problems = zonegen.check_with_dnspython(gz)
    if problems:
        log("zone generator bug: the file does not hold what was generated:\n" + "\n".join(problems[:20]))
        return None
    queries = dnsdiff.gen_queries(gz, args.queries, seed, extra=True)
    log("seed %d: zone %s, %d records; %d queries" % (seed, gz.origin, len(gz.records), len(queries)))

    servers = []
    outcome = {}
    with procs.TempDir(prefix="tandem-diff-", keep=args.keep) as tmp:
        if args.keep:
            log("temporary directory: %s" % tmp)
        zone_file = os.path.join(tmp, "zone.db")
        with open(zone_file, "w") as f:
            f.write(gz.text)
        try:
            try:
                refs = [procs.start_knotd(tmp, gz.origin, zone_file, name="knot", knotd=args.knotd)]
                servers += refs
                if not args.no_nsd:
                    refs.append(procs.start_nsd(tmp, gz.origin, zone_file, name="nsd", nsd=args.nsd))
                    servers.append(refs[-1])
                if args.self_check:
                    cand_file = zone_file
                    if args.perturb:
                        text, edits = zonegen.generate_perturbed(seed, args.names)
                        cand_file = os.path.join(tmp, "zone-perturbed.db")
                        with open(cand_file, "w") as f:
                            f.write(text)
                        log("perturbed zone for knot2: " + "; ".join(edits))
                    cand = procs.start_knotd(tmp, gz.origin, cand_file, name="knot2", knotd=args.knotd)
                else:
                    cand = procs.start_tandemd(os.path.abspath(args.tandemd), tmp, gz.origin, zone_file)
                servers.append(cand)
            except procs.ServerError as e:
                log("could not start a server: %s" % e)
                return None
            log(", ".join("%s on port %d" % (srv.name, srv.port) for srv in servers))
            deadline = time.monotonic() + args.time_limit
            results = run_queries(queries, refs, cand, gz.origin, deadline, log, LEEWAY)
            big = set(gz.hints["big"]) | {"cbig." + gz.origin}
            incomplete = False
            for ref in refs:
                log("")
                log("== %s compared with %s (seed %d)%s" % (
                    cand.name, ref.name, seed, "" if ref.name not in LEEWAY else
                    ", with the leeway of dnsdiff.%s_leeway" % ref.name))
                n_fail = report(results[ref.name], len(queries), ref, cand, args.show, log, big)
                outcome[ref.name] = (len(results[ref.name]), n_fail)
                incomplete |= len(results[ref.name]) < len(queries)
            for srv in servers:
                if not srv.alive():
                    log("%s is no longer running (status %s)" % (srv.name, srv.proc.returncode))
                    incomplete = True
        finally:
            for srv in reversed(servers):
                srv.stop()
    return len(queries), outcome, incomplete


def main(argv=None):
    ap = argparse.ArgumentParser(description="tandemd vs Knot DNS and NSD differential test")
    ap.add_argument("--tandemd", help="path of the tandemd binary")
    ap.add_argument("--self-check", action="store_true",
                    help="run a second knotd in place of tandemd (must give 0 differences, "
                         "also against NSD with its leeway)")
    ap.add_argument("--perturb", action="store_true",
                    help="with --self-check: serve a slightly edited zone to the second knotd "
                         "(tests the tester: must report differences)")
    ap.add_argument("--seed", type=int, action="append",
                    help="a seed (zone and queries); repeat for several (default %d)" % DEFAULT_SEED)
    ap.add_argument("--queries", type=int, default=3000,
                    help="queries per seed (and a tenth more of the extra kinds)")
    ap.add_argument("--names", type=int, default=300, help="random owner names in the zone")
    ap.add_argument("--show", type=int, default=20, help="differing queries to print")
    ap.add_argument("--time-limit", type=float, default=300.0, help="seconds for each query loop")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directories")
    ap.add_argument("--knotd", default="knotd")
    ap.add_argument("--nsd", default="nsd")
    ap.add_argument("--no-nsd", action="store_true", help="compare with Knot DNS only")
    args = ap.parse_args(argv)
    seeds = args.seed or [DEFAULT_SEED]

    def log(msg=""):
        print(msg, flush=True)

    if not args.self_check:
        if not args.tandemd:
            ap.error("--tandemd PATH or --self-check is required")
        if not (os.path.isfile(args.tandemd) and os.access(args.tandemd, os.X_OK)):
            log("tandemd binary not found or not executable: %s" % args.tandemd)
            return 2

    procs.stop_on_sigterm()
    start = time.monotonic()
    summary = []
    failed = False
    for seed in seeds:
        r = run_seed(args, seed, log)
        if r is None:
            return 2
        wanted, outcome, incomplete = r
        for ref, (compared, n_fail) in outcome.items():
            summary.append("seed %d vs %s: %d of %d queries compared, %d differ"
                           % (seed, ref, compared, wanted, n_fail))
            failed |= n_fail > 0
        if incomplete:
            summary.append("seed %d: run incomplete" % seed)
            failed = True
        log("")
    log("summary (%.1f s):" % (time.monotonic() - start))
    for line in summary:
        log("  " + line)
    if failed:
        log("FAILED")
        return 1
    log("PASSED: 0 differences")
    return 0


if __name__ == "__main__":
    sys.exit(main())

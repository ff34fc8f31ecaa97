#!/usr/bin/python3
"""Differential conformance test: tandemd against Knot DNS, answer by answer.

Generates a random zone (zonegen.py), serves it with knotd (the reference) and
with tandemd (or, with --self-check, a second knotd), sends both the same few
thousand queries (dnsdiff.py) and compares the replies.

    /usr/bin/python3 tests/integration/test_differential.py --tandemd build/tandemd
    /usr/bin/python3 tests/integration/test_differential.py --self-check

Exit status: 0 when no reply differs, 1 when some do (the first differences are
printed), 2 when the test could not run (a server did not start, bad arguments).
"""

import argparse
import collections
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dnsdiff  # noqa: E402
import procs    # noqa: E402
import zonegen  # noqa: E402

DEFAULT_SEED = 20240611


def _sigterm(signum, frame):
    # meson's timeout sends SIGTERM: unwind so the finally blocks stop the servers.
    raise SystemExit("terminated by signal %d" % signum)


def run_queries(queries, ref, cand, apex, deadline, log):
    results = []
    start = time.monotonic()
    silent = {ref.name: 0, cand.name: 0}     # consecutive queries without a reply
    max_silent = 20
    for i, q in enumerate(queries):
        if time.monotonic() > deadline:
            log("query loop deadline reached after %d of %d queries" % (i, len(queries)))
            break
        replies = []
        for srv in (ref, cand):
            try:
                raw = dnsdiff.exchange(srv.addr, q)
                replies.append(dnsdiff.analyze(raw))
            except dnsdiff.NoReply as e:
                replies.append(dnsdiff.Reply(error="no reply (%s)" % e))
        diffs, notes = dnsdiff.compare(q, replies[0], replies[1], ref.name, cand.name, apex=apex)
        results.append((q, replies, diffs, notes))
        for srv, r in zip((ref, cand), replies):
            silent[srv.name] = silent[srv.name] + 1 if r.error.startswith("no reply") else 0
        stuck = [n for n, c in silent.items() if c >= max_silent]
        if stuck:
            log("giving up at query %d: no reply from %s to %d queries in a row"
                % (i, ", ".join(stuck), max_silent))
            break
        if replies[1].error and not cand.alive():
            log("%s has exited (status %s) at query %d; stderr:\n%s"
                % (cand.name, cand.proc.returncode, i, cand.stderr_text()))
            break
        if replies[0].error and not ref.alive():
            log("%s has exited at query %d; stderr:\n%s" % (ref.name, i, ref.stderr_text()))
            break
    log("%d queries in %.1f s" % (len(results), time.monotonic() - start))
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


def main(argv=None):
    ap = argparse.ArgumentParser(description="tandemd vs Knot DNS differential test")
    ap.add_argument("--tandemd", help="path of the tandemd binary")
    ap.add_argument("--self-check", action="store_true",
                    help="run a second knotd in place of tandemd (must give 0 differences)")
    ap.add_argument("--perturb", action="store_true",
                    help="with --self-check: serve a slightly edited zone to the second knotd "
                         "(tests the tester: must report differences)")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--queries", type=int, default=3000)
    ap.add_argument("--names", type=int, default=300, help="random owner names in the zone")
    ap.add_argument("--show", type=int, default=20, help="differing queries to print")
    ap.add_argument("--time-limit", type=float, default=300.0, help="seconds for the query loop")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--knotd", default="knotd")
    args = ap.parse_args(argv)

    def log(msg=""):
        print(msg, flush=True)

    if not args.self_check:
        if not args.tandemd:
            ap.error("--tandemd PATH or --self-check is required")
        if not (os.path.isfile(args.tandemd) and os.access(args.tandemd, os.X_OK)):
            log("tandemd binary not found or not executable: %s" % args.tandemd)
            return 2

    signal.signal(signal.SIGTERM, _sigterm)
    gz = zonegen.generate(args.seed, args.names)
    problems = zonegen.check_with_dnspython(gz)
    if problems:
        log("zone generator bug: the file does not hold what was generated:\n" + "\n".join(problems[:20]))
        return 2
    queries = dnsdiff.gen_queries(gz, args.queries, args.seed)
    log("seed %d: zone %s, %d records; %d queries" % (args.seed, gz.origin, len(gz.records), len(queries)))

    servers = []
    with procs.TempDir(prefix="tandem-diff-", keep=args.keep) as tmp:
        if args.keep:
            log("temporary directory: %s" % tmp)
        zone_file = os.path.join(tmp, "zone.db")
        with open(zone_file, "w") as f:
            f.write(gz.text)
        try:
            try:
                ref = procs.start_knotd(tmp, gz.origin, zone_file, name="knot", knotd=args.knotd)
                servers.append(ref)
                if args.self_check:
                    cand_file = zone_file
                    if args.perturb:
                        text, edits = zonegen.generate_perturbed(args.seed, args.names)
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
                return 2
            log("%s on port %d, %s on port %d" % (ref.name, ref.port, cand.name, cand.port))
            deadline = time.monotonic() + args.time_limit
            results = run_queries(queries, ref, cand, gz.origin, deadline, log)
            big = set(gz.hints["big"]) | {"cbig." + gz.origin}
            n_fail = report(results, len(queries), ref, cand, args.show, log, big)
            incomplete = len(results) < len(queries)
            for srv in servers:
                if not srv.alive():
                    log("%s is no longer running (status %s)" % (srv.name, srv.proc.returncode))
                    incomplete = True
        finally:
            for srv in reversed(servers):
                srv.stop()
    if n_fail or incomplete:
        log("FAILED: %d of %d queries differ%s" % (n_fail, len(results),
                                                    "; run incomplete" if incomplete else ""))
        return 1
    log("PASSED: %d queries, 0 differences" % len(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""bench/report.py's xdp-rates section on made-up runs: the rate up to which each server
answered every query (a failure at a lower rate ends it, even with a higher rate answered
in full later), the per-round ratio, and what the report says of rounds that failed at the
lowest rate, of a server that answered every rate and of a generator that fell short;
and the cross-core round trip measured around the runs. A benchmark's arithmetic, checked
without running one."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))

import report  # noqa: E402

RATES = [100000, 200000, 300000, 400000]


def run(rnd, offered, answered, sent_pps=None, veth=0):
    sent = offered * 5
    replies = int(sent * answered)
    return {"round": rnd, "offered": offered, "sent": sent, "replies": replies,
            "sent_pps": offered if sent_pps is None else sent_pps, "replies_pps": replies // 5,
            "answered": replies / sent, "veth_dropped": veth, "others": 0.0, "attempts": 1,
            "cpus": {}}


def doc_for(runs):
    return {"settings": {"zone_names": 1000, "xdp_rate_duration": 5, "max_others": 0.75,
                         "retries": 2},
            "sections": {}}


class FullUpTo(unittest.TestCase):
    def test_stops_at_the_first_rate_with_a_loss(self):
        rs = [run(0, 100000, 1.0), run(0, 200000, 1.0), run(0, 300000, 0.999),
              run(0, 400000, 1.0)]
        self.assertEqual(report._full_up_to(rs, RATES), {0: 200000})

    def test_every_rate_in_full(self):
        rs = [run(0, r, 1.0) for r in RATES]
        self.assertEqual(report._full_up_to(rs, RATES), {0: 400000})

    def test_a_loss_at_the_lowest_rate_is_zero(self):
        rs = [run(0, r, 0.99 if r == 100000 else 1.0) for r in RATES]
        self.assertEqual(report._full_up_to(rs, RATES), {0: 0})

    def test_rounds_are_apart(self):
        rs = [run(0, r, 1.0) for r in RATES] + [run(1, r, 1.0 if r < 300000 else 0.5) for r in RATES]
        self.assertEqual(report._full_up_to(rs, RATES), {0: 400000, 1: 200000})

    def test_one_reply_short_is_not_full(self):
        r = run(0, 100000, 1.0)
        r["replies"] -= 1
        self.assertEqual(report._full_up_to([r], [100000]), {0: 0})


class Rendering(unittest.TestCase):
    def render(self, runs):
        sec = {"runs": runs, "rates": RATES, "kxdpgun": "kxdpgun -Q 400000", "notes": []}
        return "\n".join(report._xdp_rates(doc_for(runs), sec))

    def test_table_limits_ratio_and_peak(self):
        runs = {
            "tandem-xdp": [run(rnd, r, 1.0) for rnd in (0, 1) for r in RATES[:3]]
            + [run(0, 400000, 0.99, veth=20000), run(1, 400000, 1.0)],
            "knot-xdp": [run(rnd, r, 1.0 if r <= 200000 else 0.8, veth=0 if r <= 200000 else 7)
                         for rnd in (0, 1) for r in RATES],
        }
        text = self.render(runs)
        self.assertIn("| 400,000 | 398,000 | 99.500% | 1 of 2 | 320,000 | 80.000% | 0 of 2 |", text)
        self.assertIn("tandem (dpdk, net_af_xdp) 300,000 / 400,000 (median 350,000)", text)
        self.assertIn("Knot DNS (XDP) 200,000 / 200,000 (median 200,000)", text)
        self.assertIn("per round: 1.50 / 2.00; median 1.75", text)
        self.assertIn("tandem (dpdk, net_af_xdp) 398,000 at 400,000 offered; Knot DNS (XDP) "
                      "320,000 at 400,000 offered; tandem / Knot DNS (XDP) 1.24", text)
        self.assertIn("tandem (dpdk, net_af_xdp): 20,000 queries unanswered over the runs, "
                      "20,000 of them dropped", text)
        self.assertNotIn("answered every rate tried in full", text)
        self.assertNotIn("kxdpgun sent less", text)

    def test_below_the_lowest_every_rate_and_a_short_generator(self):
        runs = {
            "tandem-xdp": [run(rnd, r, 1.0) for rnd in (0, 1) for r in RATES],
            "knot-xdp": [run(0, r, 1.0) for r in RATES[:2]] + [run(0, r, 0.7) for r in RATES[2:]]
            + [run(1, r, 0.9, sent_pps=int(r * 0.9)) for r in RATES],
        }
        text = self.render(runs)
        self.assertIn("Knot DNS (XDP) 200,000 / below 100,000 (median of the 1 round(s) with a "
                      "rate: 200,000)", text)
        self.assertIn("per round: 2.00; median 2.00", text)  # the round without a rate is left out
        self.assertIn("tandem (dpdk, net_af_xdp) answered every rate tried in full: its limit is "
                      "above 400,000/s", text)
        self.assertIn("kxdpgun sent less than 97% of the offered rate (Knot DNS (XDP) at "
                      "100,000/s, Knot DNS (XDP) at 200,000/s", text)


class CrossCore(unittest.TestCase):
    """The cross-core round trip measured around each run: its median and spread, and how
    many runs began and ended with the two CPUs near each other, far apart, or changed."""

    def test_runs_near_far_and_changed(self):
        runs = {"tandem": [dict(run(0, 100000, 1.0), cross_core_ns=[78.0, 80.0]),
                           dict(run(1, 100000, 1.0), cross_core_ns=[79.0, 390.0])],
                "knot": [dict(run(0, 100000, 1.0), cross_core_ns=[77.0, 81.0]),
                         dict(run(1, 100000, 1.0), cross_core_ns=[380.0, 395.0])]}
        text = " ".join(report._cross_core(runs))
        self.assertIn("median 80 ns, 77 - 395", text)
        self.assertIn("of 4 runs, 2 began and ended near (at most 200 ns), 1 far, 1 changed", text)

    def test_a_value_at_the_threshold_is_near_and_a_missing_one_is_skipped(self):
        runs = {"tandem": [dict(run(0, 100000, 1.0), cross_core_ns=[report.FAR_NS, None]),
                           dict(run(1, 100000, 1.0), cross_core_ns=[None, report.FAR_NS + 1])]}
        self.assertIn("of 2 runs, 1 began and ended near (at most 200 ns), 1 far, 0 changed",
                      " ".join(report._cross_core(runs)))

    def test_no_measurement_no_sentence(self):
        self.assertEqual(report._cross_core({"tandem": [run(0, 100000, 1.0)]}), [])
        self.assertEqual(report._cross_core({"tandem": [dict(run(0, 100000, 1.0),
                                                             cross_core_ns=[None, None])]}), [])

    def test_header(self):
        self.assertEqual(report._cross_core_header({}), "")
        self.assertEqual(report._cross_core_header({"cross_core_ns_start": 79.4,
                                                    "cross_core_ns_end": None}),
                         "; cross-core round trip 79 ns at the start, - ns at the end")


class LoopbackSteering(unittest.TestCase):
    def test_where_loopback_receive_ran(self):
        self.assertIn("steered to CPU 1 (`--loopback-rps`)", report._steering({"loopback_rps": "2"}))
        self.assertIn("steered to CPU 0,3", report._steering({"loopback_rps": "9"}))
        self.assertIn("runs on the sending CPU", report._steering({}))


class OlderFiles(unittest.TestCase):
    """--from-json prints what an older run recorded, and says clearly when it cannot."""

    COMPARE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench",
                           "compare.py")

    def from_json(self, content):
        import subprocess
        import tempfile
        with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
            f.write(content)
            f.flush()
            return subprocess.run([sys.executable, self.COMPARE, "--from-json", f.name],
                                  capture_output=True, text=True, timeout=30)

    def test_runs_from_before_the_disturbance_check(self):
        self.assertEqual(report._disturbed({"settings": {}}, {"tandem": [run(0, 100000, 1.0)]}), [])

    def test_unreadable_files_get_a_clear_error(self):
        r = self.from_json("not json")
        self.assertEqual(r.returncode, 1)
        self.assertIn("not JSON", r.stderr)
        r = self.from_json('{"settings": {}}')
        self.assertEqual(r.returncode, 1)
        self.assertIn("not a run this version can print", r.stderr)
        self.assertNotIn("Traceback", r.stderr)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + sys.argv[1:], verbosity=2)

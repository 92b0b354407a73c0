"""bench/official/ratios.py, the table of bench/compare_official.sh: the Video Swin cases pair round by round
(a drift of the machine between rounds must not enter a ratio), the floors are read from bevt's own figures, and a
missing or unpaired case stops it with a one-line message. Standard library only.

Run: ctest -R bench.ratios, or python3 tests/python/test_bench_ratios.py.
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
RATIOS = os.path.abspath(os.path.join(HERE, "..", "..", "bench", "official", "ratios.py"))


def bevt_rows(speed):
    """bevt's JSON lines of one round on a machine running at `speed` (1 = nominal; 2 = twice as slow)."""
    swin = lambda name, t, extra: dict(name=name, median_s=t * speed, min_s=t * speed, max_s=t * speed,
                                       peak_rss_mb=900, floor_s=t / 2, matmul_s=t * speed * 0.7,
                                       matmul_gflop=10.0, sgemm_gflops=200.0, fraction_of_sgemm=0.5,
                                       matmul_shapes_gflops=130.0, **extra)
    return [swin("video_swin_t train step (fwd+bwd+AdamW)", 0.3, dict(tensor_peak_mb=140, activation_mb=250)),
            swin("video_swin_t eval forward 1x3x8x112x112", 0.1, {}),
            swin("video_swin_t train step + grad checkpointing", 0.36, dict(tensor_peak_mb=35, activation_mb=190)),
            swin("video_swin_t train step + grad checkpointing (stages 1,2,3)", 0.33,
                 dict(tensor_peak_mb=35, activation_mb=200))]


def official_rows(speed):
    return [dict(name=n, median_s=t * speed, min_s=t * speed, max_s=t * speed, peak_rss_mb=1000)
            for n, t in (("official video_swin_t train step", 0.45), ("official video_swin_t eval forward 1x3x8x112x112", 0.12),
                         ("official video_swin_t train step + use_checkpoint", 0.55))]


FIXED_BEVT = [
    dict(name="bevt_pretrain_step", median_s=4.0, min_s=4.0, max_s=4.0, peak_rss_mb=2600, sgemm_gflops=200.0,
         tokenizer_s=2.5, encoder_forward_s=0.5, decoders_loss_s=0.1, backward_s=0.8, optimizer_s=0.04),
    dict(name="dalle tokenize 10x3x112x112 t2", median_s=3.0, min_s=3.0, max_s=3.0, peak_rss_mb=1000, gflops=170.0,
         sgemm_gflops=200.0)]
FIXED_OFFICIAL = [
    dict(name="official torch.mm 2048^3 (sgemm)", median_s=0.09, min_s=0.09, max_s=0.09, peak_rss_mb=600, gflops=190.0),
    dict(name="official dalle encoder 10x3x112x112", median_s=3.8, min_s=3.8, max_s=3.8, peak_rss_mb=1300, gflops=135.0),
    dict(name="official bevt_pretrain_step", median_s=6.0, min_s=6.0, max_s=6.0, peak_rss_mb=3000,
         iteration_gflop=800.0, tokenizer_s=3.8, encoder_forward_s=0.55, decoders_loss_s=0.25, backward_s=1.3,
         optimizer_s=0.09)]


def run(ours, off):
    with tempfile.TemporaryDirectory() as d:
        paths = []
        for name, rows in (("bevt.jsonl", ours), ("official.jsonl", off)):
            p = os.path.join(d, name)
            with open(p, "w") as f:
                f.write("# a comment line, as the benches print\n")
                for r in rows:
                    f.write(json.dumps(r) + "\n")
            paths.append(p)
        return subprocess.run([sys.executable, RATIOS] + paths, capture_output=True, text=True)


def table(out):
    """case name -> (bevt, official, figure, goal, met)"""
    rows = {}
    for line in out.splitlines()[1:]:
        cells = [c.strip() for c in line.split(" | ")]
        rows[cells[0]] = cells[1:]
    return rows


class RatiosTest(unittest.TestCase):
    def test_rounds_pair_so_that_a_drifting_machine_gives_one_ratio(self):
        # The machine runs twice as slow in bevt's round 1 and in the official rounds 1 and 2. Paired by round, the
        # train ratios are 1.5, 3.0, 1.5 (median 1.5); the medians of the two sides unpaired would give 3.0.
        ours = FIXED_BEVT + bevt_rows(2.0) + bevt_rows(1.0) + bevt_rows(1.0)
        off = FIXED_OFFICIAL + official_rows(2.0) + official_rows(2.0) + official_rows(1.0)
        p = run(ours, off)
        self.assertEqual(p.returncode, 0, p.stderr)
        t = table(p.stdout)
        train, evl = t["Swin-T train step 1x3x8x112^2"], t["Swin-T eval forward"]
        self.assertTrue(train[2].startswith("1.50 (1.50-3.00)x"), train[2])
        self.assertTrue(evl[2].startswith("1.20 (1.20-2.40)x"), evl[2])
        self.assertEqual(train[4], "NO")
        # The bounds, round by round: official / floor_s (0.9, 0.9, 0.45 over 0.15 s) and official / matmul_s
        # (0.9 / 0.42, 0.9 / 0.21, 0.45 / 0.21).
        self.assertIn("at most 6.00 (3.00-6.00)x", train[2])
        self.assertIn("at most 2.14 (2.14-4.29)x", train[2])
        ck = t["Grad checkpointing (Swin-T step)"]
        self.assertIn("0.25 (0.25-0.25)x tensor memory", ck[2])
        self.assertIn("at 1.20 (1.20-1.20)x time", ck[2])
        self.assertEqual(ck[4], "yes")
        part = t["stages 1,2,3 only"]
        self.assertIn("at 1.10 (1.10-1.10)x time", part[2])
        it = t["BEVT iteration (bevt_pretrain_step)"]
        self.assertTrue(it[2].startswith("1.50x; 1.00x the floor (4.00 s = 800 GFLOP / 200 GFLOP/s)"), it[2])
        self.assertEqual(it[4], "yes")
        self.assertIn("85% of sgemm", t["DALL-E encoder 10x3x112^2"][2])

    def test_the_official_checkpointed_step_is_not_taken_for_the_plain_one(self):
        p = run(FIXED_BEVT + bevt_rows(1.0), FIXED_OFFICIAL + official_rows(1.0))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(table(p.stdout)["Swin-T train step 1x3x8x112^2"][1], "0.450 s")

    def test_a_round_that_failed_on_one_side_is_an_error(self):
        p = run(FIXED_BEVT + bevt_rows(1.0) + bevt_rows(1.0), FIXED_OFFICIAL + official_rows(1.0))
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(p.stderr.strip().count("\n"), 0, p.stderr)
        self.assertIn("different numbers of rounds", p.stderr)

    def test_a_missing_case_names_it(self):
        p = run(FIXED_BEVT[:1] + bevt_rows(1.0), FIXED_OFFICIAL + official_rows(1.0))
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("no case 'dalle tokenize'", p.stderr)


if __name__ == "__main__":
    unittest.main()

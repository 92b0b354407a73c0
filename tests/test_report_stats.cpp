// bevt-report's error bars (issue #18): mean ± sample std over the runs of one table cell (seeds), and the
// "not significant (< 2 std)" marking, checked against numbers computed by hand.
#include <gtest/gtest.h>

#include "bevt_report.h"
#include "bevt_report_stats.h"

namespace r = bevt::report;

namespace {

// A probe run of `row` with top-1 `all` and per-family full-clip accuracies.
r::Run probe(const std::string& row, double all, double motion, double appearance) {
  r::Run run;
  run.mode = "probe";
  run.row = row;
  run.column = "synthetic";
  nlohmann::json fam = {{"motion", motion}, {"appearance", appearance}};
  run.results = {{"top1", all},
                 {"full", {{"top1", all}, {"per_family", fam}}},
                 {"single_frame", {{"top1", all / 2}, {"per_family", fam}}},
                 {"shuffled", {{"top1", all / 2}, {"per_family", fam}}}};
  return run;
}

const std::vector<std::string>* find_row(const r::Table& t, const std::vector<std::string>& prefix) {
  for (const auto& row : t.rows)
    if (std::equal(prefix.begin(), prefix.end(), row.begin())) return &row;
  return nullptr;
}

}  // namespace

TEST(ReportStats, MeanAndSampleStd) {
  // 0.641, 0.615, 0.526: mean 0.594; squared deviations 0.002209 + 0.000441 + 0.004624 = 0.007274; / 2 → std
  // sqrt(0.003637) = 0.060308.
  r::Stat s = r::summarize({0.641, 0.615, 0.526});
  EXPECT_EQ(s.n, 3u);
  EXPECT_NEAR(s.mean, 0.594, 1e-12);
  EXPECT_NEAR(s.std, 0.060308, 1e-6);
  EXPECT_EQ(r::format_stat(s), "59.4 ± 6.0");
  r::Stat one = r::summarize({0.745});
  EXPECT_TRUE(std::isnan(one.std));
  EXPECT_EQ(r::format_stat(one), "74.5");
  EXPECT_EQ(r::format_stat(r::summarize({})), "");
}

TEST(ReportStats, DifferencesBelowTwoStdAreNotSignificant) {
  r::Stat bevt = r::summarize({0.641, 0.615, 0.526});     // 59.4 ± 6.03
  r::Stat scratch = r::summarize({0.745, 0.807, 0.656});  // 73.6 ± 7.59 (squares 0.011522 / 2)
  r::Stat tight = r::summarize({0.90, 0.91, 0.92});       // 91.0 ± 1.0
  EXPECT_NEAR(scratch.std, 0.075901, 1e-6);
  // 14.2 points apart, 2 × 7.59 = 15.2: not significant.
  EXPECT_EQ(r::compare(scratch, bevt), r::Verdict::not_significant);
  // 31.6 points apart, 2 × 6.03 = 12.1 (the larger std counts, not the tight row's): significant.
  EXPECT_EQ(r::compare(tight, bevt), r::Verdict::significant);
  EXPECT_EQ(r::compare(bevt, tight), r::Verdict::significant);
  // One run cannot be judged.
  EXPECT_EQ(r::compare(r::summarize({0.9}), bevt), r::Verdict::unknown);
  EXPECT_STREQ(r::verdict_text(r::Verdict::not_significant), "not significant (< 2 std)");
}

TEST(ReportStats, TablesAggregateTheSeedsOfARow) {
  std::vector<r::Run> runs;
  // Three seeds each of two rows; motion differs a lot, appearance little. One row has a single run.
  runs.push_back(probe("BEVT", 0.641, 0.80, 0.70));
  runs.push_back(probe("BEVT", 0.615, 0.82, 0.72));
  runs.push_back(probe("BEVT", 0.526, 0.84, 0.74));
  runs.push_back(probe("scratch", 0.745, 0.40, 0.71));
  runs.push_back(probe("scratch", 0.807, 0.42, 0.73));
  runs.push_back(probe("scratch", 0.656, 0.44, 0.75));
  runs.push_back(probe("single", 0.5, 0.5, 0.5));
  // A fine-tune run's validation is not averaged in where the row has probe runs.
  r::Run ft;
  ft.mode = "finetune";
  ft.row = "BEVT";
  ft.column = "synthetic";
  ft.results = {{"top1", 0.1}};
  runs.push_back(ft);

  r::Table ft_table = r::finetune_table(runs, nullptr);
  ASSERT_EQ(ft_table.header, (std::vector<std::string>{"pre-training", "synthetic", "runs"}));
  EXPECT_EQ(ft_table.rows[0], (std::vector<std::string>{"BEVT", "59.4 ± 6.0", "3"}));
  EXPECT_EQ(ft_table.rows[1], (std::vector<std::string>{"scratch", "73.6 ± 7.6", "3"}));
  EXPECT_EQ(ft_table.rows[2], (std::vector<std::string>{"single", "50.0", "1"}));

  r::Table probes = r::probe_table(runs);
  const auto* motion = find_row(probes, {"BEVT", "synthetic", "motion"});
  ASSERT_NE(motion, nullptr);
  EXPECT_EQ((*motion)[3], "82.0 ± 2.0");  // 0.80, 0.82, 0.84
  ASSERT_EQ(probes.rows.size(), 3u * 3u);  // three rows × (all, motion, appearance)

  r::Table sig = r::significance_table(runs);
  const auto* all = find_row(sig, {"synthetic", "all", "BEVT", "scratch"});
  ASSERT_NE(all, nullptr);
  EXPECT_EQ((*all)[6], "-14.2");
  EXPECT_EQ((*all)[7], "15.2");
  EXPECT_EQ((*all)[8], "not significant (< 2 std)");
  const auto* mot = find_row(sig, {"synthetic", "motion", "BEVT", "scratch"});
  ASSERT_NE(mot, nullptr);
  EXPECT_EQ((*mot)[6], "+40.0");
  EXPECT_EQ((*mot)[8], "significant");
  const auto* app = find_row(sig, {"synthetic", "appearance", "BEVT", "scratch"});
  ASSERT_NE(app, nullptr);
  EXPECT_EQ((*app)[8], "not significant (< 2 std)");
  // The single-run row is not compared.
  for (const auto& row : sig.rows) EXPECT_NE(row[3], "single");
}

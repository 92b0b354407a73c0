// Plan files (core/src/host/orchestrate/plan.h): the one format of multi-stage pipelines and ablation suites.
// The reader and the checks made before any stage runs; nothing here trains (the stages run in test_ablations
// and test_timesformer_bevt).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "host/orchestrate/plan.h"
#include "host/orchestrate/runner.h"
#include "test_sandbox.h"

namespace t = bevt::test;
namespace fs = std::filesystem;
using namespace bevt::host::orchestrate;

namespace {

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A stage experiment file that loads without plugins: host tables only.
void write_stage(const fs::path& f, const fs::path& work_dir) {
  t::write_file(f, "[run]\nmode = \"finetune\"\ndevice = \"cpu\"\nwork_dir = \"" + work_dir.string() + "\"\n");
}

// A plan with string and table stages and one variant, its stage files next to it (b.toml in a subfolder).
fs::path write_plan(const fs::path& d) {
  write_stage(d / "a.toml", d / "wd" / "a");
  write_stage(d / "sub" / "b.toml", d / "wd" / "b");
  write_stage(d / "c.toml", d / "wd" / "c");
  t::write_file(d / "ref.csv", "strategy,x\n");
  t::write_file(d / "plan.toml", R"(# a comment
[plan]
title = "A plan"
reference = "ref.csv"
stages = [
  "a.toml",
  { file = "sub/b.toml", row = "B", column = "X" },
]

[plan.variants.other]
stages = ["c.toml", { file = "a.toml", row = "A" }]
)");
  return d / "plan.toml";
}

}  // namespace

TEST(PlanReader, StringAndTableStages) {
  auto d = t::temp_dir("plan_stages");
  const fs::path f = write_plan(d);
  PlanSpec p = read_plan(f.string(), {});
  EXPECT_EQ(p.source, f.string());
  EXPECT_EQ(p.title, "A plan");
  EXPECT_EQ(p.work_dir, "work_dirs/plan");  // a plan file's default, as an experiment's
  EXPECT_EQ(p.reference, (d / "ref.csv").string());
  EXPECT_EQ(p.variant, "");
  EXPECT_EQ(p.variants, std::vector<std::string>{"other"});
  ASSERT_EQ(p.stages.size(), 2u);
  EXPECT_EQ(p.stages[0].name, "a.toml");
  EXPECT_EQ(p.stages[0].file, (d / "a.toml").string());
  EXPECT_EQ(p.stages[0].row, "");
  EXPECT_EQ(p.stages[1].name, "sub/b.toml");
  EXPECT_EQ(p.stages[1].file, (d / "sub" / "b.toml").string());
  EXPECT_EQ(p.stages[1].row, "B");
  EXPECT_EQ(p.stages[1].column, "X");
  EXPECT_TRUE(is_plan_file(f.string()));
  EXPECT_FALSE(is_plan_file((d / "a.toml").string()));
  EXPECT_FALSE(is_plan_file((d / "missing.toml").string()));
  EXPECT_FALSE(is_plan_file(d.string()));
}

TEST(PlanReader, VariantsAndSetPlanKeys) {
  auto d = t::temp_dir("plan_variants");
  const fs::path f = write_plan(d);
  PlanSpec p = read_plan(f.string(), {"plan.variant=other", "plan.work_dir='" + (d / "out").string() + "'",
                                      "plan.title=renamed"});
  EXPECT_EQ(p.variant, "other");
  EXPECT_EQ(p.work_dir, (d / "out").string());
  EXPECT_EQ(p.title, "renamed");  // a bare word is a string
  ASSERT_EQ(p.stages.size(), 2u);
  EXPECT_EQ(p.stages[0].name, "c.toml");
  EXPECT_EQ(p.stages[1].name, "a.toml");
  EXPECT_EQ(p.stages[1].row, "A");

  // --set splits into the plan's keys and every stage's; the old pipeline keys say what to write now.
  SplitOverrides s = split_overrides({"plan.variant=other", "run.seed=3", "optim.lr=0.1"});
  EXPECT_EQ(s.plan, std::vector<std::string>{"plan.variant=other"});
  EXPECT_EQ(s.stages, (std::vector<std::string>{"run.seed=3", "optim.lr=0.1"}));
  std::string err = t::error_of([] { split_overrides({"pipeline.variant=timesformer"}); });
  EXPECT_TRUE(has(err, "--set pipeline.variant=timesformer: [pipeline] is now [plan]")) << err;
  EXPECT_TRUE(has(err, "--set plan.variant=")) << err;

  // An undefined variant names where it was set, the variants defined and the nearest one.
  err = t::error_of([&] { read_plan(f.string(), {"plan.variant=othr"}); });
  EXPECT_TRUE(has(err, "--set plan.variant=othr: plan.variant 'othr' is not defined in [plan.variants] "
                       "(defined: other)")) << err;
  EXPECT_TRUE(has(err, "did you mean 'other'")) << err;
  // A stage list given on the command line, and an unknown key set there.
  p = read_plan(f.string(), {"plan.stages=['c.toml']"});
  ASSERT_EQ(p.stages.size(), 1u);
  EXPECT_EQ(p.stages[0].name, "c.toml");
  err = t::error_of([&] { read_plan(f.string(), {"plan.varient=other"}); });
  EXPECT_TRUE(has(err, "--set plan.varient=other: unknown key 'varient' in [plan], did you mean 'variant'")) << err;
}

TEST(PlanReader, UnknownKeysNameFileLineAndNearestKey) {
  auto d = t::temp_dir("plan_unknown");
  write_stage(d / "a.toml", d / "wd" / "a");
  auto err_of = [&](const std::string& text) {
    t::write_file(d / "p.toml", text);
    return t::error_of([&] { read_plan((d / "p.toml").string(), {}); });
  };
  const std::string p = (d / "p.toml").string();
  std::string err = err_of("[plan]\nstages = [\"a.toml\"]\ntitel = \"x\"\n");
  EXPECT_TRUE(has(err, p + ":3: unknown key 'titel' in [plan], did you mean 'title'")) << err;
  err = err_of("[plan]\nstages = [\n  { file = \"a.toml\", colum = \"K400\" },\n]\n");
  EXPECT_TRUE(has(err, p + ":3: unknown key 'colum' in plan.stages entry, did you mean 'column'")) << err;
  err = err_of("[plan]\nstages = [\"a.toml\"]\n[plan.variants.v]\nstage = [\"a.toml\"]\n");
  EXPECT_TRUE(has(err, p + ":4: unknown key 'stage' in [plan.variants.v], did you mean 'stages'")) << err;
  err = err_of("[plan]\nstages = [\"a.toml\"]\n[plna]\nx = 1\n");
  EXPECT_TRUE(has(err, p + ":3: unknown key 'plna' in a plan file")) << err;
  EXPECT_TRUE(has(err, "did you mean 'plan'")) << err;
  // Far from every key: the known keys are listed.
  err = err_of("[plan]\nstages = [\"a.toml\"]\nzzzzzz = 1\n");
  EXPECT_TRUE(has(err, p + ":3: unknown key 'zzzzzz' in [plan] (known: ")) << err;
  // Wrong types, a missing stage file, an empty list, invalid TOML.
  err = err_of("[plan]\nstages = \"a.toml\"\n");
  EXPECT_TRUE(has(err, p + ":2: plan.stages must be a list")) << err;
  err = err_of("[plan]\ntitle = 3\nstages = [\"a.toml\"]\n");
  EXPECT_TRUE(has(err, p + ":2: plan.title must be a string")) << err;
  err = err_of("[plan]\nstages = [\n  \"a.toml\",\n  \"nope.toml\",\n]\n");
  EXPECT_TRUE(has(err, p + ":4: stage file 'nope.toml' not found")) << err;
  err = err_of("[plan]\nstages = []\n");
  EXPECT_TRUE(has(err, p + ":2: plan.stages is empty")) << err;
  err = err_of("[plan]\nstages = [\n");
  EXPECT_TRUE(has(err, p + ":")) << err;
  EXPECT_TRUE(has(err, "invalid TOML")) << err;
}

TEST(PlanReader, OldFormatsSayHowToWriteThem) {
  auto d = t::temp_dir("plan_old");
  write_stage(d / "a.toml", d / "wd" / "a");
  const std::string p = (d / "p.toml").string();
  auto err_of = [&](const std::string& text) {
    t::write_file(p, text);
    EXPECT_TRUE(is_plan_file(p)) << text;
    return t::error_of([&] { read_plan(p, {}); });
  };
  std::string err = err_of("[run]\nmode = \"pipeline\"\n\n[pipeline]\nstages = [\"a.toml\"]\n");
  EXPECT_TRUE(has(err, p + ":2: run.mode = \"pipeline\" is the old pipeline format")) << err;
  EXPECT_TRUE(has(err, "[plan] stages = [...]")) << err;
  EXPECT_EQ(err.find('\n'), std::string::npos) << err;
  err = err_of("[pipeline]\nstages = [\"a.toml\"]\n");
  EXPECT_TRUE(has(err, p + ":1: [pipeline] is the old pipeline format: rename it [plan]")) << err;
  err = err_of("[suite]\ntitle = \"x\"\n\n[[experiment]]\nfile = \"a.toml\"\nrow = \"A\"\n");
  EXPECT_TRUE(has(err, p + ":4: [[experiment]] tables are the old suite format")) << err;
  EXPECT_TRUE(has(err, "stages = [{ file = \"x.toml\", row = \"...\", column = \"...\" }, ...]")) << err;
  err = err_of("[suite]\ntitle = \"x\"\n");
  EXPECT_TRUE(has(err, p + ":1: [suite] is the old suite format")) << err;
  // A suite folder's suite.toml in the old format fails the same way.
  t::write_file(d / "s" / "suite.toml", "[[experiment]]\nfile = \"x.toml\"\n");
  err = t::error_of([&] { read_suite((d / "s").string(), {}); });
  EXPECT_TRUE(has(err, "s/suite.toml:1: [[experiment]] tables are the old suite format")) << err;
}

TEST(PlanReader, SuiteFolders) {
  auto d = t::temp_dir("plan_suite");
  std::string err = t::error_of([&] { read_suite((d / "missing").string(), {}); });
  EXPECT_TRUE(has(err, "no such folder")) << err;
  // Without suite.toml: the folder's *.toml sorted by name, '_'-prefixed bases left out.
  t::write_file(d / "e" / "_base.toml", "[run]\nmode = \"finetune\"\n");
  write_stage(d / "e" / "2_second.toml", d / "w2");
  write_stage(d / "e" / "10_first.toml", d / "w1");
  PlanSpec p = read_suite((d / "e").string(), {"plan.title=T"});
  ASSERT_EQ(p.stages.size(), 2u);
  EXPECT_EQ(p.stages[0].name, "10_first.toml");
  EXPECT_EQ(p.stages[1].name, "2_second.toml");
  EXPECT_EQ(p.title, "T");
  EXPECT_EQ(p.work_dir, "work_dirs/suites/e");
  // With suite.toml: a plan file whose default work_dir is the folder's, under experiments/ its path there.
  write_stage(d / "experiments" / "abl" / "x" / "one.toml", d / "w3");
  t::write_file(d / "experiments" / "abl" / "x" / "suite.toml", "[plan]\nstages = [\"one.toml\"]\n");
  p = read_suite((d / "experiments" / "abl" / "x").string(), {});
  EXPECT_EQ(p.work_dir, "work_dirs/abl/x");
  EXPECT_EQ(read_plan((d / "experiments" / "abl" / "x" / "suite.toml").string(), {}).work_dir, "work_dirs/abl/x");
}

TEST(PlanCheck, EveryStageLoadsAndNoTwoShareAWorkDir) {
  auto d = t::temp_dir("plan_check");
  const fs::path f = write_plan(d);
  CheckedPlan c = check_plan(read_plan(f.string(), {}), {});
  ASSERT_EQ(c.stages.size(), 2u);
  EXPECT_EQ(c.stages[1].work_dir, (d / "wd" / "b").string());
  EXPECT_FALSE(c.stages[0].run_hash.empty());
  // Overrides reach the stages' hashes.
  CheckedPlan seeded = check_plan(read_plan(f.string(), {}), {{"run.seed=7"}, {}});
  EXPECT_NE(seeded.stages[0].run_hash, c.stages[0].run_hash);

  // Two stages writing one work_dir, or a stage writing the plan's, are refused.
  write_stage(d / "sub" / "b.toml", d / "wd" / "a");
  std::string err = t::error_of([&] { check_plan(read_plan(f.string(), {}), {}); });
  EXPECT_TRUE(has(err, "stages a.toml and sub/b.toml both write work_dir " + (d / "wd" / "a").string())) << err;
  err = t::error_of([&] {
    check_plan(read_plan(f.string(), {"plan.work_dir='" + (d / "wd" / "a").string() + "'"}), {});
  });
  EXPECT_TRUE(has(err, "stage a.toml writes work_dir " + (d / "wd" / "a").string() + ", where the plan writes")) << err;
  // A typo in the last stage fails before anything runs; a plan is not a stage.
  t::write_file(d / "sub" / "b.toml", "[run]\nmode = \"finetune\"\nepochz = 1\n");
  err = t::error_of([&] { check_plan(read_plan(f.string(), {}), {}); });
  EXPECT_TRUE(has(err, "epochz")) << err;
  err = t::error_of([&] { check_plan(read_plan(f.string(), {"plan.stages=['plan.toml']"}), {}); });
  EXPECT_TRUE(has(err, "stage plan.toml is itself a plan")) << err;
}

TEST(PlanShipped, QuickstartAndItsTimesformerVariant) {
  const fs::path ex = fs::path(BEVT_SOURCE_DIR) / "experiments";
  const std::string qs = (ex / "quickstart.toml").string();
  ASSERT_TRUE(is_plan_file(qs));
  PlanSpec swin = read_plan(qs, {});
  PlanSpec tsf = read_plan(qs, {"plan.variant=timesformer"});
  EXPECT_EQ(swin.work_dir, "work_dirs/quickstart");
  EXPECT_EQ(tsf.variant, "timesformer");
  ASSERT_EQ(swin.stages.size(), 4u);
  ASSERT_EQ(tsf.stages.size(), 4u);
  EXPECT_EQ(tsf.stages[0].name, swin.stages[0].name);  // the tokenizer stage is shared
  for (size_t i = 1; i < 4; ++i) EXPECT_TRUE(has(tsf.stages[i].name, "timesformer/")) << tsf.stages[i].name;
  for (const auto& p : {swin, tsf}) EXPECT_NO_THROW(check_plan(p, {})) << t::error_of([&] { check_plan(p, {}); });
  const std::string peco = (ex / "tokenizers" / "peco_small.toml").string();
  ASSERT_TRUE(is_plan_file(peco));
  EXPECT_NO_THROW(check_plan(read_plan(peco, {}), {})) << t::error_of([&] { check_plan(read_plan(peco, {}), {}); });
}

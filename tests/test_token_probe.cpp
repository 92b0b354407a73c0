// run.mode = "token_probe" through the real bevt-run on tiny generated data: the three feature sets of a
// regression target (hog) and of a token tokenizer (vq), the same numbers twice, the report's table, and
// one-line errors for data the probe cannot read.
#include <gtest/gtest.h>

#include "run_outputs.h"

namespace t = bevt::test;

namespace {

std::string clips(const std::string& slot, const std::string& split, int n, int clip_len, bool views = true) {
  return "[" + slot + "]\nplugin = \"synthetic\"\nsplit = \"" + split + "\"\nnum_videos = " + std::to_string(n) +
         "\nclasses = [\"motion/left\", \"motion/right\", \"appearance/disc\", \"appearance/triangle\"]\n"
         "frames = 16\nsize = 32\nclip_len = " + std::to_string(clip_len) +
         "\nframe_interval = 2\nscale_range = []\ncrop = \"none\"\ncrop_size = 32\nflip = 0.0\n" +
         (views ? "tokenizer_size = 32\n" : "") + (split == "test" ? "test_mode = true\n" : "");
}

std::string probe_toml(const std::filesystem::path& work, const std::string& tokenizer, int test_clip_len = 4,
                       bool views = true) {
  return "[run]\nmode = \"token_probe\"\nwork_dir = \"" + work.string() + "\"\ndevice = \"cpu\"\nthreads = 2\n" +
         tokenizer + clips("data.train", "train", 96, 4, views) + clips("data.test", "test", 64, test_clip_len, views) +
         "[loader]\neval_batch_size = 32\n";
}

const std::string kHog = "[tokenizer]\nplugin = \"hog\"\ninput_size = 32\ndownsample = 8\ncell = 4\nluma = true\n";

}  // namespace

TEST(TokenProbe, HogTargetsThreeFeatureSetsSameNumbersTwiceAndTheReportTable) {
  auto d = t::temp_dir("token_probe_hog");
  t::write_file(d / "p.toml", probe_toml(d / "p", kHog));
  auto r = t::bevt_run(d / "p.toml");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("| features | dims | ridge | leave-one-out top-1 | test top-1 |"), std::string::npos)
      << r.output;
  auto j = t::read_json(d / "p" / "results.json");
  EXPECT_EQ(j["mode"], "token_probe");
  EXPECT_EQ(j["targets"], "regression");
  EXPECT_DOUBLE_EQ(j["chance"].get<double>(), 0.25);
  // 4 frames x 16 cells; hog: 36 values a cell (2x2 HOG cells x 9 bins); colour: 3 values a cell.
  const std::map<std::string, int64_t> dims{{"bag", 36}, {"grid", 4 * 16 * 36}, {"colour", 4 * 16 * 3}};
  for (const auto& [name, n] : dims) {
    const auto& f = j["features"][name];
    EXPECT_EQ(f["dims"].get<int64_t>(), n) << name;
    EXPECT_EQ(f["samples"].get<int64_t>(), 64) << name;
    int64_t total = 0;
    for (const auto& row : f["confusion"])
      for (const auto& v : row) total += v.get<int64_t>();
    EXPECT_EQ(total, 64) << name;
    for (const char* fam : {"motion", "appearance"}) EXPECT_TRUE(f["per_family"].contains(fam)) << name;
    EXPECT_GE(f["top1"].get<double>(), 0.0);
    EXPECT_LE(f["top1"].get<double>(), 1.0);
    EXPECT_EQ(f["ridges_tried"].size(), 13u) << name;
  }
  // Gradient orientations in time order tell the moving and the drawn shapes apart far better than the
  // cells' mean colours do.
  EXPECT_GT(j["features"]["grid"]["top1"].get<double>(), j["features"]["colour"]["top1"].get<double>() + 0.1)
      << j["table"].get<std::string>();
  // No seed, no training: a second run gives the same numbers.
  t::write_file(d / "q.toml", probe_toml(d / "q", kHog));
  ASSERT_EQ(t::bevt_run(d / "q.toml").status, 0);
  EXPECT_EQ(t::read_json(d / "q" / "results.json")["features"], j["features"]);
  // bevt-report's target-content table.
  auto rep = t::run(t::bin("bevt-report") + " " + (d / "p").string() + " --out " + (d / "rep").string());
  ASSERT_EQ(rep.status, 0) << rep.output;
  const std::string csv = t::read_text(d / "rep" / "token_probe.csv");
  EXPECT_NE(csv.find("targets,features,dims,all,appearance,motion,chance"), std::string::npos) << csv;
  EXPECT_NE(csv.find(",grid,2304,"), std::string::npos) << csv;
}

TEST(TokenProbe, TokenIdsOfAnUntrainedVqAreOneHotFeatures) {
  auto d = t::temp_dir("token_probe_vq");
  t::write_file(d / "p.toml",
                probe_toml(d / "p", "[tokenizer]\nplugin = \"vq\"\ninput_size = 32\ndownsample = 8\nvocab_size = 16\n"));
  auto r = t::bevt_run(d / "p.toml");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("no trained weights"), std::string::npos) << r.output;
  auto j = t::read_json(d / "p" / "results.json");
  EXPECT_EQ(j["targets"], "token ids");
  EXPECT_EQ(j["features"]["bag"]["dims"].get<int64_t>(), 16);
  EXPECT_EQ(j["features"]["grid"]["dims"].get<int64_t>(), 4 * 16 * 16);
}

TEST(TokenProbe, DataItCannotReadIsAOneLineErrorWithStatus2) {
  auto d = t::temp_dir("token_probe_bad");
  // Test clips of another length than the training clips: the features differ in size.
  t::write_file(d / "len.toml", probe_toml(d / "len", kHog, 2));
  auto r = t::bevt_run(d / "len.toml");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("use the same clip_len and tokenizer_size"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(d / "len" / "results.json"));
  // No tokenizer views.
  t::write_file(d / "views.toml", probe_toml(d / "views", kHog, 4, false));
  r = t::bevt_run(d / "views.toml");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("[data.train] gives no tokenizer view"), std::string::npos) << r.output;
  // No test set.
  std::string toml = probe_toml(d / "none", kHog);
  toml = toml.substr(0, toml.find("[data.test]")) + "[loader]\neval_batch_size = 32\n";
  t::write_file(d / "none.toml", toml);
  r = t::bevt_run(d / "none.toml");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("data.test] or [data.val]"), std::string::npos) << r.output;
}

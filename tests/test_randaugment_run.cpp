// Issue 15 through the real bevt-run: the SSv2 augmentation keys train on a tiny generated set, and a bad value
// of them is one line naming the table with exit status 2.
#include <gtest/gtest.h>

#include <algorithm>

#include "test_sandbox.h"

namespace t = bevt::test;

namespace {

std::string experiment(const std::filesystem::path& dir, const std::string& train_keys) {
  return "[run]\nmode = 'finetune'\ndevice = 'cpu'\nmax_steps = 2\nwork_dir = '" + (dir / "wd").string() +
         "'\n[model.backbone]\nplugin = 'toy_backbone'\n[model.heads.cls]\nplugin = 'i3d'\n"
         "[data.train]\nplugin = 'synthetic'\nstorage = 'memory'\nnum_videos = 4\nframes = 4\nsize = 32\n"
         "clip_len = 4\nscale_range = []\ncrop = 'random_resized'\ncrop_size = 32\nflip = 0.0\n" +
         train_keys + "[loader]\nbatch_size = 2\nworkers = 1\n";
}

t::CmdResult bevt_run(const std::filesystem::path& toml) {
  return t::run("BEVT_PLUGIN_PATH=" + t::test_plugins("good") + " " + t::bin("bevt-run") + " --log-level warn " +
                toml.string());
}

}  // namespace

TEST(SsvTwoAugmentationRun, TrainsWithTheOfficialKeys) {
  auto dir = t::temp_dir("randaugment_run_ok");
  t::write_file(dir / "exp.toml", experiment(dir, "rand_augment = [4, 7]\nrand_augment_flip = false\n"
                                                  "random_erasing = 0.25\nrandom_erasing_mode = 'const'\n"));
  auto res = bevt_run(dir / "exp.toml");
  EXPECT_EQ(res.status, 0) << res.output;
}

TEST(SsvTwoAugmentationRun, BadValuesAreOneLineWithStatus2) {
  auto dir = t::temp_dir("randaugment_run_bad");
  struct Case {
    std::string keys, expect;
  } cases[] = {
      {"random_erasing_mode = 'noise'\n", ":21: random_erasing_mode = 'noise' (expected const, rand or pixel"},
      {"rand_augment = [4, 31]\n", ":21: rand_augment = [4, 31]: n >= 0 and m in 0..30"},
      {"rand_augment = [4]\n", "rand_augment is [n, m] or []"},
      {"rand_augment_flip = 'no'\n", "rand_augment_flip"},
  };
  int i = 0;
  for (const auto& c : cases) {
    const auto toml = dir / ("bad" + std::to_string(i++) + ".toml");
    t::write_file(toml, experiment(dir, c.keys));
    auto res = bevt_run(toml);
    EXPECT_EQ(res.status, 2) << c.keys << res.output;
    EXPECT_NE(res.output.find(c.expect), std::string::npos) << c.keys << res.output;
    EXPECT_NE(res.output.find(toml.filename().string()), std::string::npos) << "names the file\n" << res.output;
    EXPECT_EQ(std::count(res.output.begin(), res.output.end(), '\n'), 1) << c.keys << res.output;
  }
}

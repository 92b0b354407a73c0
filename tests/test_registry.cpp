// The plugin host: discovery, the ABI and fingerprint checks, name lookup errors, and bevt-run's plugin
// commands through the real executable.
#include <gtest/gtest.h>

#include "bevt/backbone.h"
#include "bevt/error.h"
#include "bevt/masker.h"
#include "host/registry.h"
#include "test_sandbox.h"

using bevt::Config;
using bevt::Kind;
using bevt::UserError;
using bevt::host::Registry;
namespace t = bevt::test;

using bevt::test::error_of;

TEST(Registry, FindsPluginsOfALibrary) {
  Registry r = Registry::discover({t::test_plugins("good")});
  EXPECT_TRUE(r.problems().empty());
  EXPECT_EQ(r.names(Kind::Backbone), std::vector<std::string>{"toy_backbone"});
  EXPECT_EQ(r.names(Kind::Masker), std::vector<std::string>{"toy_masker"});
  const auto& p = r.find("toy_backbone", Kind::Backbone, "test");
  EXPECT_NE(p.library.find("libbevt_test_toy.so"), std::string::npos);
  EXPECT_EQ(p.info.official_names, std::vector<std::string>{"ToyModule"});
}

TEST(Registry, BuildsAComponentWithDefaults) {
  Registry r = Registry::discover({t::test_plugins("good")});
  Config cfg = Config::from_toml("plugin = 'toy_backbone'\ndim = 3\n", "exp.toml");
  auto bb = r.build_as<bevt::Backbone>("model.backbone", cfg, bevt::BuildContext{});
  EXPECT_EQ(bb->spec().stages.at(0).channels, 3);
  auto out = bb->forward_video(torch::zeros({1, 3, 2, 4, 4}));
  EXPECT_EQ(out.at("out").sizes(), (std::vector<int64_t>{1, 3, 2, 4, 4}));
  EXPECT_FALSE(cfg.get_bool("fail"));  // default filled in
}

TEST(Registry, UnknownNameSuggestsNearestAndListsTheKind) {
  Registry r = Registry::discover({t::test_plugins("good")});
  std::string e = error_of([&] { r.find("toy_bakbone", Kind::Backbone, "exp.toml:4"); });
  EXPECT_NE(e.find("exp.toml:4"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown backbone 'toy_bakbone'"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'toy_backbone'"), std::string::npos) << e;
  EXPECT_NE(e.find("available: toy_backbone"), std::string::npos) << e;
}

TEST(Registry, WrongKindIsNamed) {
  Registry r = Registry::discover({t::test_plugins("good")});
  std::string e = error_of([&] { r.find("toy_masker", Kind::Backbone, "x"); });
  EXPECT_NE(e.find("is a masker, but a backbone is expected"), std::string::npos) << e;
}

TEST(Registry, APathIsNeverAPluginName) {
  Registry r = Registry::discover({t::test_plugins("good")});
  for (std::string name : {"./libevil.so", "/tmp/libevil.so", "libevil.so", "../plugins/x"}) {
    std::string e = error_of([&] { r.find(name, std::nullopt, "exp.toml:2"); });
    EXPECT_NE(e.find("looks like a path"), std::string::npos) << name << ": " << e;
  }
}

TEST(Registry, DuplicateNamesNameBothLibraries) {
  std::string e = error_of([&] { Registry::discover({t::test_plugins("good"), t::test_plugins("dup")}); });
  EXPECT_NE(e.find("two plugin libraries offer the name 'toy_backbone'"), std::string::npos) << e;
  EXPECT_NE(e.find("libbevt_test_toy.so"), std::string::npos) << e;
  EXPECT_NE(e.find("libbevt_test_toy_dup.so"), std::string::npos) << e;
}

TEST(Registry, AbiMismatchIsRefusedBeforeAnythingElse) {
  Registry r = Registry::discover({t::test_plugins("abi")});
  EXPECT_TRUE(r.plugins().empty());
  ASSERT_EQ(r.problems().size(), 1u);
  const std::string expected = "SDK ABI version mismatch: library 999 vs host " + std::to_string(bevt::kSdkAbiVersion);
  EXPECT_NE(r.problems()[0].reason.find(expected), std::string::npos) << r.problems()[0].reason;
}

TEST(Registry, FingerprintMismatchShowsBothValues) {
  Registry r = Registry::discover({t::test_plugins("fingerprint")});
  EXPECT_TRUE(r.plugins().empty());
  ASSERT_EQ(r.problems().size(), 1u);
  const auto& why = r.problems()[0].reason;
  EXPECT_NE(why.find("library 'compiler=other,torch=0.0'"), std::string::npos) << why;
  EXPECT_NE(why.find(std::string("host '") + bevt::kBuildFingerprint + "'"), std::string::npos) << why;
}

TEST(Registry, LibraryThatFailsToLoadGivesTheLoaderText) {
  Registry r = Registry::discover({t::test_plugins("broken"), t::test_plugins("garbage")});
  ASSERT_EQ(r.problems().size(), 2u);
  EXPECT_NE(r.problems()[0].reason.find("undefined symbol: bevt_test_symbol_that_does_not_exist"), std::string::npos)
      << r.problems()[0].reason;
  EXPECT_NE(r.problems()[1].reason.find("cannot load"), std::string::npos) << r.problems()[1].reason;
}

TEST(Registry, ThrowingFactoryNamesTheConfigPath) {
  Registry r = Registry::discover({t::test_plugins("good")});
  Config root = Config::from_toml("[model.backbone]\nplugin = 'toy_backbone'\nfail = true\n", "exp.toml");
  Config cfg = root.get_table("model").get_table("backbone");
  std::string e = error_of([&] { r.build_as<bevt::Backbone>("model.backbone", cfg, bevt::BuildContext{}); });
  EXPECT_NE(e.find("toy_backbone was asked to fail"), std::string::npos) << e;
  EXPECT_NE(e.find("model.backbone"), std::string::npos) << e;
  // A std::exception (not a UserError) from a factory becomes a UserError too.
  Config bad = Config::from_toml("plugin = 'toy_backbone'\ndim = -1\n", "exp2.toml");
  e = error_of([&] { r.build_as<bevt::Backbone>("b", bad, bevt::BuildContext{}); });
  EXPECT_NE(e.find("failed to build: dim must be positive"), std::string::npos) << e;
}

TEST(Registry, UnknownKeyOfAPluginIsCaught) {
  Registry r = Registry::discover({t::test_plugins("good")});
  Config cfg = Config::from_toml("plugin = 'toy_backbone'\n\ndimm = 3\n", "exp.toml");
  std::string e = error_of([&] { r.build_as<bevt::Backbone>("b", cfg, bevt::BuildContext{}); });
  EXPECT_NE(e.find("exp.toml:3: unknown key 'dimm'"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'dim'"), std::string::npos) << e;
}

// ---------------------------------------------------------------------------- through the real bevt-run

TEST(BevtRun, ListPluginsShowsPluginsAndBrokenLibraries) {
  auto res = t::run("BEVT_PLUGIN_PATH=" + t::test_plugins("good") + ":" + t::test_plugins("abi") + " " +
                    t::bin("bevt-run") + " --list-plugins");
  EXPECT_EQ(res.status, 0) << res.output;
  EXPECT_NE(res.output.find("backbone   toy_backbone"), std::string::npos) << res.output;
  EXPECT_NE(res.output.find("libbevt_test_toy.so"), std::string::npos) << res.output;
  EXPECT_NE(res.output.find("not loaded:"), std::string::npos) << res.output;
  EXPECT_NE(res.output.find("ABI version mismatch"), std::string::npos) << res.output;
}

TEST(BevtRun, HelpPluginPrintsKeys) {
  auto res = t::run("BEVT_PLUGIN_PATH=" + t::test_plugins("good") + " " + t::bin("bevt-run") +
                    " --help-plugin toy_backbone");
  EXPECT_EQ(res.status, 0) << res.output;
  EXPECT_NE(res.output.find("dim"), std::string::npos);
  EXPECT_NE(res.output.find("output channels"), std::string::npos);
}

TEST(BevtRun, BadInputIsOneLineAndExitStatus2) {
  auto dir = t::temp_dir("bevt_run_bad");
  t::write_file(dir / "unknown.toml", "[model.backbone]\nplugin = 'toy_bakbone'\n");
  t::write_file(dir / "path.toml", "[model.backbone]\nplugin = '/tmp/libevil.so'\n");
  t::write_file(dir / "badkey.toml", "[run]\nmode = 'pretrain'\nsede = 1\n");
  t::write_file(dir / "badtoml.toml", "[run\nmode = 1\n");
  t::write_file(dir / "needs.toml", "[run]\nmode = 'finetune'\n[model.backbone]\nplugin = 'toy_backbone'\n");
  std::string env = "BEVT_PLUGIN_PATH=" + t::test_plugins("good") + " ";
  struct Case {
    std::string args, expect;
  } cases[] = {
      {(dir / "unknown.toml").string() + " --dry-run", "did you mean 'toy_backbone'"},
      {(dir / "path.toml").string() + " --dry-run", "looks like a path"},
      {(dir / "badkey.toml").string() + " --dry-run", "badkey.toml:3: unknown key 'sede'"},
      {(dir / "badtoml.toml").string() + " --dry-run", "badtoml.toml:1"},
      {(dir / "needs.toml").string() + " --dry-run", "needs.toml:2: run.mode = 'finetune' needs a [model.heads.cls] table"},
      {(dir / "missing.toml").string(), "experiment file not found"},
      {"--help-plugin nope", "unknown plugin 'nope'"},
      {"--no-such-flag", "bevt-run: error:"},
      {"--plugin-dir /nonexistent/dir --list-plugins", "--plugin-dir /nonexistent/dir: no such folder"},
  };
  for (const auto& c : cases) {
    auto res = t::run(env + t::bin("bevt-run") + " " + c.args);
    EXPECT_EQ(res.status, 2) << c.args << "\n" << res.output;
    EXPECT_NE(res.output.find(c.expect), std::string::npos) << c.args << "\n" << res.output;
    size_t lines = static_cast<size_t>(std::count(res.output.begin(), res.output.end(), '\n'));
    EXPECT_EQ(lines, 1u) << c.args << "\n" << res.output;
  }
}

TEST(BevtRun, MmactionFlagsAreOverrides) {
  auto dir = t::temp_dir("bevt_run_flags");
  t::write_file(dir / "exp.toml", "[run]\nmode = 'finetune'\ndevice = 'cpu'\n[model.backbone]\nplugin = 'toy_backbone'\n"
                                  "[model.heads.cls]\nplugin = 'i3d'\n[data.train]\nplugin = 'synthetic'\n"
                                  "storage = 'memory'\nnum_videos = 4\nframes = 4\nsize = 16\nclip_len = 4\ncrop_size = 16\n");
  const std::string run = "BEVT_PLUGIN_PATH=" + t::test_plugins("good") + " " + t::bin("bevt-run") + " " +
                          (dir / "exp.toml").string();
  auto res = t::run(run + " --dry-run --work-dir " + (dir / "wd").string() +
                    " --seed 4 --amp --cfg-options optim.lr=0.25 loader.batch_size=3");
  ASSERT_EQ(res.status, 0) << res.output;
  EXPECT_NE(res.output.find("work_dir = '" + (dir / "wd").string() + "'"), std::string::npos) << res.output;
  EXPECT_NE(res.output.find("seed = 4"), std::string::npos) << res.output;
  EXPECT_NE(res.output.find("precision = 'bf16'"), std::string::npos) << res.output;  // --amp on the CPU
  EXPECT_NE(res.output.find("lr = 0.25"), std::string::npos) << res.output;
  EXPECT_NE(res.output.find("batch_size = 3"), std::string::npos) << res.output;
  // A launcher whose environment is absent is bad input; --help shows the group and an example.
  res = t::run("env -u RANK -u WORLD_SIZE " + run + " --dry-run --launcher pytorch");
  EXPECT_EQ(res.status, 2) << res.output;
  EXPECT_NE(res.output.find("--launcher pytorch: RANK and WORLD_SIZE are not set"), std::string::npos) << res.output;
  res = t::run(t::bin("bevt-run") + " --help");
  for (const char* flag : {"--work-dir", "--resume", "--amp", "--cfg-options", "--seed", "--launcher", "Example:"})
    EXPECT_NE(res.output.find(flag), std::string::npos) << flag;
}

TEST(BevtTest, TestFlagsAreOverrides) {
  // bevt-test EXP CKPT = bevt-run EXP --test CKPT: test mode, the checkpoint, the views on the tested table, and
  // a work_dir beside the experiment's (never over its results.json). Flags may come before the two names.
  auto dir = t::temp_dir("bevt_test_flags");
  t::write_file(dir / "exp.toml", "[run]\nmode = 'finetune'\ndevice = 'cpu'\nwork_dir = '" + (dir / "ft").string() +
                                      "'\n[model.backbone]\nplugin = 'toy_backbone'\n[model.heads.cls]\nplugin = 'i3d'\n"
                                      "[data.train]\nplugin = 'synthetic'\nstorage = 'memory'\nnum_videos = 4\nframes = 4\n"
                                      "size = 16\nclip_len = 4\ncrop_size = 16\n[data.val]\nplugin = 'synthetic'\n"
                                      "storage = 'memory'\nsplit = 'val'\nnum_videos = 4\nframes = 4\nsize = 16\n"
                                      "clip_len = 4\ncrop_size = 16\n");
  const std::string env = "BEVT_PLUGIN_PATH=" + t::test_plugins("good") + " ";
  auto res = t::run(env + t::bin("bevt-test") + " --views 4\u00d73 " + (dir / "exp.toml").string() + " " +
                    (dir / "ckpt").string() + " --dry-run --cfg-options optim.lr=0.5 loader.eval_batch_size=3");
  ASSERT_EQ(res.status, 0) << res.output;
  for (const std::string& want : std::vector<std::string>{"mode = 'test'", "checkpoint = '" + (dir / "ckpt").string() + "'",
                                 "work_dir = '" + (dir / "ft" / "test").string() + "'", "num_clips = 4",
                                 "crop = 'three'", "test_mode = true", "eval_batch_size = 3"})
    EXPECT_NE(res.output.find(want), std::string::npos) << want << "\n" << res.output;
  res = t::run(env + t::bin("bevt-test") + " " + (dir / "exp.toml").string() + " " + (dir / "ckpt").string() +
               " --views 1x1 --work-dir " + (dir / "t").string() + " --dry-run");
  ASSERT_EQ(res.status, 0) << res.output;
  EXPECT_NE(res.output.find("crop = 'center'"), std::string::npos) << res.output;
  EXPECT_NE(res.output.find("work_dir = '" + (dir / "t").string() + "'"), std::string::npos) << res.output;
  // Bad input: one line, status 2.
  for (const std::string& bad : std::vector<std::string>{" --views 4x0", " --views four", ""}) {
    const std::string second = bad.empty() ? "" : " " + (dir / "ckpt").string();
    res = t::run(env + t::bin("bevt-test") + " " + (dir / "exp.toml").string() + second + bad + " --dry-run");
    EXPECT_EQ(res.status, 2) << bad << "\n" << res.output;
    EXPECT_EQ(std::count(res.output.begin(), res.output.end(), '\n'), 1) << bad << "\n" << res.output;
  }
  res = t::run(t::bin("bevt-test") + " --help");
  EXPECT_EQ(res.status, 0);
  for (const char* flag : {"--dump", "--views", "--work-dir", "Example:"})
    EXPECT_NE(res.output.find(flag), std::string::npos) << flag;
}

TEST(BevtRun, DryRunPrintsResolvedConfigAndComponents) {
  auto dir = t::temp_dir("bevt_run_dry");
  t::write_file(dir / "base.toml", "[run]\nseed = 3\n[model.backbone]\nplugin = 'toy_backbone'\ndim = 2\n");
  t::write_file(dir / "exp.toml", "base = ['base.toml']\n[run]\nmode = 'finetune'\n[model.backbone]\ndim = 5\n"
                "[masker.video]\nplugin = 'toy_masker'\n[model.heads.cls]\nplugin = 'i3d'\n"
                "[data.train]\nplugin = 'synthetic'\nstorage = 'memory'\nnum_videos = 4\nframes = 4\nsize = 16\n"
                "clip_len = 4\ncrop_size = 16\n");
  auto res = t::run("BEVT_PLUGIN_PATH=" + t::test_plugins("good") + " " + t::bin("bevt-run") + " " +
                    (dir / "exp.toml").string() + " --dry-run --set run.seed=7 --set run.device=cpu");
  EXPECT_EQ(res.status, 0) << res.output;
  EXPECT_NE(res.output.find("seed = 7"), std::string::npos) << res.output;
  EXPECT_NE(res.output.find("dim = 5"), std::string::npos) << res.output;
  EXPECT_NE(res.output.find("model.backbone"), std::string::npos) << res.output;
  EXPECT_NE(res.output.find("toy_masker"), std::string::npos) << res.output;
  // 5 output channels × 3 inputs + 5 biases
  EXPECT_NE(res.output.find(" 20 "), std::string::npos) << res.output;
  EXPECT_FALSE(std::filesystem::exists("work_dirs/exp/config.toml"));  // a dry run writes nothing
}

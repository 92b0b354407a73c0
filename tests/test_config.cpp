// Experiment files: inheritance, replacement, overrides, validation errors with file:line.
#include <gtest/gtest.h>

#include "bevt/config.h"
#include "bevt/digest.h"
#include "bevt/error.h"
#include "bevt/strings.h"
#include "host/compose.h"
#include "host/config/components.h"
#include "host/config/experiment.h"
#include "host/config/experiment_file.h"
#include "host/config/sections.h"
#include "host/modes.h"
#include "test_sandbox.h"

using bevt::Config;
using bevt::UserError;
using bevt::ValueType;
namespace t = bevt::test;

using bevt::test::error_of;

namespace {

std::filesystem::path write_tree() {
  auto d = t::temp_dir("config_tree");
  t::write_file(d / "_base" / "model.toml",
                "[model.backbone]\nplugin = 'toy'\ndepths = [2, 2, 6, 2]\nwindow = [8, 7, 7]\n"
                "[model.backbone.extra]\na = 1\nb = 2\n");
  t::write_file(d / "_base" / "run.toml", "[run]\nseed = 1\nmode = 'pretrain'\nlog_every = 5\n");
  t::write_file(d / "exp.toml",
                "base = ['_base/model.toml', '_base/run.toml']\n"
                "[run]\nseed = 2\n"
                "[model.backbone]\nwindow = [16, 7, 7]\n"
                "[model.backbone.extra]\n_delete_ = true\nc = 3\n");
  return d;
}
}  // namespace

TEST(Config, InheritsMergesAndReplaces) {
  auto d = write_tree();
  Config c = bevt::host::load_experiment((d / "exp.toml").string(), {});
  Config run = c.get_table("run");
  EXPECT_EQ(run.get_int("seed"), 2);       // derived wins
  EXPECT_EQ(run.get_int("log_every"), 5);  // inherited
  Config bb = c.get_table("model").get_table("backbone");
  EXPECT_EQ(bb.get_int_list("window"), (std::vector<int64_t>{16, 7, 7}));  // arrays replace
  EXPECT_EQ(bb.get_int_list("depths"), (std::vector<int64_t>{2, 2, 6, 2}));
  Config extra = bb.get_table("extra");
  EXPECT_FALSE(extra.has("a"));  // _delete_ replaced the inherited table
  EXPECT_EQ(extra.get_int("c"), 3);
  EXPECT_FALSE(extra.has("_delete_"));
  EXPECT_FALSE(c.has("base"));
}

TEST(Config, OverridesApplyLastWithTypes) {
  auto d = write_tree();
  Config c = bevt::host::load_experiment(
      (d / "exp.toml").string(),
      {"run.seed=9", "model.backbone.lr=0.5", "model.backbone.flag=true", "model.backbone.name='x y'",
       "model.backbone.window=[4,7,7]", "run.device=cpu", "new.table.key=1"});
  EXPECT_EQ(c.get_table("run").get_int("seed"), 9);
  Config bb = c.get_table("model").get_table("backbone");
  EXPECT_DOUBLE_EQ(bb.get_float("lr"), 0.5);
  EXPECT_TRUE(bb.get_bool("flag"));
  EXPECT_EQ(bb.get_string("name"), "x y");
  EXPECT_EQ(bb.get_int_list("window"), (std::vector<int64_t>{4, 7, 7}));
  EXPECT_EQ(c.get_table("run").get_string("device"), "cpu");  // a bare word is a string
  EXPECT_EQ(c.get_table("new").get_table("table").get_int("key"), 1);
  EXPECT_EQ(bb.where("lr"), "--set model.backbone.lr=0.5");
}

TEST(Config, OverrideErrors) {
  auto d = write_tree();
  auto p = (d / "exp.toml").string();
  EXPECT_NE(error_of([&] { bevt::host::load_experiment(p, {"run.seed"}); }).find("expected KEY=VALUE"),
            std::string::npos);
  EXPECT_NE(error_of([&] { bevt::host::load_experiment(p, {"run.seed.x=1"}); }).find("is a integer, not a table"),
            std::string::npos);
}

TEST(Config, SourceLinesSurviveInheritance) {
  auto d = write_tree();
  Config c = bevt::host::load_experiment((d / "exp.toml").string(), {});
  Config bb = c.get_table("model").get_table("backbone");
  EXPECT_EQ(bb.where("window"), (d / "exp.toml").string() + ":5");
  EXPECT_EQ(bb.where("depths"), (d / "_base" / "model.toml").string() + ":3");
}

TEST(Config, UnknownKeyNamesLineAndNearest) {
  Config c = Config::from_toml("plugin = 'x'\nembed_dim = 3\n\ndeths = [1]\n", "exp.toml");
  std::string e = error_of([&] {
    c.validate({bevt::key("embed_dim", 96, "d"), bevt::key("depths", std::vector<int64_t>{2}, "d")});
  });
  EXPECT_NE(e.find("exp.toml:4: unknown key 'deths'"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'depths'"), std::string::npos) << e;
}

TEST(Config, WrongTypeNamesExpectedAndFound) {
  Config c = Config::from_toml("embed_dim = 'big'\nlr = 1\nratios = [1, 2.5]\n", "exp.toml");
  std::string e = error_of([&] { c.validate({bevt::key("embed_dim", 96, "d")}, {"lr", "ratios"}); });
  EXPECT_NE(e.find("exp.toml:1: key 'embed_dim' should be of type integer, found string"), std::string::npos) << e;
  // integers are accepted where floats are expected
  EXPECT_NO_THROW(c.validate({bevt::key("embed_dim", "x", "d"), bevt::key("lr", 0.1, "d"),
                              bevt::key("ratios", std::vector<double>{0.5}, "d")}));
  EXPECT_EQ(c.get_float_list("ratios"), (std::vector<double>{1.0, 2.5}));
}

TEST(Config, MissingRequiredKeyNamesTheTable) {
  Config root = Config::from_toml("[data.train]\nplugin = 'kinetics'\n", "exp.toml");
  Config c = root.get_table("data").get_table("train");
  std::string e = error_of([&] { c.validate({bevt::required_key("root", ValueType::String, "dataset folder")}); });
  EXPECT_NE(e.find("missing required key 'root' in [data.train]"), std::string::npos) << e;
}

TEST(Config, DefaultsAreFilledIn) {
  Config c = Config::from_toml("a = 1\n", "x.toml");
  c.validate({bevt::key("a", 0, ""), bevt::key("b", 2.5, ""), bevt::key("c", "s", ""),
              bevt::key("d", std::vector<int64_t>{1, 2}, ""), bevt::key("e", true, "")},
             {});
  EXPECT_DOUBLE_EQ(c.get_float("b"), 2.5);
  EXPECT_EQ(c.get_string("c"), "s");
  EXPECT_EQ(c.get_int_list("d"), (std::vector<int64_t>{1, 2}));
  EXPECT_TRUE(c.get_bool("e"));
}

TEST(Config, InvalidTomlAndBaseProblems) {
  auto d = t::temp_dir("config_bad");
  t::write_file(d / "bad.toml", "[run]\nseed = = 1\n");
  t::write_file(d / "a.toml", "base = 'b.toml'\n");
  t::write_file(d / "b.toml", "base = 'a.toml'\n");
  t::write_file(d / "nobase.toml", "base = 'missing.toml'\n");
  EXPECT_NE(error_of([&] { bevt::host::load_experiment((d / "bad.toml").string(), {}); }).find("bad.toml:2:"),
            std::string::npos);
  EXPECT_NE(error_of([&] { bevt::host::load_experiment((d / "a.toml").string(), {}); }).find("cycle"),
            std::string::npos);
  EXPECT_NE(error_of([&] { bevt::host::load_experiment((d / "nobase.toml").string(), {}); })
                .find("base file 'missing.toml' not found"),
            std::string::npos);
}

TEST(Config, RunSectionIsValidated) {
  Config c = Config::from_toml("[run]\nmode = 'pretrian'\n", "exp.toml");
  std::string e = error_of([&] { bevt::host::parse_run(c.get_table("run"), "exp.toml", bevt::host::mode_names()); });
  EXPECT_NE(e.find("did you mean 'pretrain'"), std::string::npos) << e;
  Config ok = Config::from_toml("[run]\ndevice = 'cpu'\n", "exp.toml");
  auto run = bevt::host::parse_run(ok.get_table("run"), "experiments/exp.toml", bevt::host::mode_names());
  EXPECT_EQ(run.work_dir, "work_dirs/exp");
  EXPECT_EQ(run.device, "cpu");
  Config dev = Config::from_toml("[run]\ndevice = 'tpu'\n", "exp.toml");
  EXPECT_NE(error_of([&] { bevt::host::parse_run(dev.get_table("run"), "exp.toml", bevt::host::mode_names()); }).find("not auto, cpu, cuda or cuda:N"),
            std::string::npos);
}

TEST(Config, ASwappedPluginsLeftoverKeysSayHowToStartAfresh) {
  Config c = Config::from_toml("[model.backbone]\nplugin = 'mine'\ndepths = [2, 2]\n", "exp.toml");
  std::string e = error_of([&] { c.get_table("model").get_table("backbone").validate({bevt::key("dim", 1, "")}); });
  EXPECT_NE(e.find("exp.toml:3: unknown key 'depths'"), std::string::npos) << e;
  EXPECT_NE(e.find("_delete_ = true"), std::string::npos) << e;
  Config host = Config::from_toml("[optim]\nlrr = 1\n", "exp.toml");
  e = error_of([&] { host.get_table("optim").validate({bevt::key("lr", 1.0, "")}, {}); });
  EXPECT_EQ(e.find("_delete_"), std::string::npos) << e;  // host tables have no plugin to swap
}

TEST(Config, StrayTablesAreErrors) {
  Config c = Config::from_toml("[run]\nseed = 1\n[optimiser]\nlr = 1\n", "exp.toml");
  std::string e = error_of([&] { bevt::host::find_components(c); });
  EXPECT_NE(e.find("table [optimiser] is not a host section"), std::string::npos) << e;
  Config g = Config::from_toml("[model.backbone]\nplugin = 'x'\n[model.extra]\nfoo = 1\n", "exp.toml");
  e = error_of([&] { bevt::host::find_components(g); });
  EXPECT_NE(e.find("table [model.extra] has no 'plugin' key"), std::string::npos) << e;
  Config ok = Config::from_toml("[model.backbone]\nplugin = 'x'\n[model.heads.mim]\nplugin = 'y'\n", "exp.toml");
  auto comps = bevt::host::find_components(ok);
  ASSERT_EQ(comps.size(), 2u);
  EXPECT_EQ(comps[0].kind, bevt::Kind::Backbone);
  EXPECT_EQ(comps[1].kind, bevt::Kind::Head);
  // A component outside the slots runners read is named with the nearest slot, not guessed from its name.
  Config neck = Config::from_toml("[model.backbone]\nplugin = 'x'\n\n[model.neck]\nplugin = 'y'\n", "exp.toml");
  e = error_of([&] { bevt::host::find_components(neck); });
  EXPECT_NE(e.find("exp.toml:4"), std::string::npos) << e;
  EXPECT_NE(e.find("[model.neck] is not a component slot"), std::string::npos) << e;
  Config masks = Config::from_toml("[maskers.video]\nplugin = 'x'\n", "exp.toml");
  e = error_of([&] { bevt::host::find_components(masks); });
  EXPECT_NE(e.find("did you mean [masker.video]?"), std::string::npos) << e;
}

namespace {
// A complete finetune experiment on a toy backbone, with `extra` appended.
std::string experiment_file(const std::string& name, const std::string& extra) {
  auto d = t::temp_dir("typed_experiment");
  t::write_file(d / name,
                "[run]\nmode = 'finetune'\ndevice = 'cpu'\nwork_dir = 'w'\n"
                "[model.backbone]\nplugin = 'toy'\n[model.heads.cls]\nplugin = 'i3d'\n"
                "[data.train]\nplugin = 'synthetic'\n" + extra);
  return (d / name).string();
}
}  // namespace

TEST(Experiment, EveryHostTableIsTypedOnce) {
  auto e = bevt::host::Experiment::load(
      experiment_file("typed.toml", "[optim]\nlr = 0.002\naccum_steps = 4\nema = 0.0002\n"
                                    "[loader]\nbatch_size = 3\n[finetune]\nlabel_smoothing = 0.1\n"
                                    "[dist]\nbackend = 'gloo'\n[init]\ncheckpoint = 'x.safetensors'\n"),
      {"optim.warmup_steps=7", "run.seed=11"});
  EXPECT_EQ(e.run.mode, "finetune");
  EXPECT_EQ(e.run.seed, 11u);
  EXPECT_EQ(e.run.device, "cpu");
  EXPECT_EQ(e.run.precision, bevt::host::Precision::Fp32);
  EXPECT_DOUBLE_EQ(e.optim.lr, 0.002);
  EXPECT_EQ(e.optim.accum_steps, 4);
  EXPECT_EQ(e.optim.warmup_steps, 7);
  EXPECT_DOUBLE_EQ(e.optim.ema, 0.0002);
  EXPECT_EQ(e.loader.batch_size, 3);
  EXPECT_EQ(e.loader.eval_batch_size, 8);  // default
  EXPECT_DOUBLE_EQ(e.finetune.label_smoothing, 0.1);
  EXPECT_EQ(e.dist.backend, "gloo");
  EXPECT_EQ(e.init.checkpoint, "x.safetensors");
  ASSERT_EQ(e.components.size(), 3u);
  EXPECT_NE(e.where("optim.lr").find("typed.toml:"), std::string::npos) << e.where("optim.lr");
  // The weight candidates: strings outside [run] and [data.*].
  bool init_seen = false;
  for (const auto& [k, v] : e.weight_candidates) {
    EXPECT_NE(k.rfind("run.", 0), 0u) << k;
    EXPECT_NE(k.rfind("data.", 0), 0u) << k;
    init_seen |= k == "init.checkpoint" && v == "x.safetensors";
  }
  EXPECT_TRUE(init_seen);
  // The hashes ignore the run length and logging (config_hash) but not the recipe.
  auto longer = bevt::host::Experiment::load(e.file, {"optim.warmup_steps=7", "run.seed=11", "run.max_steps=99"});
  EXPECT_EQ(longer.config_hash, e.config_hash);
  EXPECT_NE(longer.run_hash, e.run_hash);
  auto other = bevt::host::Experiment::load(e.file, {"optim.warmup_steps=8", "run.seed=11"});
  EXPECT_NE(other.config_hash, e.config_hash);
}

TEST(Experiment, UnknownAndMistypedKeysAreNamedWithTheNearestKey) {
  std::string e = error_of([&] { bevt::host::Experiment::load(experiment_file("k.toml", "[optim]\nwarmup_step = 3\n"), {}); });
  EXPECT_NE(e.find("k.toml:12"), std::string::npos) << e;
  EXPECT_NE(e.find("warmup_step"), std::string::npos) << e;
  EXPECT_NE(e.find("warmup_steps"), std::string::npos) << e;
  e = error_of([&] { bevt::host::Experiment::load(experiment_file("t.toml", "[loader]\nbatch_size = 'eight'\n"), {}); });
  EXPECT_NE(e.find("t.toml:12"), std::string::npos) << e;
  EXPECT_NE(e.find("batch_size"), std::string::npos) << e;
  e = error_of([&] { bevt::host::Experiment::load(experiment_file("v.toml", "[optim]\nema = 1.5\n"), {}); });
  EXPECT_NE(e.find("optim.ema must be in [0, 1)"), std::string::npos) << e;
  e = error_of([&] { bevt::host::Experiment::load(experiment_file("s.toml", "[pretrain]\nstreams = ['imgae']\n"), {}); });
  EXPECT_NE(e.find("did you mean 'image'"), std::string::npos) << e;
}

TEST(Experiment, EachModeNeedsItsComponents) {
  // finetune without data.train; test needs data.test or data.val; pretrain needs one set per stream.
  auto d = t::temp_dir("mode_needs");
  t::write_file(d / "ft.toml", "[run]\nmode = 'finetune'\n[model.backbone]\nplugin = 'toy'\n[model.heads.cls]\nplugin = 'i3d'\n");
  std::string e = error_of([&] { bevt::host::check_mode_needs(bevt::host::Experiment::load((d / "ft.toml").string(), {})); });
  EXPECT_NE(e.find("run.mode = 'finetune' needs a [data.train] table"), std::string::npos) << e;
  e = error_of([&] { bevt::host::check_mode_needs(bevt::host::Experiment::load((d / "ft.toml").string(), {"run.mode=test"})); });
  EXPECT_NE(e.find("needs a [data.test] or [data.val] table"), std::string::npos) << e;
  t::write_file(d / "pt.toml",
                "[run]\nmode = 'pretrain'\n[pretrain]\nstreams = ['video']\n[model.backbone]\nplugin = 'toy'\n"
                "[tokenizer]\nplugin = 'vq'\n[model.heads.video]\nplugin = 'mim_video'\n[data.video]\nplugin = 's'\n");
  e = error_of([&] { bevt::host::check_mode_needs(bevt::host::Experiment::load((d / "pt.toml").string(), {})); });
  EXPECT_NE(e.find("needs a [masker.video] table"), std::string::npos) << e;
  e = error_of([&] { bevt::host::Experiment::load((d / "pt.toml").string(), {"run.mode=pretrian"}); });
  EXPECT_NE(e.find("did you mean 'pretrain'"), std::string::npos) << e;
}

TEST(Modes, OneTableForValidationDispatchAndHelp) {
  const std::string help = bevt::host::modes_help();
  for (const auto& m : bevt::host::modes()) {
    EXPECT_NE(m.run, nullptr) << m.name;
    EXPECT_NE(help.find(m.name), std::string::npos) << m.name;
    for (const auto& need : m.needs) {
      for (const auto& alt : bevt::split(need, '|')) {
        std::string slot = alt;
        if (auto at = slot.find("{stream}"); at != std::string::npos) slot.replace(at, 8, "video");
        EXPECT_NE(bevt::host::find_slot(slot), nullptr) << m.name << " needs " << slot << ", which is no slot";
      }
    }
  }
  EXPECT_EQ(bevt::host::mode_names(),
            (std::vector<std::string>{"pretrain", "finetune", "test", "probe", "tokenizer", "token_probe"}));
}

// Digests persisted in checkpoints, results and caches, and the seeds of per-sample draws, are pinned: a
// compiler, standard library or xxHash upgrade that changed them would fail here, not silently in a resume.
TEST(Digest, StableValuesArePinned) {
  EXPECT_EQ(bevt::digest_hex(""), "2d06800538d394c2");  // XXH3-64 of no bytes (xxHash's reference value)
  EXPECT_EQ(bevt::digest_hex("bevt"), "69a5be2433c182e6");
  bevt::Digest d;
  d.update("be", 2);
  d.update("vt", 2);
  EXPECT_EQ(d.hex(), bevt::digest_hex("bevt"));
  // The mask seeds: the values std::hash<std::string> gave under libstdc++ (so masks are unchanged).
  EXPECT_EQ(bevt::murmur64("mask/video"), 0x1f4e9ea082a9ace8ull);
  EXPECT_EQ(bevt::murmur64("mask/image"), 0x7cfe946b1af7c747ull);
  EXPECT_EQ(bevt::murmur64("probe/shuffle"), 0xbf401a1312b0af36ull);
  EXPECT_EQ(bevt::murmur64("0123456789abcdefg"), 0x1e959b991607e7f0ull);
  Config c = Config::from_toml("[run]\nseed = 3\nmax_steps = 10\n[optim]\nlr = 0.001\n", "exp.toml");
  EXPECT_EQ(bevt::host::experiment_hash(c), "6391d7458d8bfe1f");
  EXPECT_EQ(bevt::host::experiment_hash(c, true), "d55186e3d9ab420e");
}

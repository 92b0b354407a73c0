// Issue 9's suites and report: `bevt-run --suite` (a plan, core/src/host/orchestrate/: order, skipping
// finished experiments, resuming after a failed one), bevt-report (table cells, CSV, valid PNGs; bad input),
// the experiment files under experiments/ablations/ (every suite loads and validates), and the inflation of
// image-stream checkpoints the suites rely on.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <sstream>
#include <toml++/toml.h>

#include "bevt/state_dict.h"
#include "host/compose.h"
#include "host/config/experiment.h"
#include "host/orchestrate/runner.h"
#include "test_sandbox.h"
#include "swin_registry.h"

namespace t = bevt::test;
using t::read_text;
namespace fs = std::filesystem;

namespace {

nlohmann::json read_json(const fs::path& p) { return nlohmann::json::parse(read_text(p)); }

void write_json(const fs::path& p, const nlohmann::json& j) { t::write_file(p, j.dump(2)); }

void write_jsonl(const fs::path& p, const std::vector<nlohmann::json>& lines) {
  std::string s;
  for (const auto& l : lines) s += l.dump() + "\n";
  t::write_file(p, s);
}

// A PNG that is really an image: the size the tool draws, mostly white, with dark text and axes, and at least
// `colours` of the palette's colours present.
void expect_chart(const fs::path& p, int colours) {
  ASSERT_TRUE(fs::exists(p)) << p;
  cv::Mat img = cv::imread(p.string(), cv::IMREAD_COLOR);
  ASSERT_FALSE(img.empty()) << p << " does not decode";
  EXPECT_EQ(img.cols, 960) << p;
  EXPECT_EQ(img.rows, 540) << p;
  const cv::Vec3b palette[] = {{180, 119, 31}, {14, 127, 255}, {44, 160, 44}, {40, 39, 214}};
  size_t white = 0, dark = 0;
  int present = 0;
  std::vector<size_t> hits(4, 0);
  for (int y = 0; y < img.rows; ++y)
    for (int x = 0; x < img.cols; ++x) {
      auto v = img.at<cv::Vec3b>(y, x);
      if (v[0] > 245 && v[1] > 245 && v[2] > 245) ++white;
      if (v[0] < 60 && v[1] < 60 && v[2] < 60) ++dark;
      for (size_t c = 0; c < 4; ++c)
        if (v == palette[c]) ++hits[c];
    }
  for (auto h : hits) present += h >= 20;
  const double n = double(img.total());
  EXPECT_GT(white / n, 0.5) << p << ": not a white chart";
  EXPECT_LT(white / n, 0.99) << p << ": blank";
  EXPECT_GT(dark, 1500u) << p << ": no axes or text";
  EXPECT_GE(present, colours) << p << ": expected " << colours << " series colours";
}

nlohmann::json eval_part(double top1, double motion, double appearance) {
  return {{"top1", top1},
          {"top5", 1.0},
          {"samples", 8},
          {"per_family", {{"appearance", appearance}, {"motion", motion}}},
          {"confusion", {{2, 0, 0, 0}, {0, 2, 0, 0}, {0, 0, 2, 0}, {0, 0, 0, 2}}}};
}

// Finished runs as bevt-run writes them (results.json, metrics.jsonl, config.toml), with known numbers.
void make_fixture_runs(const fs::path& d) {
  for (const auto& [name, streams] :
       std::vector<std::pair<std::string, std::vector<std::string>>>{{"pre_i", {"image"}}, {"pre_bevt", {"image", "video"}}}) {
    write_json(d / name / "results.json", {{"mode", "pretrain"}, {"steps", 40}, {"streams", streams}});
    std::vector<nlohmann::json> m;
    for (int s = 10; s <= 40; s += 10) {
      nlohmann::json rec{{"step", s}, {"lr", 1e-3}, {"loss", 5.0 - s * 0.05}};
      for (const auto& st : streams) {
        rec["loss_" + st] = 5.0 - s * 0.05;
        rec["acc_" + st] = s * 0.01;
        if (name == "pre_bevt") rec["copy_" + st] = 0.125;  // pre_i: a run from before the copy baseline
      }
      m.push_back(rec);
    }
    write_jsonl(d / name / "metrics.jsonl", m);
  }
  // A video-stream run with regression (pixel) targets: masked MSE 0.25 where predicting zeros costs 0.5.
  write_json(d / "pre_pix" / "results.json", {{"mode", "pretrain"}, {"steps", 20}, {"streams", {"video"}}});
  write_jsonl(d / "pre_pix" / "metrics.jsonl",
              {{{"step", 20}, {"lr", 1e-3}, {"loss", 0.25}, {"loss_video", 0.25}, {"zero_video", 0.5}}});
  for (const auto& [name, final_top1] : std::vector<std::pair<std::string, double>>{{"ft_i", 0.4}, {"ft_bevt", 0.625}}) {
    write_json(d / name / "results.json", {{"mode", "finetune"}, {"steps", 30}, {"top1", final_top1}});
    std::vector<nlohmann::json> m;
    for (int e = 1; e <= 3; ++e) {
      m.push_back({{"step", e * 10}, {"loss", 1.5 - e * 0.3}, {"acc_train", 0.3 * e}});
      m.push_back({{"step", e * 10}, {"epoch", e}, {"val_top1", final_top1 * e / 3}, {"val_top5", 1.0}});
    }
    write_jsonl(d / name / "metrics.jsonl", m);
    t::write_file(d / name / "config.toml", "[data.train]\nplugin = \"synthetic\"\n");
  }
  // Supervised image pre-training (Image Sup) runs in finetune mode; the suite lists it without a column.
  write_json(d / "img_sup" / "results.json", {{"mode", "finetune"}, {"steps", 30}, {"top1", 0.9}});
  write_jsonl(d / "img_sup" / "metrics.jsonl", {{{"step", 30}, {"loss", 0.25}, {"acc_train", 0.95}},
                                                {{"step", 30}, {"epoch", 1}, {"val_top1", 0.9}}});
  // The probe of the BEVT model: full 75%, motion collapses under the probes, appearance does not.
  write_json(d / "probe_bevt" / "results.json", {{"mode", "probe"},
                                                {"top1", 0.75},
                                                {"full", eval_part(0.75, 0.7, 0.8)},
                                                {"single_frame", eval_part(0.5, 0.25, 0.75)},
                                                {"shuffled", eval_part(0.55, 0.3, 0.8)}});
  t::write_file(d / "ref.csv", "# published\nstrategy,synthetic,K400\nBEVT,70.6,80.6\n");
  write_json(d / "suite" / "results.json",
             {{"mode", "suite"},
              {"title", "fixture suite"},
              {"reference", (d / "ref.csv").string()},
              {"stages",
               {{{"work_dir", (d / "img_sup").string()}, {"row", "Image Sup"}},
                {{"work_dir", (d / "pre_i").string()}, {"row", "BEVT-I"}},
                {{"work_dir", (d / "pre_bevt").string()}, {"row", "BEVT"}},
                {{"work_dir", (d / "pre_pix").string()}, {"row", "BEVT-V pixels"}},
                {{"work_dir", (d / "ft_i").string()}, {"row", "BEVT-I"}, {"column", "synthetic"}},
                {{"work_dir", (d / "ft_bevt").string()}, {"row", "BEVT"}, {"column", "synthetic"}},
                {{"work_dir", (d / "probe_bevt").string()}, {"row", "BEVT"}, {"column", "synthetic"}}}}});
}

bool contains(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

}  // namespace

TEST(Report, TablesAndPlotsFromFinishedRuns) {
  auto d = t::temp_dir("report_fixture");
  make_fixture_runs(d);
  auto r = t::run(t::bin("bevt-report") + " " + (d / "suite").string() + " --out " + (d / "out").string());
  ASSERT_EQ(r.status, 0) << r.output;
  std::string md = read_text(d / "out" / "report.md");
  EXPECT_TRUE(contains(md, "# fixture suite")) << md;
  // Rows = strategies, columns = datasets with the paper's numbers beside; the probe run's (test) top-1 wins
  // over the fine-tune run's validation; a paper column without our runs is still shown.
  EXPECT_TRUE(contains(md, "| pre-training | synthetic | synthetic (paper) | K400 (paper) |")) << md;
  EXPECT_TRUE(contains(md, "| BEVT-I | 40.0 | - | - |")) << md;
  EXPECT_TRUE(contains(md, "| BEVT | 75.0 | 70.6 | 80.6 |")) << md;
  std::string ft = read_text(d / "out" / "finetune.csv");
  EXPECT_TRUE(contains(ft, "pre-training,synthetic,synthetic (paper),K400 (paper)\n")) << ft;
  EXPECT_TRUE(contains(ft, "BEVT-I,40.0,,\n")) << ft;
  EXPECT_TRUE(contains(ft, "BEVT,75.0,70.6,80.6\n")) << ft;
  std::string probe = read_text(d / "out" / "probe.csv");
  EXPECT_TRUE(contains(probe, "pre-training,dataset,classes,full,single frame,shuffled\n")) << probe;
  EXPECT_TRUE(contains(probe, "BEVT,synthetic,all,75.0,50.0,55.0\n")) << probe;
  EXPECT_TRUE(contains(probe, "BEVT,synthetic,motion,70.0,25.0,30.0\n")) << probe;
  EXPECT_TRUE(contains(probe, "BEVT,synthetic,appearance,80.0,75.0,80.0\n")) << probe;
  std::string pre = read_text(d / "out" / "pretrain.csv");
  EXPECT_TRUE(contains(pre, "BEVT-I,image,40,3.000,40.0,,,,\n")) << pre;
  EXPECT_TRUE(contains(pre, "BEVT,image+video,40,3.000,40.0,12.5,3.000,40.0,12.5\n")) << pre;
  EXPECT_TRUE(contains(pre, "BEVT-V pixels,video,20,,,,0.250,50.0,\n")) << pre;
  EXPECT_TRUE(contains(md, "share of the targets' variance explained")) << md;
  // Image Sup is a pre-training row, not a fine-tuning cell.
  EXPECT_TRUE(contains(pre, "Image Sup,supervised,30,0.250,95.0,,,,\n")) << pre;
  EXPECT_FALSE(contains(ft, "Image Sup")) << ft;

  expect_chart(d / "out" / "pretrain_loss.png", 2);  // one colour per run
  expect_chart(d / "out" / "pretrain_acc.png", 2);
  expect_chart(d / "out" / "finetune_acc.png", 2);
  expect_chart(d / "out" / "finetune_loss.png", 2);
  expect_chart(d / "out" / "probe_synthetic.png", 3);  // full / single frame / shuffled bars
  EXPECT_TRUE(contains(md, "![probes: synthetic](probe_synthetic.png)")) << md;

  // The runs given one by one (no suite): labels default to the folder and the dataset plugin.
  r = t::run(t::bin("bevt-report") + " " + (d / "ft_i").string() + " " + (d / "ft_bevt").string() + " --out " +
             (d / "out2").string() + " --title plain");
  ASSERT_EQ(r.status, 0) << r.output;
  ft = read_text(d / "out2" / "finetune.csv");
  EXPECT_TRUE(contains(ft, "pre-training,synthetic\nft_i,40.0\nft_bevt,62.5\n")) << ft;
  EXPECT_FALSE(fs::exists(d / "out2" / "probe.csv"));
}

TEST(Report, BadInputIsOneLineAndExitStatus2) {
  auto d = t::temp_dir("report_bad");
  make_fixture_runs(d);
  auto report = [&](const std::string& args) {
    return t::run(t::bin("bevt-report") + " " + args + " --out " + (d / "out").string());
  };
  auto r = report((d / "missing").string());
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_TRUE(contains(r.output, (d / "missing").string() + ": no such run folder")) << r.output;

  fs::create_directories(d / "unfinished");
  r = report((d / "unfinished").string());
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "unfinished/results.json: not found")) << r.output;

  std::string m = read_text(d / "ft_i" / "metrics.jsonl");
  size_t second = m.find('\n', m.find('\n') + 1) + 1;
  t::write_file(d / "ft_i" / "metrics.jsonl", m.substr(0, second) + "{\"step\": 3, oops\n" + m.substr(second));
  r = report((d / "suite").string());
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "ft_i/metrics.jsonl:3: invalid JSON")) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;

  r = report((d / "ft_bevt").string() + " --reference " + (d / "bad.csv").string());
  EXPECT_EQ(r.status, 2) << r.output;
  t::write_file(d / "bad.csv", "strategy,synthetic\nBEVT,seventy\n");
  r = report((d / "ft_bevt").string() + " --reference " + (d / "bad.csv").string());
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "bad.csv:2: 'seventy' in column 'synthetic' is not a number")) << r.output;

  t::write_file(d / "ft_bevt" / "results.json", "{\"mode\": \"finetune\",\n \"top1\": }\n");
  r = report((d / "ft_bevt").string());
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "ft_bevt/results.json:2: invalid JSON")) << r.output;
  EXPECT_FALSE(fs::exists(d / "out")) << "nothing is written when an input is bad";
}

namespace {

// Tiny experiments through the real bevt-run: a fine-tune (2 steps) and a probe of it.
const char* kTiny = R"(
[model.backbone]
plugin = "video_swin"
embed_dim = 8
depths = [1, 1, 1, 1]
num_heads = [1, 1, 2, 2]
window_size = [2, 4, 4]
drop_path_rate = 0.0

[model.heads.cls]
plugin = "i3d"
)";

std::string clips(const std::string& table, const std::string& split, int n, const fs::path& cache) {
  return "[" + table + "]\nplugin = \"synthetic\"\nsplit = \"" + split + "\"\nnum_videos = " + std::to_string(n) +
         "\nframes = 8\nsize = 32\nclip_len = 4\nframe_interval = 2\nscale_range = []\ncrop = \"none\"\n"
         "crop_size = 32\nflip = 0.0\ntest_mode = " + (split == "train" ? "false" : "true") + "\ncache_dir = \"" +
         cache.string() + "\"\nclasses = [\"motion/forward\", \"motion/backward\", \"appearance/disc\", "
         "\"appearance/cross\"]\n";
}

std::string finetune_toml(const fs::path& wd, const fs::path& cache) {
  return "[run]\nmode = \"finetune\"\nwork_dir = \"" + wd.string() + "\"\nmax_steps = 2\nlog_every = 1\n"
         "device = \"cpu\"\n" + kTiny + clips("data.train", "train", 16, cache) + clips("data.val", "val", 8, cache) +
         "[loader]\nbatch_size = 8\neval_batch_size = 8\n";
}

std::string probe_toml(const fs::path& wd, const fs::path& model, const fs::path& cache) {
  return "[run]\nmode = \"probe\"\nwork_dir = \"" + wd.string() + "\"\ndevice = \"cpu\"\n" + kTiny +
         "[init]\ncheckpoint = \"" + model.string() + "\"\n" + clips("data.test", "test", 8, cache) +
         "[loader]\neval_batch_size = 8\n";
}

// A two-experiment suite in d/suite: a_finetune.toml (work_dir d/ft), then b_probe.toml (work_dir d/probe)
// reading `model`; both labelled row "tiny", column "synthetic"; results in d/suite_out. Returns the folder.
fs::path write_finetune_probe_suite(const fs::path& d, const fs::path& model) {
  const fs::path s = d / "suite", cache = d / "cache";
  t::write_file(s / "a_finetune.toml", finetune_toml(d / "ft", cache));
  t::write_file(s / "b_probe.toml", probe_toml(d / "probe", model, cache));
  t::write_file(s / "suite.toml", "[plan]\nwork_dir = \"" + (d / "suite_out").string() +
                                      "\"\ntitle = \"tiny\"\nstages = [\n"
                                      "  { file = \"a_finetune.toml\", row = \"tiny\", column = \"synthetic\" },\n"
                                      "  { file = \"b_probe.toml\", row = \"tiny\", column = \"synthetic\" },\n]\n");
  return s;
}

}  // namespace

TEST(Suite, FailedExperimentStopsTheSuiteAndARerunResumesIt) {
  auto d = t::temp_dir("suite_resume");
  // The probe reads a model that is not there yet: the suite stops at it with its exit status (bad input).
  const fs::path s = write_finetune_probe_suite(d, d / "model");
  auto r = t::run(t::bin("bevt-run") + " --suite " + s.string());
  ASSERT_EQ(r.status, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "stage b_probe.toml failed on bad input")) << r.output;
  ASSERT_TRUE(fs::exists(d / "ft" / "results.json"));
  EXPECT_FALSE(fs::exists(d / "probe" / "results.json"));
  auto suite_res = read_json(d / "suite_out" / "results.json");
  EXPECT_EQ(suite_res["stages"].size(), 1u);
  EXPECT_FALSE(suite_res["complete"].get<bool>());

  // The missing model appears; the rerun skips the finished fine-tune (its files untouched) and runs the probe.
  const std::string ft_results = read_text(d / "ft" / "results.json"), ft_metrics = read_text(d / "ft" / "latest" / "metrics.jsonl");
  const auto ft_time = fs::last_write_time(d / "ft" / "results.json");
  fs::copy(d / "ft", d / "model", fs::copy_options::recursive);
  r = t::run(t::bin("bevt-run") + " --suite " + s.string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "stage a_finetune.toml: finished earlier")) << r.output;
  EXPECT_TRUE(contains(r.output, "stage b_probe.toml: bevt-run")) << r.output;
  EXPECT_TRUE(contains(r.output, "2 stages, 1 ran, 1 finished earlier")) << r.output;
  EXPECT_EQ(read_text(d / "ft" / "results.json"), ft_results);
  EXPECT_EQ(read_text(d / "ft" / "latest" / "metrics.jsonl"), ft_metrics);
  EXPECT_EQ(fs::last_write_time(d / "ft" / "results.json"), ft_time);
  ASSERT_TRUE(fs::exists(d / "probe" / "results.json"));
  suite_res = read_json(d / "suite_out" / "results.json");
  ASSERT_EQ(suite_res["stages"].size(), 2u);
  EXPECT_TRUE(suite_res["complete"].get<bool>());
  EXPECT_EQ(suite_res["stages"][1]["row"], "tiny");

  // A third run has nothing left to do; --set reaches every experiment (and, changing them, reruns them).
  r = t::run(t::bin("bevt-run") + " --suite " + s.string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "2 stages, 0 ran, 2 finished earlier")) << r.output;

  // A run that stopped after its last checkpoint but before results.json resumes from that checkpoint.
  fs::remove(d / "ft" / "results.json");
  r = t::run(t::bin("bevt-run") + " --suite " + s.string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "stage a_finetune.toml: bevt-run " + (s / "a_finetune.toml").string() +
                                     " --resume")) << r.output;
  EXPECT_TRUE(contains(r.output, "resumed from")) << r.output;
  EXPECT_TRUE(fs::exists(d / "ft" / "results.json"));

  // The report of the real runs: the suite's labels, the probe's number, a valid probe chart.
  r = t::run(t::bin("bevt-report") + " " + (d / "suite_out").string() + " --out " + (d / "report").string());
  ASSERT_EQ(r.status, 0) << r.output;
  auto probe = read_json(d / "probe" / "results.json");
  std::string ft = read_text(d / "report" / "finetune.csv");
  EXPECT_TRUE(contains(ft, fmt::format("tiny,{:.1f}\n", 100.0 * probe["top1"].get<double>()))) << ft;
  EXPECT_TRUE(contains(read_text(d / "report" / "report.md"), "# tiny"));
  expect_chart(d / "report" / "probe_synthetic.png", 3);
  expect_chart(d / "report" / "finetune_loss.png", 1);
}

TEST(Suite, AStageRerunsWhenTheWeightsItStartedFromChange) {
  // The probe starts from the fine-tune's work_dir. Its own experiment file never changes; the skip must still
  // notice when the fine-tune was rerun with another recipe (other weights), and only then.
  auto d = t::temp_dir("suite_inputs");
  const fs::path s = write_finetune_probe_suite(d, d / "ft");
  auto suite = [&] { return t::run(t::bin("bevt-run") + " --suite " + s.string()); };
  auto r = suite();
  ASSERT_EQ(r.status, 0) << r.output;
  auto recorded = read_json(d / "probe" / "results.json")["inputs"];
  ASSERT_TRUE(recorded.contains("init.checkpoint")) << recorded.dump();
  EXPECT_TRUE(contains(recorded["init.checkpoint"]["file"].get<std::string>(), "model.safetensors"));
  EXPECT_EQ(read_json(d / "probe" / "inputs.json"), recorded);

  // The fine-tune reruns from scratch with the same recipe: the same weights, so the probe stays finished.
  fs::remove_all(d / "ft");
  r = suite();
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "stage a_finetune.toml: bevt-run")) << r.output;
  EXPECT_TRUE(contains(r.output, "stage b_probe.toml: finished earlier")) << r.output;

  // Another recipe upstream (a higher learning rate): other weights, so the probe runs again and records them.
  t::write_file(s / "a_finetune.toml", finetune_toml(d / "ft", d / "cache") + "[optim]\nlr = 0.01\n");
  r = suite();
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "stage a_finetune.toml: bevt-run")) << r.output;
  EXPECT_TRUE(contains(r.output, "stage b_probe.toml: finished earlier, but init.checkpoint (")) << r.output;
  EXPECT_TRUE(contains(r.output, "stage b_probe.toml: bevt-run")) << r.output;
  EXPECT_TRUE(contains(r.output, "2 stages, 2 ran")) << r.output;
  auto now = read_json(d / "probe" / "results.json")["inputs"];
  EXPECT_NE(now["init.checkpoint"]["digest"], recorded["init.checkpoint"]["digest"]);

  r = suite();
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "2 stages, 0 ran, 2 finished earlier")) << r.output;
}

TEST(Suite, OrderAndBadInput) {
  auto d = t::temp_dir("suite_bad");
  auto suite = [&](const fs::path& dir) { return t::run(t::bin("bevt-run") + " --suite " + dir.string()); };
  auto r = suite(d / "missing");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "no such folder")) << r.output;

  t::write_file(d / "a" / "suite.toml", "[plan]\ntitel = \"x\"\n");
  r = suite(d / "a");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "a/suite.toml:2: unknown key 'titel' in [plan], did you mean 'title'")) << r.output;

  t::write_file(d / "b" / "suite.toml", "[plan]\nstages = [\n  \"x.toml\",\n  \"nope.toml\",\n]\n");
  t::write_file(d / "b" / "x.toml", "[run]\nmode = \"finetune\"\n");
  r = suite(d / "b");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "b/suite.toml:4: stage file 'nope.toml' not found")) << r.output;

  // The old format is a one-line error saying how to write it now.
  t::write_file(d / "old" / "suite.toml", "[suite]\ntitle = \"x\"\n\n[[experiment]]\nfile = \"x.toml\"\n");
  r = suite(d / "old");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "old/suite.toml:4: [[experiment]] tables are the old suite format")) << r.output;

  // Two experiments writing one work_dir are refused before anything runs.
  t::write_file(d / "c" / "one.toml", "[run]\nmode = \"finetune\"\nwork_dir = \"" + (d / "same").string() + "\"\n");
  t::write_file(d / "c" / "two.toml", "[run]\nmode = \"test\"\nwork_dir = \"" + (d / "same").string() + "\"\n");
  r = suite(d / "c");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "stages one.toml and two.toml both write work_dir")) << r.output;
  EXPECT_FALSE(fs::exists(d / "same"));

  // Without suite.toml: the folder's *.toml sorted by name, '_'-prefixed bases left out; a typo in the last
  // experiment fails before the first one runs.
  t::write_file(d / "e" / "_base.toml", "[run]\nmode = \"finetune\"\n");
  t::write_file(d / "e" / "2_second.toml", "base = \"_base.toml\"\n[run]\nwork_dir = \"" + (d / "w2").string() + "\"\n");
  t::write_file(d / "e" / "10_first.toml", "base = \"_base.toml\"\n[run]\nwork_dir = \"" + (d / "w1").string() + "\"\n");
  t::write_file(d / "e" / "3_third.toml", "[run]\nmode = \"finetune\"\nepochz = 1\n");
  namespace o = bevt::host::orchestrate;
  auto plan = [&](const fs::path& dir) { return o::check_plan(o::read_suite(dir.string(), {}), {}); };
  EXPECT_TRUE(contains(t::error_of([&] { plan(d / "e"); }), "epochz")) << t::error_of([&] { plan(d / "e"); });
  fs::remove(d / "e" / "3_third.toml");
  auto p = plan(d / "e");
  ASSERT_EQ(p.stages.size(), 2u);
  EXPECT_EQ(p.stages[0].name, "10_first.toml");
  EXPECT_EQ(p.stages[1].name, "2_second.toml");
  // --dry-run checks the plan and lists its stages without running any.
  r = t::run(t::bin("bevt-run") + " --suite " + (d / "e").string() + " --dry-run");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "2 stages, 0 finished earlier")) << r.output;
  EXPECT_TRUE(contains(r.output, "| 1 | 10_first.toml | " + (d / "w1").string() + " | to run |")) << r.output;
  EXPECT_FALSE(fs::exists(d / "w1"));
}

namespace {
// Whether the file is, or inherits (through its `base` chain), one of experiments/quickstart/*.toml.
bool inherits_quickstart(const fs::path& file) {
  const fs::path qs = fs::weakly_canonical(fs::path(BEVT_SOURCE_DIR) / "experiments" / "quickstart");
  if (fs::weakly_canonical(file).parent_path() == qs) return true;
  toml::table t = toml::parse_file(file.string());
  std::vector<std::string> bases;
  if (auto b = t["base"].value<std::string>()) bases.push_back(*b);
  if (auto* arr = t["base"].as_array())
    for (const auto& e : *arr)
      if (auto v = e.value<std::string>()) bases.push_back(*v);
  for (const auto& b : bases)
    if (inherits_quickstart(file.parent_path() / b)) return true;
  return false;
}
}  // namespace

TEST(Ablations, EverySuiteLoadsAndItsComponentsValidate) {
  // Every suite under experiments/ablations (full scale and mini): the experiment files exist, inherit, and
  // pass the host tables and every plugin's key checks; the mini suites inherit the quickstart.
  const fs::path root = fs::path(BEVT_SOURCE_DIR) / "experiments" / "ablations";
  auto registry = bevt::host::Registry::discover({BEVT_PLUGIN_DIR});
  std::vector<fs::path> suites;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (e.path().filename() == "suite.toml") suites.push_back(e.path().parent_path());
  std::sort(suites.begin(), suites.end());
  ASSERT_GE(suites.size(), 11u);
  for (const char* name : {"strategy", "tokenizer", "init", "temporal", "timesformer", "mini/strategy", "mini/tokenizer",
                           "mini/init", "mini/temporal", "mini/timesformer", "mini/seeds"})
    EXPECT_NE(std::find(suites.begin(), suites.end(), root / name), suites.end()) << name;
  for (const auto& s : suites) {
    SCOPED_TRACE(s.string());
    namespace o = bevt::host::orchestrate;
    o::CheckedPlan plan;
    ASSERT_NO_THROW(plan = o::check_plan(o::read_suite(s.string(), {}), {})) << t::error_of([&] {
      o::check_plan(o::read_suite(s.string(), {}), {});
    });
    EXPECT_EQ(plan.spec.work_dir, "work_dirs/" + fs::relative(s, root.parent_path()).string());
    for (const auto& st : plan.stages) {
      SCOPED_TRACE(st.file);
      std::string err = t::error_of([&] {
        bevt::host::compose(registry, bevt::host::Experiment::load(st.file, {}), /*build=*/false);
      });
      EXPECT_EQ(err, "(no UserError)");
      if (contains(s.string(), "/mini/")) {
        EXPECT_TRUE(inherits_quickstart(st.file)) << st.file << " does not inherit experiments/quickstart/";
      }
    }
  }
}

TEST(Ablations, ImageStreamCheckpointInflates) {
  // A bevt model trained on images only (BEVT-I, Image Sup) has a trained 2D patch embedding and dt=0 table
  // slices; with inflate_2d those become the 3D embedding (kernel repeated over time / patch depth) and every
  // temporal slice, as the official inflation of a 2D checkpoint.
  auto src = swin_test::build(swin_test::tiny({{"window_size", "[2, 4, 4]"}}), 1);
  bevt::TensorMap w = bevt::state_dict(*src);
  const auto pe2 = w.at("patch_embed_2d.proj.weight");
  const auto table = w.at("layers.0.blocks.0.attn.relative_position_bias_table");  // [(2*2-1)*7*7, heads]
  const int64_t plane = 7 * 7;
  auto dst = swin_test::build(swin_test::tiny({{"window_size", "[2, 4, 4]"}, {"inflate_2d", "true"}}), 2);
  bevt::LoadOptions o;
  o.strict = false;
  auto rep = dst->load_weights(w, o);
  EXPECT_TRUE(rep.mismatched.empty()) << rep.summary();
  auto got = bevt::state_dict(*dst);
  const int64_t pd = got.at("patch_embed.proj.weight").size(2);
  EXPECT_TRUE(torch::allclose(got.at("patch_embed.proj.weight"), pe2.unsqueeze(2).repeat({1, 1, pd, 1, 1}) / pd));
  EXPECT_TRUE(torch::equal(got.at("patch_embed_2d.proj.weight"), pe2));
  auto t3 = got.at("layers.0.blocks.0.attn.relative_position_bias_table");
  ASSERT_EQ(t3.size(0), 3 * plane);
  for (int64_t dt = 0; dt < 3; ++dt)
    EXPECT_TRUE(torch::equal(t3.narrow(0, dt * plane, plane), table.narrow(0, plane, plane))) << "slice " << dt;
  // Without inflate_2d the same weights load as they are.
  auto plain = swin_test::build(swin_test::tiny({{"window_size", "[2, 4, 4]"}}), 3);
  plain->load_weights(w, o);
  EXPECT_TRUE(torch::equal(bevt::state_dict(*plain).at("patch_embed.proj.weight"), w.at("patch_embed.proj.weight")));
}

TEST(Ablations, AnInflatedImageCheckpointCannotTellAClipFromItsReversal) {
  // Why BEVT from an inflated BEVT-I cannot tell a left drift from a right one in the miniature
  // (docs/ablations.md, Issue #18): the official inflation (the 2D kernel repeated over a patch's frames, the
  // Δt = 0 table slice for every Δt) makes the encoder symmetric in time, so a clip played backwards gives the
  // same features in reverse order. Exactly so while the window fits the stage (stages 1-2 of 32x32 input);
  // where the official code clamps the window to a smaller stage, its relative-position indexing (the first
  // N entries of the full window's index) breaks the symmetry a little. A model with its own (random) 3D
  // weights tells a clip from its reversal at every stage.
  auto src = swin_test::build(swin_test::tiny({{"window_size", "[2, 4, 4]"}}), 1);
  bevt::TensorMap w = bevt::state_dict(*src);
  auto inflated = swin_test::build(swin_test::tiny({{"window_size", "[2, 4, 4]"}, {"inflate_2d", "true"}}), 2);
  bevt::LoadOptions o;
  o.strict = false;
  inflated->load_weights(w, o);
  torch::manual_seed(5);
  const torch::Tensor clip = torch::randn({2, 3, 8, 32, 32});
  torch::NoGradGuard ng;
  // Relative difference between the features of the clip and those of its reversal, flipped back in time.
  auto asymmetry = [&](bevt::Backbone& bb, const std::string& feature) {
    bb.eval();
    const torch::Tensor a = bb.forward_video(clip).at(feature), b = bb.forward_video(clip.flip(2)).at(feature);
    EXPECT_EQ(a.dim(), 5);  // [B, C, T', H', W']
    return swin_test::rel_err(b.flip(2), a);
  };
  EXPECT_LT(asymmetry(*inflated, "stage2"), 1e-5);
  EXPECT_LT(asymmetry(*inflated, "out"), 1e-2);
  EXPECT_GT(asymmetry(*src, "stage2"), 0.5);
  EXPECT_GT(asymmetry(*src, "out"), 0.5);
}

TEST(Experiments, EveryShippedExperimentComposes) {
  // Every experiment file under experiments/ (bases and plan files aside) becomes a typed Experiment and
  // composes against the real plugins: known slots, each plugin's keys, and the slots its mode needs.
  const fs::path root = fs::path(BEVT_SOURCE_DIR) / "experiments";
  auto registry = bevt::host::Registry::discover({BEVT_PLUGIN_DIR});
  size_t checked = 0;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    const fs::path p = e.path();
    if (p.extension() != ".toml" || p.filename() == "suite.toml" || p.filename().string()[0] == '_' ||
        p.string().find("/_base/") != std::string::npos || bevt::host::orchestrate::is_plan_file(p.string()))
      continue;
    SCOPED_TRACE(p.string());
    std::string err = t::error_of([&] {
      // run.device = cpu: the GPU check's experiments ask for CUDA, which this machine may not have.
      bevt::host::compose(registry, bevt::host::Experiment::load(p.string(), {"run.device=cpu"}), /*build=*/false);
    });
    EXPECT_EQ(err, "(no UserError)");
    ++checked;
  }
  EXPECT_GE(checked, 60u);
}

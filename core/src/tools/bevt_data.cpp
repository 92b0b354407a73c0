// bevt-data: decodes one data stream of an experiment exactly as training does (same plugin, keys, seed and
// per-sample random state) and writes what a researcher needs to check the pipeline by eye:
//   DIR/sample_NNN.png   one row per view: the clip's frames (denormalised; with --masker, masked cells shaded),
//                        then the tokenizer view beside
//   DIR/summary.json     samples, classes, the shown samples, bad_files with reasons, clips_per_s
//   DIR/bad_files.txt, DIR/bad_files.json   every bad item named with its reason (bevt_data_scan.h); a dataset's
//                        `exclude` key reads either back
// --check -1 (the default) checks every item in parallel first (Dataset::check). Exit status: 0 clean, 1 when a
// bad item was found (the sheets and summary are still written), 2 for bad input.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "bevt/data/integrity.h"
#include "bevt/data/media_dataset.h"
#include "bevt/data/transforms.h"
#include "bevt/data/video_io.h"
#include "bevt/error.h"
#include "bevt/log.h"
#include "bevt/masker.h"
#include "bevt/strings.h"
#include "bevt_data_scan.h"
#include "host/command_line.h"
#include "host/data/loader.h"
#include "host/data/problems.h"
#include "host/config/experiment.h"
#include "host/registry.h"

namespace fs = std::filesystem;
using namespace bevt;
using namespace bevt::host;

namespace {

// Copies clip frame t into the sheet at (x, y).
void blit(Clip& sheet, const Clip& c, int64_t t, int64_t x, int64_t y) {
  for (int64_t r = 0; r < c.height && y + r < sheet.height; ++r) {
    int64_t w = std::min(c.width, sheet.width - x);
    if (w <= 0) return;
    std::memcpy(sheet.frame(0) + ((y + r) * sheet.width + x) * 3, c.frame(t) + r * c.width * 3, static_cast<size_t>(w * 3));
  }
}

// Darkens and tints the cells a mask marks: mask [t, h, w] over a clip cut into cells of `cell` (t, h, w) frames/pixels.
void shade(Clip& c, const torch::Tensor& mask, const std::array<int64_t, 3>& cell) {
  auto m = mask.to(torch::kBool).contiguous();
  const auto* mp = m.data_ptr<bool>();
  const int64_t mt = m.size(0), mh = m.size(1), mw = m.size(2);
  for (int64_t t = 0; t < c.frames; ++t)
    for (int64_t y = 0; y < c.height; ++y)
      for (int64_t x = 0; x < c.width; ++x) {
        int64_t a = std::min(t / cell[0], mt - 1), b = std::min(y / cell[1], mh - 1), d = std::min(x / cell[2], mw - 1);
        if (!mp[(a * mh + b) * mw + d]) continue;
        uint8_t* p = c.frame(t) + (y * c.width + x) * 3;
        p[0] = static_cast<uint8_t>(p[0] / 3 + 40);
        p[1] = static_cast<uint8_t>(p[1] / 3);
        p[2] = static_cast<uint8_t>(p[2] / 3 + 60);
      }
}

Clip upscale(const Clip& c, int64_t min_side) {
  int64_t f = std::max<int64_t>(1, (min_side + std::min(c.height, c.width) - 1) / std::min(c.height, c.width));
  return f == 1 ? c : resize_clip(c, c.height * f, c.width * f, "nearest");
}

// One row per view: input frames, a gap, the tokenizer view's frames.
Clip contact_sheet(const torch::Tensor& input, const torch::Tensor& tok, bool video, const std::vector<double>& mean,
                   const std::vector<double>& std, const Masker* masker, const std::array<int64_t, 3>& cell, Rng& rng) {
  std::vector<Clip> rows_in, rows_tok;
  auto views = input;
  if (video && input.dim() == 4) views = input.unsqueeze(0);
  if (!video && input.dim() == 3) views = input.unsqueeze(0);
  auto tviews = tok;
  if (tok.defined() && ((video && tok.dim() == 4) || (!video && tok.dim() == 3))) tviews = tok.unsqueeze(0);
  for (int64_t v = 0; v < views.size(0); ++v) {
    Clip c = denormalize(views[v], mean, std);
    if (masker) {
      std::array<int64_t, 3> grid = {std::max<int64_t>(1, c.frames / cell[0]), std::max<int64_t>(1, c.height / cell[1]),
                                     std::max<int64_t>(1, c.width / cell[2])};
      shade(c, masker->sample(grid, rng), cell);
    }
    rows_in.push_back(upscale(c, 64));
    if (tok.defined() && v < tviews.size(0)) rows_tok.push_back(upscale(unit_to_clip(tviews[v]), 64));
  }
  const int64_t gap = 4, sep = 12;
  int64_t width = 0, height = 0;
  for (size_t r = 0; r < rows_in.size(); ++r) {
    int64_t w = rows_in[r].frames * (rows_in[r].width + gap);
    int64_t h = rows_in[r].height;
    if (r < rows_tok.size()) {
      w += sep + rows_tok[r].frames * (rows_tok[r].width + gap);
      h = std::max(h, rows_tok[r].height);
    }
    width = std::max(width, w);
    height += h + gap;
  }
  Clip sheet(1, height, width);
  std::fill(sheet.data.begin(), sheet.data.end(), uint8_t{255});
  int64_t y = 0;
  for (size_t r = 0; r < rows_in.size(); ++r) {
    int64_t x = 0, h = rows_in[r].height;
    for (int64_t t = 0; t < rows_in[r].frames; ++t, x += rows_in[r].width + gap) blit(sheet, rows_in[r], t, x, y);
    if (r < rows_tok.size()) {
      x += sep;
      for (int64_t t = 0; t < rows_tok[r].frames; ++t, x += rows_tok[r].width + gap) blit(sheet, rows_tok[r], t, x, y);
      h = std::max(h, rows_tok[r].height);
    }
    y += h + gap;
  }
  return sheet;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bevt-data: decode a data stream of an experiment as training does; contact sheets + summary.json"};
  std::string experiment, stream, out_dir, log_level = "info";
  std::vector<std::string> overrides, plugin_dirs;
  int64_t show = 8, check = -1, workers = 2, jobs = 0;
  std::string masker_table;
  std::vector<int64_t> cell = {2, 16, 16};
  app.add_option("experiment", experiment, "experiment file (TOML)")->required();
  app.add_option("--stream", stream, "the data stream: the table data.<NAME>")->required();
  app.add_option("--show", show, "samples drawn as contact sheets");
  app.add_option("--out", out_dir, "output folder")->required();
  app.add_option("--check", check,
                 "-1: check every item in parallel (every frame the sampler could ask for), then draw the shown "
                 "ones; N >= 0: decode N samples through the loader for bad_files and clips_per_s (0 = only the "
                 "shown ones)");
  app.add_option("--workers", workers, "decoding threads of the loader");
  app.add_option("--jobs", jobs, "threads of --check -1 (default: --workers, at least 1)");
  app.add_option("--masker", masker_table, "dotted path of a masker table in the experiment (e.g. model.masker): shade masked cells");
  app.add_option("--mask-cell", cell, "frames, pixels, pixels per mask cell (default 2 16 16)")->expected(3);
  app.add_option("--set", overrides, "override a key: --set a.b.c=value (repeatable)");
  app.add_option("--plugin-dir", plugin_dirs, "extra folder of plugin libraries (repeatable)");
  app.add_option("--log-level", log_level, "debug | info | warn | error");
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "bevt-data: error: " << e.what() << " (see bevt-data --help)" << std::endl;
    return 2;
  }

  return run_guarded("bevt-data", [&]() -> int {
    auto level = parse_log_level(log_level);
    if (!level) throw UserError(fmt::format("--log-level '{}' is not debug, info, warn or error", log_level));
    set_log_level(*level);
    if (show < 0 || workers < 0 || jobs < 0) throw UserError("--show, --workers and --jobs must be >= 0");
    if (check < -1) throw UserError(fmt::format("--check {}: give -1 (every item) or a count >= 0", check));
    Registry registry = make_registry(plugin_dirs);
    const Experiment exp = Experiment::load(experiment, overrides);
    const RunSettings& run = exp.run;
    auto table_at = [&](const std::string& path) -> const ComponentTable* {
      for (const auto& c : exp.components)
        if (c.path == path) return &c;
      return nullptr;
    };
    const ComponentTable* data_table = table_at("data." + stream);
    if (!data_table) {
      std::vector<std::string> names;
      for (const auto& c : exp.components)
        if (c.path.rfind("data.", 0) == 0) names.push_back(c.path.substr(5));
      throw UserError(fmt::format("{}: no stream '{}' (the experiment has: {}){}", experiment, stream,
                                  names.empty() ? "none" : join(names), did_you_mean(stream, names)));
    }
    Config cfg = data_table->cfg;
    BuildContext ctx;
    ctx.device = "cpu";
    ctx.seed = run.seed;
    ctx.work_dir = run.work_dir;
    ctx.cache_dir = (fs::path(run.work_dir).parent_path() / ".cache").string();
    auto dataset = registry.build_as<Dataset>(cfg.where(), cfg, ctx);
    std::vector<double> mean = {123.675, 116.28, 103.53}, stdv = {58.395, 57.12, 57.375};
    // The dataset's own normalisation keys, to undo it for the contact sheets.
    if (cfg.has("mean")) mean = cfg.get_float_list("mean");
    if (cfg.has("std")) stdv = cfg.get_float_list("std");

    std::shared_ptr<Masker> masker;
    if (!masker_table.empty()) {
      const ComponentTable* m_table = table_at(masker_table);
      if (!m_table) throw UserError(fmt::format("{}: --masker {}: no such component table", experiment, masker_table));
      Config m = m_table->cfg;
      masker = registry.build_as<Masker>(m.where(), m, ctx);
    }
    if (cell.size() != 3 || std::any_of(cell.begin(), cell.end(), [](int64_t v) { return v < 1; }))
      throw UserError("--mask-cell takes three positive integers");
    const std::array<int64_t, 3> cell3 = {cell[0], cell[1], cell[2]};
    fs::create_directories(out_dir);
    const auto n = static_cast<int64_t>(dataset->size());
    // Problems found reading the annotation (missing files named, labels outside the class list, duplicated ids).
    std::vector<DataProblem> problems = dataset->problems();
    nlohmann::json scan_json = nullptr;
    if (check < 0) {
      const int threads = static_cast<int>(jobs > 0 ? jobs : std::max<int64_t>(1, workers));
      log_info("bevt-data: checking {} items of [data.{}] on {} threads", n, stream, threads);
      tools::ScanResult scan = tools::scan_dataset(*dataset, threads);
      tools::merge_problems(problems, scan.problems);
      scan_json = {{"items", scan.items},
                   {"jobs", scan.jobs},
                   {"seconds", scan.seconds},
                   {"files_per_s", scan.seconds > 0 ? static_cast<double>(scan.items) / scan.seconds : 0.0}};
      log_info("bevt-data: checked {} items in {:.1f} s ({:.1f} files/s on {} threads)", scan.items, scan.seconds,
               scan.seconds > 0 ? static_cast<double>(scan.items) / scan.seconds : 0.0, scan.jobs);
    }
    // --check -1 has checked every item already; the loader then decodes only what is shown.
    const int64_t want = check < 0 ? std::min(n, show) : std::min(n, std::max(check, show));
    LoaderOptions o;
    o.batch_size = 1;
    o.workers = workers;
    o.shuffle = false;
    o.drop_last = false;
    o.seed = run.seed;
    o.max_bad_fraction = 1.0;
    Loader loader(dataset, o);
    loader.start_epoch(0);
    auto classes = dataset->class_names();
    nlohmann::json shown = nlohmann::json::array();
    Batch b;
    int64_t done = 0;
    const auto t0 = std::chrono::steady_clock::now();
    while (done < want && loader.next(b)) {
      if (done < show) {
        auto tok = b.tokenizer_view.defined() ? b.tokenizer_view[0] : torch::Tensor();
        Rng mask_rng(Rng::derive(run.seed, {0x6d61736bULL, static_cast<uint64_t>(b.indices[0])}));
        Clip sheet = contact_sheet(b.input[0], tok, dataset->is_video(), mean, stdv, masker.get(), cell3, mask_rng);
        std::string file = fmt::format("sample_{:03d}.png", done);
        write_image((fs::path(out_dir) / file).string(), sheet);
        int64_t label = b.label[0].item<int64_t>();
        shown.push_back({{"file", file},
                         {"id", b.ids[0]},
                         {"index", b.indices[0]},
                         {"label", label},
                         {"class", label >= 0 && label < static_cast<int64_t>(classes.size()) ? classes[static_cast<size_t>(label)] : ""},
                         {"input_shape", b.input[0].sizes().vec()}});
      }
      ++done;
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // What the loader met (with --check N the only decode), as problems: its lines are "path: reason (where)".
    std::vector<DataProblem> met;
    for (const auto& line : loader.bad_files()) {
      DataProblem p;
      auto colon = line.find(": ");
      p.path = colon == std::string::npos ? line : line.substr(0, colon);
      p.reason = colon == std::string::npos ? line : line.substr(colon + 2);
      p.kind = decode_error_kind(p.reason);
      bool named = false;  // already listed by the check under another kind
      for (const auto& q : problems) named = named || (!q.kept && normal_path(q.path) == normal_path(p.path));
      if (!named) met.push_back(p);
    }
    tools::merge_problems(problems, met);
    const std::string header = fmt::format("bevt-data {} --stream {} ([data.{}], plugin {})", experiment, stream,
                                           stream, data_table->plugin);
    tools::write_bad_files(out_dir, problems, header, n);
    nlohmann::json bad = nlohmann::json::array();
    for (const auto& p : problems) {
      bad.push_back(problem_json(p));
      if (p.kept)
        log_info("bevt-data: kept: {}", problem_line(p));
      else
        log_warn("bevt-data: bad: {}", problem_line(p));
    }
    const int64_t bad_count = tools::count_bad(problems);
    nlohmann::json summary = {{"experiment", experiment},
                              {"stream", stream},
                              {"plugin", data_table->plugin},
                              {"samples", n},
                              {"is_video", dataset->is_video()},
                              {"classes", classes},
                              {"decoded", done},
                              {"workers", workers},
                              {"clips_per_s", secs > 0 ? static_cast<double>(done) / secs : 0.0},
                              {"check", scan_json},
                              {"bad", bad_count},
                              {"bad_files", bad},
                              {"bad_files_txt", (fs::path(out_dir) / "bad_files.txt").string()},
                              {"bad_files_json", (fs::path(out_dir) / "bad_files.json").string()},
                              {"shown", shown}};
    std::ofstream((fs::path(out_dir) / "summary.json").string()) << summary.dump(2) << "\n";
    log_info("bevt-data: {} samples, {} classes, {} decoded at {:.1f} clips/s, {} bad{}; wrote {}", n, classes.size(),
             done, secs > 0 ? done / secs : 0.0, bad_count,
             bad_count > 0 ? fmt::format(" (listed in {}/bad_files.txt; give bad_files.json as the dataset's exclude key "
                                         "to drop them)", out_dir)
                           : "",
             out_dir);
    return bad_count > 0 ? 1 : 0;
  });
}

// bevt-data --check -1 speed (issue 20): files/s of the full check (every frame of every item decoded, strict) on a
// generated dataset of short videos in the Kinetics CSV layout (mpeg4 .mp4) and the SSv2 layout (VP9 .webm), 1% of
// them damaged (cut to a third), through the real tool with --jobs threads. The check itself reports its rate
// (summary.json "check"); this wraps it in the table / --json of bench/. Beside it, in the same run, the yardstick a
// user would script: the ffmpeg command-line tool decoding every file to nowhere (`ffmpeg -v error -i F -f null -`),
// --jobs files at a time; `vs_ffmpeg` is bevt-data's files/s over ffmpeg's (`vs_ffmpeg_wall`: whole commands).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "bench_harness.h"
#include "bevt/data/video_io.h"

namespace fs = std::filesystem;
using namespace bevt;

namespace {

void make_video(const std::string& path, int64_t size, int64_t frames, const std::string& codec) {
  EncodeOptions o;
  o.codec = codec;
  o.gop = 8;
  VideoWriter w(path, size, size * 3 / 4 / 2 * 2, o);
  Clip c(1, size * 3 / 4 / 2 * 2, size);
  for (int64_t t = 0; t < frames; ++t) {
    for (int64_t y = 0; y < c.height; ++y)
      for (int64_t x = 0; x < c.width; ++x)
        for (int ch = 0; ch < 3; ++ch)
          c.frame(0)[(y * c.width + x) * 3 + ch] = static_cast<uint8_t>((x + 2 * t) * (ch + 1) ^ (y * 3 + t));
    w.write(c.frame(0));
  }
  w.close();
}

void cut(const std::string& path) {
  std::string b;
  {
    std::ifstream f(path, std::ios::binary);
    b.assign(std::istreambuf_iterator<char>(f), {});
  }
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(b.data(), static_cast<std::streamsize>(b.size() / 3));
}

// Generates (once) the dataset and its experiment file; returns the experiment's path.
std::string dataset(const std::string& dir, const std::string& layout, int64_t n, int64_t size, int64_t frames) {
  const fs::path root = fs::path(dir) / fmt::format("{}_{}x{}f{}", layout, n, size, frames);
  const fs::path exp = root / "exp.toml";
  if (fs::exists(exp)) return exp.string();
  fs::create_directories(root);
  std::string ann;
  if (layout == "kinetics") {
    fs::create_directories(root / "train");
    ann = "label,youtube_id,time_start,time_end,split\n";
    for (int64_t i = 0; i < n; ++i) {
      const std::string file = (root / "train" / fmt::format("v{:05d}_000000_000010.mp4", i)).string();
      make_video(file, size, frames, "mpeg4");
      if (i % 100 == 7) cut(file);
      ann += fmt::format("class{},v{:05d},0,10,train\n", i % 4, i);
    }
    fs::create_directories(root / "annotations");
    std::ofstream(root / "annotations" / "train.csv") << ann;
  } else {
    const fs::path vdir = root / "20bn-something-something-v2";
    fs::create_directories(vdir);
    fs::create_directories(root / "labels");
    std::ofstream(root / "labels" / "something-something-v2-labels.json") << R"({"Pushing something": "0"})";
    nlohmann::json list = nlohmann::json::array();
    for (int64_t i = 0; i < n; ++i) {
      const std::string file = (vdir / fmt::format("{}.webm", i)).string();
      make_video(file, size, frames, "libvpx-vp9");
      if (i % 100 == 7) cut(file);
      list.push_back({{"id", std::to_string(i)}, {"template", "Pushing [something]"}});
    }
    std::ofstream(root / "labels" / "something-something-v2-train.json") << list.dump();
  }
  std::ofstream(exp) << fmt::format("[run]\nmode = \"pretrain\"\nwork_dir = \"{0}/work\"\n[data.video]\nplugin = \"{1}\"\n"
                                    "root = \"{0}\"\n",
                                    root.string(), layout);
  return exp.string();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_scan: bevt-data --check -1 files/s on generated short videos"};
  bool json = false;
  int64_t videos = 1000, size = 128, frames = 32, jobs = 2;
  std::string dir = (fs::temp_directory_path() / "bevt-bench-scan").string();
  std::string tool = std::string(BEVT_BIN_DIR) + "/bevt-data";
  app.add_flag("--json", json, "one JSON object per case");
  app.add_option("--videos", videos, "videos per dataset");
  app.add_option("--size", size, "frame width (height = 3/4 of it)");
  app.add_option("--frames", frames, "frames per video");
  app.add_option("--jobs", jobs, "check threads (bevt-data --jobs)");
  app.add_option("--dir", dir, "folder for the generated datasets (kept between runs)");
  CLI11_PARSE(app, argc, argv);

  std::vector<bench::Result> results;
  for (const std::string layout : {"kinetics", "ssv2"}) {
    const std::string exp = dataset(dir, layout, videos, size, frames);
    const std::string out = (fs::path(exp).parent_path() / "check").string();
    nlohmann::json summary;
    auto r = bench::time_case(fmt::format("check_{}_{}x{}f", layout, videos, frames), 0, 1, [&] {
      std::string cmd = fmt::format("{} {} --stream video --check -1 --show 0 --jobs {} --out {} --log-level error "
                                    ">/dev/null 2>&1",
                                    tool, exp, jobs, out);
      (void)std::system(cmd.c_str());  // exit 1: the damaged 1% were found
      std::ifstream f(fs::path(out) / "summary.json");
      summary = nlohmann::json::parse(f, nullptr, false);
    });
    if (summary.is_object() && summary["check"].is_object()) {
      r.fields["files"] = summary["check"]["items"].get<double>();
      r.fields["check_s"] = summary["check"]["seconds"].get<double>();
      r.fields["files_per_s"] = summary["check"]["files_per_s"].get<double>();
      r.fields["bad"] = summary["bad"].get<double>();
    }
    r.fields["jobs"] = static_cast<double>(jobs);
    // The same files through the ffmpeg CLI, `jobs` processes at a time.
    const std::string ext = layout == "kinetics" ? "mp4" : "webm";
    auto f = bench::time_case(fmt::format("ffmpeg_cli_{}_{}x{}f", layout, videos, frames), 0, 1, [&] {
      std::string cmd = fmt::format("find {} -name '*.{}' -print0 | xargs -0 -P {} -n 16 sh -c 'for f; do ffmpeg "
                                    "-v quiet -nostdin -i \"$f\" -f null - ; done' _ >/dev/null 2>&1",
                                    fs::path(exp).parent_path().string(), ext, jobs);
      (void)std::system(cmd.c_str());  // the cut files fail: that is their decode too
    });
    f.fields["files"] = static_cast<double>(videos);
    f.fields["files_per_s"] = static_cast<double>(videos) / f.median_s;
    f.fields["jobs"] = static_cast<double>(jobs);
    if (r.fields.count("files_per_s")) r.fields["vs_ffmpeg"] = r.fields["files_per_s"] / f.fields["files_per_s"];
    r.fields["vs_ffmpeg_wall"] = f.median_s / r.median_s;  // whole commands, bevt-data's start-up included
    results.push_back(r);
    results.push_back(f);
  }
  bench::print(results, json);
  return 0;
}

// Data-layer speed (issue 5): per clip decode + transform time and frames decoded for
//   (a) a dense clip (16 frames, interval 4) starting 2 s into a 10 s 340p H.264 file with a keyframe every 2 s,
//   (b) 16 uniform frames (test-mode middles) from a 4 s SSv2-like VP9 webm,
//   (c) clips/s of the loader with the default worker count (synthetic quickstart clips, and K400-like clips),
// with anchors in the same run: PyAV decoding the same frames like mmaction2's PyAVDecode (bench/pyav_decode.py,
// sequential from the first frame) and the minimal work (frames from the keyframe before each needed frame).
#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "bench_harness.h"
#include "bevt/data/media_dataset.h"
#include "bevt/data/samplers.h"
#include "bevt/data/transforms.h"
#include "bevt/data/video_io.h"
#include "host/data/loader.h"
#include "host/registry.h"

namespace fs = std::filesystem;
using namespace bevt;

namespace {

// A textured scene with motion so that the encoder produces realistic P/B frames.
void make_video(const std::string& path, int64_t w, int64_t h, double fps, double seconds, EncodeOptions o) {
  if (fs::exists(path)) return;
  o.fps = fps;
  VideoWriter vw(path, w, h, o);
  Clip f(1, h, w);
  const auto n = static_cast<int64_t>(std::lround(fps * seconds));
  for (int64_t t = 0; t < n; ++t) {
    uint8_t* p = f.frame(0);
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) {
        double u = std::sin(0.05 * (x + 3 * t)) * std::cos(0.07 * (y - 2 * t));
        double blob = std::exp(-((x - w / 2 - 80 * std::sin(0.05 * t)) * (x - w / 2 - 80 * std::sin(0.05 * t)) +
                                 (y - h / 2) * (y - h / 2)) / 800.0);
        uint32_t noise = static_cast<uint32_t>((x * 73856093u) ^ (y * 19349663u) ^ (t * 83492791u)) % 24;
        p[(y * w + x) * 3 + 0] = static_cast<uint8_t>(std::clamp(120 + 80 * u + 100 * blob + noise, 0.0, 255.0));
        p[(y * w + x) * 3 + 1] = static_cast<uint8_t>(std::clamp(100 + 60 * u + noise, 0.0, 255.0));
        p[(y * w + x) * 3 + 2] = static_cast<uint8_t>(std::clamp(90 - 50 * u + 150 * blob, 0.0, 255.0));
      }
    vw.write(f.frame(0));
  }
  vw.close();
}

nlohmann::json pyav(const std::string& script, const std::string& file, const std::vector<int64_t>& idx, int reps) {
  std::string list;
  for (auto i : idx) list += (list.empty() ? "" : ",") + std::to_string(i);
  std::string cmd = fmt::format("/usr/bin/python3 {} {} {} {} 2>/dev/null", script, file, list, reps);
  std::FILE* p = popen(cmd.c_str(), "r");
  if (!p) return nullptr;
  char buf[4096];
  std::string out;
  while (std::fgets(buf, sizeof(buf), p)) out += buf;
  if (pclose(p) != 0 || out.empty()) return nullptr;
  return nlohmann::json::parse(out, nullptr, false);
}

bench::Result clip_case(const std::string& name, const std::string& file, const std::vector<int64_t>& idx,
                        const TransformSpec& ts, int reps, const std::string& script) {
  ClipTransform tr(ts);
  int64_t decoded = 0, minimal = 0;
  Rng rng(0);
  auto decode_only = bench::time_case(name + " decode", 2, reps, [&] {
    VideoReader r(file);
    r.read(idx);
    decoded = r.stats().frames_decoded;
    minimal = r.minimal_decode_count(idx);
  });
  auto res = bench::time_case(name, 2, reps, [&] {
    VideoReader r(file);
    auto [h, w] = tr.decode_size(r.info().height, r.info().width, rng);
    Clip c = r.read(idx, w, h);
    auto v = tr.apply(c, 0, rng);
  });
  res.fields["decode_s"] = decode_only.median_s;
  res.fields["frames_decoded"] = static_cast<double>(decoded);
  res.fields["frames_minimal"] = static_cast<double>(minimal);
  auto py = pyav(script, file, idx, reps);
  if (!py.is_null() && py.contains("median_s")) {
    res.fields["pyav_s"] = py["median_s"].get<double>();
    res.fields["pyav_frames"] = py["frames_decoded"].get<double>();
    res.fields["speedup_vs_pyav"] = py["median_s"].get<double>() / res.median_s;
  }
  return res;
}

bench::Result loader_case(const std::string& name, std::shared_ptr<Dataset> ds, int64_t batch, int64_t clips) {
  host::LoaderOptions o;  // default workers and prefetch
  o.batch_size = batch;
  o.max_bad_fraction = 1.0;
  int64_t done = 0;
  auto r = bench::time_case(name, 0, 1, [&] {
    host::Loader l(ds, o);
    l.start_epoch(0);
    host::Batch b;
    while (done < clips && l.next(b)) done += static_cast<int64_t>(b.indices.size());
  });
  // A case that loaded less than asked measured something else: say so rather than print a rate.
  if (done < clips)
    throw std::runtime_error(fmt::format("{}: the loader gave {} of {} clips (dataset size {})", name, done, clips,
                                         ds->size()));
  r.fields["clips"] = static_cast<double>(done);
  r.fields["clips_per_s"] = static_cast<double>(done) / r.median_s;
  r.fields["workers"] = static_cast<double>(o.workers);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_data: decoding, transform and loader speed"};
  bool json = false;
  int reps = 10;
  int64_t clips = 320;
  std::string dir = (fs::temp_directory_path() / "bevt-bench-data").string();
  std::string script = std::string(BEVT_BENCH_DIR) + "/pyav_decode.py";
  app.add_flag("--json", json, "one JSON object per case");
  app.add_option("--reps", reps, "timed repetitions per clip case");
  app.add_option("--clips", clips, "clips for the loader cases");
  app.add_option("--dir", dir, "folder for the generated test videos (kept between runs)");
  CLI11_PARSE(app, argc, argv);
  fs::create_directories(dir);

  // (a) 10 s, 604x340, 25 fps H.264, keyframe every 2 s (50 frames), B-frames as x264 defaults use.
  const std::string h264 = dir + "/k400_like_340p.mp4";
  EncodeOptions ho;
  ho.codec = "libx264";
  ho.gop = 50;
  ho.bframes = 3;
  ho.quality = 4;
  make_video(h264, 604, 340, 25, 10, ho);
  // (b) 4 s SSv2-like VP9 webm: 427x240 → 426x240, 12 fps.
  const std::string vp9 = dir + "/ssv2_like.webm";
  EncodeOptions vo;
  vo.codec = "libvpx-vp9";
  vo.gop = 128;
  vo.quality = 4;
  make_video(vp9, 426, 240, 12, 4, vo);

  std::vector<bench::Result> results;
  TransformSpec k400;  // BEVT's K400 stream: RandomRescale 256-320, RandomCrop 224, Flip 0.5
  k400.scale_range = {256, 320};
  k400.crop = "random";
  k400.flip = 0.5;
  Rng rng(0);
  std::vector<int64_t> dense;
  for (int64_t i = 0; i < 16; ++i) dense.push_back(50 + 4 * i);  // starts 2 s in
  results.push_back(clip_case("a_dense_h264_340p", h264, dense, k400, reps, script));

  TransformSpec ssv2;  // BEVT's SSv2 fine-tune: short side 256, RandomResizedCrop 224, no flip
  ssv2.scale_range = {256};
  ssv2.crop = "random_resized";
  auto uni = uniform_indices(48, 16, 1, true, rng);
  results.push_back(clip_case("b_uniform_vp9_240p", vp9, uni, ssv2, reps, script));

  // (c) loader clips/s with the default worker count.
  auto registry = bevt::bench::plugins();
  BuildContext ctx;
  ctx.cache_dir = dir + "/cache";
  auto synth = registry.build_as<Dataset>(
      "bench.synthetic", Config::from_toml("plugin = 'synthetic'\nnum_videos = 320\n", "bench"), ctx);
  results.push_back(loader_case("c_loader_synthetic_16x64", synth, 8, clips));
  {
    // 64 distinct names for the one file (the dataset drops repeated ids, as a real list's duplicates).
    std::ofstream list(dir + "/k400_list.txt");
    for (int i = 0; i < 64; ++i) {
      const std::string name = fmt::format("k400_like_340p_{:02d}.mp4", i);
      std::error_code ec;
      std::filesystem::create_symlink("k400_like_340p.mp4", dir + "/" + name, ec);  // exists already: fine
      list << name << " 0\n";
    }
  }
  auto kin = registry.build_as<Dataset>(
      "bench.kinetics",
      Config::from_toml(fmt::format("plugin = 'kinetics'\nroot = '{}'\nannotation = 'k400_list.txt'\nvideo_dir = '{}'\n", dir, dir),
                        "bench"),
      ctx);
  results.push_back(loader_case("c_loader_k400_like_340p", kin, 4, 64));
  bench::print(results, json);
  return 0;
}

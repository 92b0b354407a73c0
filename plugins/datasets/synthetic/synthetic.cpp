// The synthetic dataset: motion-only and appearance-only classes rendered into real video files (or images),
// generated once into a cache folder keyed by the parameters (generator.h, docs/data.md).
#include <filesystem>

#include <fmt/format.h>

#include "bevt/data/media_dataset.h"
#include "bevt/error.h"
#include "bevt/plugin.h"
#include "synthetic/generator.h"

namespace {

bevt::MediaDefaults defaults() {
  bevt::MediaDefaults d;
  d.clip_len = 16;
  d.frame_interval = 1;
  d.scale_range = {};
  d.crop = "none";
  d.crop_size = 64;
  d.flip = 0.5;  // every synthetic class is symmetric under a horizontal flip
  return d;
}

class SyntheticDataset : public bevt::MediaDataset {
 public:
  static std::vector<bevt::KeySpec> keys() {
    auto k = bevt::media_keys(defaults());
    std::vector<bevt::KeySpec> own = {
        bevt::key("num_videos", int64_t{320}, "samples to generate (classes balanced: sample i has class i mod C)"),
        bevt::key("frames", int64_t{16}, "frames per video"),
        bevt::key("size", int64_t{64}, "frame side in pixels (even)"),
        bevt::key("classes", std::vector<std::string>{"motion", "appearance"},
                  "class names, or the families 'motion' / 'appearance'"),
        bevt::key("seed", int64_t{0}, "generator seed (splits use disjoint streams)"),
        bevt::key("split", "train", "train | val | test"),
        bevt::key("video", true, "false: single images (appearance classes only) for the image stream"),
        bevt::key("speed", 2.0, "pixels per frame of the moving shape"),
        bevt::key("noise", 0.0, "std of per-pixel Gaussian noise (0..255): difficulty"),
        bevt::key("scale_min", 0.85, "smallest shape size (a nuisance: drawn per sample from [scale_min, scale_max])"),
        bevt::key("scale_max", 1.15, "largest shape size"),
        bevt::key("equal_area", false,
                  "draw every appearance shape with the same area, so that neither the foreground's size nor a "
                  "frame's mean colour tells the class"),
        bevt::key("codec", "mpeg4", "encoder of the generated files (mpeg4, libx264, libvpx-vp9, ...)"),
        bevt::key("gop", int64_t{8}, "keyframe interval of the generated files"),
        bevt::key("cache_dir", "", "cache root (default: the run's cache folder)"),
        bevt::key("storage", "files",
                  "files: encoded into the cache and decoded as a real dataset is | memory: rendered in memory, "
                  "never encoded (no FFmpeg needed, e.g. the GPU check's build)"),
    };
    k.insert(k.end(), own.begin(), own.end());
    return k;
  }

  SyntheticDataset(const bevt::Config& cfg, const bevt::BuildContext& ctx)
      : MediaDataset(cfg, cfg.get_bool("video")) {
    bevt::SyntheticSpec s;
    s.render.frames = cfg.get_int("frames");
    s.render.size = cfg.get_int("size");
    s.render.speed = cfg.get_float("speed");
    s.render.noise = cfg.get_float("noise");
    s.render.scale_min = cfg.get_float("scale_min");
    s.render.scale_max = cfg.get_float("scale_max");
    s.render.equal_area = cfg.get_bool("equal_area");
    if (!(s.render.scale_min > 0 && s.render.scale_min <= s.render.scale_max))
      throw bevt::UserError(fmt::format("{}: needs 0 < scale_min <= scale_max (got {} and {})", cfg.where("scale_min"),
                                        s.render.scale_min, s.render.scale_max));
    s.num_samples = cfg.get_int("num_videos");
    s.seed = static_cast<uint64_t>(cfg.get_int("seed"));
    s.split = cfg.get_string("split");
    s.video = cfg.get_bool("video");
    s.codec = cfg.get_string("codec");
    s.gop = static_cast<int>(cfg.get_int("gop"));
    if (s.render.size < 8 || s.render.size % 2 || s.render.frames < 1)
      throw bevt::UserError(fmt::format("{}: size must be even and >= 8, frames >= 1", cfg.where("size")));
    try {
      auto sel = cfg.get_string_list("classes");
      if (!s.video && sel == std::vector<std::string>{"motion", "appearance"}) sel = {"appearance"};
      s.classes = bevt::synthetic_select_classes(sel);
    } catch (const std::invalid_argument& e) {
      throw bevt::UserError(fmt::format("{}: {}", cfg.where("classes"), e.what()));
    }
    const std::string storage = cfg.get_string("storage");
    if (storage == "memory") {
      auto set = bevt::render_synthetic_set(s);
      for (size_t i = 0; i < set.clips.size(); ++i)
        entries_.push_back({fmt::format("synthetic:{}/{:06d}", s.split, i), set.labels[i], 0, -1, set.clips[i]});
    } else if (storage == "files") {
      std::string root = cfg.get_string("cache_dir");
      if (root.empty()) root = ctx.cache_dir;
      if (root.empty())
        root = ctx.work_dir.empty() ? "bevt-cache" : (std::filesystem::path(ctx.work_dir) / "cache").string();
      auto cache = bevt::ensure_synthetic(s, root);
      for (size_t i = 0; i < cache.files.size(); ++i) entries_.push_back({cache.files[i], cache.labels[i], 0, -1});
    } else {
      throw bevt::UserError(fmt::format("{}: storage '{}' is not files or memory", cfg.where("storage"), storage));
    }
    classes_ = s.classes;
    finish(cfg.where());
  }
};

}  // namespace

BEVT_REGISTER(bevt::plugin<bevt::Dataset, SyntheticDataset>(
    "synthetic", "generated videos: motion-only and appearance-only classes (no download)"));

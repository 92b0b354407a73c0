#include "bevt/data/media_dataset.h"

#include <algorithm>
#include <cstring>
#include <fstream>

#include <fmt/format.h>

#include "bevt/data/video_io.h"
#include "bevt/error.h"

namespace bevt {

std::vector<KeySpec> media_keys(const MediaDefaults& d) {
  return {
      key("sampler", d.sampler, "frame sampler: dense (clip_len x frame_interval, K400) or uniform (segments, SSv2)"),
      key("clip_len", d.clip_len, "frames per clip"),
      key("frame_interval", d.frame_interval, "dense sampler: step between frames"),
      key("num_clips", d.num_clips, "clips per video (test: temporal views)"),
      key("test_mode", false, "deterministic sampling and crops (evaluation); training draws at random"),
      key("scale_range", d.scale_range, "short side before cropping: [] keep, [s] fixed, [lo, hi] random (RandomRescale)"),
      key("crop", d.crop, "none | random | random_resized | center | three"),
      key("crop_size", d.crop_size, "side of the square crop"),
      key("crop_area", std::vector<double>{0.08, 1.0}, "random_resized: area fraction range"),
      key("crop_ratio", std::vector<double>{0.75, 4.0 / 3.0}, "random_resized: aspect ratio range"),
      key("flip", d.flip, "horizontal flip probability (training)"),
      key("flip_label_map", std::vector<std::string>{}, "labels after a flip: [\"from:to\", ...] (class names or indices)"),
      key("color_jitter", d.color_jitter, "[brightness, contrast, saturation, hue]; [] = off"),
      key("jitter_per_frame", false, "draw colour jitter per frame instead of per clip"),
      key("rand_augment", std::vector<int64_t>{}, "RandAugment [n, m]; [] = off"),
      key("random_erasing", 0.0, "random erasing probability"),
      key("mean", std::vector<double>{123.675, 116.28, 103.53}, "normalisation mean (0..255 scale)"),
      key("std", std::vector<double>{58.395, 57.12, 57.375}, "normalisation std (0..255 scale)"),
      key("tokenizer_size", d.tokenizer_size, "side of the tokenizer view (Lanczos copy of the crop, [0,1]); 0 = none"),
      key("decode_threads", int64_t{1}, "codec threads per decoder (1 when many workers decode at once; 0 = auto)"),
      key("limit", int64_t{0}, "use only the first N samples (0 = all)"),
  };
}

SamplerSpec sampler_spec_from(const Config& cfg) {
  SamplerSpec s;
  s.kind = cfg.get_string("sampler");
  s.clip_len = cfg.get_int("clip_len");
  s.frame_interval = cfg.get_int("frame_interval");
  s.num_clips = cfg.get_int("num_clips");
  s.test_mode = cfg.get_bool("test_mode");
  if (s.kind != "dense" && s.kind != "uniform")
    throw UserError(fmt::format("{}: sampler = '{}' (expected dense or uniform)", cfg.where("sampler"), s.kind));
  if (s.clip_len < 1 || s.frame_interval < 1 || s.num_clips < 1)
    throw UserError(fmt::format("{}: clip_len, frame_interval and num_clips must be >= 1", cfg.where()));
  return s;
}

TransformSpec transform_spec_from(const Config& cfg) {
  TransformSpec t;
  t.scale_range = cfg.get_int_list("scale_range");
  t.crop = cfg.get_string("crop");
  t.crop_size = cfg.get_int("crop_size");
  t.crop_area = cfg.get_float_list("crop_area");
  t.crop_ratio = cfg.get_float_list("crop_ratio");
  t.flip = cfg.get_float("flip");
  t.color_jitter = cfg.get_float_list("color_jitter");
  t.jitter_per_frame = cfg.get_bool("jitter_per_frame");
  auto ra = cfg.get_int_list("rand_augment");
  if (!ra.empty() && ra.size() != 2)
    throw UserError(fmt::format("{}: rand_augment is [n, m] or []", cfg.where("rand_augment")));
  if (ra.size() == 2) {
    t.rand_augment_n = ra[0];
    t.rand_augment_m = ra[1];
  }
  t.random_erasing = cfg.get_float("random_erasing");
  t.mean = cfg.get_float_list("mean");
  t.std = cfg.get_float_list("std");
  t.tokenizer_size = cfg.get_int("tokenizer_size");
  t.test_mode = cfg.get_bool("test_mode");
  return t;
}

MediaDataset::MediaDataset(const Config& cfg, bool video) : cfg_(cfg), video_(video) {
  sampler_ = sampler_spec_from(cfg);
  tspec_ = transform_spec_from(cfg);
  decode_threads_ = static_cast<int>(cfg.get_int("decode_threads"));
  try {
    transform_ = std::make_unique<ClipTransform>(tspec_);
  } catch (const std::invalid_argument& e) {
    throw UserError(fmt::format("{}: {}", cfg.where(), e.what()));
  }
}

void MediaDataset::finish(const std::string& where) {
  auto class_index = [&](const std::string& s) -> int64_t {
    auto it = std::find(classes_.begin(), classes_.end(), s);
    if (it != classes_.end()) return it - classes_.begin();
    try {
      size_t used = 0;
      int64_t v = std::stoll(s, &used);
      if (used == s.size() && v >= 0 && v < static_cast<int64_t>(classes_.size())) return v;
    } catch (...) {
    }
    throw UserError(fmt::format("{}: flip_label_map names '{}', which is neither a class name nor a class index",
                                cfg_.where("flip_label_map"), s));
  };
  for (const auto& pair : cfg_.get_string_list("flip_label_map")) {
    auto colon = pair.rfind(':');
    if (colon == std::string::npos)
      throw UserError(fmt::format("{}: flip_label_map entries are \"from:to\", got '{}'", cfg_.where("flip_label_map"), pair));
    tspec_.flip_label_map[class_index(pair.substr(0, colon))] = class_index(pair.substr(colon + 1));
  }
  transform_ = std::make_unique<ClipTransform>(tspec_);
  int64_t limit = cfg_.get_int("limit");
  if (limit > 0 && static_cast<int64_t>(entries_.size()) > limit) entries_.resize(static_cast<size_t>(limit));
  if (entries_.empty()) throw UserError(fmt::format("{}: the annotation lists no samples", where));
}

namespace {
// The frames the sampler picks from an entry's usable range of a clip of `total` frames (absolute indices).
std::vector<int64_t> pick_frames(const MediaEntry& e, int64_t total, const SamplerSpec& sampler, Rng& rng) {
  const int64_t first = std::max<int64_t>(0, e.start_frame);
  const int64_t last = e.end_frame < 0 ? total - 1 : std::min(e.end_frame, total - 1);
  if (last < first)
    throw DecodeError(fmt::format("{}: frame range {}..{} is empty (the video has {} frames)", e.path, e.start_frame,
                                  e.end_frame, total));
  auto idx = sample_frames(sampler, last - first + 1, rng);
  for (auto& k : idx) k += first;
  return idx;
}
}  // namespace

Sample MediaDataset::get(size_t index, Rng& rng) const {
  if (index >= entries_.size()) throw std::out_of_range(fmt::format("sample {} of {}", index, entries_.size()));
  const auto& e = entries_[index];
  Clip clip;
  int64_t clips = 1;
  try {
    if (video_ && e.frames) {
      const Clip& all = *e.frames;
      auto idx = pick_frames(e, all.frames, sampler_, rng);
      auto [h, w] = transform_->decode_size(all.height, all.width, rng);
      Clip picked(static_cast<int64_t>(idx.size()), all.height, all.width);
      for (size_t k = 0; k < idx.size(); ++k)
        std::memcpy(picked.frame(static_cast<int64_t>(k)), all.frame(idx[k]), all.frame_bytes());
      clip = (h == all.height && w == all.width) ? std::move(picked) : resize_clip(picked, h, w, "bilinear");
      clips = sampler_.num_clips;
    } else if (video_) {
      DecodeOptions o;
      o.threads = decode_threads_;
      VideoReader reader(e.path, o);
      const auto& info = reader.info();
      auto idx = pick_frames(e, info.frames, sampler_, rng);
      auto [h, w] = transform_->decode_size(info.height, info.width, rng);
      clip = reader.read(idx, w, h);
      clips = sampler_.num_clips;
    } else {
      Clip img = e.frames ? *e.frames : read_image(e.path);
      auto [h, w] = transform_->decode_size(img.height, img.width, rng);
      clip = (h == img.height && w == img.width) ? std::move(img) : resize_clip(img, h, w, "bicubic");
    }
  } catch (const DecodeError&) {
    throw;
  } catch (const std::exception& ex) {
    throw DecodeError(fmt::format("{}: {}", e.path, ex.what()));
  }
  auto views = transform_->apply(clip, e.label, rng, clips);
  Sample s;
  s.label = views.label;
  s.id = e.path;
  if (video_) {
    s.input = views.inputs.size() == 1 ? views.inputs[0] : torch::stack(views.inputs);
    if (!views.tokenizer_views.empty())
      s.tokenizer_view = views.tokenizer_views.size() == 1 ? views.tokenizer_views[0] : torch::stack(views.tokenizer_views);
  } else {
    std::vector<torch::Tensor> ins, toks;
    for (auto& v : views.inputs) ins.push_back(v.select(1, 0));
    for (auto& v : views.tokenizer_views) toks.push_back(v.select(0, 0));
    s.input = ins.size() == 1 ? ins[0] : torch::stack(ins);
    if (!toks.empty()) s.tokenizer_view = toks.size() == 1 ? toks[0] : torch::stack(toks);
  }
  return s;
}

std::vector<std::string> read_lines(const std::string& path, const std::string& what) {
  std::ifstream f(path);
  if (!f) throw UserError(fmt::format("{}: cannot read {}", what, path));
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(f, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

}  // namespace bevt

#include "bevt/data/transforms.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <stdexcept>

#include <opencv2/imgproc.hpp>

#include "bevt/data/randaugment.h"
#include "cv_interpolation.h"

namespace bevt {
namespace {

cv::Mat frame_mat(Clip& c, int64_t t) {
  return cv::Mat(static_cast<int>(c.height), static_cast<int>(c.width), CV_8UC3, c.frame(t));
}
cv::Mat frame_mat(const Clip& c, int64_t t) { return frame_mat(const_cast<Clip&>(c), t); }

Clip crop_resize(const Clip& src, int64_t t0, int64_t frames, const ClipTransform::CropBox& b, int64_t out_h,
                 int64_t out_w) {
  Clip out(frames, out_h, out_w);
  for (int64_t t = 0; t < frames; ++t) {
    cv::Mat roi = frame_mat(src, t0 + t)(cv::Rect(static_cast<int>(b.x), static_cast<int>(b.y), static_cast<int>(b.w),
                                                  static_cast<int>(b.h)));
    cv::Mat dst = frame_mat(out, t);
    if (b.w == out_w && b.h == out_h)
      roi.copyTo(dst);
    else
      cv::resize(roi, dst, dst.size(), 0, 0, cv::INTER_LINEAR);
  }
  return out;
}

void flip_clip(Clip& c) {
  for (int64_t t = 0; t < c.frames; ++t) {
    cv::Mat m = frame_mat(c, t);
    cv::flip(m, m, 1);
  }
}

// Brightness, contrast, saturation (and hue) factors as torchvision draws them.
struct Jitter {
  double b = 1, c = 1, s = 1, h = 0;
};
Jitter draw_jitter(const std::vector<double>& cj, Rng& rng) {
  Jitter j;
  auto factor = [&](double x) { return x > 0 ? rng.uniform(std::max(0.0, 1 - x), 1 + x) : 1.0; };
  j.b = factor(cj.size() > 0 ? cj[0] : 0);
  j.c = factor(cj.size() > 1 ? cj[1] : 0);
  j.s = factor(cj.size() > 2 ? cj[2] : 0);
  j.h = cj.size() > 3 && cj[3] > 0 ? rng.uniform(-cj[3], cj[3]) : 0.0;
  return j;
}

void apply_jitter(cv::Mat m, const Jitter& j) {
  cv::Mat f;
  m.convertTo(f, CV_32FC3, j.b);
  if (j.c != 1) {
    cv::Mat g;
    cv::cvtColor(f, g, cv::COLOR_RGB2GRAY);
    double mean = cv::mean(g)[0];
    f = (f - cv::Scalar::all(mean)) * j.c + cv::Scalar::all(mean);
  }
  if (j.s != 1) {
    cv::Mat g, g3;
    cv::cvtColor(cv::min(cv::max(f, 0.0), 255.0), g, cv::COLOR_RGB2GRAY);
    cv::cvtColor(g, g3, cv::COLOR_GRAY2RGB);
    cv::addWeighted(f, j.s, g3, 1 - j.s, 0, f);
  }
  f.convertTo(m, CV_8UC3);  // saturates to 0..255
  if (j.h != 0) {
    cv::Mat hsv;
    cv::cvtColor(m, hsv, cv::COLOR_RGB2HSV_FULL);
    int shift = static_cast<int>(std::lround(j.h * 256));
    for (int y = 0; y < hsv.rows; ++y) {
      auto* p = hsv.ptr<uint8_t>(y);
      for (int x = 0; x < hsv.cols; ++x) p[3 * x] = static_cast<uint8_t>((p[3 * x] + shift + 256) & 255);
    }
    cv::cvtColor(hsv, m, cv::COLOR_HSV2RGB_FULL);
  }
}

// One pass: uint8 THWC → normalised float CTHW.
torch::Tensor to_input(const Clip& c, const std::vector<double>& mean, const std::vector<double>& std) {
  auto out = torch::empty({3, c.frames, c.height, c.width}, torch::kFloat32);
  float* o = out.data_ptr<float>();
  const int64_t plane = c.frames * c.height * c.width;
  float scale[3], shift[3];
  for (int k = 0; k < 3; ++k) {
    scale[k] = static_cast<float>(1.0 / std[static_cast<size_t>(k)]);
    shift[k] = static_cast<float>(-mean[static_cast<size_t>(k)] / std[static_cast<size_t>(k)]);
  }
  const uint8_t* p = c.data.data();
  float* o0 = o;
  float* o1 = o + plane;
  float* o2 = o + 2 * plane;
  for (int64_t i = 0; i < plane; ++i) {
    o0[i] = p[3 * i] * scale[0] + shift[0];
    o1[i] = p[3 * i + 1] * scale[1] + shift[1];
    o2[i] = p[3 * i + 2] * scale[2] + shift[2];
  }
  return out;
}

torch::Tensor to_unit(const Clip& c) {
  auto t = torch::from_blob(const_cast<uint8_t*>(c.data.data()), {c.frames, c.height, c.width, 3}, torch::kUInt8)
               .to(torch::kFloat32)
               .div_(255.0f);
  return t.permute({0, 3, 1, 2}).contiguous();  // T C H W
}

}  // namespace

ClipTransform::ClipTransform(TransformSpec spec) : spec_(std::move(spec)) {
  const auto& s = spec_;
  static const std::vector<std::string> crops = {"none", "random", "random_resized", "center", "three"};
  if (std::find(crops.begin(), crops.end(), s.crop) == crops.end())
    throw std::invalid_argument("crop '" + s.crop + "' (expected none, random, random_resized, center or three)");
  if (s.crop != "none" && s.crop_size < 1) throw std::invalid_argument("crop_size must be >= 1");
  if (s.scale_range.size() > 2 || (s.scale_range.size() == 2 && s.scale_range[0] > s.scale_range[1]) ||
      std::any_of(s.scale_range.begin(), s.scale_range.end(), [](int64_t v) { return v < 1; }))
    throw std::invalid_argument("scale_range must be [] or [short_side] or [lo, hi] with 1 <= lo <= hi");
  if (s.crop_area.size() != 2 || s.crop_area[0] <= 0 || s.crop_area[0] > s.crop_area[1] || s.crop_area[1] > 1)
    throw std::invalid_argument("crop_area must be [lo, hi] with 0 < lo <= hi <= 1");
  if (s.crop_ratio.size() != 2 || s.crop_ratio[0] <= 0 || s.crop_ratio[0] > s.crop_ratio[1])
    throw std::invalid_argument("crop_ratio must be [lo, hi] with 0 < lo <= hi");
  if (s.mean.size() != 3 || s.std.size() != 3 ||
      std::any_of(s.std.begin(), s.std.end(), [](double v) { return v <= 0; }))
    throw std::invalid_argument("mean and std need 3 values each, std > 0");
  if (s.color_jitter.size() > 4) throw std::invalid_argument("color_jitter is [brightness, contrast, saturation, hue]");
  if (s.flip < 0 || s.flip > 1 || s.random_erasing < 0 || s.random_erasing > 1)
    throw std::invalid_argument("flip and random_erasing are probabilities in [0, 1]");
  if (s.rand_augment_n < 0 || s.rand_augment_m < 0 || s.rand_augment_m > 30)
    throw std::invalid_argument("rand_augment is [n, m] with n >= 0 and 0 <= m <= 30 (imgaug's magnitude scale)");
  if (s.random_erasing_mode != "const" && s.random_erasing_mode != "rand" && s.random_erasing_mode != "pixel")
    throw std::invalid_argument("random_erasing_mode '" + s.random_erasing_mode +
                                "' (expected const, rand or pixel: timm's modes)");
  if (s.test_mode && s.crop != "none" && s.crop != "center" && s.crop != "three")
    spec_.crop = "center";  // test views are deterministic
}

std::pair<int64_t, int64_t> ClipTransform::decode_size(int64_t height, int64_t width, Rng& rng) const {
  const auto& r = spec_.scale_range;
  if (r.empty()) return {height, width};
  int64_t target = r.size() == 1 || spec_.test_mode ? r[0] : rng.randint(r[0], r[1]);
  double scale = static_cast<double>(target) / static_cast<double>(std::min(height, width));
  auto round_even = [](double v) { return std::max<int64_t>(1, static_cast<int64_t>(std::lround(v))); };
  if (height <= width) return {target, round_even(width * scale)};
  return {round_even(height * scale), target};
}

std::vector<ClipTransform::CropBox> ClipTransform::crop_boxes(int64_t h, int64_t w, Rng& rng) const {
  const auto& s = spec_;
  const int64_t cs = s.crop_size;
  auto centered = [&](int64_t ch, int64_t cw) {
    return CropBox{(w - cw) / 2, (h - ch) / 2, cw, ch};
  };
  if (s.crop == "none") return {CropBox{0, 0, w, h}};
  if (s.crop == "center") return {centered(std::min(cs, h), std::min(cs, w))};
  if (s.crop == "three") {
    int64_t ch = std::min(cs, h), cw = std::min(cs, w);
    if (w >= h) {
      int64_t y = (h - ch) / 2;
      return {CropBox{0, y, cw, ch}, CropBox{(w - cw) / 2, y, cw, ch}, CropBox{w - cw, y, cw, ch}};
    }
    int64_t x = (w - cw) / 2;
    return {CropBox{x, 0, cw, ch}, CropBox{x, (h - ch) / 2, cw, ch}, CropBox{x, h - ch, cw, ch}};
  }
  if (s.crop == "random") {
    int64_t ch = std::min(cs, h), cw = std::min(cs, w);
    int64_t y = rng.randint(0, h - ch), x = rng.randint(0, w - cw);
    return {CropBox{x, y, cw, ch}};
  }
  // random_resized (torchvision/mmaction: 10 tries, then a centre crop clamped to the ratio range)
  const double area = static_cast<double>(h * w);
  const double lr0 = std::log(s.crop_ratio[0]), lr1 = std::log(s.crop_ratio[1]);
  for (int attempt = 0; attempt < 10; ++attempt) {
    double target = area * rng.uniform(s.crop_area[0], s.crop_area[1]);
    double ratio = std::exp(rng.uniform(lr0, lr1));
    auto cw = static_cast<int64_t>(std::lround(std::sqrt(target * ratio)));
    auto ch = static_cast<int64_t>(std::lround(std::sqrt(target / ratio)));
    if (cw > 0 && ch > 0 && cw <= w && ch <= h) {
      int64_t y = rng.randint(0, h - ch), x = rng.randint(0, w - cw);
      return {CropBox{x, y, cw, ch}};
    }
  }
  double in_ratio = static_cast<double>(w) / static_cast<double>(h);
  int64_t cw = w, ch = h;
  if (in_ratio < s.crop_ratio[0])
    ch = std::max<int64_t>(1, std::lround(w / s.crop_ratio[0]));
  else if (in_ratio > s.crop_ratio[1])
    cw = std::max<int64_t>(1, std::lround(h * s.crop_ratio[1]));
  return {centered(ch, cw)};
}

TransformedViews ClipTransform::apply(const Clip& clip, int64_t label, Rng& rng, int64_t num_clips) const {
  const auto& s = spec_;
  if (num_clips < 1 || clip.frames % num_clips) throw std::invalid_argument("clip frames not divisible by num_clips");
  const int64_t per = clip.frames / num_clips;
  const bool train = !s.test_mode;
  // Draw every random parameter once, in a fixed order, before touching pixels.
  auto boxes = crop_boxes(clip.height, clip.width, rng);
  bool flipped = train && s.flip > 0 && rng.bernoulli(s.flip);
  std::vector<Jitter> jit;
  if (train && !s.color_jitter.empty()) {
    int64_t n = s.jitter_per_frame ? clip.frames : 1;
    for (int64_t i = 0; i < n; ++i) jit.push_back(draw_jitter(s.color_jitter, rng));
  }
  RandAugmentDraw aug;
  const bool augment = train && s.rand_augment_n > 0;
  if (augment) aug = draw_rand_augment(s.rand_augment_n, s.rand_augment_m, s.rand_augment_flip, rng);
  bool erase = train && s.random_erasing > 0 && rng.bernoulli(s.random_erasing);

  TransformedViews out;
  out.label = label;
  // RandAugment's own flip mirrors the clip too; the label map follows the clip's final orientation.
  if (flipped != (augment && aug.flip)) {
    auto it = s.flip_label_map.find(label);
    if (it != s.flip_label_map.end()) out.label = it->second;
  }
  const bool resize_to_crop = s.crop != "none";
  for (int64_t c = 0; c < num_clips; ++c) {
    for (const auto& b : boxes) {
      int64_t oh = resize_to_crop ? s.crop_size : b.h, ow = resize_to_crop ? s.crop_size : b.w;
      Clip v = crop_resize(clip, c * per, per, b, oh, ow);
      if (flipped) flip_clip(v);
      for (int64_t t = 0; t < v.frames && !jit.empty(); ++t)
        apply_jitter(frame_mat(v, t), jit[s.jitter_per_frame ? static_cast<size_t>(c * per + t) : 0]);
      if (augment) apply_rand_augment(v, aug);
      if (s.tokenizer_size > 0)
        out.tokenizer_views.push_back(to_unit(resize_clip(v, s.tokenizer_size, s.tokenizer_size, "lanczos")));
      out.inputs.push_back(to_input(v, s.mean, s.std));
    }
  }
  if (erase) {
    const auto region = draw_erasing_region(out.inputs[0].size(2), out.inputs[0].size(3), rng);
    if (region.h > 0) erase_region(out.inputs, region, s.random_erasing_mode, rng);
  }
  return out;
}

ClipTransform::CropBox draw_erasing_region(int64_t h, int64_t w, Rng& rng) {
  // timm RandomErasing._erase (min_area 0.02, max_area 1/3, min_aspect 0.3, count 1): ten tries; Python's
  // round() is half to even, as nearbyint; the region must be strictly smaller than the frame.
  const double area = static_cast<double>(h * w);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = rng.uniform(0.02, 1.0 / 3.0) * area;
    const double ratio = std::exp(rng.uniform(std::log(0.3), std::log(1 / 0.3)));
    const auto eh = static_cast<int64_t>(std::nearbyint(std::sqrt(target * ratio)));
    const auto ew = static_cast<int64_t>(std::nearbyint(std::sqrt(target / ratio)));
    if (ew < w && eh < h) {
      const int64_t top = rng.randint(0, h - eh), left = rng.randint(0, w - ew);
      return ClipTransform::CropBox{left, top, ew, eh};
    }
  }
  return ClipTransform::CropBox{};
}

void erase_region(std::vector<torch::Tensor>& inputs, const ClipTransform::CropBox& r, const std::string& mode,
                  Rng& rng) {
  using torch::indexing::Slice;
  // mmaction's RandomErasing restores the random states before each frame, so "rand" and "pixel" draw the
  // same values for every frame: one [3, h, w] (or [3, 1, 1]) fill broadcast over time.
  torch::Tensor fill;
  if (mode == "pixel" || mode == "rand") {
    std::normal_distribution<float> nd(0.0f, 1.0f);
    fill = mode == "pixel" ? torch::empty({3, 1, r.h, r.w}) : torch::empty({3, 1, 1, 1});
    auto* p = fill.data_ptr<float>();
    for (int64_t i = 0; i < fill.numel(); ++i) p[i] = nd(rng.engine());
  }
  for (auto& in : inputs) {
    auto box = in.index({Slice(), Slice(), Slice(r.y, r.y + r.h), Slice(r.x, r.x + r.w)});
    if (fill.defined())
      box.copy_(fill.expand_as(box));
    else
      box.zero_();  // "const": zeros after Normalize, i.e. the mean colour
  }
}

Clip denormalize(const torch::Tensor& input, const std::vector<double>& mean, const std::vector<double>& std) {
  auto x = input.dim() == 3 ? input.unsqueeze(1) : input;  // C T H W
  auto m = torch::tensor(std::vector<float>(mean.begin(), mean.end())).view({3, 1, 1, 1});
  auto s = torch::tensor(std::vector<float>(std.begin(), std.end())).view({3, 1, 1, 1});
  auto u8 = (x.to(torch::kFloat32) * s + m).round().clamp(0, 255).to(torch::kUInt8).permute({1, 2, 3, 0}).contiguous();
  Clip c(u8.size(0), u8.size(1), u8.size(2));
  std::memcpy(c.data.data(), u8.data_ptr<uint8_t>(), c.data.size());
  return c;
}

Clip unit_to_clip(const torch::Tensor& view) {
  auto x = view.dim() == 3 ? view.unsqueeze(0) : view;  // T C H W
  auto u8 = (x.to(torch::kFloat32) * 255).round().clamp(0, 255).to(torch::kUInt8).permute({0, 2, 3, 1}).contiguous();
  Clip c(u8.size(0), u8.size(1), u8.size(2));
  std::memcpy(c.data.data(), u8.data_ptr<uint8_t>(), c.data.size());
  return c;
}

}  // namespace bevt

// imgaug 0.4 RandAugment on uint8 RGB frames. Each operation follows the imgaug function it names (pillike.*
// reproduce PIL's ImageOps / ImageEnhance / ImageFilter / Image.transform; arithmetic.* are numpy), including
// their integer rounding, so a frame comes out as imgaug would give it up to PIL's float summation order.
#include "bevt/data/randaugment.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <opencv2/imgproc.hpp>

namespace bevt {
namespace {

constexpr double kMMax = 30.0;   // RandAugment._M_MAX
constexpr int kFill = 128;       // RandAugment's cval: fillcolor of the affine ops and Cutout's value

cv::Mat frame_mat(Clip& c, int64_t t) {
  return cv::Mat(static_cast<int>(c.height), static_cast<int>(c.width), CV_8UC3, c.frame(t));
}

// A 256-entry table on each channel (per-channel tables for autocontrast and equalize).
void apply_lut(cv::Mat m, const std::array<std::array<uint8_t, 256>, 3>& lut) {
  for (int y = 0; y < m.rows; ++y) {
    auto* p = m.ptr<uint8_t>(y);
    for (int x = 0; x < m.cols * 3; x += 3)
      for (int c = 0; c < 3; ++c) p[x + c] = lut[static_cast<size_t>(c)][p[x + c]];
  }
}

std::array<std::array<int64_t, 256>, 3> histograms(const cv::Mat& m) {
  std::array<std::array<int64_t, 256>, 3> h{};
  for (int y = 0; y < m.rows; ++y) {
    const auto* p = m.ptr<uint8_t>(y);
    for (int x = 0; x < m.cols * 3; x += 3)
      for (int c = 0; c < 3; ++c) ++h[static_cast<size_t>(c)][p[x + c]];
  }
  return h;
}

// pillike._autocontrast_no_pil with cutoff 0: the lowest and highest used values map to 0 and 255.
void autocontrast(cv::Mat m) {
  const auto h = histograms(m);
  std::array<std::array<uint8_t, 256>, 3> lut{};
  for (size_t c = 0; c < 3; ++c) {
    int lo = 0, hi = 255;
    while (lo < 255 && h[c][static_cast<size_t>(lo)] == 0) ++lo;
    while (hi > 0 && h[c][static_cast<size_t>(hi)] == 0) --hi;
    for (int i = 0; i < 256; ++i) {
      if (hi <= lo) {
        lut[c][static_cast<size_t>(i)] = static_cast<uint8_t>(i);
        continue;
      }
      const double scale = 255.0 / (hi - lo), offset = -lo * scale;
      const double v = std::clamp(i * scale + offset, 0.0, 255.0);
      lut[c][static_cast<size_t>(i)] = static_cast<uint8_t>(v);  // numpy astype(uint8): truncation
    }
  }
  apply_lut(m, lut);
}

// pillike.equalize: PIL's algorithm. Frames of 64x64 pixels or more take imgaug's numpy path, whose step counts
// every value but 255; smaller ones go through PIL, whose step leaves out the highest used value instead.
void equalize(cv::Mat m) {
  const auto h = histograms(m);
  const bool numpy_path = static_cast<int64_t>(m.rows) * m.cols >= 64 * 64;
  std::array<std::array<uint8_t, 256>, 3> lut{};
  for (size_t c = 0; c < 3; ++c) {
    for (size_t i = 0; i < 256; ++i) lut[c][i] = static_cast<uint8_t>(i);
    int64_t used = 0, total = 0, last_used = 0;
    for (size_t i = 0; i < 256; ++i) {
      total += h[c][i];
      if (h[c][i] == 0) continue;
      ++used;
      last_used = h[c][i];
    }
    if (used <= 1) continue;
    const int64_t step = numpy_path ? (total - h[c][255]) / 255 : (total - last_used) / 255;
    if (step == 0) continue;
    int64_t n = step / 2;
    for (size_t i = 0; i < 256; ++i) {
      lut[c][i] = static_cast<uint8_t>(std::min<int64_t>(255, n / step));
      n += h[c][i];
    }
  }
  apply_lut(m, lut);
}

void point(cv::Mat m, const std::array<uint8_t, 256>& table) {
  m.forEach<cv::Vec3b>([&](cv::Vec3b& p, const int*) {
    for (int c = 0; c < 3; ++c) p[c] = table[p[c]];
  });
}

// PIL's L conversion (Convert.c rgb2l: ITU-R 601-2 weights in 16-bit fixed point, rounded).
uint8_t luma(const uint8_t* p) {
  return static_cast<uint8_t>((p[0] * 19595 + p[1] * 38470 + p[2] * 7471 + 0x8000) >> 16);
}

// PIL Image.blend(degenerate, image, factor) (Blend.c): degenerate + factor * (image - degenerate) in float,
// truncated, clipped when extrapolating.
void blend(cv::Mat image, const cv::Mat& degenerate, double factor) {
  const auto alpha = static_cast<float>(factor);
  for (int y = 0; y < image.rows; ++y) {
    auto* p = image.ptr<uint8_t>(y);
    const auto* d = degenerate.ptr<uint8_t>(y);
    for (int x = 0; x < image.cols * 3; ++x) {
      const float v = static_cast<float>(d[x]) + alpha * static_cast<float>(static_cast<int>(p[x]) - d[x]);
      p[x] = v <= 0.0f ? 0 : v >= 255.0f ? 255 : static_cast<uint8_t>(v);
    }
  }
}

// PIL ImageFilter kernels (Filter.c): float sum plus 0.5, truncated; the outer size/2 rows and columns are
// copied unchanged.
cv::Mat pil_filter(const cv::Mat& m, int size, const std::vector<float>& kernel, float scale) {
  cv::Mat out = m.clone();
  const int r = size / 2;
  if (m.rows <= 2 * r || m.cols <= 2 * r) return out;
  for (int y = r; y < m.rows - r; ++y) {
    auto* o = out.ptr<uint8_t>(y);
    for (int x = r; x < m.cols - r; ++x)
      for (int c = 0; c < 3; ++c) {
        float ss = 0.5f;
        for (int ky = 0; ky < size; ++ky) {  // PIL runs the kernel rows from y + r down to y - r
          const auto* row = m.ptr<uint8_t>(y + r - ky);
          for (int kx = 0; kx < size; ++kx)
            ss += static_cast<float>(row[(x - r + kx) * 3 + c]) * (kernel[static_cast<size_t>(ky * size + kx)] / scale);
        }
        o[x * 3 + c] = ss <= 0.0f ? 0 : ss >= 255.0f ? 255 : static_cast<uint8_t>(ss);
      }
  }
  return out;
}
const std::vector<float> kSmooth = {1, 1, 1, 1, 5, 1, 1, 1, 1};  // ImageFilter.SMOOTH, scale 13
const std::vector<float> kBlur = {1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1,
                                  1, 0, 0, 0, 1, 1, 1, 1, 1, 1};  // ImageFilter.BLUR, scale 16

// pillike.warp_affine: imgaug's matrix (float32, about center_px) inverted, then PIL's nearest-neighbour
// Image.transform(AFFINE) with fillcolor 128 on every channel (geometric.Affine draws cval for 3 channels).
// PIL samples translations in floating point and everything else in 16.16 fixed point; both are kept, since
// they pick different source pixels near pixel edges.
void warp_affine(cv::Mat m, double rotate_deg, double shear_x_deg, double shear_y_deg, double tx_px, double ty_px,
                 double cx_rel, double cy_rel) {
  const float cx = static_cast<float>(m.cols * cx_rel), cy = static_cast<float>(m.rows * cy_rel);
  // numpy: the angles and their cos, sin and tanh in float64, stored into float32 matrices
  const double rr = -rotate_deg * M_PI / 180.0;
  const auto shx = static_cast<float>(std::tanh(shear_x_deg * M_PI / 180.0));
  const auto shy = static_cast<float>(std::tanh(shear_y_deg * M_PI / 180.0));
  const auto cr = static_cast<float>(std::cos(rr)), sr = static_cast<float>(std::sin(rr));
  using M3 = cv::Matx33f;
  const M3 centerize(1, 0, -cx, 0, 1, -cy, 0, 0, 1), decenterize(1, 0, cx, 0, 1, cy, 0, 0, 1);
  const M3 rotate(cr, sr, 0, -sr, cr, 0, 0, 0, 1);
  const M3 shear(1, shx, 0, shy, 1, 0, 0, 0, 1);
  const M3 translate(1, 0, static_cast<float>(tx_px), 0, 1, static_cast<float>(ty_px), 0, 0, 1);
  const M3 inv = (decenterize * translate * shear * rotate * centerize).inv();
  const double a0 = inv(0, 0), a1 = inv(0, 1), a2 = inv(0, 2), a3 = inv(1, 0), a4 = inv(1, 1), a5 = inv(1, 2);
  cv::Mat out(m.size(), m.type(), cv::Scalar::all(kFill));
  if (a1 == 0 && a3 == 0) {  // Geometry.c ImagingScaleAffine (translations): float coordinates, COORD()
    auto coord = [](double v) { return v < 0.0 ? -1 : static_cast<int>(v); };
    for (int y = 0; y < m.rows; ++y) {
      const int yin = coord(a5 + a4 * (y + 0.5));
      auto* o = out.ptr<cv::Vec3b>(y);
      for (int x = 0; x < m.cols && yin >= 0 && yin < m.rows; ++x) {
        const int xin = coord(a2 + a0 * (x + 0.5));
        if (xin >= 0 && xin < m.cols) o[x] = m.at<cv::Vec3b>(yin, xin);
      }
    }
  } else {  // Geometry.c affine_fixed (rotations, shears): 16.16 fixed point, the pixel centre folded into the offset
    auto fix = [](double v) { return static_cast<int32_t>(std::floor(v * 65536.0 + 0.5)); };
    const int32_t f0 = fix(a0), f1 = fix(a1), f3 = fix(a3), f4 = fix(a4);
    int32_t xo = fix(a2 + a0 * 0.5 + a1 * 0.5), yo = fix(a5 + a3 * 0.5 + a4 * 0.5);
    for (int y = 0; y < m.rows; ++y, xo += f1, yo += f4) {
      int32_t xx = xo, yy = yo;
      auto* o = out.ptr<cv::Vec3b>(y);
      for (int x = 0; x < m.cols; ++x, xx += f0, yy += f3) {
        const int xin = xx >> 16, yin = yy >> 16;  // arithmetic shift: floor
        if (xin >= 0 && xin < m.cols && yin >= 0 && yin < m.rows) o[x] = m.at<cv::Vec3b>(yin, xin);
      }
    }
  }
  out.copyTo(m);
}

void apply_step(cv::Mat m, const IaStep& s) {
  switch (s.op) {
    case IaOp::Identity:
      break;
    case IaOp::Autocontrast:
      autocontrast(m);
      break;
    case IaOp::Equalize:
      equalize(m);
      break;
    case IaOp::Invert: {
      std::array<uint8_t, 256> t{};
      for (int i = 0; i < 256; ++i) t[static_cast<size_t>(i)] = static_cast<uint8_t>(255 - i);
      point(m, t);
      break;
    }
    case IaOp::Rotate:
      warp_affine(m, s.value, 0, 0, 0, 0, 0.5, 0.5);
      break;
    case IaOp::Posterize: {  // PIL ImageOps.posterize: keep the high bits
      const auto mask = static_cast<uint8_t>(~((1 << (8 - static_cast<int>(s.value))) - 1));
      std::array<uint8_t, 256> t{};
      for (int i = 0; i < 256; ++i) t[static_cast<size_t>(i)] = static_cast<uint8_t>(i & mask);
      point(m, t);
      break;
    }
    case IaOp::Solarize: {  // arithmetic invert_ with threshold: values from int(threshold) on are inverted
      const int thr = static_cast<int>(s.value);
      std::array<uint8_t, 256> t{};
      for (int i = 0; i < 256; ++i) t[static_cast<size_t>(i)] = static_cast<uint8_t>(i >= thr ? 255 - i : i);
      point(m, t);
      break;
    }
    case IaOp::EnhanceColor: {  // ImageEnhance.Color: towards the L image
      cv::Mat gray(m.size(), m.type());
      for (int y = 0; y < m.rows; ++y) {
        const auto* p = m.ptr<uint8_t>(y);
        auto* g = gray.ptr<uint8_t>(y);
        for (int x = 0; x < m.cols * 3; x += 3) g[x] = g[x + 1] = g[x + 2] = luma(p + x);
      }
      blend(m, gray, s.value);
      break;
    }
    case IaOp::EnhanceContrast: {  // ImageEnhance.Contrast: towards the rounded mean of the L image
      double sum = 0;
      for (int y = 0; y < m.rows; ++y) {
        const auto* p = m.ptr<uint8_t>(y);
        for (int x = 0; x < m.cols * 3; x += 3) sum += luma(p + x);
      }
      const int mean = static_cast<int>(sum / (static_cast<double>(m.rows) * m.cols) + 0.5);
      blend(m, cv::Mat(m.size(), m.type(), cv::Scalar::all(mean)), s.value);
      break;
    }
    case IaOp::EnhanceBrightness:  // ImageEnhance.Brightness: towards black
      blend(m, cv::Mat::zeros(m.size(), m.type()), s.value);
      break;
    case IaOp::EnhanceSharpness:  // ImageEnhance.Sharpness: towards the SMOOTH-filtered frame
      blend(m, pil_filter(m, 3, kSmooth, 13), s.value);
      break;
    case IaOp::ShearX:
      warp_affine(m, 0, s.value, 0, 0, 0, 0, 0);
      break;
    case IaOp::ShearY:
      warp_affine(m, 0, 0, s.value, 0, 0, 0, 0);
      break;
    case IaOp::TranslateX:
      warp_affine(m, 0, 0, 0, s.value * m.cols, 0, 0, 0);
      break;
    case IaOp::TranslateY:
      warp_affine(m, 0, 0, 0, 0, s.value * m.rows, 0, 0);
      break;
    case IaOp::Cutout: {  // squared: the side is size * height; corners truncated by int(), then clipped
      const double half = s.value * m.rows / 2.0;
      const double xc = s.x * m.cols, yc = s.y * m.rows;
      auto clip = [](double v, int hi) { return std::clamp(static_cast<int>(v), 0, hi); };
      const int x1 = clip(xc - half, m.cols), x2 = clip(xc + half, m.cols);
      const int y1 = clip(yc - half, m.rows), y2 = clip(yc + half, m.rows);
      if (x2 > x1 && y2 > y1) m(cv::Rect(x1, y1, x2 - x1, y2 - y1)).setTo(cv::Scalar::all(kFill));
      break;
    }
    case IaOp::FilterBlur:
      pil_filter(m, 5, kBlur, 16).copyTo(m);
      break;
    case IaOp::FilterSmooth:
      pil_filter(m, 3, kSmooth, 13).copyTo(m);
      break;
  }
}

bool signed_op(IaOp op) {
  return op == IaOp::Rotate || op == IaOp::ShearX || op == IaOp::ShearY || op == IaOp::TranslateX ||
         op == IaOp::TranslateY;
}
bool enhance_op(IaOp op) {
  return op == IaOp::EnhanceColor || op == IaOp::EnhanceContrast || op == IaOp::EnhanceBrightness ||
         op == IaOp::EnhanceSharpness;
}

}  // namespace

const char* ia_op_name(IaOp op) {
  static const char* names[kIaOpCount] = {
      "Identity",        "Autocontrast",      "Equalize",         "Invert",     "Rotate",     "Posterize",
      "Solarize",        "EnhanceColor",      "EnhanceContrast",  "EnhanceBrightness",        "EnhanceSharpness",
      "ShearX",          "ShearY",            "TranslateX",       "TranslateY", "Cutout",     "FilterBlur",
      "FilterSmooth"};
  const int i = static_cast<int>(op);
  return i >= 0 && i < kIaOpCount ? names[i] : "?";
}

IaMagnitudes ia_magnitudes(int64_t m) {
  // imgaug: _float_parameter(m, maxval) = m * maxval/30; _int_parameter truncates it (Discretize(round=False)).
  const double md = static_cast<double>(m);
  auto fparam = [&](double maxval) { return md * (maxval / kMMax); };
  IaMagnitudes g;
  g.rotate_deg = fparam(30);
  g.shear_deg = fparam(0.3 * 180.0 / M_PI);
  g.translate = fparam(0.33);
  g.enhance = fparam(0.9);
  g.posterize_bits = 8 - std::clamp(static_cast<int>(fparam(6)), 0, 6);
  g.solarize_threshold = std::clamp(256 - static_cast<int>(fparam(256)), 0, 256);
  g.cutout = std::clamp(fparam(20.0 / 32.0), 0.0, 20.0 / 32.0);
  g.crop_max = md / 224.0;
  return g;
}

RandAugmentDraw draw_rand_augment(int64_t n, int64_t m, bool flip, Rng& rng) {
  const IaMagnitudes g = ia_magnitudes(m);
  RandAugmentDraw d;
  d.flip = flip && rng.bernoulli(0.5);
  for (auto& side : d.crop) side = rng.uniform(0.0, static_cast<double>(m)) / 224.0;
  // SomeOf(n, random_order=True): n distinct operations in a random order (a partial Fisher-Yates shuffle).
  std::array<int, kIaOpCount> order{};
  std::iota(order.begin(), order.end(), 0);
  const int count = static_cast<int>(std::min<int64_t>(n, kIaOpCount));
  for (int i = 0; i < count; ++i) {
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(rng.randint(i, kIaOpCount - 1))]);
    IaStep s;
    s.op = static_cast<IaOp>(order[static_cast<size_t>(i)]);
    const double sign = (signed_op(s.op) || enhance_op(s.op)) && rng.bernoulli(0.5) ? -1.0 : 1.0;
    switch (s.op) {
      case IaOp::Rotate: s.value = sign * g.rotate_deg; break;
      case IaOp::ShearX:
      case IaOp::ShearY: s.value = sign * g.shear_deg; break;
      case IaOp::TranslateX:
      case IaOp::TranslateY: s.value = sign * g.translate; break;
      case IaOp::EnhanceColor:
      case IaOp::EnhanceContrast:
      case IaOp::EnhanceBrightness:
      case IaOp::EnhanceSharpness: s.value = std::clamp(1.0 + sign * g.enhance, 0.1, 1.9); break;
      case IaOp::Posterize: s.value = g.posterize_bits; break;
      case IaOp::Solarize: s.value = g.solarize_threshold; break;
      case IaOp::Cutout:
        s.value = g.cutout;
        s.x = rng.uniform();
        s.y = rng.uniform();
        break;
      default: break;
    }
    d.steps.push_back(s);
  }
  return d;
}

void apply_ia_initial(Clip& clip, const RandAugmentDraw& d) {
  const auto h = static_cast<double>(clip.height), w = static_cast<double>(clip.width);
  // size.CropAndPad: np.round (half to even) of side * fraction; the crop is resized back bilinearly
  // (KeepSizeByResize, interpolation "linear" = cv2.INTER_LINEAR).
  const int top = static_cast<int>(std::nearbyint(h * d.crop[0])), right = static_cast<int>(std::nearbyint(w * d.crop[1]));
  const int bottom = static_cast<int>(std::nearbyint(h * d.crop[2])), left = static_cast<int>(std::nearbyint(w * d.crop[3]));
  const int ch = static_cast<int>(clip.height) - top - bottom, cw = static_cast<int>(clip.width) - left - right;
  const bool crop = (top || right || bottom || left) && ch > 0 && cw > 0;
  for (int64_t t = 0; t < clip.frames; ++t) {
    cv::Mat m = frame_mat(clip, t);
    if (d.flip) cv::flip(m, m, 1);
    if (crop) {
      cv::Mat out;
      cv::resize(m(cv::Rect(left, top, cw, ch)), out, m.size(), 0, 0, cv::INTER_LINEAR);
      out.copyTo(m);
    }
  }
}

void apply_ia_step(Clip& clip, const IaStep& step) {
  for (int64_t t = 0; t < clip.frames; ++t) apply_step(frame_mat(clip, t), step);
}

void apply_rand_augment(Clip& clip, const RandAugmentDraw& d) {
  apply_ia_initial(clip, d);
  for (const auto& s : d.steps) apply_ia_step(clip, s);
}

}  // namespace bevt

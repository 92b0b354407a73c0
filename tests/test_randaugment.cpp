// Issue 15 (items 1, 2): BEVT's SSv2 augmentation as the official pipeline runs it. imgaug 0.4's RandAugment
// (n=4, m=7) through mmaction2's Imgaug wrapper (one deterministic draw per clip), and timm's RandomErasing as
// mmaction's wrapper applies it after Normalize (p 0.25, const mode, one region for all frames). Each operation
// is checked against imgaug's definition, written out here independently of the implementation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <cstring>
#include <set>

#include <opencv2/imgproc.hpp>

#include "bevt/data/randaugment.h"
#include "bevt/data/transforms.h"

using namespace bevt;

namespace {

Clip random_clip(int64_t frames, int64_t h, int64_t w, uint64_t seed) {
  Clip c(frames, h, w);
  Rng r(seed);
  for (auto& v : c.data) v = static_cast<uint8_t>(r.randint(0, 255));
  return c;
}
Clip constant_clip(int64_t frames, int64_t h, int64_t w, uint8_t v) {
  Clip c(frames, h, w);
  std::fill(c.data.begin(), c.data.end(), v);
  return c;
}
uint8_t& px(Clip& c, int64_t t, int64_t y, int64_t x, int ch) { return c.frame(t)[(y * c.width + x) * 3 + ch]; }
uint8_t px(const Clip& c, int64_t t, int64_t y, int64_t x, int ch) { return c.frame(t)[(y * c.width + x) * 3 + ch]; }

Clip stepped(const Clip& in, IaOp op, double value, double x = 0.5, double y = 0.5) {
  Clip out = in;
  IaStep s;
  s.op = op;
  s.value = value;
  s.x = x;
  s.y = y;
  apply_ia_step(out, s);
  return out;
}

// Every pixel of out against f(in value, channel) (a per-value definition).
void expect_pointwise(const Clip& in, const Clip& out, const std::function<int(int, int)>& f, const char* what) {
  int bad = 0;
  for (int64_t t = 0; t < in.frames; ++t)
    for (int64_t y = 0; y < in.height; ++y)
      for (int64_t x = 0; x < in.width; ++x)
        for (int c = 0; c < 3; ++c)
          if (px(out, t, y, x, c) != f(px(in, t, y, x, c), c) && bad++ < 3)
            ADD_FAILURE() << what << " at " << y << "," << x << "," << c << ": " << int(px(in, t, y, x, c)) << " -> "
                          << int(px(out, t, y, x, c)) << ", expected " << f(px(in, t, y, x, c), c);
  EXPECT_EQ(bad, 0) << what;
}

// An affine op against its inverse map (output pixel centre → source point), as PIL's nearest-neighbour
// transform samples it: the source pixel is floor() of the point; outside the frame the fill is 128.
void expect_affine(const Clip& in, const Clip& out, const std::function<cv::Point2d(double, double)>& source,
                   const char* what) {
  int bad = 0, filled = 0, moved = 0;
  for (int64_t y = 0; y < in.height; ++y)
    for (int64_t x = 0; x < in.width; ++x) {
      const cv::Point2d p = source(x + 0.5, y + 0.5);
      // float32 matrices in imgaug: skip points within 1e-3 of a pixel edge, where rounding may pick either side
      if (std::abs(p.x - std::round(p.x)) < 1e-3 || std::abs(p.y - std::round(p.y)) < 1e-3) continue;
      const auto sx = static_cast<int64_t>(std::floor(p.x)), sy = static_cast<int64_t>(std::floor(p.y));
      const bool inside = sx >= 0 && sx < in.width && sy >= 0 && sy < in.height;
      filled += !inside;
      moved += inside && (sx != x || sy != y);
      for (int c = 0; c < 3; ++c) {
        const int want = inside ? px(in, 0, sy, sx, c) : 128;
        if (px(out, 0, y, x, c) != want && bad++ < 3)
          ADD_FAILURE() << what << " at " << y << "," << x << "," << c << ": " << int(px(out, 0, y, x, c))
                        << ", expected " << want;
      }
    }
  EXPECT_EQ(bad, 0) << what;
  EXPECT_GT(filled, 0) << what << ": no pixel came from outside the frame (fill 128)";
  EXPECT_GT(moved, 0) << what << ": nothing moved";
}

}  // namespace

TEST(ImgaugRandAugment, MagnitudesAtM7) {
  // collections.py: _float_parameter(7, maxval) = 7 * maxval / 30; _int_parameter truncates.
  const IaMagnitudes g = ia_magnitudes(7);
  EXPECT_DOUBLE_EQ(g.rotate_deg, 7.0);                          // 30 * 7/30
  EXPECT_NEAR(g.shear_deg, 0.07 * 180.0 / M_PI, 1e-12);         // rad2deg(0.3) * 7/30 = 4.0107 degrees
  EXPECT_NEAR(g.translate, 0.077, 1e-12);                       // 0.33 * 7/30 of the side
  EXPECT_NEAR(g.enhance, 0.21, 1e-12);                          // factors 1.21 and 0.79
  EXPECT_EQ(g.posterize_bits, 7);                               // 8 - int(1.4)
  EXPECT_EQ(g.solarize_threshold, 197);                         // 256 - int(59.73)
  EXPECT_NEAR(g.cutout, 7.0 * (20.0 / 32.0) / 30.0, 1e-12);     // 0.1458 of the height
  EXPECT_DOUBLE_EQ(g.crop_max, 7.0 / 224.0);                    // up to 7 px per side at 224
  // The clips at the top of imgaug's range (m = 30): 2 bits, threshold 0, cutout 20/32.
  const IaMagnitudes top = ia_magnitudes(30);
  EXPECT_EQ(top.posterize_bits, 2);
  EXPECT_EQ(top.solarize_threshold, 0);
  EXPECT_NEAR(top.cutout, 20.0 / 32.0, 1e-12);
  EXPECT_NEAR(top.enhance, 0.9, 1e-12);
}

TEST(ImgaugRandAugment, DrawsNDistinctOpsInRandomOrderWithImgaugValues) {
  Rng rng(11);
  const IaMagnitudes g = ia_magnitudes(7);
  std::set<int> seen;
  std::set<std::pair<int, int>> before;  // (a, b): a applied before b at least once
  std::map<int, std::set<double>> values;
  int flips = 0;
  const int draws = 4000;
  for (int i = 0; i < draws; ++i) {
    auto d = draw_rand_augment(4, 7, true, rng);
    flips += d.flip;
    ASSERT_EQ(d.steps.size(), 4u);
    std::set<int> distinct;
    for (size_t k = 0; k < d.steps.size(); ++k) {
      const auto& s = d.steps[k];
      const int op = static_cast<int>(s.op);
      distinct.insert(op);
      seen.insert(op);
      for (size_t j = k + 1; j < d.steps.size(); ++j) before.insert({op, static_cast<int>(d.steps[j].op)});
      values[op].insert(s.value);
      if (s.op == IaOp::Cutout) {
        EXPECT_GE(s.x, 0.0);
        EXPECT_LT(s.x, 1.0);
        EXPECT_GE(s.y, 0.0);
        EXPECT_LT(s.y, 1.0);
      }
    }
    EXPECT_EQ(distinct.size(), 4u) << "SomeOf draws without replacement";
    for (double side : d.crop) {
      EXPECT_GE(side, 0.0);
      EXPECT_LE(side, 7.0 / 224.0);
    }
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kIaOpCount));
  // Random order: for every pair of ops both orders occur.
  for (int a = 0; a < kIaOpCount; ++a)
    for (int b = a + 1; b < kIaOpCount; ++b)
      EXPECT_TRUE(before.count({a, b}) && before.count({b, a})) << ia_op_name(IaOp(a)) << " / " << ia_op_name(IaOp(b));
  // The values imgaug gives each op at m = 7: RandomSign of the magnitude, enhance 1 ± 0.21.
  auto expect_values = [&](IaOp op, std::set<double> want) {
    EXPECT_EQ(values[static_cast<int>(op)], want) << ia_op_name(op);
  };
  expect_values(IaOp::Rotate, {-7.0, 7.0});
  expect_values(IaOp::ShearX, {-g.shear_deg, g.shear_deg});
  expect_values(IaOp::ShearY, {-g.shear_deg, g.shear_deg});
  expect_values(IaOp::TranslateX, {-g.translate, g.translate});
  expect_values(IaOp::TranslateY, {-g.translate, g.translate});
  for (IaOp op : {IaOp::EnhanceColor, IaOp::EnhanceContrast, IaOp::EnhanceBrightness, IaOp::EnhanceSharpness})
    expect_values(op, {1.0 - g.enhance, 1.0 + g.enhance});
  expect_values(IaOp::Posterize, {7.0});
  expect_values(IaOp::Solarize, {197.0});
  expect_values(IaOp::Cutout, {g.cutout});
  // Fliplr(0.5) comes first, always part of imgaug's RandAugment.
  EXPECT_NEAR(flips / double(draws), 0.5, 0.03);
  // n above the list's length takes every op once (SomeOf caps n).
  EXPECT_EQ(draw_rand_augment(30, 7, true, rng).steps.size(), static_cast<size_t>(kIaOpCount));
}

TEST(ImgaugRandAugment, FlipCanBeSwitchedOff) {
  Rng rng(5);
  for (int i = 0; i < 500; ++i) EXPECT_FALSE(draw_rand_augment(4, 7, false, rng).flip);
  // Through the transform: RandAugment's hidden flip moves the label through flip_label_map about half of the
  // time although flip = 0 (the official SSv2 run), and never with rand_augment_flip = false.
  Clip c = random_clip(2, 40, 48, 1);
  TransformSpec s;
  s.crop = "none";
  s.flip = 0.0;
  s.rand_augment_n = 1;
  s.rand_augment_m = 7;
  s.flip_label_map = {{0, 1}};
  ClipTransform hidden(s);
  s.rand_augment_flip = false;
  ClipTransform safe(s);
  int moved = 0, moved_safe = 0;
  for (uint64_t seed = 0; seed < 400; ++seed) {
    Rng a(seed), b(seed);
    moved += hidden.apply(c, 0, a).label == 1;
    moved_safe += safe.apply(c, 0, b).label == 1;
  }
  EXPECT_NEAR(moved / 400.0, 0.5, 0.08);
  EXPECT_EQ(moved_safe, 0);
}

TEST(ImgaugRandAugment, InitialFlipAndCrop) {
  Clip in = random_clip(1, 256, 256, 2);  // a power of two: the fractions below are exact
  RandAugmentDraw d;
  d.flip = true;
  Clip out = in;
  apply_ia_initial(out, d);
  for (int64_t x = 0; x < 256; x += 37)
    for (int c = 0; c < 3; ++c) EXPECT_EQ(px(out, 0, 9, x, c), px(in, 0, 9, 255 - x, c));
  // Crop sides are np.round(side * fraction), half to even (2.5 → 2, 3.5 → 4), resized back bilinearly.
  d.flip = false;
  d.crop = {3.5 / 256, 0.0, 1.25 / 256, 2.5 / 256};  // top 4, right 0, bottom 1, left 2
  out = in;
  apply_ia_initial(out, d);
  cv::Mat src(256, 256, CV_8UC3, in.data.data()), want;
  cv::resize(src(cv::Rect(2, 4, 254, 251)), want, src.size(), 0, 0, cv::INTER_LINEAR);
  EXPECT_EQ(std::memcmp(want.data, out.data.data(), out.data.size()), 0);
}

TEST(ImgaugRandAugment, PointOps) {
  Clip in = random_clip(2, 24, 30, 3);
  expect_pointwise(in, stepped(in, IaOp::Identity, 0), [](int v, int) { return v; }, "Identity");
  expect_pointwise(in, stepped(in, IaOp::Invert, 0), [](int v, int) { return 255 - v; }, "Invert");
  expect_pointwise(in, stepped(in, IaOp::Posterize, 7), [](int v, int) { return v & 0xFE; }, "Posterize 7 bits");
  expect_pointwise(in, stepped(in, IaOp::Solarize, 197), [](int v, int) { return v >= 197 ? 255 - v : v; },
                   "Solarize 197");
  // Brightness: PIL blend towards black, truncated: 1.21 * v, clipped.
  expect_pointwise(in, stepped(in, IaOp::EnhanceBrightness, 1.21),
                   [](int v, int) { return std::min(255, static_cast<int>(1.21f * static_cast<float>(v))); },
                   "Brightness 1.21");
  // Autocontrast (cutoff 0): per channel, the lowest used value to 0 and the highest to 255, truncated.
  Clip narrow = in;
  for (auto& v : narrow.data) v = static_cast<uint8_t>(40 + v / 4);  // 40..103
  Clip ac = stepped(narrow, IaOp::Autocontrast, 0);
  std::array<int, 3> lo{255, 255, 255}, hi{0, 0, 0};
  for (int64_t i = 0; i < static_cast<int64_t>(narrow.data.size()); ++i) {
    lo[i % 3] = std::min<int>(lo[i % 3], narrow.data[static_cast<size_t>(i)]);
    hi[i % 3] = std::max<int>(hi[i % 3], narrow.data[static_cast<size_t>(i)]);
  }
  expect_pointwise(narrow, ac, [&](int v, int c) {
    const double scale = 255.0 / (hi[c] - lo[c]);  // numpy: clip(i * scale - lo * scale).astype(uint8)
    return static_cast<int>(std::clamp(v * scale + (-lo[c] * scale), 0.0, 255.0));
  }, "Autocontrast");
}

TEST(ImgaugRandAugment, EqualizeAsPil) {
  // Half the pixels 50, a quarter 100, a quarter 200. 64x64 (imgaug's numpy path): step = 4096 // 255 = 16,
  // lut[v] = (step // 2 + pixels below v) // step: 50 → 0, 100 → (8 + 2048) // 16 = 128, 200 → 3080 // 16 = 192.
  auto make = [](int64_t side) {
    Clip c(1, side, side);
    for (int64_t i = 0; i < side * side; ++i) {
      const uint8_t v = i < side * side / 2 ? 50 : i < side * side * 3 / 4 ? 100 : 200;
      std::fill(c.data.begin() + i * 3, c.data.begin() + i * 3 + 3, v);
    }
    return c;
  };
  Clip big = make(64);
  expect_pointwise(big, stepped(big, IaOp::Equalize, 0),
                   [](int v, int) { return v == 50 ? 0 : v == 100 ? 128 : 192; }, "Equalize 64x64");
  // 32x32 goes through PIL itself, whose step leaves out the highest used value: (1024 - 256) // 255 = 3,
  // 50 → 1 // 3 = 0, 100 → 513 // 3 = 171, 200 → 769 // 3 = 256, clipped to 255.
  Clip small = make(32);
  expect_pointwise(small, stepped(small, IaOp::Equalize, 0),
                   [](int v, int) { return v == 50 ? 0 : v == 100 ? 171 : 255; }, "Equalize 32x32");
}

TEST(ImgaugRandAugment, EnhanceOpsAsPil) {
  // Color: towards PIL's L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16; (200, 100, 50) has L 124.
  Clip c = constant_clip(1, 6, 6, 0);
  for (int64_t i = 0; i < 36; ++i) {
    c.data[static_cast<size_t>(i * 3)] = 200;
    c.data[static_cast<size_t>(i * 3 + 1)] = 100;
    c.data[static_cast<size_t>(i * 3 + 2)] = 50;
  }
  Clip col = stepped(c, IaOp::EnhanceColor, 1.21);
  EXPECT_EQ(px(col, 0, 2, 2, 0), 215);  // 124 + 1.21 * 76 = 215.96
  EXPECT_EQ(px(col, 0, 2, 2, 1), 94);   // 124 - 1.21 * 24 = 94.96
  EXPECT_EQ(px(col, 0, 2, 2, 2), 34);   // 124 - 1.21 * 74 = 34.46
  Clip gray = constant_clip(1, 6, 6, 77);
  EXPECT_EQ(stepped(gray, IaOp::EnhanceColor, 0.79).data, gray.data);
  EXPECT_EQ(stepped(gray, IaOp::EnhanceContrast, 1.21).data, gray.data);  // its own mean
  // Contrast: towards int(mean(L) + 0.5) = 150 for a half-100, half-200 grey frame.
  Clip two = constant_clip(1, 4, 4, 100);
  std::fill(two.data.begin() + 24, two.data.end(), 200);
  Clip con = stepped(two, IaOp::EnhanceContrast, 1.21);
  EXPECT_EQ(px(con, 0, 0, 0, 0), 89);   // 150 - 60.5
  EXPECT_EQ(px(con, 0, 3, 3, 2), 210);  // 150 + 60.5
  // Sharpness: towards ImageFilter.SMOOTH (1 1 1 / 1 5 1 / 1 1 1, /13, +0.5 truncated); border pixels stay.
  Clip dot = constant_clip(1, 7, 7, 0);
  for (int c3 = 0; c3 < 3; ++c3) px(dot, 0, 3, 3, c3) = 130;
  Clip sm = stepped(dot, IaOp::FilterSmooth, 0);
  EXPECT_EQ(px(sm, 0, 3, 3, 0), 50);  // 5 * 130 / 13
  EXPECT_EQ(px(sm, 0, 2, 3, 1), 10);  // 130 / 13
  EXPECT_EQ(px(sm, 0, 4, 4, 2), 10);
  EXPECT_EQ(px(sm, 0, 5, 5, 2), 0);
  Clip sh = stepped(dot, IaOp::EnhanceSharpness, 1.21);
  EXPECT_EQ(px(sh, 0, 3, 3, 0), 146);  // 50 + 1.21 * 80 = 146.8
  EXPECT_EQ(px(sh, 0, 2, 3, 0), 0);    // 10 - 12.1, clipped
  sh = stepped(dot, IaOp::EnhanceSharpness, 0.79);
  EXPECT_EQ(px(sh, 0, 3, 3, 0), 113);  // 50 + 0.79 * 80 = 113.2
  EXPECT_EQ(px(sh, 0, 2, 3, 0), 2);    // 10 - 7.9 = 2.1
  Clip edge = constant_clip(1, 5, 5, 0);
  px(edge, 0, 0, 2, 0) = 200;  // on the border: SMOOTH keeps it
  EXPECT_EQ(px(stepped(edge, IaOp::FilterSmooth, 0), 0, 0, 2, 0), 200);
  // BLUR: the 5x5 ring of ones /16 (centre weight 0); the outer two rows and columns are copied.
  Clip big = constant_clip(1, 11, 11, 0);
  for (int c3 = 0; c3 < 3; ++c3) px(big, 0, 5, 5, c3) = 160;
  Clip bl = stepped(big, IaOp::FilterBlur, 0);
  EXPECT_EQ(px(bl, 0, 5, 5, 0), 0);
  EXPECT_EQ(px(bl, 0, 5, 6, 0), 0);
  EXPECT_EQ(px(bl, 0, 5, 7, 0), 10);
  EXPECT_EQ(px(bl, 0, 3, 3, 1), 10);
}

TEST(ImgaugRandAugment, AffineOpsAsPilWithFill128) {
  Clip in = random_clip(1, 60, 80, 4);
  const double W = 80, H = 60;
  const double s7 = std::sin(7 * M_PI / 180), c7 = std::cos(7 * M_PI / 180);
  // Rotate +7 degrees about the centre: imgaug negates the angle, so the source of output point p is
  // centre + R(-7 deg)^-1 (p - centre) in its matrix convention.
  expect_affine(in, stepped(in, IaOp::Rotate, 7.0), [&](double x, double y) {
    const double dx = x - W / 2, dy = y - H / 2;
    return cv::Point2d(W / 2 + c7 * dx + s7 * dy, H / 2 - s7 * dx + c7 * dy);
  }, "Rotate 7");
  // Shear about the top-left corner, with imgaug's tanh of the angle in radians (0.07 at m = 7).
  const double k = std::tanh(0.07);
  expect_affine(in, stepped(in, IaOp::ShearX, -0.07 * 180 / M_PI),
                [&](double x, double y) { return cv::Point2d(x + k * y, y); }, "ShearX -4.01");
  expect_affine(in, stepped(in, IaOp::ShearY, 0.07 * 180 / M_PI),
                [&](double x, double y) { return cv::Point2d(x, y - k * x); }, "ShearY 4.01");
  // Translate by 7.7 % of the side (not whole pixels).
  expect_affine(in, stepped(in, IaOp::TranslateX, 0.077),
                [&](double x, double y) { return cv::Point2d(x - 0.077 * W, y); }, "TranslateX 0.077");
  expect_affine(in, stepped(in, IaOp::TranslateY, -0.077),
                [&](double x, double y) { return cv::Point2d(x, y + 0.077 * H); }, "TranslateY -0.077");
}

// Parity with Pillow itself (what imgaug's pillike ops call): FNV-1a hashes of Pillow 13's outputs on a fixed
// pattern, for each op at m = 7 (both signs where imgaug draws one), on a 40x48 frame (equalize through PIL) and
// a 72x96 one. Produced by this script (with Pillow and numpy; imgaug's affine matrix written out):
//   frame: v = (2x + 3y + 50c + (7x + 13y + 5c) % 17 * 3) % 256
//   ops:   ImageOps.autocontrast(cutoff=0) / equalize / posterize(7) / solarize(197); ImageEnhance.Color,
//          Contrast, Brightness, Sharpness .enhance(f); filter(BLUR / SMOOTH); Image.transform(AFFINE,
//          inv(pillike._create_affine_matrix(...)), fillcolor=(128, 128, 128)) for rotate, shear, translate.
TEST(ImgaugRandAugment, BitExactWithPillow) {
  struct Case {
    int64_t h, w;
    IaOp op;
    double value;
    uint64_t fnv;
  } cases[] = {
      {40, 48, IaOp::Autocontrast, 0, 0x62654fbeef86a66bull},
      {40, 48, IaOp::Equalize, 0, 0xd044b5de5e635749ull},
      {40, 48, IaOp::Rotate, 7, 0xd6ad0cd020b03263ull},
      {40, 48, IaOp::Rotate, -7, 0x61007e8244a57d71ull},
      {40, 48, IaOp::Posterize, 7, 0xdd072349441da42dull},
      {40, 48, IaOp::Solarize, 197, 0xffd88492a7d33430ull},
      {40, 48, IaOp::EnhanceColor, 1.21, 0xd430ec257b3343bdull},
      {40, 48, IaOp::EnhanceColor, 0.79, 0x21a123098b913deaull},
      {40, 48, IaOp::EnhanceContrast, 1.21, 0x28aa5717d650bc7bull},
      {40, 48, IaOp::EnhanceContrast, 0.79, 0xf0fb1a9ec2f8ee39ull},
      {40, 48, IaOp::EnhanceBrightness, 1.21, 0xd5df04be961a4a49ull},
      {40, 48, IaOp::EnhanceSharpness, 1.21, 0xf7027672fe734976ull},
      {40, 48, IaOp::EnhanceSharpness, 0.79, 0x8dce6ca318e5b0d0ull},
      {40, 48, IaOp::ShearX, 4.010704565915763, 0xcfcb9d27dacad2ecull},
      {40, 48, IaOp::ShearX, -4.010704565915763, 0x0c77fff607fe8d66ull},
      {40, 48, IaOp::ShearY, -4.010704565915763, 0x26cc9871973c07e1ull},
      {40, 48, IaOp::TranslateX, 0.077, 0x2306dea472afd9c0ull},
      {40, 48, IaOp::TranslateY, -0.077, 0x973b33667a131e5eull},
      {40, 48, IaOp::FilterBlur, 0, 0xbb55a51f544f9c32ull},
      {40, 48, IaOp::FilterSmooth, 0, 0x39b76a0d53e3b47eull},
      {72, 96, IaOp::Autocontrast, 0, 0xfc5842c3a5c809c0ull},
      {72, 96, IaOp::Rotate, 7, 0x6492c8612c180c0eull},
      {72, 96, IaOp::Rotate, -7, 0x3b451091c970cd11ull},
      {72, 96, IaOp::Posterize, 7, 0x71ee271c080ced23ull},
      {72, 96, IaOp::Solarize, 197, 0xa414a552bec80e5dull},
      {72, 96, IaOp::EnhanceColor, 1.21, 0xf34667473cc3ab50ull},
      {72, 96, IaOp::EnhanceColor, 0.79, 0x5e65306ef331910eull},
      {72, 96, IaOp::EnhanceContrast, 1.21, 0xa73c2badfa9afe11ull},
      {72, 96, IaOp::EnhanceContrast, 0.79, 0xd7cfbf4ea06305ffull},
      {72, 96, IaOp::EnhanceBrightness, 1.21, 0x2c6cc93b66c5df75ull},
      {72, 96, IaOp::EnhanceSharpness, 1.21, 0x47deda4794669e03ull},
      {72, 96, IaOp::EnhanceSharpness, 0.79, 0xc383687bd495187eull},
      {72, 96, IaOp::ShearX, 4.010704565915763, 0xc1628c90644fc3a3ull},
      {72, 96, IaOp::ShearX, -4.010704565915763, 0x6263680b98cc5429ull},
      {72, 96, IaOp::ShearY, -4.010704565915763, 0x7fcd7bfda0e59971ull},
      {72, 96, IaOp::TranslateX, 0.077, 0x9db4e3db02de2660ull},
      {72, 96, IaOp::TranslateY, -0.077, 0xbaae9c3e031fd89full},
      {72, 96, IaOp::FilterBlur, 0, 0xc39d4bb68bf2f668ull},
      {72, 96, IaOp::FilterSmooth, 0, 0x9a41e1de93f4782dull},
  };
  auto pattern = [](int64_t h, int64_t w) {
    Clip c(1, h, w);
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x)
        for (int ch = 0; ch < 3; ++ch)
          px(c, 0, y, x, ch) = static_cast<uint8_t>((2 * x + 3 * y + 50 * ch + (x * 7 + y * 13 + ch * 5) % 17 * 3) % 256);
    return c;
  };
  auto fnv = [](const Clip& c) {
    uint64_t hash = 0xcbf29ce484222325ull;
    for (uint8_t b : c.data) hash = (hash ^ b) * 0x100000001b3ull;
    return hash;
  };
  for (const auto& k : cases)
    EXPECT_EQ(fnv(stepped(pattern(k.h, k.w), k.op, k.value)), k.fnv)
        << ia_op_name(k.op) << " " << k.value << " on " << k.h << "x" << k.w;
}

TEST(ImgaugRandAugment, CutoutSquareOf128) {
  Clip in = random_clip(1, 224, 224, 6);
  const double side = ia_magnitudes(7).cutout;  // 32.67 px of 224
  // Centre (0.5, 0.5): corners int(112 -/+ 16.33) = 95 and 128.
  Clip out = stepped(in, IaOp::Cutout, side, 0.5, 0.5);
  for (int64_t y = 0; y < 224; ++y)
    for (int64_t x = 0; x < 224; ++x) {
      const bool box = x >= 95 && x < 128 && y >= 95 && y < 128;
      for (int c = 0; c < 3; ++c)
        ASSERT_EQ(px(out, 0, y, x, c), box ? 128 : px(in, 0, y, x, c)) << y << "," << x;
    }
  // At a corner the square is clipped to the frame: 0 .. int(16.33).
  out = stepped(in, IaOp::Cutout, side, 0.0, 0.0);
  EXPECT_EQ(px(out, 0, 15, 15, 1), 128);
  EXPECT_EQ(px(out, 0, 16, 0, 1), px(in, 0, 16, 0, 1));
  EXPECT_EQ(px(out, 0, 0, 16, 1), px(in, 0, 0, 16, 1));
}

TEST(ImgaugRandAugment, OneDrawForAllFrames) {
  // mmaction's Imgaug: to_deterministic() once, the same augmenter on every frame. Frames that differ get the
  // same operations: augmenting the clip equals augmenting each frame alone with the same draw.
  Clip clip = random_clip(4, 64, 64, 7);
  Rng rng(8);
  std::set<int> ops;
  for (int rep = 0; rep < 40; ++rep) {
    auto d = draw_rand_augment(4, 7, true, rng);
    for (const auto& s : d.steps) ops.insert(static_cast<int>(s.op));
    Clip whole = clip;
    apply_rand_augment(whole, d);
    for (int64_t t = 0; t < clip.frames; ++t) {
      Clip one(1, clip.height, clip.width);
      std::copy(clip.frame(t), clip.frame(t) + clip.frame_bytes(), one.frame(0));
      apply_rand_augment(one, d);
      ASSERT_TRUE(std::equal(one.data.begin(), one.data.end(), whole.frame(t))) << "frame " << t;
    }
  }
  EXPECT_EQ(ops.size(), static_cast<size_t>(kIaOpCount));
  // Through the transform: identical frames stay identical (no per-frame draw anywhere).
  Clip same(6, 96, 112);
  Clip f = random_clip(1, 96, 112, 9);
  for (int64_t t = 0; t < 6; ++t) std::copy(f.data.begin(), f.data.end(), same.frame(t));
  TransformSpec s;
  s.crop = "random_resized";
  s.crop_size = 64;
  s.rand_augment_n = 4;
  s.rand_augment_m = 7;
  s.random_erasing = 0.25;
  ClipTransform tr(s);
  Rng r2(10);
  for (int rep = 0; rep < 30; ++rep) {
    auto x = tr.apply(same, 0, r2).inputs[0];
    for (int64_t t = 1; t < 6; ++t) ASSERT_TRUE(torch::equal(x.select(1, 0), x.select(1, t))) << rep;
  }
}

TEST(TimmRandomErasing, RegionRanges) {
  // timm defaults: area U(0.02, 1/3) of the frame, aspect exp(U(log 0.3, log 1/0.3)), h = round(sqrt(a r)),
  // w = round(sqrt(a / r)), strictly inside the frame.
  Rng rng(12);
  double amin = 1, amax = 0, rmin = 10, rmax = 0;
  for (int i = 0; i < 3000; ++i) {
    auto r = draw_erasing_region(224, 224, rng);
    ASSERT_GT(r.h, 0);
    ASSERT_LT(r.h, 224);
    ASSERT_LT(r.w, 224);
    ASSERT_GE(r.x, 0);
    ASSERT_GE(r.y, 0);
    ASSERT_LE(r.x + r.w, 224);
    ASSERT_LE(r.y + r.h, 224);
    const double a = static_cast<double>(r.w * r.h) / (224.0 * 224.0), ratio = static_cast<double>(r.h) / r.w;
    // rounding h and w moves the area and ratio by a few per cent at most at these sizes
    EXPECT_GE(a, 0.02 * 0.93);
    EXPECT_LE(a, 1.0 / 3.0 * 1.07);
    EXPECT_GE(ratio, 0.3 * 0.93);
    EXPECT_LE(ratio, 1 / 0.3 * 1.07);
    amin = std::min(amin, a), amax = std::max(amax, a), rmin = std::min(rmin, ratio), rmax = std::max(rmax, ratio);
  }
  EXPECT_LT(amin, 0.025);
  EXPECT_GT(amax, 0.3);
  EXPECT_LT(rmin, 0.4);
  EXPECT_GT(rmax, 2.5);
}

TEST(TimmRandomErasing, ZerosAfterNormalisationOneRegionAllFrames) {
  // A black clip normalises to -mean/std everywhere; const mode writes 0 (the mean colour) into one rectangle,
  // the same on every frame, with probability 0.25.
  Clip black(5, 48, 64);
  TransformSpec s;
  s.crop = "none";
  s.random_erasing = 0.25;
  ClipTransform tr(s);
  int erased = 0, checked = 0;
  const int runs = 600;
  for (uint64_t seed = 0; seed < runs; ++seed) {
    Rng rng(seed);
    auto x = tr.apply(black, 0, rng).inputs[0];  // [3, 5, 48, 64]
    auto zero = x.eq(0);
    const bool any = zero.any().item<bool>();
    erased += any;
    if (checked++ >= 60) continue;  // the detailed checks on the first 60 clips; the rate on all
    if (!any) {
      for (int c = 0; c < 3; ++c)
        EXPECT_NEAR(x[c].max().item<float>(), -s.mean[static_cast<size_t>(c)] / s.std[static_cast<size_t>(c)], 1e-5);
      continue;
    }
    auto mask = zero.all(0);  // [T, H, W]: every channel zero
    ASSERT_TRUE(torch::equal(mask, zero.any(0))) << "channels erased together";
    for (int64_t t = 1; t < 5; ++t) ASSERT_TRUE(torch::equal(mask[0], mask[t])) << "one region for all frames";
    auto rows = mask[0].any(1).nonzero(), cols = mask[0].any(0).nonzero();
    const int64_t h = rows.size(0), w = cols.size(0);
    EXPECT_EQ(mask[0].sum().item<int64_t>(), h * w) << "a rectangle";
  }
  EXPECT_NEAR(erased / double(runs), 0.25, 0.05);
}

TEST(TimmRandomErasing, PixelModeSameNoiseOnEveryFrame) {
  Clip black(3, 40, 40);
  TransformSpec s;
  s.crop = "none";
  s.random_erasing = 1.0;
  s.random_erasing_mode = "pixel";
  ClipTransform tr(s);
  Rng rng(4);
  auto x = tr.apply(black, 0, rng).inputs[0];
  auto base = torch::full_like(x, 0);
  for (int c = 0; c < 3; ++c) base[c].fill_(-s.mean[static_cast<size_t>(c)] / s.std[static_cast<size_t>(c)]);
  auto region = x.ne(base).any(0);  // [T, H, W]
  ASSERT_TRUE(region.any().item<bool>());
  for (int64_t t = 1; t < 3; ++t) {
    EXPECT_TRUE(torch::equal(region[0], region[t]));
    EXPECT_TRUE(torch::equal(x.select(1, 0), x.select(1, t))) << "mmaction restores the random state per frame";
  }
}

TEST(TimmRandomErasing, BadSettingsAreErrors) {
  TransformSpec s;
  s.random_erasing_mode = "noise";
  EXPECT_THROW(ClipTransform{s}, std::invalid_argument);
  s.random_erasing_mode = "const";
  s.rand_augment_n = 4;
  s.rand_augment_m = 31;
  EXPECT_THROW(ClipTransform{s}, std::invalid_argument);
}

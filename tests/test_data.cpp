// Data layer, SDK side: exact frame indices through seeking decodes (several codecs and timestamp layouts),
// clean errors on bad files, images, samplers, transforms, the synthetic generator (no shortcut in single or
// shuffled frames).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <numeric>
#include <random>

#include <fmt/format.h>

#include "bevt/data/samplers.h"
#include "bevt/data/transforms.h"
#include "bevt/data/video_io.h"
#include "bevt/error.h"
#include "synthetic/generator.h"
#include "test_videos.h"
#include "test_sandbox.h"

namespace fs = std::filesystem;
using namespace bevt;
using bevt::test::index_clip;
using bevt::test::read_index;

namespace {

fs::path data_dir() {
  static fs::path d = [] {
    auto p = test::temp_dir("data_sdk");
    EncodeOptions mp4;
    mp4.codec = "mpeg4";
    mp4.gop = 12;
    mp4.bframes = 2;
    test::write_index_video((p / "mpeg4.mp4").string(), 60, mp4);
    EncodeOptions x264;
    x264.codec = "libx264";
    x264.gop = 10;
    x264.bframes = 3;
    test::write_index_video((p / "h264.mp4").string(), 60, x264);
    EncodeOptions vp9;
    vp9.codec = "libvpx-vp9";
    vp9.gop = 16;
    test::write_index_video((p / "vp9.webm").string(), 60, vp9);
    // Containers with odd timestamps, through the ffmpeg CLI: a start offset, and irregular gaps (VFR).
    test::write_raw((p / "raw.rgb").string(), index_clip(60));
    std::string in = fmt::format("-f rawvideo -pix_fmt rgb24 -s {}x{} -r 25 -i {}", test::kIdxW, test::kIdxH,
                                 (p / "raw.rgb").string());
    auto r1 = test::run(fmt::format("ffmpeg -nostdin -y -loglevel error {} -c:v libx264 -bf 3 -x264-params b-adapt=0 -g 9 -output_ts_offset 3.3 {}",
                                    in, (p / "offset.mp4").string()));
    EXPECT_EQ(r1.status, 0) << r1.output;
    auto r2 = test::run(fmt::format(
        "ffmpeg -nostdin -y -loglevel error {} -vf \"setpts='(N+floor(N/4)*3)/(25*TB)'\" -fps_mode passthrough "
        "-c:v libx264 -bf 2 -x264-params b-adapt=0 -g 12 {}",
        in, (p / "vfr.mkv").string()));
    EXPECT_EQ(r2.status, 0) << r2.output;
    return p;
  }();
  return d;
}

}  // namespace

class ExactFrames : public ::testing::TestWithParam<std::string> {};

TEST_P(ExactFrames, IndicesMatchTheDrawnNumbers) {
  auto path = (data_dir() / GetParam()).string();
  VideoReader probe(path);
  ASSERT_EQ(probe.info().frames, 60) << path;
  std::vector<std::vector<int64_t>> cases = {
      {0}, {59}, {5, 6, 7, 8}, {30, 34, 38, 42, 46, 50}, {50, 3, 27, 3, 59}, {11, 12, 13, 40, 41}, {1, 58}};
  std::mt19937 gen(7);
  for (int i = 0; i < 4; ++i) {
    std::vector<int64_t> r;
    for (int j = 0; j < 8; ++j) r.push_back(std::uniform_int_distribution<int64_t>(0, 59)(gen));
    cases.push_back(r);
  }
  for (const auto& idx : cases) {
    VideoReader reader(path);  // a fresh reader per sample, as the datasets do
    Clip c = reader.read(idx);
    ASSERT_EQ(c.frames, static_cast<int64_t>(idx.size()));
    for (size_t k = 0; k < idx.size(); ++k) EXPECT_EQ(read_index(c, static_cast<int64_t>(k)), idx[k]) << path;
    // Never more work than a sequential decode to the last needed frame.
    EXPECT_LE(reader.stats().frames_decoded, *std::max_element(idx.begin(), idx.end()) + 1) << path;
  }
}

TEST_P(ExactFrames, ReusedReaderAndResize) {
  auto path = (data_dir() / GetParam()).string();
  VideoReader reader(path);
  for (int64_t start : {40, 2, 20}) {
    Clip c = reader.read({start, start + 3}, 64, 16);
    ASSERT_EQ(c.width, 64);
    ASSERT_EQ(c.height, 16);
    EXPECT_EQ(read_index(c, 0), start);
    EXPECT_EQ(read_index(c, 1), start + 3);
  }
}

INSTANTIATE_TEST_SUITE_P(Codecs, ExactFrames,
                         ::testing::Values("mpeg4.mp4", "h264.mp4", "vp9.webm", "offset.mp4", "vfr.mkv"),
                         [](const auto& p) {
                           std::string s = p.param;
                           std::replace(s.begin(), s.end(), '.', '_');
                           return s;
                         });

TEST(VideoReader, DecodesOnlyFromTheKeyframeBefore) {
  auto path = (data_dir() / "h264.mp4").string();  // keyframe every 10 frames
  VideoReader reader(path);
  std::vector<int64_t> idx = {44, 46, 48};
  Clip c = reader.read(idx);
  EXPECT_EQ(read_index(c, 0), 44);
  EXPECT_EQ(reader.minimal_decode_count(idx), 9);  // frames 40..48
  EXPECT_EQ(reader.stats().frames_decoded, reader.minimal_decode_count(idx));
  EXPECT_EQ(reader.stats().frames_converted, 3);
  EXPECT_EQ(reader.stats().seeks, 1);
}

TEST(VideoReader, BadFilesAreCleanErrors) {
  auto d = test::temp_dir("data_bad");
  auto good = test::read_bytes((data_dir() / "h264.mp4").string());
  auto webm = test::read_bytes((data_dir() / "vp9.webm").string());
  test::write_bytes((d / "empty.mp4").string(), "");
  test::write_bytes((d / "garbage.mp4").string(), std::string(5000, '\x5a'));
  test::write_bytes((d / "truncated.mp4").string(), good.substr(0, good.size() / 2));
  std::string corrupt = good;
  for (size_t i = corrupt.size() / 3; i < corrupt.size() / 3 + 2000 && i < corrupt.size(); ++i)
    corrupt[i] = static_cast<char>(i * 7);
  test::write_bytes((d / "corrupt.mp4").string(), corrupt);
  test::write_bytes((d / "truncated.webm").string(), webm.substr(0, webm.size() / 2));
  EXPECT_THROW(VideoReader((d / "missing.mp4").string()), DecodeError);
  EXPECT_THROW(VideoReader((d / "empty.mp4").string()), DecodeError);
  EXPECT_THROW(VideoReader((d / "garbage.mp4").string()), DecodeError);
  // Truncated or corrupt files either decode what is there or fail cleanly; never crash or hang.
  for (const char* name : {"truncated.mp4", "corrupt.mp4", "truncated.webm"}) {
    try {
      VideoReader r((d / name).string());
      auto n = r.info().frames;
      auto c = r.read({0, n / 2, n - 1});
      EXPECT_EQ(c.frames, 3);
      EXPECT_THROW(r.read({n}), DecodeError);
    } catch (const DecodeError& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
  }
  try {
    VideoReader((d / "missing.mp4").string());
  } catch (const DecodeError& e) {
    EXPECT_NE(std::string(e.what()).find("missing.mp4"), std::string::npos);
  }
}

TEST(Images, RoundTripAndErrors) {
  auto d = test::temp_dir("data_img");
  Clip c = index_clip(6);
  write_image((d / "five.png").string(), c, 5);
  Clip back = read_image((d / "five.png").string());
  ASSERT_EQ(back.frames, 1);
  EXPECT_EQ(back.width, test::kIdxW);
  EXPECT_EQ(read_index(back, 0), 5);
  EXPECT_EQ(std::vector<uint8_t>(back.data.begin(), back.data.end()),
            std::vector<uint8_t>(c.frame(5), c.frame(5) + c.frame_bytes()));
  test::write_bytes((d / "bad.jpg").string(), "not a jpeg");
  EXPECT_THROW(read_image((d / "bad.jpg").string()), DecodeError);
  EXPECT_THROW(read_image((d / "none.jpg").string()), DecodeError);
}

TEST(Samplers, Dense) {
  Rng rng(1);
  for (int rep = 0; rep < 50; ++rep) {
    auto idx = dense_indices(100, 16, 4, 1, false, rng);
    ASSERT_EQ(idx.size(), 16u);
    for (size_t i = 1; i < idx.size(); ++i) EXPECT_EQ(idx[i] - idx[i - 1], 4);
    EXPECT_GE(idx.front(), 0);
    EXPECT_LT(idx.back(), 100);
  }
  // Test mode: evenly spread, centred (mmaction: offsets int(c*avg + avg/2), avg = (100-64+1)/2).
  auto t = dense_indices(100, 16, 4, 2, true, rng);
  EXPECT_EQ(t[0], 9);
  EXPECT_EQ(t[16], 27);
  // Shorter than a clip: indices wrap around.
  auto w = dense_indices(10, 16, 4, 1, false, rng);
  for (auto i : w) EXPECT_LT(i, 10);
}

TEST(Samplers, UniformSegments) {
  Rng rng(2);
  auto t = uniform_indices(33, 8, 1, true, rng);  // segments of 4: middles 2, 6, ...
  std::vector<int64_t> expect = {2, 6, 10, 14, 18, 22, 26, 30};
  EXPECT_EQ(t, expect);
  for (int rep = 0; rep < 50; ++rep) {
    auto r = uniform_indices(33, 8, 1, false, rng);
    for (size_t i = 0; i < r.size(); ++i) {
      EXPECT_GE(r[i], static_cast<int64_t>(4 * i));
      EXPECT_LE(r[i], static_cast<int64_t>(4 * i + 4));
    }
  }
  auto views = uniform_indices(33, 8, 2, true, rng);  // two test views differ
  EXPECT_NE(std::vector<int64_t>(views.begin(), views.begin() + 8), std::vector<int64_t>(views.begin() + 8, views.end()));
  Rng a(5), b(5);
  EXPECT_EQ(uniform_indices(100, 16, 1, false, a), uniform_indices(100, 16, 1, false, b));
}

TEST(Transforms, OneSetOfParametersPerClip) {
  // All frames equal in, all frames equal out: same crop, flip and jitter on each.
  Clip one = index_clip(4);
  Clip c(5, 96, 128);
  Clip big = resize_clip(one, 96, 128, "nearest");
  for (int64_t t = 0; t < 5; ++t) std::copy(big.frame(3), big.frame(3) + big.frame_bytes(), c.frame(t));
  TransformSpec s;
  s.crop = "random_resized";
  s.crop_size = 48;
  s.flip = 0.5;
  s.color_jitter = {0.4, 0.4, 0.4, 0.1};
  s.rand_augment_n = 2;
  s.rand_augment_m = 9;
  s.random_erasing = 0.0;
  s.tokenizer_size = 24;
  ClipTransform tr(s);
  Rng rng(3);
  for (int rep = 0; rep < 10; ++rep) {
    auto v = tr.apply(c, 0, rng);
    ASSERT_EQ(v.inputs.size(), 1u);
    auto x = v.inputs[0];
    ASSERT_EQ(x.sizes(), torch::IntArrayRef({3, 5, 48, 48}));
    for (int64_t t = 1; t < 5; ++t) EXPECT_TRUE(torch::equal(x.select(1, 0), x.select(1, t)));
    auto tok = v.tokenizer_views[0];
    ASSERT_EQ(tok.sizes(), torch::IntArrayRef({5, 3, 24, 24}));
    EXPECT_GE(tok.min().item<float>(), 0.0f);
    EXPECT_LE(tok.max().item<float>(), 1.0f);
  }
}

TEST(Transforms, FlipMirrorsAndMapsLabels) {
  Clip c = index_clip(3);
  TransformSpec s;
  s.crop = "none";
  s.flip = 1.0;
  s.flip_label_map = {{2, 5}};
  ClipTransform flipped(s);
  s.flip = 0.0;
  ClipTransform plain(s);
  Rng r1(1), r2(1);
  auto a = flipped.apply(c, 2, r1);
  auto b = plain.apply(c, 2, r2);
  EXPECT_EQ(a.label, 5);
  EXPECT_EQ(b.label, 2);
  EXPECT_TRUE(torch::equal(a.inputs[0], b.inputs[0].flip({3})));
  Rng r3(1);
  EXPECT_EQ(flipped.apply(c, 1, r3).label, 1);  // unmapped labels stay
}

TEST(Transforms, TestViewsAndRescale) {
  TransformSpec s;
  s.scale_range = {64};
  s.crop = "three";
  s.crop_size = 64;
  s.test_mode = true;
  ClipTransform tr(s);
  Rng rng(0);
  auto [h, w] = tr.decode_size(240, 320, rng);
  EXPECT_EQ(h, 64);
  EXPECT_EQ(w, 85);
  Clip c(4, h, w);
  auto v = tr.apply(c, 0, rng, 2);  // 2 clips × 3 crops
  EXPECT_EQ(v.inputs.size(), 6u);
  EXPECT_EQ(v.inputs[0].sizes(), torch::IntArrayRef({3, 2, 64, 64}));
  TransformSpec r;
  r.scale_range = {256, 320};
  ClipTransform rr(r);
  for (int i = 0; i < 20; ++i) {
    auto [hh, ww] = rr.decode_size(340, 600, rng);
    EXPECT_GE(hh, 256);
    EXPECT_LE(hh, 320);
    EXPECT_GT(ww, hh);
  }
  TransformSpec bad;
  bad.crop = "diagonal";
  EXPECT_THROW(ClipTransform{bad}, std::invalid_argument);
}

// ---- synthetic: no shortcut in single or shuffled frames -----------------------------------------------

namespace {

// Position-invariant features of one frame: foreground area, boundary length, mean foreground colour.
std::vector<double> frame_features(const Clip& c, int64_t t) {
  const int64_t S = c.width;
  const uint8_t* p = c.frame(t);
  auto fg = [&](int64_t y, int64_t x) {
    y = (y + S) % S;
    x = (x + S) % S;
    const uint8_t* q = p + (y * S + x) * 3;
    return std::max({q[0], q[1], q[2]}) > 110;
  };
  double area = 0, boundary = 0, r = 0, g = 0, b = 0;
  for (int64_t y = 0; y < S; ++y)
    for (int64_t x = 0; x < S; ++x)
      if (fg(y, x)) {
        area += 1;
        if (!fg(y - 1, x) || !fg(y + 1, x) || !fg(y, x - 1) || !fg(y, x + 1)) boundary += 1;
        const uint8_t* q = p + (y * S + x) * 3;
        r += q[0];
        g += q[1];
        b += q[2];
      }
  double n = std::max(area, 1.0);
  return {area, boundary, boundary / n, r / n, g / n, b / n};
}

// Features of the frames as an unordered set: means and spreads of the per-frame features, the area covered
// by the union of all frames, and the mean pixel variance over time.
std::vector<double> set_features(const Clip& c) {
  std::vector<double> out;
  std::vector<std::vector<double>> f;
  for (int64_t t = 0; t < c.frames; ++t) f.push_back(frame_features(c, t));
  for (size_t k = 0; k < f[0].size(); ++k) {
    double m = 0, v = 0;
    for (auto& x : f) m += x[k];
    m /= f.size();
    for (auto& x : f) v += (x[k] - m) * (x[k] - m);
    out.push_back(m);
    out.push_back(std::sqrt(v / f.size()));
  }
  double cover = 0, var = 0;
  const size_t n = static_cast<size_t>(c.height * c.width);
  for (size_t i = 0; i < n; ++i) {
    double mx = 0, s = 0, s2 = 0;
    for (int64_t t = 0; t < c.frames; ++t) {
      double v = c.frame(t)[i * 3 + 1];
      mx = std::max(mx, v);
      s += v;
      s2 += v * v;
    }
    cover += mx > 110;
    var += s2 / c.frames - (s / c.frames) * (s / c.frames);
  }
  out.push_back(cover);
  out.push_back(var / n);
  return out;
}

// Nearest-centroid accuracy on standardised features (train/test halves).
double nearest_centroid(const std::vector<std::vector<double>>& x, const std::vector<int>& y, int classes) {
  const size_t n = x.size(), d = x[0].size(), half = n / 2;
  std::vector<double> mu(d, 0), sd(d, 0);
  for (size_t i = 0; i < half; ++i)
    for (size_t k = 0; k < d; ++k) mu[k] += x[i][k] / half;
  for (size_t i = 0; i < half; ++i)
    for (size_t k = 0; k < d; ++k) sd[k] += (x[i][k] - mu[k]) * (x[i][k] - mu[k]) / half;
  for (auto& s : sd) s = std::sqrt(s) + 1e-9;
  std::vector<std::vector<double>> cen(static_cast<size_t>(classes), std::vector<double>(d, 0));
  std::vector<double> cnt(static_cast<size_t>(classes), 0);
  for (size_t i = 0; i < half; ++i) {
    cnt[static_cast<size_t>(y[i])] += 1;
    for (size_t k = 0; k < d; ++k) cen[static_cast<size_t>(y[i])][k] += (x[i][k] - mu[k]) / sd[k];
  }
  for (int c = 0; c < classes; ++c)
    for (auto& v : cen[static_cast<size_t>(c)]) v /= std::max(1.0, cnt[static_cast<size_t>(c)]);
  int correct = 0;
  for (size_t i = half; i < n; ++i) {
    int best = 0;
    double bd = 1e300;
    for (int c = 0; c < classes; ++c) {
      double dist = 0;
      for (size_t k = 0; k < d; ++k) {
        double z = (x[i][k] - mu[k]) / sd[k] - cen[static_cast<size_t>(c)][k];
        dist += z * z;
      }
      if (dist < bd) {
        bd = dist;
        best = c;
      }
    }
    correct += best == y[i];
  }
  return static_cast<double>(correct) / static_cast<double>(n - half);
}

struct FamilyScores {
  double single = 0, shuffled = 0;
};

FamilyScores family_scores(const std::vector<std::string>& classes, int per_class) {
  SyntheticRender r;
  r.frames = 16;
  r.size = 32;
  r.speed = 1.0;
  std::vector<std::vector<double>> single, sets;
  std::vector<int> y;
  std::mt19937 shuffle_gen(1);
  for (int i = 0; i < per_class * static_cast<int>(classes.size()); ++i) {
    int label = i % static_cast<int>(classes.size());
    Rng rng(Rng::derive(99, {static_cast<uint64_t>(i)}));
    Clip c = render_synthetic(classes[static_cast<size_t>(label)], r, rng);
    single.push_back(frame_features(c, std::uniform_int_distribution<int64_t>(0, 15)(shuffle_gen)));
    auto first = frame_features(c, 0);  // the first frame alone (DESIGN.md's shortcut)
    single.back().insert(single.back().end(), first.begin(), first.end());
    sets.push_back(set_features(c));
    y.push_back(label);
  }
  int k = static_cast<int>(classes.size());
  return {nearest_centroid(single, y, k), nearest_centroid(sets, y, k)};
}

}  // namespace

TEST(Synthetic, MotionClassesHaveNoSingleOrShuffledFrameShortcut) {
  auto motion = family_scores(synthetic_motion_classes(), 100);
  auto appearance = family_scores(synthetic_appearance_classes(), 100);
  // 8 motion classes (4 orders, 4 screen directions): chance 0.125, std ~0.02 over the test samples.
  EXPECT_LT(motion.single, 0.125 + 0.1) << "single frames reveal motion classes";
  EXPECT_LT(motion.shuffled, 0.125 + 0.1) << "shuffled frames reveal motion classes";
  EXPECT_GT(appearance.single, 0.6) << "one frame must tell appearance classes apart";
  EXPECT_GT(appearance.shuffled, 0.6);
}

TEST(Synthetic, MotionClassesShareTheirFrameSets) {
  // Same nuisance draw, different order class: identical frames up to order. (The screen-direction classes
  // share their frame distribution instead, through the uniform start and orientation: the shortcut test
  // above covers every motion class.)
  SyntheticRender r;
  r.frames = 8;
  r.size = 32;
  std::vector<std::vector<uint8_t>> ref;
  for (const std::string cls : {"motion/forward", "motion/backward", "motion/forward_then_back",
                                "motion/back_then_forward"}) {
    Rng rng(42);
    Clip c = render_synthetic(cls, r, rng);
    std::vector<std::vector<uint8_t>> frames;
    for (int64_t t = 0; t < c.frames; ++t) frames.emplace_back(c.frame(t), c.frame(t) + c.frame_bytes());
    std::sort(frames.begin(), frames.end());
    std::vector<uint8_t> flat;
    for (auto& f : frames) flat.insert(flat.end(), f.begin(), f.end());
    if (ref.empty()) ref.push_back(flat);
    EXPECT_EQ(flat, ref[0]) << cls;
  }
}

TEST(Synthetic, CacheIsGeneratedOnceAndAtomically) {
  auto root = test::temp_dir("data_synth_cache");
  SyntheticSpec s;
  s.num_samples = 12;
  s.render.frames = 8;
  s.render.size = 32;
  s.classes = synthetic_select_classes({"motion", "appearance/disc"});
  ASSERT_EQ(s.classes.size(), synthetic_motion_classes().size() + 1);
  auto a = ensure_synthetic(s, root.string());
  EXPECT_TRUE(a.generated);
  ASSERT_EQ(a.files.size(), 12u);
  auto b = ensure_synthetic(s, root.string());
  EXPECT_FALSE(b.generated);
  EXPECT_EQ(a.files, b.files);
  for (auto& e : fs::directory_iterator(root)) EXPECT_EQ(e.path().filename().string().rfind(".tmp", 0), std::string::npos);
  // The decoded video matches the render (lossy codec: small error).
  VideoReader reader(a.files[3]);
  EXPECT_EQ(reader.info().frames, 8);
  Clip dec = reader.read({0, 1, 2, 3, 4, 5, 6, 7});
  Rng rng(Rng::derive(s.seed, {1, 3}));
  Clip ref = render_synthetic(s.classes[3], s.render, rng);
  double err = 0;
  for (size_t i = 0; i < ref.data.size(); ++i) err += std::abs(int(ref.data[i]) - int(dec.data[i]));
  EXPECT_LT(err / ref.data.size(), 12.0);
  s.split = "val";
  auto v = ensure_synthetic(s, root.string());
  EXPECT_NE(v.folder, a.folder);
  s.video = false;
  EXPECT_THROW(ensure_synthetic(s, root.string()), UserError);  // motion classes need video
}

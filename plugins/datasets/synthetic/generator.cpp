#include "synthetic/generator.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>

#include <fmt/format.h>
#include <opencv2/imgproc.hpp>

#include "bevt/digest.h"

#include "bevt/error.h"
#include "bevt/log.h"
#include "bevt/progress.h"

namespace bevt {
namespace fs = std::filesystem;

const std::vector<std::string>& synthetic_motion_classes() {
  static const std::vector<std::string> c = {"motion/forward", "motion/backward", "motion/forward_then_back",
                                             "motion/back_then_forward", "motion/left",   "motion/right",
                                             "motion/up",      "motion/down"};
  return c;
}

const std::vector<std::string>& synthetic_appearance_classes() {
  static const std::vector<std::string> c = {"appearance/disc", "appearance/square", "appearance/triangle",
                                             "appearance/cross"};
  return c;
}

std::vector<std::string> synthetic_select_classes(const std::vector<std::string>& selection) {
  std::vector<std::string> all = synthetic_motion_classes();
  all.insert(all.end(), synthetic_appearance_classes().begin(), synthetic_appearance_classes().end());
  if (selection.empty()) return all;
  std::vector<std::string> out;
  auto add = [&](const std::string& c) {
    if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
  };
  for (const auto& s : selection) {
    if (s == "motion" || s == "appearance") {
      for (const auto& c : s == "motion" ? synthetic_motion_classes() : synthetic_appearance_classes()) add(c);
    } else if (std::find(all.begin(), all.end(), s) != all.end()) {
      add(s);
    } else {
      std::string names;
      for (const auto& c : all) names += (names.empty() ? "" : ", ") + c;
      throw std::invalid_argument(fmt::format("unknown synthetic class '{}' (known: motion, appearance, {})", s, names));
    }
  }
  return out;
}

namespace {

using Poly = std::vector<cv::Point2d>;

// Draws a filled polygon (object coordinates) rotated by theta and centred at (cx, cy) on a torus.
void draw_poly(cv::Mat& img, const Poly& shape, double theta, double cx, double cy, const cv::Scalar& colour) {
  const double S = img.cols;
  const double c = std::cos(theta), s = std::sin(theta);
  constexpr int kShift = 4;
  for (int oy = -1; oy <= 1; ++oy)
    for (int ox = -1; ox <= 1; ++ox) {
      std::vector<cv::Point> pts;
      for (const auto& p : shape) {
        double x = cx + ox * S + c * p.x - s * p.y, y = cy + oy * S + s * p.x + c * p.y;
        pts.emplace_back(static_cast<int>(std::lround(x * (1 << kShift))),
                         static_cast<int>(std::lround(y * (1 << kShift))));
      }
      const cv::Point* ptr = pts.data();
      int n = static_cast<int>(pts.size());
      cv::fillPoly(img, &ptr, &n, 1, colour, cv::LINE_AA, kShift);
    }
}

Poly arrow(double L) {
  return {{0.5 * L, 0}, {0.05 * L, 0.3 * L}, {0.05 * L, 0.1 * L}, {-0.5 * L, 0.1 * L},
          {-0.5 * L, -0.1 * L}, {0.05 * L, -0.1 * L}, {0.05 * L, -0.3 * L}};
}

Poly shape_poly(const std::string& shape, double S, double scale) {
  Poly p;
  if (shape == "disc") {
    double r = 0.14 * S * scale;
    for (int i = 0; i < 32; ++i) p.emplace_back(r * std::cos(i * M_PI / 16), r * std::sin(i * M_PI / 16));
  } else if (shape == "square") {
    double a = 0.12 * S * scale;
    p = {{-a, -a}, {a, -a}, {a, a}, {-a, a}};
  } else if (shape == "triangle") {
    double R = 0.17 * S * scale;
    for (int i = 0; i < 3; ++i) p.emplace_back(R * std::cos(i * 2 * M_PI / 3), R * std::sin(i * 2 * M_PI / 3));
  } else {  // cross
    double l = 0.18 * S * scale, w = 0.05 * S * scale;
    p = {{w, -l}, {w, -w}, {l, -w}, {l, w}, {w, w}, {w, l}, {-w, l}, {-w, w}, {-l, w}, {-l, -w}, {-w, -w}, {-w, -l}};
  }
  return p;
}

double poly_area(const Poly& p) {
  double a = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const auto &u = p[i], &v = p[(i + 1) % p.size()];
    a += u.x * v.y - v.x * u.y;
  }
  return std::fabs(a) / 2;
}

// The shape rescaled to the area of the disc of the same scale.
Poly equal_area_poly(const std::string& shape, double S, double scale) {
  Poly p = shape_poly(shape, S, scale);
  const double f = std::sqrt(poly_area(shape_poly("disc", S, scale)) / poly_area(p));
  for (auto& q : p) q *= f;
  return p;
}

cv::Scalar random_colour(Rng& rng) {
  cv::Mat hsv(1, 1, CV_8UC3, cv::Scalar(static_cast<double>(rng.randint(0, 179)), static_cast<double>(rng.randint(150, 255)),
                                         static_cast<double>(rng.randint(190, 255))));
  cv::Mat rgb;
  cv::cvtColor(hsv, rgb, cv::COLOR_HSV2RGB);
  auto v = rgb.at<cv::Vec3b>(0, 0);
  return cv::Scalar(v[0], v[1], v[2]);
}

// Angle of a screen-direction motion class (image y grows downwards), or -1 for the order classes.
double screen_direction(const std::string& cls) {
  if (cls == "motion/right") return 0.0;
  if (cls == "motion/down") return 0.5 * M_PI;
  if (cls == "motion/left") return M_PI;
  if (cls == "motion/up") return 1.5 * M_PI;
  return -1.0;
}

// Order in which the base sequence is shown, per motion class.
std::vector<int64_t> motion_order(const std::string& cls, int64_t T) {
  std::vector<int64_t> evens, odds, out;
  for (int64_t k = 0; k < T; ++k) (k % 2 ? odds : evens).push_back(k);
  if (cls == "motion/forward") {
    for (int64_t k = 0; k < T; ++k) out.push_back(k);
  } else if (cls == "motion/backward") {
    for (int64_t k = T - 1; k >= 0; --k) out.push_back(k);
  } else if (cls == "motion/forward_then_back") {
    out = evens;
    out.insert(out.end(), odds.rbegin(), odds.rend());
  } else {  // back_then_forward
    out.assign(evens.rbegin(), evens.rend());
    out.insert(out.end(), odds.begin(), odds.end());
  }
  return out;
}

}  // namespace

Clip render_synthetic(const std::string& cls, const SyntheticRender& r, Rng& rng) {
  const auto& mc = synthetic_motion_classes();
  const auto& ac = synthetic_appearance_classes();
  const bool motion = std::find(mc.begin(), mc.end(), cls) != mc.end();
  if (!motion && std::find(ac.begin(), ac.end(), cls) == ac.end())
    throw std::invalid_argument("unknown synthetic class '" + cls + "'");
  if (r.frames < 1 || r.size < 8) throw std::invalid_argument("synthetic: frames >= 1 and size >= 8 needed");
  const double S = static_cast<double>(r.size);
  Clip clip(r.frames, r.size, r.size);
  // Nuisance parameters, drawn identically for every class of a family.
  cv::Scalar bg(static_cast<double>(rng.randint(15, 80)), static_cast<double>(rng.randint(15, 80)),
                static_cast<double>(rng.randint(15, 80)));
  cv::Scalar fg = random_colour(rng);
  if (!(r.scale_min > 0 && r.scale_min <= r.scale_max))
    throw std::invalid_argument("synthetic: 0 < scale_min <= scale_max needed");
  double scale = rng.uniform(r.scale_min, r.scale_max);
  double theta = rng.uniform(0, 2 * M_PI);
  double x0 = rng.uniform(0, S), y0 = rng.uniform(0, S);
  Poly shape;
  std::vector<std::pair<double, double>> pos(static_cast<size_t>(r.frames));
  if (motion && screen_direction(cls) >= 0) {
    // Screen-direction classes: the arrow points anywhere and drifts left/right/up/down.
    shape = arrow(0.34 * S * scale);
    const double dir = screen_direction(cls);
    for (int64_t t = 0; t < r.frames; ++t)
      pos[static_cast<size_t>(t)] = {x0 + t * r.speed * std::cos(dir), y0 + t * r.speed * std::sin(dir)};
  } else if (motion) {
    shape = arrow(0.34 * S * scale);
    auto order = motion_order(cls, r.frames);
    for (int64_t t = 0; t < r.frames; ++t) {
      double k = static_cast<double>(order[static_cast<size_t>(t)]);
      pos[static_cast<size_t>(t)] = {x0 + k * r.speed * std::cos(theta), y0 + k * r.speed * std::sin(theta)};
    }
  } else {
    const std::string name = cls.substr(cls.find('/') + 1);
    shape = r.equal_area ? equal_area_poly(name, S, scale) : shape_poly(name, S, scale);
    double dir = rng.uniform(0, 2 * M_PI), speed = rng.uniform(0, 2 * r.speed);
    for (int64_t t = 0; t < r.frames; ++t)
      pos[static_cast<size_t>(t)] = {x0 + t * speed * std::cos(dir), y0 + t * speed * std::sin(dir)};
  }
  std::normal_distribution<double> nd(0.0, 1.0);
  for (int64_t t = 0; t < r.frames; ++t) {
    cv::Mat img(static_cast<int>(r.size), static_cast<int>(r.size), CV_8UC3, clip.frame(t));
    img.setTo(bg);
    double cx = std::fmod(pos[static_cast<size_t>(t)].first, S), cy = std::fmod(pos[static_cast<size_t>(t)].second, S);
    if (cx < 0) cx += S;
    if (cy < 0) cy += S;
    draw_poly(img, shape, theta, cx, cy, fg);
    if (r.noise > 0) {
      uint8_t* p = clip.frame(t);
      for (size_t i = 0; i < clip.frame_bytes(); ++i)
        p[i] = static_cast<uint8_t>(std::clamp(p[i] + r.noise * nd(rng.engine()), 0.0, 255.0));
    }
  }
  return clip;
}

std::string synthetic_hash(const SyntheticSpec& s) {
  std::string key = fmt::format("synthetic-v1|{}|{}|{:.6f}|{:.6f}|{}|{}|{}|{}|{}|{}", s.render.frames, s.render.size,
                                s.render.speed, s.render.noise, s.num_samples, s.seed, s.split, s.video, s.codec, s.gop);
  for (const auto& c : s.classes) key += "|" + c;
  // Appended only when not the defaults, so that the caches (and the measured figures) of existing
  // experiments keep their names.
  if (s.render.scale_min != 0.85 || s.render.scale_max != 1.15)
    key += fmt::format("|scale:{:.6f}:{:.6f}", s.render.scale_min, s.render.scale_max);
  if (s.render.equal_area) key += "|equal_area";
  return digest_hex(key);
}

namespace {

uint64_t split_code(const std::string& split) {
  if (split == "train") return 1;
  if (split == "val") return 2;
  if (split == "test") return 3;
  throw UserError(fmt::format("synthetic: split = '{}' (expected train, val or test)", split));
}

SyntheticCache load_cache(const fs::path& folder) {
  SyntheticCache c;
  c.folder = folder.string();
  std::ifstream f(folder / "index.txt");
  std::string rel;
  int64_t label;
  while (f >> rel >> label) {
    c.files.push_back((folder / rel).string());
    c.labels.push_back(label);
  }
  return c;
}

}  // namespace

namespace {
void check_spec(const SyntheticSpec& spec) {
  if (spec.classes.empty()) throw UserError("synthetic: no classes selected");
  if (spec.num_samples < 1) throw UserError("synthetic: num_videos must be >= 1");
  if (!spec.video)
    for (const auto& c : spec.classes)
      if (c.rfind("motion/", 0) == 0)
        throw UserError(fmt::format("synthetic: class '{}' needs video; image mode takes appearance classes only", c));
}

// Sample i of spec: its label and its frames, from its own generator (independent of every other sample).
Clip render_sample(const SyntheticSpec& spec, int64_t i, int64_t& label) {
  label = i % static_cast<int64_t>(spec.classes.size());
  Rng rng(Rng::derive(spec.seed, {split_code(spec.split), static_cast<uint64_t>(i)}));
  SyntheticRender r = spec.render;
  if (!spec.video) r.frames = 1;
  return render_synthetic(spec.classes[static_cast<size_t>(label)], r, rng);
}
}  // namespace

SyntheticFrames render_synthetic_set(const SyntheticSpec& spec) {
  check_spec(spec);
  SyntheticFrames out;
  for (int64_t i = 0; i < spec.num_samples; ++i) {
    int64_t label = 0;
    out.clips.push_back(std::make_shared<const Clip>(render_sample(spec, i, label)));
    out.labels.push_back(label);
  }
  return out;
}

SyntheticCache ensure_synthetic(const SyntheticSpec& spec, const std::string& cache_root) {
  check_spec(spec);
  const fs::path root = cache_root.empty() ? fs::path("bevt-cache") : fs::path(cache_root);
  const fs::path folder = root / ("synthetic-" + synthetic_hash(spec));
  if (fs::exists(folder / "complete")) return load_cache(folder);

  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) throw UserError(fmt::format("synthetic: cannot create the cache folder {} ({})", root.string(), ec.message()));
  std::random_device rd;
  const fs::path tmp = root / fmt::format(".tmp-synthetic-{}-{}-{:08x}", synthetic_hash(spec), ::getpid(), rd());
  fs::create_directories(tmp / "media");
  log_info("synthetic: generating {} {} of {} classes in {}", spec.num_samples, spec.video ? "videos" : "images",
           spec.classes.size(), folder.string());
  // Generation is part of a run's set-up and can take minutes: it shows progress like any long phase (ranks > 0
  // are quiet through their log level).
  Progress progress("synthetic", spec.num_samples);
  try {
    std::ofstream index(tmp / "index.txt");
    for (int64_t i = 0; i < spec.num_samples; ++i) {
      int64_t label = 0;
      Clip clip = render_sample(spec, i, label);
      std::string rel = fmt::format("media/{:06d}.{}", i, spec.video ? "mp4" : "png");
      if (spec.video) {
        EncodeOptions o;
        o.codec = spec.codec;
        o.gop = spec.gop;
        o.quality = 3;
        VideoWriter w((tmp / rel).string(), clip.width, clip.height, o);
        w.write(clip);
        w.close();
      } else {
        write_image((tmp / rel).string(), clip, 0);
      }
      index << rel << ' ' << label << '\n';
      progress.update(i + 1);
    }
    index.close();
    progress.finish();
    std::ofstream classes(tmp / "classes.txt");
    for (const auto& c : spec.classes) classes << c << '\n';
    classes.close();
    std::ofstream(tmp / "complete") << "ok\n";
  } catch (const UserError&) {
    fs::remove_all(tmp, ec);
    throw;
  } catch (const std::exception& e) {
    fs::remove_all(tmp, ec);
    throw RunError(fmt::format("synthetic: generation failed: {}", e.what()));
  }
  fs::rename(tmp, folder, ec);
  if (ec) {  // another process finished first, or a stale incomplete folder is in the way
    if (fs::exists(folder / "complete")) {
      fs::remove_all(tmp, ec);
    } else {
      fs::remove_all(folder, ec);
      fs::rename(tmp, folder, ec);
      if (ec) throw RunError(fmt::format("synthetic: cannot move the cache into {} ({})", folder.string(), ec.message()));
    }
  }
  auto c = load_cache(folder);
  c.generated = true;
  return c;
}

}  // namespace bevt

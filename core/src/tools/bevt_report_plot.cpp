// bevt-report: line and grouped-bar charts drawn with OpenCV (axes with ticks and labels, grid, legend),
// encoded as PNG.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "bevt/error.h"
#include "bevt_report.h"

namespace bevt::report {

namespace {

// Tableau's ten colours (BGR).
const cv::Scalar kPalette[] = {{180, 119, 31}, {14, 127, 255}, {44, 160, 44},  {40, 39, 214},  {189, 103, 148},
                               {75, 86, 140},  {194, 119, 227}, {127, 127, 127}, {34, 189, 188}, {207, 190, 23}};
const cv::Scalar kBlack{0, 0, 0}, kGrey{150, 150, 150}, kGrid{228, 228, 228}, kWhite{255, 255, 255};
constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;
constexpr double kSmall = 0.42, kTitle = 0.6;

cv::Scalar colour(int i) { return kPalette[static_cast<size_t>(i) % (sizeof(kPalette) / sizeof(kPalette[0]))]; }

cv::Size text_size(const std::string& s, double scale, int thickness = 1) {
  int base = 0;
  return cv::getTextSize(s, kFont, scale, thickness, &base);
}

enum class Align { Left, Centre, Right };

// Text whose baseline is at y, aligned on x.
void put(cv::Mat& img, const std::string& s, int x, int y, double scale, Align a = Align::Left,
         const cv::Scalar& c = kBlack, int thickness = 1) {
  int w = text_size(s, scale, thickness).width;
  int x0 = a == Align::Left ? x : a == Align::Centre ? x - w / 2 : x - w;
  cv::putText(img, s, {x0, y}, kFont, scale, c, thickness, cv::LINE_AA);
}

// Text rotated 90 degrees counter-clockwise, centred on (cx, cy): the y-axis label.
void put_vertical(cv::Mat& img, const std::string& s, int cx, int cy, double scale) {
  cv::Size sz = text_size(s, scale);
  cv::Mat strip(sz.height + 8, sz.width + 4, CV_8UC3, kWhite);
  cv::putText(strip, s, {2, sz.height + 2}, kFont, scale, kBlack, 1, cv::LINE_AA);
  cv::Mat rot;
  cv::rotate(strip, rot, cv::ROTATE_90_COUNTERCLOCKWISE);
  int x0 = std::clamp(cx - rot.cols / 2, 0, img.cols - rot.cols), y0 = std::clamp(cy - rot.rows / 2, 0, img.rows - rot.rows);
  rot.copyTo(img(cv::Rect(x0, y0, rot.cols, rot.rows)));
}

void dashed(cv::Mat& img, cv::Point2d a, cv::Point2d b, const cv::Scalar& c, int thickness, double dash = 9,
            double gap = 6) {
  double len = std::hypot(b.x - a.x, b.y - a.y);
  if (len < 1e-9) return;
  cv::Point2d d = (b - a) / len;
  for (double s = 0; s < len; s += dash + gap) {
    double e = std::min(len, s + dash);
    cv::line(img, a + d * s, a + d * e, c, thickness, cv::LINE_AA);
  }
}

// Fits a label into `width` pixels, cutting it with "..." when needed.
std::string fit(const std::string& s, int width, double scale) {
  if (text_size(s, scale).width <= width) return s;
  std::string t = s;
  while (!t.empty() && text_size(t + "...", scale).width > width) t.pop_back();
  return t + "...";
}

double nice_step(double range, int target) {
  double raw = range / std::max(1, target);
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double n = raw / mag;
  return (n < 1.5 ? 1 : n < 3 ? 2 : n < 7 ? 5 : 10) * mag;
}

std::string tick_label(double v, double step) {
  int dec = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
  if (std::abs(v) < step * 1e-6) v = 0;  // no "-0"
  if (std::abs(v) >= 10000 && step >= 1) return fmt::format("{:.0f}k", v / 1000);
  return fmt::format("{:.{}f}", v, dec);
}

struct Axis {
  double lo = 0, hi = 1, step = 0.2;
  std::vector<double> ticks() const {
    std::vector<double> t;
    for (double v = lo; v <= hi + step * 1e-6; v += step) t.push_back(v);
    return t;
  }
};

Axis make_axis(double lo, double hi, int target, bool snap = true) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) lo = 0, hi = 1;
  if (hi - lo < 1e-12) {
    double pad = std::abs(hi) > 1e-12 ? std::abs(hi) * 0.1 : 1.0;
    lo -= pad;
    hi += pad;
  }
  Axis a;
  a.step = nice_step(hi - lo, target);
  a.lo = snap ? std::floor(lo / a.step) * a.step : lo;
  a.hi = snap ? std::ceil(hi / a.step) * a.step : hi;
  return a;
}

std::vector<unsigned char> encode(const cv::Mat& img) {
  std::vector<unsigned char> buf;
  if (!cv::imencode(".png", img, buf, {cv::IMWRITE_PNG_COMPRESSION, 9}))
    throw RunError("bevt-report: OpenCV could not encode a PNG");
  return buf;
}

struct Frame {
  int left, top, right, bottom;
  int width() const { return right - left; }
  int height() const { return bottom - top; }
};

// The y grid, ticks, tick labels and axis label.
void draw_y_axis(cv::Mat& img, const Frame& f, const Axis& y, const std::string& label) {
  auto py = [&](double v) { return f.bottom - (v - y.lo) / (y.hi - y.lo) * f.height(); };
  for (double v : y.ticks()) {
    int p = static_cast<int>(std::lround(py(v)));
    cv::line(img, {f.left, p}, {f.right, p}, kGrid, 1);
    cv::line(img, {f.left - 5, p}, {f.left, p}, kBlack, 1);
    put(img, tick_label(v, y.step), f.left - 8, p + 5, kSmall, Align::Right);
  }
  put_vertical(img, label, 18, (f.top + f.bottom) / 2, 0.5);
}

void draw_box(cv::Mat& img, const Frame& f) { cv::rectangle(img, {f.left, f.top}, {f.right, f.bottom}, kBlack, 1); }

// Legend entries to the right of the frame: a sample (line, dashed line or box) and the label.
struct LegendEntry {
  std::string label;
  cv::Scalar colour;
  bool dashed = false, box = false;
};
// Pixels the legend needs right of the frame: the sample, the longest label (up to 300 pixels) and margins.
int legend_width(const std::vector<std::string>& labels) {
  int w = 0;
  for (const auto& l : labels) w = std::max(w, text_size(l, kSmall).width);
  return 16 + 32 + std::clamp(w, 120, 300) + 12;
}

void draw_legend(cv::Mat& img, const Frame& f, const std::vector<LegendEntry>& entries) {
  int x = f.right + 16, y = f.top + 8, room = img.cols - x - 36;
  for (const auto& e : entries) {
    if (y > img.rows - 10) break;
    if (e.box) {
      cv::rectangle(img, {x, y - 6}, {x + 22, y + 6}, e.colour, cv::FILLED);
    } else if (e.dashed) {
      dashed(img, {double(x), double(y)}, {double(x + 26), double(y)}, e.colour, 2, 6, 4);
    } else {
      cv::line(img, {x, y}, {x + 26, y}, e.colour, 2, cv::LINE_AA);
    }
    put(img, fit(e.label, room, kSmall), x + 32, y + 5, kSmall);
    y += 22;
  }
}

}  // namespace

std::vector<unsigned char> render_png(const LineChart& c, int width, int height) {
  double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin, ymin = xmin, ymax = -xmin;
  for (const auto& s : c.series)
    for (auto [x, y] : s.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      xmin = std::min(xmin, x), xmax = std::max(xmax, x), ymin = std::min(ymin, y), ymax = std::max(ymax, y);
    }
  if (c.y_from_zero) ymin = std::min(ymin, 0.0);
  Axis xa = make_axis(xmin, xmax, 7), ya = make_axis(ymin, ymax, 6);
  if (c.y_from_zero) ya.lo = std::min(ya.lo, 0.0);

  cv::Mat img(height, width, CV_8UC3, kWhite);
  int label_w = 0;
  for (double v : ya.ticks()) label_w = std::max(label_w, text_size(tick_label(v, ya.step), kSmall).width);
  std::vector<std::string> labels;
  for (const auto& s : c.series) labels.push_back(s.label);
  Frame f{46 + label_w, 44, width - legend_width(labels), height - 58};
  put(img, c.title, (f.left + f.right) / 2, 28, kTitle, Align::Centre);
  draw_y_axis(img, f, ya, c.ylabel);
  auto px = [&](double v) { return f.left + (v - xa.lo) / (xa.hi - xa.lo) * f.width(); };
  auto py = [&](double v) { return f.bottom - (v - ya.lo) / (ya.hi - ya.lo) * f.height(); };
  for (double v : xa.ticks()) {
    int p = static_cast<int>(std::lround(px(v)));
    cv::line(img, {p, f.top}, {p, f.bottom}, kGrid, 1);
    cv::line(img, {p, f.bottom}, {p, f.bottom + 5}, kBlack, 1);
    put(img, tick_label(v, xa.step), p, f.bottom + 20, kSmall, Align::Centre);
  }
  put(img, c.xlabel, (f.left + f.right) / 2, height - 14, 0.5, Align::Centre);
  draw_box(img, f);

  std::vector<LegendEntry> legend;
  for (const auto& s : c.series) {
    std::vector<cv::Point2d> pts;
    for (auto [x, y] : s.points)
      if (std::isfinite(x) && std::isfinite(y)) pts.emplace_back(px(x), py(y));
    if (pts.empty()) continue;
    cv::Scalar col = colour(s.color);
    for (size_t i = 1; i < pts.size(); ++i) {
      if (s.dashed)
        dashed(img, pts[i - 1], pts[i], col, 2);
      else
        cv::line(img, pts[i - 1], pts[i], col, 2, cv::LINE_AA);
    }
    if (pts.size() <= 40)
      for (const auto& p : pts) cv::circle(img, p, 3, col, cv::FILLED, cv::LINE_AA);
    legend.push_back({s.label, col, s.dashed, false});
  }
  draw_legend(img, f, legend);
  return encode(img);
}

std::vector<unsigned char> render_png(const BarChart& c, int width, int height) {
  const size_t G = c.group_names.size(), B = c.bar_names.size();
  double top = c.ymax;
  for (const auto& g : c.values)
    for (double v : g)
      if (std::isfinite(v)) top = std::max(top, v);
  Axis ya = make_axis(0, top, 5);
  ya.lo = 0;

  std::vector<std::string> labels = c.bar_names;
  if (std::isfinite(c.reference_line)) labels.push_back(c.reference_label);
  const int legend_w = legend_width(labels);
  width = std::max(width, 120 + legend_w + 84 * static_cast<int>(G));  // about 84 pixels per group at least
  const bool two_level = !c.super_groups.empty();
  cv::Mat img(height, width, CV_8UC3, kWhite);
  int label_w = 0;
  for (double v : ya.ticks()) label_w = std::max(label_w, text_size(tick_label(v, ya.step), kSmall).width);
  Frame f{46 + label_w, 44, width - legend_w, height - (two_level ? 64 : 70)};
  put(img, c.title, (f.left + f.right) / 2, 28, kTitle, Align::Centre);
  draw_y_axis(img, f, ya, c.ylabel);
  auto py = [&](double v) { return f.bottom - (v - ya.lo) / (ya.hi - ya.lo) * f.height(); };

  const double gw = G ? double(f.width()) / double(G) : f.width();
  const double bw = B ? gw * 0.8 / double(B) : gw;
  for (size_t g = 0; g < G; ++g) {
    const double gx = f.left + static_cast<double>(g) * gw + gw * 0.1;
    for (size_t b = 0; b < B && g < c.values.size() && b < c.values[g].size(); ++b) {
      double v = c.values[g][b];
      if (!std::isfinite(v)) continue;
      int x0 = static_cast<int>(std::lround(gx + b * bw)), x1 = static_cast<int>(std::lround(gx + (b + 1) * bw)) - 2;
      int y0 = static_cast<int>(std::lround(py(std::max(0.0, v))));
      cv::rectangle(img, {x0, y0}, {std::max(x0 + 1, x1), f.bottom}, colour(static_cast<int>(b)), cv::FILLED);
      if (bw >= 24) put(img, fmt::format("{:.0f}", v), (x0 + x1) / 2, y0 - 4, 0.36, Align::Centre);
    }
    // Group label, one line per '\n', centred under the group.
    const std::string& name = c.group_names[g];
    size_t start = 0;
    int line = 0;
    while (start <= name.size()) {
      size_t nl = name.find('\n', start);
      std::string part = name.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
      put(img, fit(part, static_cast<int>(gw) - 4, kSmall), static_cast<int>(f.left + (g + 0.5) * gw),
          f.bottom + 20 + 18 * line, kSmall, Align::Centre);
      ++line;
      if (nl == std::string::npos) break;
      start = nl + 1;
    }
    if (g > 0) {
      int x = static_cast<int>(std::lround(f.left + static_cast<double>(g) * gw));
      cv::line(img, {x, f.bottom}, {x, f.bottom + 6}, kBlack, 1);
    }
  }
  // Second line: each super-group's label centred under its groups, long ticks between super-groups.
  size_t first = 0;
  for (const auto& [label, count] : c.super_groups) {
    const double x0 = f.left + static_cast<double>(first) * gw, x1 = x0 + static_cast<double>(count) * gw;
    put(img, fit(label, static_cast<int>(x1 - x0) - 6, kSmall), static_cast<int>((x0 + x1) / 2), f.bottom + 40,
        kSmall, Align::Centre);
    if (first > 0) {
      int x = static_cast<int>(std::lround(x0));
      cv::line(img, {x, f.bottom}, {x, f.bottom + 46}, kBlack, 1);
    }
    first += count;
  }
  std::vector<LegendEntry> legend;
  for (size_t b = 0; b < B; ++b) legend.push_back({c.bar_names[b], colour(static_cast<int>(b)), false, true});
  if (std::isfinite(c.reference_line)) {
    double y = py(c.reference_line);
    dashed(img, {double(f.left), y}, {double(f.right), y}, kGrey, 2);
    legend.push_back({c.reference_label, kGrey, true, false});
  }
  draw_box(img, f);
  draw_legend(img, f, legend);
  return encode(img);
}

}  // namespace bevt::report

// Shared by the benchmarks: timing with warm-ups, median/min/max, peak RSS, and the table / --json output
// that bench/ promises (name, median_s, min_s, max_s, peak_rss_mb, plus case-specific fields).
#pragma once

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "host/registry.h"

namespace bevt::bench {

struct Result {
  std::string name;
  double median_s = 0, min_s = 0, max_s = 0, peak_rss_mb = 0;
  std::map<std::string, double> fields;  // case-specific figures (tokens_per_s, speedup, ...)
};

// The plugins a benchmark uses: the host's own folder, BEVT_PLUGIN_PATH, then `extra` folders.
inline host::Registry plugins(const std::vector<std::string>& extra = {}) {
  auto dirs = host::Registry::default_dirs();
  dirs.insert(dirs.end(), extra.begin(), extra.end());
  return host::Registry::discover(dirs);
}

inline double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // Linux reports KiB
}

// Runs fn `warmup` times untimed, then `reps` times timed.
inline Result time_case(const std::string& name, int warmup, int reps, const std::function<void()>& fn) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    auto a = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  Result r;
  r.name = name;
  r.min_s = t.front();
  r.max_s = t.back();
  r.median_s = t.size() % 2 ? t[t.size() / 2] : 0.5 * (t[t.size() / 2 - 1] + t[t.size() / 2]);
  r.peak_rss_mb = peak_rss_mb();
  return r;
}

inline void print(const std::vector<Result>& results, bool json) {
  if (json) {
    for (const auto& r : results) {
      nlohmann::json j{{"name", r.name}, {"median_s", r.median_s}, {"min_s", r.min_s}, {"max_s", r.max_s},
                       {"peak_rss_mb", r.peak_rss_mb}};
      for (const auto& [k, v] : r.fields) j[k] = v;
      std::puts(j.dump().c_str());
    }
    return;
  }
  std::puts(fmt::format("{:<40} {:>10} {:>10} {:>10} {:>12}  {}", "case", "median_s", "min_s", "max_s",
                        "peak_rss_mb", "extra").c_str());
  for (const auto& r : results) {
    std::string extra;
    for (const auto& [k, v] : r.fields) extra += fmt::format("{}={:.4g} ", k, v);
    std::puts(fmt::format("{:<40} {:>10.4f} {:>10.4f} {:>10.4f} {:>12.1f}  {}", r.name, r.median_s, r.min_s, r.max_s,
                          r.peak_rss_mb, extra).c_str());
  }
}

}  // namespace bevt::bench

// Mean ± std over the runs of a cell, and the 2-std significance test (bevt_report_stats.h).
#include "bevt_report_stats.h"

#include <fmt/format.h>

#include <algorithm>

namespace bevt::report {

Stat summarize(const std::vector<double>& values) {
  Stat s;
  s.n = values.size();
  if (values.empty()) return s;
  double sum = 0;
  for (double v : values) sum += v;
  s.mean = sum / double(s.n);
  if (s.n < 2) return s;
  double ss = 0;
  for (double v : values) ss += (v - s.mean) * (v - s.mean);
  s.std = std::sqrt(ss / double(s.n - 1));
  return s;
}

std::string format_stat(const Stat& s, double scale) {
  if (s.n == 0) return "";
  if (s.n < 2) return fmt::format("{:.1f}", scale * s.mean);
  return fmt::format("{:.1f} ± {:.1f}", scale * s.mean, scale * s.std);
}

Verdict compare(const Stat& a, const Stat& b) {
  if (a.n < 2 || b.n < 2) return Verdict::unknown;
  double spread = 2.0 * std::max(a.std, b.std);
  return std::fabs(a.mean - b.mean) >= spread ? Verdict::significant : Verdict::not_significant;
}

const char* verdict_text(Verdict v) {
  switch (v) {
    case Verdict::significant: return "significant";
    case Verdict::not_significant: return "not significant (< 2 std)";
    default: return "unknown (n < 2)";
  }
}

}  // namespace bevt::report

// bevt-report's error bars: the mean ± sample std of the runs that share a table cell (the same row and column
// in a plan, e.g. one strategy fine-tuned with three seeds), and whether two cells differ by more than their
// spread. Pure functions, so the unit test can check them against hand-computed numbers.
#pragma once

#include <cmath>
#include <string>
#include <vector>

namespace bevt::report {

struct Stat {
  double mean = NAN;
  double std = NAN;  // sample standard deviation (n - 1); NaN with fewer than two values
  size_t n = 0;
};

Stat summarize(const std::vector<double>& values);

// `scale` × the mean with one decimal, and " ± " the scaled std when there are two values or more.
std::string format_stat(const Stat& s, double scale = 100.0);

// A difference between two cells is significant when |mean_a - mean_b| ≥ 2 × the larger of the two stds.
// The larger std rather than a pooled one: with three seeds a pooled estimate is itself noisy, and the
// issue's yardstick is "more than 2 std". Cells with fewer than two values cannot be judged.
enum class Verdict { unknown, not_significant, significant };
Verdict compare(const Stat& a, const Stat& b);
const char* verdict_text(Verdict v);  // "significant", "not significant (< 2 std)", "unknown (n < 2)"

}  // namespace bevt::report

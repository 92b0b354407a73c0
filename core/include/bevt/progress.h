// A progress line for long loops: step/total, rate, ETA and a caller-supplied tail (losses, data time). On a
// terminal it rewrites one line; otherwise (CI, log files) it prints a plain line at most every
// `plain_interval_s` seconds and at the end.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace bevt {

class Progress {
 public:
  Progress(std::string label, int64_t total, double plain_interval_s = 10.0);
  ~Progress();
  void update(int64_t done, const std::string& tail = {});
  void finish(const std::string& tail = {});
  static std::string format_duration(double seconds);  // "1h02m", "3m05s", "12.3s"

 private:
  std::string render(int64_t done, const std::string& tail) const;
  std::string label_;
  int64_t total_;
  double plain_interval_s_;
  bool tty_;
  bool finished_ = false;
  int64_t last_done_ = 0;
  int64_t printed_done_ = -1;
  std::string last_tail_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_print_;
};

}  // namespace bevt

// A progress line for long phases (training steps, evaluation, scans): done/total, rate, elapsed, ETA and a
// caller-supplied tail (losses, data time). It shows from the first second: the constructor prints a line at
// once, and a heartbeat thread keeps it alive while one item takes long (a Swin-B step on a CPU, the first
// batch's decoding). On a terminal it rewrites one line (redrawn at least every second); otherwise (CI, log
// files) it prints a plain line at most every `plain_interval_s` seconds, at least that often while running,
// and at the end.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace bevt {

class Progress {
 public:
  // `first`: the count already done when this phase starts (a resumed run's step), kept out of the rate.
  Progress(std::string label, int64_t total, double plain_interval_s = 10.0, int64_t first = 0);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  void update(int64_t done, const std::string& tail);
  void update(int64_t done);  // keeps the last tail
  void finish(const std::string& tail = {});
  static std::string format_duration(double seconds);  // "1h02m", "3m05s", "12.3s"

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace bevt

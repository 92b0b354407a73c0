#include "bevt/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

namespace bevt {

Progress::Progress(std::string label, int64_t total, double plain_interval_s)
    : label_(std::move(label)),
      total_(total),
      plain_interval_s_(plain_interval_s),
      tty_(isatty(fileno(stdout)) != 0),
      start_(std::chrono::steady_clock::now()),
      last_print_(start_) {}

Progress::~Progress() {
  if (!finished_ && tty_) std::fputs("\n", stdout);
}

std::string Progress::format_duration(double s) {
  if (s < 0 || s != s) return "?";
  if (s < 60) return fmt::format("{:.1f}s", s);
  auto total = static_cast<int64_t>(s + 0.5);
  if (total < 3600) return fmt::format("{}m{:02d}s", total / 60, total % 60);
  return fmt::format("{}h{:02d}m", total / 3600, (total % 3600) / 60);
}

std::string Progress::render(int64_t done, const std::string& tail) const {
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;
  std::string eta = rate > 0 && total_ > 0 ? format_duration(static_cast<double>(total_ - done) / rate) : "?";
  std::string count = total_ > 0 ? fmt::format("{}/{}", done, total_) : fmt::format("{}", done);
  return fmt::format("{} {} | {:.2f} it/s | elapsed {} | eta {}{}{}", label_, count, rate,
                     format_duration(elapsed), eta, tail.empty() ? "" : " | ", tail);
}

void Progress::update(int64_t done, const std::string& tail) {
  last_done_ = done;
  last_tail_ = tail;
  auto now = std::chrono::steady_clock::now();
  if (tty_) {
    std::fprintf(stdout, "\r\033[K%s", render(done, tail).c_str());
    std::fflush(stdout);
    return;
  }
  if (std::chrono::duration<double>(now - last_print_).count() >= plain_interval_s_ || (total_ > 0 && done == total_)) {
    last_print_ = now;
    printed_done_ = done;
    std::fprintf(stdout, "%s\n", render(done, tail).c_str());
    std::fflush(stdout);
  }
}

void Progress::finish(const std::string& tail) {
  if (finished_) return;
  finished_ = true;
  if (!tty_ && printed_done_ == last_done_ && tail.empty()) return;  // the last line is already out
  std::fprintf(stdout, tty_ ? "\r\033[K%s\n" : "%s\n", render(last_done_, tail.empty() ? last_tail_ : tail).c_str());
  std::fflush(stdout);
}

}  // namespace bevt

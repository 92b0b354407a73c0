#include "bevt/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>
#include <vector>

#include "bevt/log.h"

namespace bevt {

using Clock = std::chrono::steady_clock;
const std::string kStarting = "starting";

namespace {
// Nested phases (a validation inside training) share the terminal line: only the innermost unfinished one
// draws; the outer one goes quiet until it finishes. Lock order: a State's mu, then this one.
std::mutex g_stack_mu;
std::vector<const void*> g_stack;

bool innermost(const void* p) {
  std::lock_guard<std::mutex> l(g_stack_mu);
  return !g_stack.empty() && g_stack.back() == p;
}
void push(const void* p) {
  std::lock_guard<std::mutex> l(g_stack_mu);
  g_stack.push_back(p);
}
void pop(const void* p) {
  std::lock_guard<std::mutex> l(g_stack_mu);
  for (auto it = g_stack.begin(); it != g_stack.end(); ++it)
    if (*it == p) {
      g_stack.erase(it);
      return;
    }
}
}  // namespace

struct Progress::State {
  std::string label;
  int64_t total = 0, first = 0;
  double plain_interval_s = 10;
  bool tty = false;
  std::mutex mu;
  std::condition_variable wake;
  bool finished = false;
  bool updated = false;  // before the first update the line says "starting"
  int64_t done = 0, printed_done = -1;
  std::string tail;
  Clock::time_point start, last_print;
  std::thread heartbeat;

  double since(Clock::time_point t) const { return std::chrono::duration<double>(Clock::now() - t).count(); }

  std::string render() const {
    const double elapsed = since(start);
    const double rate = elapsed > 0 ? static_cast<double>(done - first) / elapsed : 0.0;
    const std::string eta =
        rate > 0 && total > 0 ? format_duration(static_cast<double>(total - done) / rate) : std::string("?");
    const std::string count = total > 0 ? fmt::format("{}/{}", done, total) : fmt::format("{}", done);
    // Slow items read better as seconds per item (a Swin-B step on a CPU: "25.3 s/it", not "0.04 it/s").
    const std::string speed = rate >= 1 ? fmt::format("{:.2f} it/s", rate)
                              : rate > 0 ? fmt::format("{:.1f} s/it", 1.0 / rate)
                                         : std::string("- it/s");
    const std::string& shown = updated ? tail : kStarting;
    return fmt::format("{} {} | {} | elapsed {} | eta {}{}{}", label, count, speed, format_duration(elapsed), eta,
                       shown.empty() ? "" : " | ", shown);
  }

  // Called with mu held. Quiet like info lines when the log level is above info (ranks > 0, --log-level warn).
  void print() {
    if (!innermost(this) || log_level() > LogLevel::Info) return;
    last_print = Clock::now();
    printed_done = done;
    std::fprintf(stdout, tty ? "\r\033[K%s" : "%s\n", render().c_str());
    std::fflush(stdout);
  }
};

Progress::Progress(std::string label, int64_t total, double plain_interval_s, int64_t first)
    : s_(std::make_unique<State>()) {
  s_->label = std::move(label);
  s_->total = total;
  s_->first = s_->done = first;
  s_->plain_interval_s = plain_interval_s;
  s_->tty = isatty(fileno(stdout)) != 0;
  s_->start = s_->last_print = Clock::now();
  push(s_.get());
  {
    std::lock_guard<std::mutex> l(s_->mu);
    s_->print();  // the first line, at once
  }
  State* s = s_.get();
  s_->heartbeat = std::thread([s] {
    std::unique_lock<std::mutex> l(s->mu);
    const auto period = std::chrono::duration<double>(s->tty ? 1.0 : s->plain_interval_s);
    while (!s->finished) {
      s->wake.wait_for(l, period);
      if (!s->finished && s->since(s->last_print) >= period.count() * 0.99) s->print();
    }
  });
}

Progress::~Progress() {
  {
    std::lock_guard<std::mutex> l(s_->mu);
    if (!s_->finished && s_->tty && innermost(s_.get())) std::fputs("\n", stdout);
    s_->finished = true;
  }
  s_->wake.notify_all();
  if (s_->heartbeat.joinable()) s_->heartbeat.join();
  pop(s_.get());
}

std::string Progress::format_duration(double s) {
  if (s < 0 || s != s) return "?";
  if (s < 60) return fmt::format("{:.1f}s", s);
  auto total = static_cast<int64_t>(s + 0.5);
  if (total < 3600) return fmt::format("{}m{:02d}s", total / 60, total % 60);
  return fmt::format("{}h{:02d}m", total / 3600, (total % 3600) / 60);
}

void Progress::update(int64_t done, const std::string& tail) {
  std::lock_guard<std::mutex> l(s_->mu);
  s_->tail = tail;
  s_->updated = true;
  s_->done = done;
  // A terminal line is redrawn at most 10 times a second; a plain line every plain_interval_s and at the end.
  const double since = s_->since(s_->last_print);
  const bool end = s_->total > 0 && done == s_->total;
  if (s_->tty ? since >= 0.1 || end : since >= s_->plain_interval_s || end || s_->printed_done == s_->first)
    s_->print();
}

void Progress::update(int64_t done) {
  std::string tail;
  {
    std::lock_guard<std::mutex> l(s_->mu);
    tail = s_->tail;
  }
  update(done, tail);
}

void Progress::finish(const std::string& tail) {
  {
    std::lock_guard<std::mutex> l(s_->mu);
    if (s_->finished) return;
    s_->finished = true;
    if (!tail.empty()) s_->tail = tail;
    s_->updated = true;
    if (s_->tty && innermost(s_.get())) {
      std::fprintf(stdout, "\r\033[K%s\n", s_->render().c_str());
      std::fflush(stdout);
    } else if (!s_->tty && (s_->printed_done != s_->done || !tail.empty())) {
      s_->print();
    }
  }
  s_->wake.notify_all();
  if (s_->heartbeat.joinable()) s_->heartbeat.join();
  pop(s_.get());
}

}  // namespace bevt

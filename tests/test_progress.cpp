// The progress line (bevt/progress.h) as a log sees it (stdout is not a terminal under ctest): a line at once,
// a heartbeat while nothing moves, the first item at once, then at most one line per interval, nested phases
// sharing the output.
#include <gtest/gtest.h>

#include <chrono>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bevt/progress.h"

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

size_t count_prefix(const std::vector<std::string>& lines, const std::string& prefix) {
  size_t n = 0;
  for (const auto& l : lines) n += l.rfind(prefix, 0) == 0;
  return n;
}

void sleep_s(double s) { std::this_thread::sleep_for(std::chrono::duration<double>(s)); }

}  // namespace

TEST(Progress, ShowsAtOnceAndKeepsAliveThroughALongItem) {
  testing::internal::CaptureStdout();
  {
    bevt::Progress p("train", 10, 0.2);
    sleep_s(1.1);  // one long first item: the heartbeat prints about every 0.2 s
    p.update(1, "loss 1.0");
    p.update(2, "loss 0.9");  // within the interval: not printed
    p.finish();
  }
  auto lines = lines_of(testing::internal::GetCapturedStdout());
  ASSERT_GE(lines.size(), 4u);
  EXPECT_EQ(lines[0].rfind("train 0/10 | - it/s | elapsed 0.0s | eta ? | starting", 0), 0u) << lines[0];
  EXPECT_GE(count_prefix(lines, "train 0/10"), 4u);  // the first line and at least two heartbeats
  EXPECT_EQ(count_prefix(lines, "train 1/10"), 1u);  // the first item is shown at once
  const std::string& first_item = lines[count_prefix(lines, "train 0/10")];
  EXPECT_NE(first_item.find("| loss 1.0"), std::string::npos) << first_item;
  EXPECT_NE(first_item.find(" s/it |"), std::string::npos) << first_item;  // < 1 item/s reads as s/it
  EXPECT_NE(lines.back().find("train 2/10"), std::string::npos);  // finish shows where it ended
}

TEST(Progress, AnInnerPhaseTakesTheOutputOverAndHandsItBack) {
  testing::internal::CaptureStdout();
  {
    bevt::Progress outer("train", 4, 0.1);
    outer.update(1, "");
    {
      bevt::Progress inner("validate", 3, 0.1);
      sleep_s(0.45);
      inner.update(3, "");
      inner.finish();
    }
    const auto during = lines_of(testing::internal::GetCapturedStdout());
    testing::internal::CaptureStdout();
    sleep_s(0.5);
    outer.finish();
    const auto after = lines_of(testing::internal::GetCapturedStdout());
    // While validate ran, every line was its own; train's heartbeat came back after.
    size_t validate = 0, train_during = 0;
    bool inside = false;
    for (const auto& l : during) {
      if (l.rfind("validate", 0) == 0) inside = true, ++validate;
      else if (inside && l.rfind("train", 0) == 0) ++train_during;
    }
    EXPECT_GE(validate, 3u);
    EXPECT_EQ(train_during, 0u);
    EXPECT_GE(count_prefix(after, "train 1/4"), 2u);
  }
}

TEST(Progress, DurationsReadAsAPersonWritesThem) {
  EXPECT_EQ(bevt::Progress::format_duration(12.34), "12.3s");
  EXPECT_EQ(bevt::Progress::format_duration(185), "3m05s");
  EXPECT_EQ(bevt::Progress::format_duration(3720), "1h02m");
  EXPECT_EQ(bevt::Progress::format_duration(-1), "?");
}

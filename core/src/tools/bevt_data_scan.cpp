#include "bevt_data_scan.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <filesystem>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bevt/atomic_file.h"
#include "bevt/data/media_dataset.h"
#include "bevt/progress.h"
#include "host/data/problems.h"

namespace fs = std::filesystem;

namespace bevt::tools {

ScanResult scan_dataset(const Dataset& dataset, int jobs) {
  ScanResult r;
  r.items = static_cast<int64_t>(dataset.size());
  r.jobs = std::max(1, jobs);
  std::vector<std::vector<DataProblem>> found(static_cast<size_t>(r.items));
  std::atomic<int64_t> next{0}, done{0}, bad{0};
  std::mutex finished_mu;
  std::condition_variable finished;
  const auto t0 = std::chrono::steady_clock::now();
  auto work = [&] {
    for (int64_t i = next++; i < r.items; i = next++) {
      auto& slot = found[static_cast<size_t>(i)];
      try {
        slot = dataset.check(static_cast<size_t>(i));
      } catch (const std::exception& e) {  // check() names problems itself; this is a last resort, never a crash
        DataProblem p;
        p.path = "#" + std::to_string(i);
        p.kind = "corrupt";
        p.reason = e.what();
        slot = {p};
      }
      if (count_bad(slot) > 0) ++bad;
      if (++done == r.items) {
        std::lock_guard<std::mutex> l(finished_mu);  // the waiting thread wakes at once, not at its next tick
        finished.notify_all();
      }
    }
  };
  std::vector<std::thread> threads;
  for (int j = 0; j < r.jobs; ++j) threads.emplace_back(work);
  Progress progress("check", r.items, 30.0);
  for (std::unique_lock<std::mutex> l(finished_mu); done.load() < r.items;) {
    finished.wait_for(l, std::chrono::milliseconds(500), [&] { return done.load() >= r.items; });
    progress.update(done.load(), fmt::format("{} bad", bad.load()));
  }
  for (auto& t : threads) t.join();
  progress.update(r.items, fmt::format("{} bad", bad.load()));
  progress.finish();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (const auto& f : found) merge_problems(r.problems, f);
  return r;
}

void merge_problems(std::vector<DataProblem>& list, const std::vector<DataProblem>& more) {
  std::set<std::pair<std::string, std::string>> have;
  for (const auto& p : list) have.emplace(normal_path(p.path), p.kind);
  for (const auto& p : more)
    if (have.emplace(normal_path(p.path), p.kind).second) list.push_back(p);
}

int64_t count_bad(const std::vector<DataProblem>& problems) {
  std::set<std::string> paths;
  for (const auto& p : problems)
    if (!p.kept) paths.insert(normal_path(p.path));
  return static_cast<int64_t>(paths.size());
}

namespace {
void write_text(const std::string& path, const std::string& text) {
  AtomicFile f(path);
  f.write(text.data(), text.size());
  f.commit();
}
}  // namespace

void write_bad_files(const std::string& dir, const std::vector<DataProblem>& problems, const std::string& header,
                     int64_t items) {
  std::string txt = fmt::format("# {}: {} bad files ({} items in the dataset after skipping missing files and "
                                "repeated ids); path\twhere\tkind\treason, kept items as comments. A dataset's exclude "
                                "key reads this file.\n",
                                header, count_bad(problems), items);
  nlohmann::json bad = nlohmann::json::array(), kept = nlohmann::json::array();
  auto clean = [](std::string s) {  // one field per tab, one item per line
    for (auto& c : s)
      if (c == '\t' || c == '\n' || c == '\r') c = ' ';
    return s;
  };
  for (const auto& p : problems) {
    DataProblem q = p;
    if (q.path.rfind('#', 0) != 0) q.path = normal_path(q.path);
    txt += fmt::format("{}{}\t{}\t{}\t{}\n", q.kept ? "# kept: " : "", clean(q.path), clean(q.where), q.kind,
                       clean(q.reason));
    (q.kept ? kept : bad).push_back(host::problem_json(q));
  }
  nlohmann::json j = {{"header", header}, {"items", items}, {"bad", count_bad(problems)}, {"bad_files", bad},
                      {"kept", kept}};
  write_text((fs::path(dir) / "bad_files.txt").string(), txt);
  write_text((fs::path(dir) / "bad_files.json").string(), j.dump(2) + "\n");
}

}  // namespace bevt::tools

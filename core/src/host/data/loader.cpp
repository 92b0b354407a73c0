#include "host/data/loader.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "bevt/error.h"
#include "bevt/log.h"

namespace bevt::host {
namespace {
constexpr uint64_t kShuffleTag = 0x73687566666c65ULL;  // "shuffle"
constexpr uint64_t kReplaceTag = 0x7265706c616365ULL;  // "replace"

struct BadFileRecord {
  std::mutex mu;
  std::map<const Dataset*, std::vector<std::string>> files;
  std::map<const Dataset*, std::set<std::string>> seen;
};
BadFileRecord& bad_file_record() {
  static BadFileRecord r;
  return r;
}
void remember_bad_file(const Dataset* ds, const std::string& line) {
  auto& r = bad_file_record();
  std::lock_guard<std::mutex> l(r.mu);
  if (r.seen[ds].insert(line).second) r.files[ds].push_back(line);
}
}  // namespace

std::vector<std::string> recorded_bad_files(const Dataset* dataset) {
  auto& r = bad_file_record();
  std::lock_guard<std::mutex> l(r.mu);
  auto it = r.files.find(dataset);
  return it == r.files.end() ? std::vector<std::string>{} : it->second;
}

struct Loader::State {
  std::shared_ptr<Dataset> dataset;
  LoaderOptions opt;

  // Epoch plan.
  int64_t epoch = 0;
  std::vector<int64_t> shard;  // dataset indices of this rank, in epoch order
  int64_t batches = 0;         // batches of the current epoch
  int64_t usable = 0;          // shard positions used (drop_last trims)

  // Production.
  std::mutex mu;
  std::condition_variable can_produce, can_consume;
  bool stop = false;
  bool started = false;
  int64_t next_consume = 0, next_produce = 0;
  std::map<int64_t, std::pair<Batch, std::exception_ptr>> ready;
  std::vector<std::thread> threads;

  // Bad samples (shared by every epoch of this loader).
  mutable std::mutex bad_mu;
  std::set<int64_t> bad_indices;
  std::vector<std::string> bad_files;

  int64_t shard_size_for_epoch() const {
    const auto n = static_cast<int64_t>(dataset->size());
    return opt.drop_last ? n / opt.world_size : static_cast<int64_t>(shard.size());
  }

  void plan(int64_t e) {
    epoch = e;
    const auto n = static_cast<int64_t>(dataset->size());
    std::vector<int64_t> order(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
    if (opt.shuffle) {
      Rng rng(Rng::derive(opt.seed, {opt.stream_id, static_cast<uint64_t>(e), kShuffleTag}));
      for (int64_t i = n - 1; i > 0; --i) std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(rng.randint(0, i))]);
    }
    shard.clear();
    for (int64_t i = opt.rank; i < n; i += opt.world_size) shard.push_back(order[static_cast<size_t>(i)]);
    if (opt.drop_last) {
      batches = (n / opt.world_size) / opt.batch_size;
      usable = batches * opt.batch_size;
    } else {
      usable = static_cast<int64_t>(shard.size());
      batches = (usable + opt.batch_size - 1) / opt.batch_size;
    }
  }

  bool is_bad(int64_t idx) const {
    std::lock_guard<std::mutex> l(bad_mu);
    return bad_indices.count(idx) > 0;
  }

  void record_bad(int64_t idx, const std::string& reason) {
    std::lock_guard<std::mutex> l(bad_mu);
    if (!bad_indices.insert(idx).second) return;
    bad_files.push_back(reason);
    remember_bad_file(dataset.get(), reason);
    log_warn("data: bad sample {} skipped ({} so far): {}", idx, bad_indices.size(), reason);
    const auto denom = std::max<int64_t>(1, static_cast<int64_t>(shard.size()));
    if (static_cast<double>(bad_indices.size()) > opt.max_bad_fraction * static_cast<double>(denom))
      throw RunError(too_many_message(denom));
  }

  std::string too_many_message(int64_t denom) const {
    std::string list;
    // The whole list up to a length a terminal still shows; every one is also named in the log as it is met.
    size_t shown = std::min<size_t>(bad_files.size(), 50);
    for (size_t i = 0; i < shown; ++i) list += (i ? "; " : "") + bad_files[i];
    if (bad_files.size() > shown)
      list += fmt::format("; and {} more, each named in the log above (\"data: bad sample\")", bad_files.size() - shown);
    return fmt::format("too many samples failed to decode: {} of {} (max_bad_fraction = {}); fix them, or list them "
                       "with bevt-data EXP --stream S --check -1 and give its bad_files.json as the dataset's "
                       "exclude key: {}",
                       bad_indices.size(), denom, opt.max_bad_fraction, list);
  }

  // Sample at shard position p, replaced by the next decodable one of the shard when it fails.
  Sample load(int64_t p, int64_t& used) {
    const auto n = static_cast<int64_t>(shard.size());
    const int64_t original = shard[static_cast<size_t>(p)];
    for (int64_t k = 0; k < n; ++k) {
      const int64_t idx = shard[static_cast<size_t>((p + k) % n)];
      if (is_bad(idx)) continue;
      uint64_t seed = k == 0 ? Rng::derive(opt.seed, {opt.stream_id, static_cast<uint64_t>(epoch), static_cast<uint64_t>(idx)})
                             : Rng::derive(opt.seed, {opt.stream_id, static_cast<uint64_t>(epoch), static_cast<uint64_t>(idx),
                                                      kReplaceTag, static_cast<uint64_t>(original)});
      Rng rng(seed);
      try {
        used = idx;
        return dataset->get(static_cast<size_t>(idx), rng);
      } catch (const RunError&) {
        throw;
      } catch (const std::exception& e) {
        record_bad(idx, e.what());
      }
    }
    std::lock_guard<std::mutex> l(bad_mu);
    throw RunError(fmt::format("every sample of this shard failed to decode; {}", too_many_message(n)));
  }

  Batch produce(int64_t b) {
    const int64_t lo = b * opt.batch_size, hi = std::min(usable, lo + opt.batch_size);
    std::vector<torch::Tensor> inputs, views, labels;
    Batch out;
    bool all_views = true;
    for (int64_t p = lo; p < hi; ++p) {
      int64_t used = -1;
      Sample s = load(p, used);
      out.indices.push_back(used);
      out.ids.push_back(s.id);
      inputs.push_back(s.input);
      all_views = all_views && s.tokenizer_view.defined();
      if (s.tokenizer_view.defined()) views.push_back(s.tokenizer_view);
      labels.push_back(torch::tensor(s.label, torch::kInt64));
    }
    out.input = torch::stack(inputs);
    if (all_views && !views.empty()) out.tokenizer_view = torch::stack(views);
    out.label = torch::stack(labels);
    if (opt.pin_memory && torch::cuda::is_available()) {
      out.input = out.input.pin_memory();
      if (out.tokenizer_view.defined()) out.tokenizer_view = out.tokenizer_view.pin_memory();
      out.label = out.label.pin_memory();
    }
    return out;
  }

  void worker() {
    const int64_t window = std::max<int64_t>({opt.prefetch, opt.workers, 1});
    for (;;) {
      int64_t b;
      {
        std::unique_lock<std::mutex> l(mu);
        can_produce.wait(l, [&] { return stop || next_produce >= batches || next_produce < next_consume + window; });
        if (stop || next_produce >= batches) return;
        b = next_produce++;
      }
      std::pair<Batch, std::exception_ptr> r;
      try {
        r.first = produce(b);
      } catch (...) {
        r.second = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> l(mu);
        ready[b] = std::move(r);
      }
      can_consume.notify_all();
    }
  }

  void halt() {
    {
      std::lock_guard<std::mutex> l(mu);
      stop = true;
    }
    can_produce.notify_all();
    for (auto& t : threads)
      if (t.joinable()) t.join();
    threads.clear();
    ready.clear();
    stop = false;
  }
};

Loader::Loader(std::shared_ptr<Dataset> dataset, LoaderOptions options) : state_(std::make_unique<State>()) {
  if (!dataset) throw UserError("data loader: no dataset");
  if (options.batch_size < 1) throw UserError("data loader: batch_size must be >= 1");
  if (options.world_size < 1 || options.rank < 0 || options.rank >= options.world_size)
    throw UserError(fmt::format("data loader: rank {} is not in [0, world_size = {})", options.rank, options.world_size));
  if (options.workers < 0 || options.prefetch < 0) throw UserError("data loader: workers and prefetch must be >= 0");
  if (dataset->size() == 0) throw UserError("data loader: the dataset is empty");
  state_->dataset = std::move(dataset);
  state_->opt = options;
  state_->plan(0);
}

Loader::~Loader() { state_->halt(); }

void Loader::start_epoch(int64_t epoch, int64_t start_batch) {
  auto& s = *state_;
  s.halt();
  s.plan(epoch);
  s.next_consume = s.next_produce = std::clamp<int64_t>(start_batch, 0, s.batches);
  s.started = true;
  for (int64_t i = 0; i < s.opt.workers; ++i) s.threads.emplace_back([&s] { s.worker(); });
}

bool Loader::next(Batch& out) {
  auto& s = *state_;
  if (!s.started) start_epoch(0);
  if (s.next_consume >= s.batches) return false;
  const auto t0 = std::chrono::steady_clock::now();
  std::pair<Batch, std::exception_ptr> r;
  if (s.opt.workers == 0) {
    try {
      r.first = s.produce(s.next_consume);
    } catch (...) {
      r.second = std::current_exception();
    }
  } else {
    std::unique_lock<std::mutex> l(s.mu);
    s.can_consume.wait(l, [&] { return s.ready.count(s.next_consume) > 0; });
    r = std::move(s.ready[s.next_consume]);
    s.ready.erase(s.next_consume);
    ++s.next_consume;
  }
  if (s.opt.workers == 0) ++s.next_consume;
  s.can_produce.notify_all();
  if (r.second) std::rethrow_exception(r.second);
  out = std::move(r.first);
  out.data_wait_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return true;
}

int64_t Loader::batches_per_epoch() const { return state_->batches; }

int64_t Loader::bad_samples() const {
  std::lock_guard<std::mutex> l(state_->bad_mu);
  return static_cast<int64_t>(state_->bad_indices.size());
}

std::vector<std::string> Loader::bad_files() const {
  std::lock_guard<std::mutex> l(state_->bad_mu);
  return state_->bad_files;
}

}  // namespace bevt::host

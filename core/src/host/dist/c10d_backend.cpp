// The c10d side of bevt::host::dist: TCPStore rendezvous, ProcessGroupGloo / ProcessGroupNCCL, collectives,
// and the heartbeat monitor that turns a dead, stopped or failed rank into a named exit on every other rank.
// The only file that includes c10d's headers; which process groups exist is decided at configure time
// (cmake/BevtDistributed.cmake defines USE_C10D_GLOO / USE_C10D_NCCL when this torch offers them).
#include <c10/util/Exception.h>
#include <fmt/format.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/version.h>

#ifdef USE_C10D_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef USE_C10D_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <algorithm>
#include <atomic>
#include <map>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "bevt/digest.h"
#include "bevt/error.h"
#include "bevt/grad_checkpoint.h"
#include "bevt/log.h"
#include "bevt/rng.h"
#include "bevt/strings.h"
#include "host/dist/dist.h"

namespace bevt::host::dist {

namespace {

// LibTorch 2.x splits ProcessGroup into a front and per-device Backends; Gloo and NCCL are Backends there,
// ProcessGroups in 1.x. The collective calls used here are the same on both.
#if TORCH_VERSION_MAJOR >= 2
using Group = c10d::Backend;
#else
using Group = c10d::ProcessGroup;
#endif

using Clock = std::chrono::steady_clock;

std::vector<uint8_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }
std::string text(const std::vector<uint8_t>& b) { return {b.begin(), b.end()}; }

std::string error_text(const std::exception& e) {
  if (auto* c = dynamic_cast<const c10::Error*>(&e)) return first_line(c->what_without_backtrace());
  return first_line(e.what());
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct World {
  LaunchEnv env;
  Settings settings;
  std::string device;
  torch::Device comm{torch::kCPU};
  std::string backend;
  bool hosts_store = false;
  c10::intrusive_ptr<c10d::TCPStore> tcp;
  c10::intrusive_ptr<c10d::Store> store;  // bevt's keys (inside the agent's prefix under torchrun's agent store)
  c10::intrusive_ptr<Group> group;

  std::atomic<int64_t> seq{0};           // collectives issued by this rank
  std::atomic<bool> stop{false};         // the monitor ends
  std::atomic<bool> monitor_done{false};
  std::atomic<bool> suspect{false};      // a collective failed: a quiet peer is named sooner
  std::mutex store_mu;                   // our store traffic, shared by the main and the monitor thread
  std::mutex cv_mu;
  std::condition_variable cv;
  std::thread monitor;
  double interval_s = 1.0;

  std::string where() const {
    return fmt::format("{}:{}", env.master_addr, env.master_port);
  }
};

// Deliberately never destroyed: a failing process exits with process groups whose peers are gone, and their
// destructors would wait on them.
World* g = nullptr;

const std::string kVerdict = "bevt/verdict";
std::string hb_key(int r) { return fmt::format("bevt/hb/{}", r); }
std::string done_key(int r) { return fmt::format("bevt/done/{}", r); }
std::string joined_key(int r) { return fmt::format("bevt/joined/{}", r); }

void sleep_s(double s) { std::this_thread::sleep_for(std::chrono::duration<double>(s)); }

void stop_monitor(double max_wait_s) {
  if (!g || !g->monitor.joinable()) return;
  g->stop = true;
  g->cv.notify_all();
  auto t0 = Clock::now();
  while (!g->monitor_done && seconds_since(t0) < max_wait_s) sleep_s(0.01);
  if (g->monitor_done)
    g->monitor.join();
  else
    g->monitor.detach();  // blocked in a store call; it ends with the process
}

// Ends this process naming the culprit: the first verdict written to the store wins, so every rank reports the
// same cause. The rank hosting the store lingers a little so that the others can still read it.
[[noreturn]] void fatal(const std::string& message) {
  std::string verdict = message;
  try {
    std::unique_lock<std::mutex> l(g->store_mu, std::defer_lock);
    if (l.try_lock()) {
      auto v = g->store->compareSet(kVerdict, {}, bytes(message));
      if (!v.empty()) verdict = text(v);
    }
  } catch (const std::exception&) {
  }
  log_error("{}", verdict);
  std::fflush(stdout);
  std::fflush(stderr);
  if (g->hosts_store) sleep_s(1.5 * g->interval_s + 0.2);
  std::_Exit(1);
}

void monitor_loop() {
  const int W = g->env.world_size, me = g->env.rank;
  std::vector<std::string> last(static_cast<size_t>(W));
  std::vector<Clock::time_point> changed(static_cast<size_t>(W), Clock::now());
  int64_t beat = 0;
  while (!g->stop) {
    {
      std::unique_lock<std::mutex> l(g->cv_mu);
      g->cv.wait_for(l, std::chrono::duration<double>(g->interval_s), [] { return g->stop.load(); });
    }
    if (g->stop) break;
    std::string verdict;
    try {
      std::lock_guard<std::mutex> l(g->store_mu);
      g->store->set(hb_key(me), bytes(fmt::format("{} {}", ++beat, g->seq.load())));
      if (g->store->check({kVerdict})) {
        verdict = text(g->store->get(kVerdict));
      } else {
        const double limit = g->suspect ? std::max(4 * g->interval_s, 1.0) : g->settings.timeout_s;
        for (int r = 0; r < W && verdict.empty(); ++r) {
          if (r == me || g->store->check({done_key(r)})) continue;
          std::string v = text(g->store->get(hb_key(r)));
          auto& lr = last[static_cast<size_t>(r)];
          auto& cr = changed[static_cast<size_t>(r)];
          if (v != lr) {
            lr = v;
            cr = Clock::now();
            continue;
          }
          const double quiet = seconds_since(cr);
          if (quiet > limit) {
            auto space = v.find(' ');
            verdict = fmt::format(
                "rank {} stopped responding: no heartbeat for {:.1f} s (it died, was stopped, or its machine "
                "hangs; it was at collective #{}, rank {} at #{})",
                r, quiet, space == std::string::npos ? "?" : v.substr(space + 1), me, g->seq.load());
          }
        }
      }
    } catch (const std::exception& e) {
      if (g->stop) break;
      verdict = fmt::format("lost the rendezvous store at {} ({}): {}", g->where(),
                            g->env.agent_store ? "torchrun's agent" : "hosted by rank 0, which exited or hangs",
                            error_text(e));
    }
    if (!verdict.empty()) fatal(verdict);
  }
  g->monitor_done = true;
}

// A collective failed (a peer's connection closed, or it timed out). Give the monitor the chance to name a
// dead or stopped rank; else name the ranks that never reached this collective.
[[noreturn]] void collective_failed(const std::string& op, int64_t n, const std::string& err) {
  g->suspect = true;
  const double wait = std::max(6 * g->interval_s, 2.0);
  auto t0 = Clock::now();
  while (seconds_since(t0) < wait) sleep_s(0.05);  // the monitor may end the process meanwhile
  std::vector<std::string> behind;
  try {
    std::lock_guard<std::mutex> l(g->store_mu);
    if (g->store->check({kVerdict})) throw RunError(text(g->store->get(kVerdict)));
    for (int r = 0; r < g->env.world_size; ++r) {
      if (r == g->env.rank) continue;
      std::string v = text(g->store->get(hb_key(r)));
      auto space = v.find(' ');
      if (space != std::string::npos && std::stoll(v.substr(space + 1)) < n)
        behind.push_back(fmt::format("rank {} (at #{})", r, v.substr(space + 1)));
    }
  } catch (const RunError&) {
    throw;
  } catch (const std::exception&) {
  }
  if (!behind.empty())
    throw RunError(fmt::format("{} #{} failed on rank {}: {} did not reach it within dist.timeout = {} s ({})", op,
                               n, g->env.rank, join(behind), g->settings.timeout_s, err));
  throw RunError(fmt::format("{} #{} failed on rank {}: {}", op, n, g->env.rank, err));
}

void require() {
  if (!g) throw RunError("internal: a collective without a process group");
}

template <class Launch>
void blocking(const std::string& op, Launch&& launch) {
  require();
  const int64_t n = ++g->seq;
  try {
    auto work = launch();
    work->wait();
  } catch (const RunError&) {
    throw;
  } catch (const std::exception& e) {
    collective_failed(op, n, error_text(e));
  }
}


}  // namespace

bool have_gloo() {
#ifdef USE_C10D_GLOO
  return true;
#else
  return false;
#endif
}

bool have_nccl() {
#ifdef USE_C10D_NCCL
  return true;
#else
  return false;
#endif
}

bool active() { return g != nullptr; }
int rank() { return g ? g->env.rank : 0; }
int world_size() { return g ? g->env.world_size : 1; }
int local_rank() { return g ? g->env.local_rank : 0; }
bool is_main() { return rank() == 0; }
std::string backend_name() { return g ? g->backend : std::string(); }
torch::Device comm_device() { return g ? g->comm : torch::Device(torch::kCPU); }

void init(const LaunchEnv& env, const Settings& s, const std::string& device, const std::string& experiment) {
  if (g) throw RunError("internal: dist::init called twice");
  if (env.world_size <= 1 && !s.init_single) return;
  const bool cuda = device.rfind("cuda", 0) == 0;
  std::string backend = s.backend;
  if (backend == "auto") backend = cuda && have_nccl() ? "nccl" : "gloo";
  if (backend == "nccl" && !have_nccl())
    throw UserError("dist.backend = 'nccl' but this build's torch has no NCCL process group (Debian's libtorch is "
                    "CPU-only: use 'gloo' or 'auto', or build against an official CUDA LibTorch; see "
                    "docs/distributed.md)");
  if (backend == "nccl" && !cuda)
    throw UserError(fmt::format("dist.backend = 'nccl' needs a CUDA device, but run.device resolves to '{}' (use "
                                "'gloo' on CPUs)",
                                device));
  if (backend == "gloo" && !have_gloo())
    throw UserError("dist.backend = 'gloo' but this build's torch has no Gloo process group (build torch with "
                    "USE_GLOO, or use 'nccl' on GPUs)");

  auto w = std::make_unique<World>();
  w->env = env;
  w->settings = s;
  w->device = device;
  w->backend = backend;
  w->interval_s = std::clamp(s.timeout_s / 10.0, 0.1, 2.0);
  w->hosts_store = !env.agent_store && env.rank == 0;
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(s.timeout_s * 1000.0));

  // Rendezvous: rank 0 (or torchrun's agent) hosts a TCPStore at MASTER_ADDR:MASTER_PORT.
  c10d::TCPStoreOptions o;
  o.port = static_cast<uint16_t>(env.master_port);
  o.isServer = w->hosts_store;
  o.waitWorkers = false;
  o.timeout = timeout;
  try {
    w->tcp = c10::make_intrusive<c10d::TCPStore>(env.master_addr, o);
  } catch (const std::exception& e) {
    if (w->hosts_store)
      throw UserError(fmt::format("rank 0 cannot host the rendezvous at {} ({}): the port is in use or "
                                  "MASTER_ADDR is not this machine; choose a free MASTER_PORT (torchrun "
                                  "--master-port) and check MASTER_ADDR",
                                  w->where(), error_text(e)));
    throw UserError(fmt::format("rank {} cannot reach the rendezvous at {} within dist.timeout = {} s ({}): check "
                                "MASTER_ADDR / MASTER_PORT and that rank 0 started",
                                env.rank, w->where(), s.timeout_s, error_text(e)));
  }
  c10::intrusive_ptr<c10d::Store> base = w->tcp;
  if (!env.store_prefix.empty()) base = c10::make_intrusive<c10d::PrefixStore>(env.store_prefix, base);
  w->store = base;

  // Every rank announces itself with its experiment hash; all must arrive within the timeout and agree.
  const std::string me = fmt::format("{} {}", env.world_size, digest_hex(experiment));
  auto t0 = Clock::now();
  try {
    w->store->set(joined_key(env.rank), bytes(me));
    w->store->set(hb_key(env.rank), bytes("0 0"));
    w->store->add("bevt/joined", 1);
    while (w->store->add("bevt/joined", 0) < env.world_size) {
      if (seconds_since(t0) > s.timeout_s) {
        std::vector<std::string> missing;
        for (int r = 0; r < env.world_size; ++r)
          if (!w->store->check({joined_key(r)})) missing.push_back(std::to_string(r));
        throw RunError(fmt::format("rank(s) {} did not join the rendezvous at {} within dist.timeout = {} s (were "
                                   "all {} processes started, with the same MASTER_ADDR, MASTER_PORT and "
                                   "WORLD_SIZE?)",
                                   join(missing), w->where(), s.timeout_s, env.world_size));
      }
      sleep_s(0.02);
    }
    for (int r = 0; r < env.world_size; ++r) {
      std::string theirs = text(w->store->get(joined_key(r)));
      if (theirs != me)
        throw UserError(fmt::format("rank {} runs another world or experiment than rank {} ('{}' vs '{}': world "
                                    "size and hash of the resolved experiment); start every rank with the same "
                                    "file, --set options and WORLD_SIZE",
                                    r, env.rank, theirs, me));
    }
  } catch (const UserError&) {
    throw;
  } catch (const RunError&) {
    throw;
  } catch (const std::exception& e) {
    throw RunError(fmt::format("rendezvous at {} failed: {}", w->where(), error_text(e)));
  }

  auto pg_store = c10::make_intrusive<c10d::PrefixStore>("bevt_pg", w->store);
  try {
    if (backend == "gloo") {
#ifdef USE_C10D_GLOO
      auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
      auto ifname = process_env("GLOO_SOCKET_IFNAME");
      const std::string& a = env.master_addr;
      if (ifname && !ifname->empty()) {
        std::string cur;
        for (char c : *ifname + ",") {
          if (c != ',') {
            cur += c;
            continue;
          }
          if (!cur.empty()) opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(cur));
          cur.clear();
        }
      } else if (a == "localhost" || a.rfind("127.", 0) == 0 || a == "::1") {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      } else {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      opts->threads = 2;
      w->group = c10::make_intrusive<c10d::ProcessGroupGloo>(pg_store, env.rank, env.world_size, opts);
      w->comm = torch::Device(torch::kCPU);
#endif
    } else {
#ifdef USE_C10D_NCCL
      // Timeouts end the process instead of hanging in the CUDA stream (the variable's name changed in 2.2).
      setenv("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1", 0);
      setenv("NCCL_ASYNC_ERROR_HANDLING", "1", 0);
      torch::Device d(device);
      c10::cuda::set_device(d.index());
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = timeout;
      w->group = c10::make_intrusive<c10d::ProcessGroupNCCL>(pg_store, env.rank, env.world_size, opts);
      w->comm = d;
#endif
    }
  } catch (const std::exception& e) {
    throw RunError(fmt::format("creating the {} process group ({} ranks, rendezvous {}) failed: {}", backend,
                               env.world_size, w->where(), error_text(e)));
  }
  g = w.release();
  set_log_rank(env.rank, env.world_size);
  // The group works end to end before any training starts.
  torch::Tensor probe = torch::ones({1}, torch::TensorOptions().dtype(torch::kFloat64).device(g->comm));
  all_reduce_sum(probe);
  if (probe.item<double>() != static_cast<double>(env.world_size))
    throw RunError(fmt::format("the {} process group does not add up: {} instead of {}", backend,
                               probe.item<double>(), env.world_size));
  g->monitor = std::thread(monitor_loop);
  log_info("distributed: rank {} of {} (local {} of {}) from {}, {} over {} (rendezvous {}), timeout {} s", env.rank,
           env.world_size, env.local_rank, env.local_world_size, env.source, device, backend, g->where(),
           s.timeout_s);
}

void finish() {
  if (!g) return;
  const int W = g->env.world_size;
  const auto t0 = Clock::now();
  try {
    {
      std::lock_guard<std::mutex> l(g->store_mu);
      g->store->set(done_key(g->env.rank), bytes("1"));
      g->store->add("bevt/finished", 1);
    }
    // Everybody finished (the monitor still watches the rest meanwhile).
    while (true) {
      {
        std::lock_guard<std::mutex> l(g->store_mu);
        if (g->store->add("bevt/finished", 0) >= W) break;
      }
      if (seconds_since(t0) > g->settings.timeout_s)
        throw RunError(fmt::format("rank {}: the other ranks did not finish within dist.timeout = {} s",
                                   g->env.rank, g->settings.timeout_s));
      sleep_s(0.02);
    }
    stop_monitor(g->settings.timeout_s);
    if (g->hosts_store) {
      // The store lives in this process: keep it until every other rank has read the last key.
      while (g->store->add("bevt/left", 0) < W - 1 && seconds_since(t0) < g->settings.timeout_s) sleep_s(0.02);
    } else {
      g->store->add("bevt/left", 1);
    }
  } catch (const RunError&) {
    throw;
  } catch (const std::exception& e) {
    throw RunError(fmt::format("rank {}: the orderly end of the distributed run failed: {}", g->env.rank,
                               error_text(e)));
  }
  g->group.reset();
  g->store.reset();
  g->tcp.reset();
  delete g;
  g = nullptr;
}

void report_failure(const std::string& message) {
  if (!g) return;
  try {
    // A bounded wait for the store: the monitor may be inside a store call that blocks.
    std::unique_lock<std::mutex> l(g->store_mu, std::defer_lock);
    const auto t0 = Clock::now();
    while (!l.try_lock() && seconds_since(t0) < 2 * g->interval_s + 1) sleep_s(0.01);
    if (l.owns_lock())
      g->store->compareSet(kVerdict, {}, bytes(fmt::format("rank {} failed: {}", g->env.rank, message)));
  } catch (...) {
  }
  stop_monitor(2 * g->interval_s + 1);
  // Rank 0 hosts the store: linger so that the others read the verdict before it goes.
  if (g->hosts_store) sleep_s(1.5 * g->interval_s + 0.2);
}

void Pending::wait() {
  if (!wait_) return;
  auto f = std::move(wait_);
  wait_ = nullptr;
  f();
}

namespace {

// Collectives take contiguous tensors on a device the backend serves (NCCL: CUDA only; Gloo: both), and no
// bool (Gloo has no bool reductions): stage through such a tensor when needed.
struct Staged {
  torch::Tensor user, buf;
  explicit Staged(const torch::Tensor& t) : user(t) {
    torch::Tensor b = t.detach();
    if (b.scalar_type() == torch::kBool) b = b.to(torch::kUInt8);
    if (g->backend == "nccl" && !b.is_cuda()) b = b.to(g->comm);
    buf = b.is_contiguous() ? b : b.contiguous();
  }
  void back() {
    torch::NoGradGuard ng;
    if (buf.data_ptr() != user.data_ptr()) user.detach().copy_(buf);
  }
};

}  // namespace

void broadcast(std::vector<torch::Tensor> tensors, int root) {
  if (!g) return;
  torch::NoGradGuard ng;
  // One flat buffer per (dtype, device): a handful of collectives instead of one per tensor.
  std::map<std::pair<int, std::string>, std::vector<size_t>> groups;
  for (size_t i = 0; i < tensors.size(); ++i)
    if (tensors[i].defined() && tensors[i].numel() > 0)
      groups[{static_cast<int>(tensors[i].scalar_type()), tensors[i].device().str()}].push_back(i);
  for (const auto& [k, idx] : groups) {
    std::vector<torch::Tensor> parts;
    for (size_t i : idx) parts.push_back(tensors[i].detach().reshape(-1));
    torch::Tensor flat = torch::cat(parts);
    Staged st(flat);
    std::vector<torch::Tensor> v{st.buf};
    c10d::BroadcastOptions bo;
    bo.rootRank = root;
    blocking("broadcast", [&] { return g->group->broadcast(v, bo); });
    st.back();
    int64_t off = 0;
    for (size_t i : idx) {
      const int64_t n = tensors[i].numel();
      tensors[i].detach().copy_(flat.narrow(0, off, n).view(tensors[i].sizes()));
      off += n;
    }
  }
}

void all_reduce_sum(torch::Tensor t) {
  if (!g) return;
  Staged st(t);
  std::vector<torch::Tensor> v{st.buf};
  blocking("all-reduce", [&] { return g->group->allreduce(v); });
  st.back();
}

Pending all_reduce_sum_async(torch::Tensor t) {
  if (!g) return {};
  require();
  auto st = std::make_shared<Staged>(t);
  auto v = std::make_shared<std::vector<torch::Tensor>>(std::vector<torch::Tensor>{st->buf});
  const int64_t n = ++g->seq;
  c10::intrusive_ptr<c10d::Work> work;
  try {
    work = g->group->allreduce(*v);
  } catch (const std::exception& e) {
    collective_failed("all-reduce", n, error_text(e));
  }
  return Pending([st, v, work, n]() mutable {
    try {
      work->wait();
    } catch (const std::exception& e) {
      collective_failed("all-reduce", n, error_text(e));
    }
    st->back();
  });
}

std::vector<torch::Tensor> all_gather(const torch::Tensor& t) {
  if (!g) return {t};
  Staged st(t);
  std::vector<std::vector<torch::Tensor>> out(1);
  for (int r = 0; r < g->env.world_size; ++r) out[0].push_back(torch::empty_like(st.buf));
  std::vector<torch::Tensor> in{st.buf};
  blocking("all-gather", [&] { return g->group->allgather(out, in); });
  std::vector<torch::Tensor> res;
  for (auto& x : out[0]) res.push_back(x.to(t.device()).to(t.scalar_type()));
  return res;
}

void barrier() {
  if (!g) return;
  all_reduce_sum(torch::zeros({1}, torch::TensorOptions().dtype(torch::kFloat64).device(g->comm)));
}

void average(std::map<std::string, double>& values) {
  if (!g || values.empty()) return;
  std::vector<double> v;
  for (const auto& [k, x] : values) v.push_back(x);
  torch::Tensor t = torch::tensor(v, torch::kFloat64).to(g->comm);
  all_reduce_sum(t);
  t = t.cpu();
  size_t i = 0;
  for (auto& [k, x] : values) x = t[static_cast<int64_t>(i++)].item<double>() / g->env.world_size;
}

double max_across_ranks(double x) {
  if (!g) return x;
  torch::Tensor t = torch::tensor({x}, torch::kFloat64).to(g->comm);
  std::vector<torch::Tensor> v{t};
  c10d::AllreduceOptions o;
  o.reduceOp = c10d::ReduceOp::MAX;
  blocking("all-reduce (max)", [&] { return g->group->allreduce(v, o); });
  return t.cpu().item<double>();
}

namespace {
const std::string kRngKey = "__torch_rng_state__";
constexpr uint64_t kRankSeedTag = 0x72616e6bULL;  // "rank"
std::string rng_key(int r) { return r == 0 ? kRngKey : fmt::format("{}.rank{}", kRngKey, r); }
}  // namespace

void seed_rank_generator(uint64_t seed) {
  if (rank() > 0) torch::manual_seed(Rng::derive(seed, {kRankSeedTag, static_cast<uint64_t>(rank())}));
}

void add_rng_states(TensorMap& state) {
  torch::Tensor mine = cpu_rng_state();
  if (!g) {
    state[kRngKey] = mine;
    return;
  }
  auto all = all_gather(mine);
  for (int r = 0; r < g->env.world_size; ++r) state[rng_key(r)] = all[static_cast<size_t>(r)];
}

void restore_rng_state(const TensorMap& state, uint64_t seed) {
  auto it = state.find(rng_key(rank()));
  if (it != state.end()) {
    set_cpu_rng_state(it->second.clone());
    return;
  }
  seed_rank_generator(seed);
}

}  // namespace bevt::host::dist

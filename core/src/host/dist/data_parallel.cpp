#include "host/dist/data_parallel.h"

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>

#include "bevt/error.h"
#include "bevt/log.h"

namespace bevt::host::dist {

struct DataParallel::Impl {
  struct Bucket {
    torch::Tensor flat;               // this rank's summed gradients of the bucket's parameters
    torch::Tensor late;               // contributions that arrived after the bucket's all-reduce started
    std::vector<size_t> params;
    std::vector<int64_t> offsets;
    int64_t pending = 0;              // parameters still short of their expected contributions
    bool launched = false, has_late = false;
    Pending work;
  };

  std::vector<torch::Tensor> params;
  std::vector<torch::Tensor> float_buffers;
  std::vector<size_t> bucket_of;
  std::vector<torch::Tensor> views;  // each parameter's slice of its bucket, shaped like the parameter
  std::vector<Bucket> buckets;
  std::vector<int> fired, expected;  // gradient contributions this step / in the last step
  bool learned = false;
  std::atomic<bool> sync{false};  // the current backward is the final micro-step's
  bool overlap = true;
  bool broadcast_buffers = true;
  size_t next = 0;  // buckets start strictly in order on every rank, so their collectives pair up
  std::mutex mu;
  std::vector<unsigned> hooks;
  double comm_s = 0;

  torch::Tensor late_view(size_t i) {
    Bucket& b = buckets[bucket_of[i]];
    size_t k = 0;
    while (b.params[k] != i) ++k;
    return b.late.narrow(0, b.offsets[k], params[i].numel()).view(params[i].sizes());
  }

  void launch(size_t bi) {
    Bucket& b = buckets[bi];
    for (size_t i : b.params) {
      if (fired[i] > 0) continue;
      // No contribution (yet) in this backward: the gradient accumulated by earlier micro-steps, or zeros.
      const torch::Tensor& prev = params[i].grad();
      if (prev.defined())
        views[i].copy_(prev);
      else
        views[i].zero_();
    }
    b.work = all_reduce_sum_async(b.flat);
    b.launched = true;
  }

  void launch_ready() {
    while (next < buckets.size() && buckets[next].pending <= 0) launch(next++);
  }

  void on_grad(size_t i, const torch::Tensor& grad) {
    // LibTorch 2.x also calls tensor hooks with an undefined gradient (a path that contributed nothing).
    if (!sync || !grad.defined()) return;
    std::lock_guard<std::mutex> l(mu);
    torch::NoGradGuard ng;
    torch::Tensor gr = grad.is_sparse() ? grad.to_dense() : grad;
    Bucket& b = buckets[bucket_of[i]];
    if (b.launched) {
      if (!b.late.defined()) b.late = torch::zeros_like(b.flat);
      late_view(i).add_(gr);
      b.has_late = true;
    } else if (fired[i] == 0) {
      // Autograd adds this contribution to .grad after the hook: the bucket takes both.
      const torch::Tensor& prev = params[i].grad();
      if (prev.defined()) {
        views[i].copy_(prev);
        views[i].add_(gr);
      } else {
        views[i].copy_(gr);
      }
    } else {
      views[i].add_(gr);
    }
    ++fired[i];
    if (overlap && learned && !b.launched && fired[i] == expected[i]) {
      --b.pending;
      launch_ready();
    }
  }

  void reset_step() {
    for (auto& b : buckets) {
      b.launched = b.has_late = false;
      b.pending = 0;
      for (size_t i : b.params)
        if (expected[i] > 0) ++b.pending;
    }
    std::fill(fired.begin(), fired.end(), 0);
    next = 0;
    sync = false;
  }
};

DataParallel::DataParallel(std::vector<torch::Tensor> params, std::vector<torch::Tensor> buffers,
                           const Settings& s)
    : impl_(std::make_shared<Impl>()) {
  if (!active()) return;
  auto& m = *impl_;
  m.overlap = s.overlap;
  m.broadcast_buffers = s.broadcast_buffers;
  // Every rank starts from rank 0's parameters and buffers.
  std::vector<torch::Tensor> all = params;
  all.insert(all.end(), buffers.begin(), buffers.end());
  broadcast(all, 0);
  for (const auto& b : buffers)
    if (b.defined() && b.is_floating_point()) m.float_buffers.push_back(b);

  m.params = std::move(params);
  const size_t n = m.params.size();
  m.bucket_of.assign(n, 0);
  m.views.resize(n);
  m.fired.assign(n, 0);
  m.expected.assign(n, 0);
  // Buckets over the parameters in reverse order, split by dtype and device and at bucket_mb.
  const auto cap = static_cast<int64_t>(s.bucket_mb * 1024 * 1024);
  std::vector<std::vector<size_t>> groups;
  int64_t bytes = 0;
  for (size_t k = n; k-- > 0;) {
    const torch::Tensor& p = m.params[k];
    const int64_t pb = p.numel() * static_cast<int64_t>(p.element_size());
    bool fresh = groups.empty() || bytes + pb > cap;
    if (!fresh) {
      const torch::Tensor& q = m.params[groups.back().front()];
      fresh = q.scalar_type() != p.scalar_type() || q.device() != p.device();
    }
    if (fresh) {
      groups.emplace_back();
      bytes = 0;
    }
    groups.back().push_back(k);
    bytes += pb;
  }
  for (const auto& grp : groups) {
    Impl::Bucket b;
    int64_t total = 0;
    for (size_t i : grp) {
      b.params.push_back(i);
      b.offsets.push_back(total);
      total += m.params[i].numel();
    }
    b.flat = torch::zeros({total}, m.params[grp.front()].options().requires_grad(false));
    for (size_t k = 0; k < grp.size(); ++k) {
      size_t i = grp[k];
      m.bucket_of[i] = m.buckets.size();
      m.views[i] = b.flat.narrow(0, b.offsets[k], m.params[i].numel()).view(m.params[i].sizes());
    }
    m.buckets.push_back(std::move(b));
  }
  // The hooks hold the state weakly: a hook that outlives this object does nothing.
  std::weak_ptr<Impl> weak = impl_;
  for (size_t i = 0; i < n; ++i) {
    m.hooks.push_back(m.params[i].register_hook([weak, i](const torch::Tensor& grad) {
      if (auto p = weak.lock()) p->on_grad(i, grad);
    }));
  }
  m.reset_step();
  log_info("data parallel over {} ranks: {} parameter tensors in {} bucket(s) of <= {} MiB, {} floating-point "
           "buffers follow rank 0",
           world_size(), n, m.buckets.size(), s.bucket_mb, m.broadcast_buffers ? m.float_buffers.size() : 0);
}

DataParallel::~DataParallel() {
  if (!impl_) return;
  for (size_t i = 0; i < impl_->hooks.size(); ++i) {
    try {
      impl_->params[i].remove_hook(impl_->hooks[i]);
    } catch (...) {
    }
  }
}

bool DataParallel::enabled() const { return active() && !impl_->params.empty(); }

int64_t DataParallel::buckets() const { return static_cast<int64_t>(impl_->buckets.size()); }

void DataParallel::begin_backward(bool final_micro_step) {
  if (!enabled()) return;
  std::lock_guard<std::mutex> l(impl_->mu);
  impl_->sync = final_micro_step;
}

void DataParallel::reduce_gradients() {
  if (!enabled()) return;
  auto& m = *impl_;
  const auto t0 = std::chrono::steady_clock::now();
  torch::NoGradGuard ng;
  std::lock_guard<std::mutex> l(m.mu);
  if (!m.sync) throw RunError("internal: reduce_gradients without a final micro-step");
  for (; m.next < m.buckets.size(); ++m.next) m.launch(m.next);
  // Which parameters any rank used (a parameter no rank used keeps no gradient), and which buckets received
  // contributions after they left: one small all-reduce, issued after the buckets on every rank.
  const size_t np = m.params.size(), nb = m.buckets.size();
  std::vector<double> flags(np + nb, 0.0);
  for (size_t i = 0; i < np; ++i) flags[i] = m.fired[i] > 0 || m.params[i].grad().defined() ? 1.0 : 0.0;
  for (size_t b = 0; b < nb; ++b) flags[np + b] = m.buckets[b].has_late ? 1.0 : 0.0;
  torch::Tensor meta = torch::tensor(flags, torch::kFloat64);
  all_reduce_sum(meta);
  auto used = meta.accessor<double, 1>();
  std::vector<Pending> late(nb);
  for (size_t b = 0; b < nb; ++b) {
    if (used[static_cast<int64_t>(np + b)] <= 0) continue;
    if (!m.buckets[b].late.defined()) m.buckets[b].late = torch::zeros_like(m.buckets[b].flat);
    late[b] = all_reduce_sum_async(m.buckets[b].late);
  }
  const double inv = 1.0 / static_cast<double>(world_size());
  for (size_t b = 0; b < nb; ++b) {
    auto& bk = m.buckets[b];
    bk.work.wait();
    if (late[b].valid()) {
      late[b].wait();
      bk.flat.add_(bk.late);
      bk.late.zero_();
    }
    bk.flat.mul_(inv);
  }
  for (size_t i = 0; i < np; ++i) {
    if (used[static_cast<int64_t>(i)] <= 0) continue;
    torch::Tensor& p = m.params[i];
    if (p.grad().defined())
      p.mutable_grad().copy_(m.views[i]);
    else
      p.mutable_grad() = m.views[i].clone();
  }
  if (!m.learned || m.fired != m.expected) {
    m.expected = m.fired;
    m.learned = true;
  }
  m.reset_step();
  m.comm_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void DataParallel::sync_buffers() {
  if (!enabled() || !impl_->broadcast_buffers || impl_->float_buffers.empty()) return;
  const auto t0 = std::chrono::steady_clock::now();
  broadcast(impl_->float_buffers, 0);
  impl_->comm_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double DataParallel::take_comm_seconds() {
  double s = impl_->comm_s;
  impl_->comm_s = 0;
  return s;
}

}  // namespace bevt::host::dist

// One run of a bench's case under torch's Kineto profiler, saved as a chrome trace that bench/profile_summary.py
// reads: host ops, and on CUDA the kernels with their device times.
#pragma once

#include <torch/csrc/autograd/profiler_kineto.h>

#include <set>
#include <string>
#include <vector>

namespace bevt::bench {

template <class Fn>
void profile_once(const std::string& path, const torch::Device& device, Fn&& fn) {
  namespace prof = torch::profiler::impl;
  std::set<prof::ActivityType> acts{prof::ActivityType::CPU};
  if (device.is_cuda()) acts.insert(prof::ActivityType::CUDA);
  const prof::ProfilerConfig pc(prof::ProfilerState::KINETO);
  torch::autograd::profiler::prepareProfiler(pc, acts);
  torch::autograd::profiler::enableProfiler(pc, acts);
  fn();
  torch::autograd::profiler::disableProfiler()->save(path);
}

// Seconds one run of fn spends inside the BLAS's matrix products (aten::mm, bmm, addmm, baddbmm: leaf ops that
// call no other of these), from one profiled run. With the case's matmul FLOPs this is the rate the BLAS reaches on
// the model's own shapes, and no implementation that calls the same BLAS on them gets below it.
template <class Fn>
double matmul_seconds(Fn&& fn) {
  namespace prof = torch::profiler::impl;
  const std::set<prof::ActivityType> acts{prof::ActivityType::CPU};
  const prof::ProfilerConfig pc(prof::ProfilerState::KINETO);
  torch::autograd::profiler::prepareProfiler(pc, acts);
  torch::autograd::profiler::enableProfiler(pc, acts);
  fn();
  const auto result = torch::autograd::profiler::disableProfiler();
  static const std::set<std::string> mm{"aten::mm", "aten::bmm", "aten::addmm", "aten::baddbmm"};
  double ns = 0;
  for (const auto& e : result->events())
    if (mm.count(e.name())) ns += static_cast<double>(e.durationNs());
  return ns * 1e-9;
}

}  // namespace bevt::bench

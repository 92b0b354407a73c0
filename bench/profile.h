// One run of a bench's case under torch's Kineto profiler: saved as a chrome trace that bench/profile_summary.py
// reads (host ops, and on CUDA the kernels with their device times), or summed over the matrix products.
#pragma once

#include <torch/csrc/autograd/profiler_kineto.h>

#include <memory>
#include <set>
#include <string>

namespace bevt::bench {

// Runs fn once under the Kineto profiler (CPU ops; on CUDA also the kernels) and returns what it recorded.
template <class Fn>
std::unique_ptr<torch::autograd::profiler::ProfilerResult> profiled(const torch::Device& device, Fn&& fn) {
  namespace prof = torch::profiler::impl;
  std::set<prof::ActivityType> acts{prof::ActivityType::CPU};
  if (device.is_cuda()) acts.insert(prof::ActivityType::CUDA);
  const prof::ProfilerConfig pc(prof::ProfilerState::KINETO);
  torch::autograd::profiler::prepareProfiler(pc, acts);
  torch::autograd::profiler::enableProfiler(pc, acts);
  fn();
  return torch::autograd::profiler::disableProfiler();
}

template <class Fn>
void profile_once(const std::string& path, const torch::Device& device, Fn&& fn) {
  profiled(device, fn)->save(path);
}

// Seconds one run of fn spends inside the BLAS's matrix products (aten::mm, bmm, addmm, baddbmm: leaf ops that
// call no other of these), from one profiled run on the CPU. With the case's matmul FLOPs this is the rate the
// BLAS reaches on the model's own shapes, and no implementation that calls the same BLAS on them gets below it.
template <class Fn>
double matmul_seconds(Fn&& fn) {
  static const std::set<std::string> mm{"aten::mm", "aten::bmm", "aten::addmm", "aten::baddbmm"};
  const auto result = profiled(torch::kCPU, fn);  // held: events() refers into it
  double ns = 0;
  for (const auto& e : result->events())
    if (mm.count(e.name())) ns += static_cast<double>(e.durationNs());
  return ns * 1e-9;
}

}  // namespace bevt::bench

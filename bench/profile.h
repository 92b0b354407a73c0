// One run of a bench's case under torch's Kineto profiler, saved as a chrome trace that bench/profile_summary.py
// reads: host ops, and on CUDA the kernels with their device times.
#pragma once

#include <torch/csrc/autograd/profiler_kineto.h>

#include <set>
#include <string>

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

}  // namespace bevt::bench

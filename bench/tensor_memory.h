// Peak bytes of CPU tensors alive within a scope, as torch's own CPU allocator reports them (the hook its
// memory profiler uses). Unlike RSS this counts tensors only — not the malloc arena, oneDNN's scratch buffers
// or MKL's workspaces — so the saved activations of a training step, which is what gradient checkpointing
// trades for recompute, can be compared between configurations. Tensors allocated before the scope and freed
// in it are not seen (the allocator only reports frees of what it reported allocating).
#pragma once

#include <algorithm>
#include <atomic>
#include <memory>

#include <c10/core/Allocator.h>
#include <c10/util/ThreadLocalDebugInfo.h>

namespace bevt::bench {

class TensorMemoryPeak {
 public:
  TensorMemoryPeak() : info_(std::make_shared<Info>()), guard_(c10::DebugInfoKind::PROFILER_STATE, info_) {}

  double peak_mb() const { return static_cast<double>(info_->peak.load()) / (1024.0 * 1024.0); }
  // Start a new peak from what is alive now (e.g. between the steps of a loop).
  void reset_peak() { info_->peak.store(info_->current.load()); }
  double current_mb() const { return static_cast<double>(info_->current.load()) / (1024.0 * 1024.0); }

 private:
  struct Info : c10::MemoryReportingInfoBase {
    std::atomic<int64_t> current{0}, peak{0};
    void reportMemoryUsage(void*, int64_t bytes, size_t, size_t, c10::Device device) override {
      if (device.type() != c10::DeviceType::CPU) return;
      const int64_t now = current.fetch_add(bytes) + bytes;
      int64_t p = peak.load();
      while (now > p && !peak.compare_exchange_weak(p, now)) {
      }
    }
    bool memoryProfilingEnabled() const override { return true; }
  };
  std::shared_ptr<Info> info_;
  c10::DebugInfoGuard guard_;
};

}  // namespace bevt::bench

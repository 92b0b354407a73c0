// Data parallelism for one model over the world of bevt::host::dist: parameters and buffers start as rank 0's,
// gradients are summed over ranks in buckets and averaged, and floating-point buffers follow rank 0.
//
// Buckets hold the gradients of neighbouring parameters in reverse order (roughly the order backward produces
// them). During the final backward of an optimiser step, a bucket's all-reduce starts as soon as each of its
// parameters has received as many gradient contributions as it did in the previous step (a parameter shared by
// the image and the video path, or rerun by gradient checkpointing, receives several), so communication
// overlaps the rest of backward. A contribution that arrives after its bucket left is all-reduced separately
// and added, so the result never depends on that guess. Parameters that receive no gradient on a rank (the
// other stream's decoder) contribute zeros; a parameter no rank used keeps an undefined gradient, as in one
// process. Non-final micro-steps of gradient accumulation communicate nothing.
#pragma once

#include <memory>
#include <vector>

#include "bevt/torch.h"
#include "host/dist/dist.h"

namespace bevt::host::dist {

class DataParallel {
 public:
  // params: every trainable leaf tensor the optimiser (or a tied alias) reads; buffers: the model's other
  // state tensors. Both are broadcast from rank 0 here. In one process nothing is registered.
  DataParallel(std::vector<torch::Tensor> params, std::vector<torch::Tensor> buffers, const Settings& settings);
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  bool enabled() const;
  // Before each backward: true on the final micro-step of an accumulation (the gradients are then reduced).
  void begin_backward(bool final_micro_step);
  // After the final backward: every gradient becomes the mean over ranks.
  void reduce_gradients();
  // After the optimiser step: floating-point buffers take rank 0's values (dist.broadcast_buffers).
  void sync_buffers();
  // Seconds this rank spent in reduce_gradients (waiting for all-reduces) since the last call.
  double take_comm_seconds();
  int64_t buckets() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace bevt::host::dist

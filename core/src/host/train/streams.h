// A training stream: a loader over one dataset that knows its epoch and batch position (what checkpoints
// record) and moves to the next epoch by itself (the image stream cycles under the video stream).
#pragma once

#include <memory>
#include <string>

#include "bevt/dataset.h"
#include "host/data/loader.h"
#include "host/run_context.h"

namespace bevt::host::train {

struct StreamLoader {
  std::string name;
  std::unique_ptr<Loader> loader;
  int64_t epoch = 0;
  int64_t batch = 0;  // next batch index within the epoch
  Batch next();
};

// A stream over `dataset` with the experiment's [loader] settings, sharded over the ranks. A shuffled
// (training) stream with fewer samples than one batch per rank is a UserError.
std::unique_ptr<StreamLoader> make_stream(const RunContext& ctx, const std::string& name,
                                          std::shared_ptr<Dataset> dataset, int64_t batch_size, bool shuffle,
                                          uint64_t stream_id);

}  // namespace bevt::host::train

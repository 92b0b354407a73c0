// The data loader: worker threads decode and transform samples into a bounded prefetch queue; batches are
// collated in index order, so a run never depends on thread count or timing. Per-sample random state comes
// from Rng::derive(seed, {stream_id, epoch, index}); epochs are shuffled from (seed, epoch); each rank sees
// its own shard, and every sample is seen exactly once per epoch across ranks.
//
// A sample that fails to decode is replaced deterministically (the next index of the shard that decodes),
// counted and logged with its path; past max_bad_fraction the run stops with RunError listing the bad files.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bevt/dataset.h"

namespace bevt::host {

struct LoaderOptions {
  int64_t batch_size = 1;
  int64_t workers = 2;        // decoding threads; 0 = decode on the calling thread
  int64_t prefetch = 4;       // batches decoded ahead
  bool shuffle = true;
  bool drop_last = true;
  uint64_t seed = 0;
  uint64_t stream_id = 0;     // separates the random streams of several loaders of one run
  int64_t rank = 0;
  int64_t world_size = 1;
  double max_bad_fraction = 0.01;
  bool pin_memory = false;    // CUDA runs
};

struct Batch {
  torch::Tensor input;           // [B,3,T,H,W] or [B,3,H,W]
  torch::Tensor tokenizer_view;  // [B,T,3,h,w] or [B,3,h,w], undefined when the dataset gives none
  torch::Tensor label;           // [B] int64
  std::vector<int64_t> indices;  // dataset indices of the samples
  std::vector<std::string> ids;
  double data_wait_s = 0;        // time the consumer waited for this batch
};

class Loader {
 public:
  Loader(std::shared_ptr<Dataset> dataset, LoaderOptions options);
  ~Loader();  // stops and joins the workers
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // Starts epoch `epoch` at batch `start_batch` (resume); batches of an epoch are a pure function of
  // (seed, epoch, rank, world_size).
  void start_epoch(int64_t epoch, int64_t start_batch = 0);
  // Next batch of the current epoch; false at its end.
  bool next(Batch& out);
  int64_t batches_per_epoch() const;
  int64_t bad_samples() const;
  std::vector<std::string> bad_files() const;  // "path: reason (annotation line)"

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Every bad file any loader of this process met in `dataset`, in the order met, each once. A run's results.json
// lists them per stream: write_results sees the composition's datasets, not the runners' loaders.
std::vector<std::string> recorded_bad_files(const Dataset* dataset);

}  // namespace bevt::host

#include "streams.h"

#include <fmt/format.h>

#include "bevt/error.h"
#include "host/dist/dist.h"

namespace bevt::host::train {

Batch StreamLoader::next() {
  Batch b;
  while (true) {
    if (loader->next(b)) {
      ++batch;
      return b;
    }
    ++epoch;
    batch = 0;
    loader->start_epoch(epoch, 0);
  }
}

std::unique_ptr<StreamLoader> make_stream(const RunContext& ctx, const std::string& name,
                                          std::shared_ptr<Dataset> dataset, int64_t batch_size, bool shuffle,
                                          uint64_t stream_id) {
  const LoaderSettings& ls = ctx.exp.loader;
  LoaderOptions o;
  o.batch_size = batch_size;
  o.workers = ls.workers;
  o.prefetch = ls.prefetch;
  o.max_bad_fraction = ls.max_bad_fraction;
  o.shuffle = shuffle;
  o.drop_last = shuffle;
  o.seed = ctx.run.seed;
  o.stream_id = stream_id;
  o.rank = dist::rank();  // each rank reads its own shard
  o.world_size = dist::world_size();
  o.pin_memory = ctx.run.device != "cpu";
  if (static_cast<int64_t>(dataset->size()) / o.world_size < batch_size && shuffle)
    throw UserError(fmt::format("{}: the {} dataset has {} samples, fewer than one batch of {} (lower "
                                "loader.batch_size or add data)",
                                ctx.exp.where("loader"), name, dataset->size(), batch_size));
  auto s = std::make_unique<StreamLoader>();
  s->name = name;
  s->loader = std::make_unique<Loader>(std::move(dataset), o);
  return s;
}

}  // namespace bevt::host::train

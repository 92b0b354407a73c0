// run.mode = "pretrain": BEVT's joint masked image + masked video modelling with one shared encoder
// (streams = ["image"] is BEVT-I, ["video"] BEVT-V, both BEVT). Each iteration runs one batch per stream and
// one backward over the weighted sum of the stream losses (cross-entropy over masked positions, targets
// from the frozen tokenizer on the tokenizer view of the same crop).
#include <fmt/format.h>

#include "bevt/error.h"
#include "bevt/log.h"
#include "bevt/masker.h"
#include "bevt/strings.h"
#include "bevt/tokenizer.h"
#include "loop.h"
#include "pretrain_step.h"
#include "init_weights.h"
#include "runners.h"
#include "sample_seed.h"

namespace bevt::host::train {

namespace {

struct Stream {
  std::string name;  // "image" | "video"
  double weight = 1;
  std::shared_ptr<Masker> masker;
  std::shared_ptr<Head> head;
  std::unique_ptr<StreamLoader> data;
};

// Masks for a batch: one per sample, from (seed, stream, epoch, index), on `grid` (t, h, w).
torch::Tensor sample_masks(const Stream& s, const Batch& b, int64_t epoch, uint64_t seed,
                           const std::array<int64_t, 3>& grid) {
  std::vector<torch::Tensor> masks;
  for (int64_t idx : b.indices) {
    Rng rng(sample_seed(seed, "mask/" + s.name, epoch, idx));
    masks.push_back(s.masker->sample(grid, rng));
  }
  return torch::stack(masks);
}

}  // namespace

int run_pretrain(const RunContext& ctx) {
  const PretrainSettings& pc = ctx.exp.pretrain;
  const std::vector<std::string>& stream_names = pc.streams;
  TrainModel model = assemble_model(ctx.composition, pc.tie_lm_head);
  initialise_model(ctx, model, false);
  auto tokenizer = ctx.composition.get<Tokenizer>("tokenizer");
  if (!tokenizer) throw UserError("pretraining needs a [tokenizer] table (the targets of masked modelling)");
  const bool untrained_tokenizer = !tokenizer->has_trained_weights();
  if (untrained_tokenizer && !pc.allow_untrained_tokenizer)
    log_warn("{}: the tokenizer has no trained weights (weights = \"\"): its targets are near-trivial, so masked "
             "modelling learns little; give it trained weights, or set pretrain.allow_untrained_tokenizer = true",
             ctx.exp.where("tokenizer"));
  tokenizer->eval();
  for (auto& p : tokenizer->parameters()) p.set_requires_grad(false);

  std::vector<Stream> streams;
  uint64_t stream_id = 0;
  for (const auto& name : stream_names) {
    Stream s;
    s.name = name;
    s.weight = pc.weight(name);
    s.masker = ctx.composition.get<Masker>("masker." + name);
    if (!s.masker) throw UserError(fmt::format("the {} stream needs a [masker.{}] table", name, name));
    auto it = model.heads.find(name);
    if (it == model.heads.end())
      throw UserError(fmt::format("the {} stream needs a [model.heads.{}] decoder (mim_{})", name, name, name));
    s.head = it->second;
    auto ds = ctx.composition.get<Dataset>("data." + name);
    if (!ds) throw UserError(fmt::format("the {} stream needs a [data.{}] dataset", name, name));
    if (ds->is_video() != (name == "video"))
      throw UserError(fmt::format("[data.{}] gives {} but the {} stream needs {}", name,
                                  ds->is_video() ? "videos" : "images", name, name == "video" ? "videos" : "images"));
    if (name == "image" && !model.backbone->spec().has_image_path)
      throw UserError("the image stream needs a backbone with an image path (spec().has_image_path)");
    const int64_t bs = name == "video" ? ctx.exp.loader.batch_size : ctx.exp.loader.image_batch_size;
    s.data = make_stream(ctx, name, ds, bs, true, ++stream_id);
    streams.push_back(std::move(s));
  }
  // The epoch is set by the video stream when there is one (the image stream cycles), as in BEVT.
  StreamLoader* main = streams.back().data.get();
  for (auto& s : streams)
    if (s.name == "video") main = s.data.get();
  const int64_t steps_per_epoch = std::max<int64_t>(1, main->loader->batches_per_epoch() / ctx.exp.optim.accum_steps);

  const auto device = torch::Device(ctx.run.device);
  model.to(device);  // re-ties cls_head.lm_head after the move
  tokenizer->to(device);

  LoopSpec loop;
  loop.label = "pretrain";
  loop.steps_per_epoch = steps_per_epoch;
  for (auto& s : streams) loop.streams.push_back(s.data.get());
  loop.step = [&](int64_t) {
    // Every stream's batch first, then one pretrain_iteration over all of them (the function bevt-forward
    // checks against the official step).
    double data_time = 0;
    std::vector<Batch> batches;
    std::vector<int64_t> epochs;
    for (auto& s : streams) {
      epochs.push_back(s.data->epoch);
      batches.push_back(s.data->next());
      const Batch& b = batches.back();
      data_time += b.data_wait_s;
      if (!b.tokenizer_view.defined())
        throw UserError(fmt::format("[data.{}] gives no tokenizer view: set its tokenizer_size", s.name));
      // The tokenizer's [0, 1] range is checked here, on the host, so the step itself never reads the device.
      check_unit_range(b.tokenizer_view, fmt::format("[data.{}]: the tokenizer view", s.name));
    }
    std::vector<StreamBatch> inputs;
    for (size_t i = 0; i < streams.size(); ++i) {
      const Stream& s = streams[i];
      const Batch& b = batches[i];
      const int64_t epoch = epochs[i];
      StreamBatch in;
      in.name = s.name;
      in.weight = s.weight;
      in.head = s.head.get();
      in.input = to_device(b.input, device);
      in.view = to_device(b.tokenizer_view, device);
      in.mask_for = [&s, &b, epoch, &ctx, device](const std::array<int64_t, 3>& grid) {
        return to_device(sample_masks(s, b, epoch, ctx.run.seed, grid), device);
      };
      inputs.push_back(std::move(in));
    }
    auto out = pretrain_iteration(*model.backbone, *tokenizer, inputs);
    out["data_time"] = torch::tensor(data_time);
    return out;
  };
  LoopResult r = run_loop(ctx, model, loop);
  nlohmann::json results{{"mode", "pretrain"}, {"steps", r.steps}, {"streams", stream_names},
                         {"tokenizer_untrained", untrained_tokenizer}};
  for (const auto& [k, v] : r.last) results["final_" + k] = v;
  write_results(ctx, results);
  log_info("pretraining done: {} steps; {}", r.steps, results.dump());
  return 0;
}

}  // namespace bevt::host::train

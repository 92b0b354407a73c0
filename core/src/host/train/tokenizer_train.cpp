// run.mode = "tokenizer": trains a trainable tokenizer (vq, peco) on the tokenizer views of [data.train]
// (every frame of a clip counts as an image) and writes work_dir/tokenizer.safetensors, which the frozen
// tokenizer then loads through its `weights` key.
#include <fmt/format.h>

#include <filesystem>

#include "bevt/error.h"
#include "bevt/log.h"
#include "bevt/safetensors.h"
#include "bevt/tokenizer.h"
#include "host/sections.h"
#include "loop.h"
#include "runners_internal.h"

namespace fs = std::filesystem;

namespace bevt::host::train {

namespace {

int run_tokenizer(const RunContext& ctx) {
  auto tok = component_as<Tokenizer>(ctx.composition, "tokenizer");
  if (!tok) throw UserError("run.mode = 'tokenizer' needs a [tokenizer] table with a trainable tokenizer (vq, peco)");
  if (!tok->trainable())
    throw UserError(fmt::format("{}: tokenizer '{}' is frozen and cannot be trained (use vq or peco)",
                                ctx.root.where("tokenizer"), ctx.root.get_table("tokenizer").get_string("plugin")));
  auto ds = component_as<Dataset>(ctx.composition, "data.train");
  if (!ds) throw UserError("run.mode = 'tokenizer' needs a [data.train] dataset (its tokenizer views are the images)");
  const torch::Device device(ctx.run.device);
  tok->to(device);
  TrainModel model;
  model.standalone = tok;
  auto train = make_stream(ctx, "train", ds, host_section(ctx.root, "loader").get_int("batch_size"), true, 1);
  int64_t accum = host_section(ctx.root, "optim").get_int("accum_steps");
  LoopSpec loop;
  loop.label = "tokenizer";
  loop.steps_per_epoch = std::max<int64_t>(1, train->loader->batches_per_epoch() / accum);
  loop.streams = {train.get()};
  loop.step = [&](int64_t) {
    Batch b = train->next();
    if (!b.tokenizer_view.defined())
      throw UserError("[data.train] gives no tokenizer view: set its tokenizer_size to the tokenizer's input size");
    torch::Tensor images = b.tokenizer_view;
    if (images.dim() == 5) images = images.flatten(0, 1);  // clips: every frame is an image
    TokenizerLoss l = tok->training_loss(images.to(device));
    std::map<std::string, torch::Tensor> out{{"loss", l.total}, {"data_time", torch::tensor(b.data_wait_s)}};
    for (const auto& [k, v] : l.terms) out[k] = v.detach();
    return out;
  };
  LoopResult r = run_loop(ctx, model, loop);
  tok->eval();
  std::string out = (fs::path(ctx.run.work_dir) / "tokenizer.safetensors").string();
  save_safetensors(out, tok->export_weights(), {{"format", "pt"}, {"config_hash", ctx.config_hash}});
  nlohmann::json results{{"mode", "tokenizer"}, {"steps", r.steps}, {"weights", out}};
  for (const auto& [k, v] : r.last) results["final_" + k] = v;
  write_results(ctx, results);
  log_info("tokenizer written to {}", out);
  return 0;
}

}  // namespace

void register_tokenizer_runner() { register_runner("tokenizer", run_tokenizer); }

}  // namespace bevt::host::train

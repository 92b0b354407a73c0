#include "sections.h"

#include <fmt/format.h>
#include <torch/cuda.h>

#include <filesystem>

#include "bevt/error.h"
#include "bevt/strings.h"
#include "host/dist/dist.h"
#include "host/train/amp.h"

namespace bevt::host {

namespace {
const std::vector<std::string> kModes = {"pretrain", "finetune", "test", "probe", "tokenizer"};
}

const std::vector<std::pair<std::string, std::vector<KeySpec>>>& host_sections() {
  static const std::vector<std::pair<std::string, std::vector<KeySpec>>> sections = {
      {"run",
       {
           key("mode", "pretrain", "what to run: pretrain | finetune | test | probe | tokenizer"),
           key("work_dir", "", "output folder (default work_dirs/<experiment file name>)"),
           key("seed", 0, "experiment seed: every random choice derives from it"),
           key("device", "auto", "auto (CUDA when present) | cpu | cuda | cuda:N"),
           key("max_steps", 0, "optimiser steps to run; 0 = use epochs"),
           key("epochs", 1, "passes over the training data when max_steps is 0"),
           key("log_every", 10, "steps between log lines and metrics.jsonl records"),
           key("ckpt_every", 0, "steps between checkpoints; 0 = only at the end"),
           key("keep_last", 3, "checkpoints kept besides the best"),
           key("threads", 0, "intra-op CPU threads; 0 = OMP_NUM_THREADS when set, else every core the process may use"),
           key("precision", "fp32", "fp32 | bf16 (autocast, CPU or CUDA) | fp16 (autocast with dynamic loss scaling, CUDA)"),
       }},
      {"optim",
       {
           key("lr", 5e-4, "peak learning rate (AdamW)"),
           key("min_lr", 0.0, "learning rate at the end of the cosine schedule"),
           key("weight_decay", 0.05, "decoupled weight decay"),
           key("betas", std::vector<double>{0.9, 0.999}, "AdamW betas"),
           key("eps", 1e-8, "AdamW epsilon"),
           key("clip_grad", 3.0, "max global L2 norm of the gradients; 0 = no clipping"),
           key("warmup_steps", 0, "linear warmup steps (optimiser steps)"),
           key("warmup_epochs", 0.0, "linear warmup in epochs (converted to steps; overrides warmup_steps when > 0)"),
           key("warmup_ratio", 0.1, "warmup starts at warmup_ratio x lr (mmcv)"),
           key("accum_steps", 1, "iterations accumulated per optimiser step"),
           table_key("custom_keys",
                     "mmcv paramwise custom_keys: {\"<substring>\" = {lr_mult = x, decay_mult = y}, ...}; the longest "
                     "key contained in a parameter name wins"),
           key("layer_decay", 1.0, "layer-wise lr decay of backbone parameters (BEVT K400: 0.9); 1 = off"),
           key("by_epoch", false, "cosine schedule stepped per epoch (mmcv by_epoch, BEVT fine-tunes) instead of per iteration"),
           key("ema", 0.0, "EMA momentum of the weights (mmcv EMAHook: 2e-4 for SSv2); 0 = off"),
           key("ema_warmup", 100, "EMAHook warm_up: the momentum ramps as (1 + step) / (warm_up + step)"),
       }},
      {"loader",
       {
           key("batch_size", 8, "clips (or images) per iteration of the main stream, per process"),
           key("image_batch_size", 32, "images per iteration of the image stream (pretrain)"),
           key("eval_batch_size", 8, "samples per evaluation batch"),
           key("workers", 2, "decoding threads per loader"),
           key("prefetch", 4, "batches decoded ahead"),
           key("max_bad_fraction", 0.01, "fraction of undecodable samples tolerated before the run stops"),
       }},
      {"pretrain",
       {
           key("streams", std::vector<std::string>{"image", "video"},
               "image = masked image modelling (BEVT-I), video = masked video modelling (BEVT-V), both = BEVT"),
           key("image_weight", 1.0, "weight of the image-stream loss"),
           key("video_weight", 1.0, "weight of the video-stream loss"),
           key("tie_lm_head", true, "one vocabulary classifier (cls_head.lm_head) shared by both decoders"),
       }},
      {"finetune",
       {
           key("label_smoothing", 0.0, "label smoothing of the cross-entropy"),
           key("eval_every", 1, "epochs between validations; 0 = only at the end"),
       }},
      {"init",
       {
           key("checkpoint", "", "weights to start from: a .safetensors file, a checkpoint folder or a work_dir"),
       }},
      {"dist", dist::settings_keys()},  // distributed training (docs/distributed.md)
  };
  return sections;
}

std::string resolve_device(const std::string& requested, const std::string& where) {
  if (requested == "cpu") return "cpu";
  if (requested == "auto") return torch::cuda::is_available() ? "cuda:0" : "cpu";
  if (requested.rfind("cuda", 0) == 0) {
    int index = 0;
    if (requested.size() > 4) {
      if (requested[4] != ':' || requested.size() == 5)
        throw UserError(fmt::format("{}: run.device '{}' is not auto, cpu, cuda or cuda:N", where, requested));
      try {
        index = std::stoi(requested.substr(5));
      } catch (const std::exception&) {
        throw UserError(fmt::format("{}: run.device '{}' is not auto, cpu, cuda or cuda:N", where, requested));
      }
    }
    if (!torch::cuda::is_available())
      throw UserError(fmt::format("{}: run.device = '{}' but this build or machine has no CUDA (use auto or cpu)",
                                  where, requested));
    const int64_t visible = static_cast<int64_t>(torch::cuda::device_count());
    if (index < 0 || index >= visible)
      throw UserError(fmt::format("{}: run.device = '{}' but only {} GPU(s) are visible", where, requested, visible));
    return fmt::format("cuda:{}", index);
  }
  throw UserError(fmt::format("{}: run.device '{}' is not auto, cpu, cuda or cuda:N", where, requested));
}

Config host_section(Config& root, const std::string& name) {
  for (const auto& [n, keys] : host_sections()) {
    if (n != name) continue;
    if (!root.has(name)) root.set_toml(name, "{}", "<default>");
    Config c = root.get_table(name);
    c.validate(keys, {});
    return c;
  }
  throw UserError(fmt::format("internal: no host section '{}'", name));
}

RunSettings resolve_run(Config& root, const std::string& experiment_path) {
  // Every host section present is checked up front, so a typo fails before any work starts.
  for (const auto& [n, keys] : host_sections())
    if (n != "run" && root.has(n)) host_section(root, n);
  if (!root.has("run")) root.set_toml("run", "{}", "<default>");
  Config run = root.get_table("run");
  run.validate(host_sections()[0].second, {});
  RunSettings s;
  s.mode = run.get_string("mode");
  if (std::find(kModes.begin(), kModes.end(), s.mode) == kModes.end())
    throw UserError(fmt::format("{}: run.mode '{}' is not one of {}{}", run.where("mode"), s.mode, join(kModes),
                                did_you_mean(s.mode, kModes)));
  s.work_dir = run.get_string("work_dir");
  if (s.work_dir.empty()) {
    s.work_dir = (std::filesystem::path("work_dirs") / std::filesystem::path(experiment_path).stem()).string();
    run.set_toml("work_dir", fmt::format("'{}'", s.work_dir), "<default>");
  }
  int64_t seed = run.get_int("seed");
  if (seed < 0) throw UserError(fmt::format("{}: run.seed must be >= 0", run.where("seed")));
  s.seed = static_cast<uint64_t>(seed);
  s.device = resolve_device(run.get_string("device"), run.where("device"));
  s.max_steps = run.get_int("max_steps");
  s.epochs = run.get_int("epochs");
  s.log_every = run.get_int("log_every");
  s.ckpt_every = run.get_int("ckpt_every");
  s.keep_last = run.get_int("keep_last");
  s.threads = run.get_int("threads");
  for (const char* k : {"max_steps", "epochs", "ckpt_every", "keep_last", "threads"})
    if (run.get_int(k) < 0) throw UserError(fmt::format("{}: run.{} must be >= 0", run.where(k), k));
  if (s.log_every <= 0) throw UserError(fmt::format("{}: run.log_every must be > 0", run.where("log_every")));
  // Checked here, before any work (and by --dry-run): an unknown precision, or fp16 off CUDA.
  train::parse_precision(run.get_string("precision"), s.device, run.where("precision"));
  return s;
}

}  // namespace bevt::host

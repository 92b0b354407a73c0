#include "sections.h"

#include <fmt/format.h>
#include <torch/cuda.h>

#include <algorithm>
#include <filesystem>

#include "bevt/error.h"
#include "bevt/strings.h"

namespace bevt::host {

namespace {
const std::vector<KeySpec>& keys_of(const std::string& name) {
  for (const auto& [n, keys] : host_sections())
    if (n == name) return keys;
  throw std::logic_error("no host section " + name);
}

void check(bool ok, const Config& t, const char* key, const std::string& what) {
  if (!ok) throw UserError(fmt::format("{}: {}.{} {}", t.where(key), t.path(), key, what));
}
}  // namespace

const std::vector<std::pair<std::string, std::vector<KeySpec>>>& host_sections() {
  static const std::vector<std::pair<std::string, std::vector<KeySpec>>> sections = {
      {"run",
       {
           key("mode", "pretrain", "what to run (bevt-run --help lists the modes and the tables each reads)"),
           key("work_dir", "", "output folder (default work_dirs/<experiment file name>)"),
           key("seed", 0, "experiment seed: every random choice derives from it"),
           key("device", "auto", "auto (CUDA when present) | cpu | cuda | cuda:N"),
           key("max_steps", 0, "optimiser steps to run; 0 = use epochs"),
           key("epochs", 1, "passes over the training data when max_steps is 0"),
           key("log_every", 10, "steps between log lines and metrics.jsonl records"),
           key("ckpt_every", 0, "steps between checkpoints; 0 = only at the end"),
           key("keep_last", 3, "checkpoints kept besides the best"),
           key("threads", 0, "intra-op CPU threads; 0 = OMP_NUM_THREADS when set, else every core the process may use"),
           key("precision", "fp32",
               "fp32 (IEEE float32, CUDA convolutions too) | tf32 (TF32 tensor cores for CUDA matmuls and "
               "convolutions) | bf16 (autocast, CPU or CUDA) | fp16 (autocast with dynamic loss scaling, CUDA)"),
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
           key("ema", 0.0, "EMA momentum: the weight of the new value, updated every iteration (micro-batch) as mmcv EMAHook (2e-4 for SSv2); 0 = off"),
           key("ema_warmup", 100, "EMAHook warm_up: momentum = min(ema, (1 + iter) / (warm_up + iter)), iter counting micro-batches"),
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
           key("allow_untrained_tokenizer", false,
               "pre-train on a tokenizer without trained weights (weights = \"\") without a warning"),
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
      {"log",
       {
           key("tensorboard", true, "write TensorBoard events (work_dir/events.out.tfevents.*) beside metrics.jsonl"),
       }},
      {"dist",
       {
           key("backend", "auto", "auto (NCCL on CUDA when this build has it, else Gloo) | nccl | gloo"),
           key("timeout", 1800.0,
               "seconds: a rank that dies, hangs or fails ends the others (exit 1, naming it) within this; also the "
               "rendezvous and collective timeout"),
           key("bucket_mb", 25.0, "gradient all-reduce bucket size in MiB"),
           key("overlap", true, "all-reduce gradient buckets during backward as they become ready"),
           key("broadcast_buffers", true, "floating-point buffers (e.g. EMA codebooks) follow rank 0 after each step"),
           key("init_single", false,
               "join a process group even at world size 1 under a launcher (checks the backend, e.g. NCCL, on one "
               "GPU)"),
       }},  // distributed training (docs/distributed.md)
  };
  return sections;
}

std::vector<std::string> host_section_names() {
  std::vector<std::string> out;
  for (const auto& s : host_sections()) out.push_back(s.first);
  return out;
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

RunSettings parse_run(Config t, const std::string& experiment_path, const std::vector<std::string>& modes) {
  t.validate(keys_of("run"), {});
  RunSettings s;
  s.mode = t.get_string("mode");
  if (std::find(modes.begin(), modes.end(), s.mode) == modes.end())
    throw UserError(fmt::format("{}: run.mode '{}' is not one of {}{}", t.where("mode"), s.mode, join(modes),
                                did_you_mean(s.mode, modes)));
  s.work_dir = t.get_string("work_dir");
  if (s.work_dir.empty()) {
    s.work_dir = (std::filesystem::path("work_dirs") / std::filesystem::path(experiment_path).stem()).string();
    t.set_toml("work_dir", fmt::format("'{}'", s.work_dir), "<default>");
  }
  const int64_t seed = t.get_int("seed");
  check(seed >= 0, t, "seed", "must be >= 0");
  s.seed = static_cast<uint64_t>(seed);
  s.device_requested = t.get_string("device");
  s.device = resolve_device(s.device_requested, t.where("device"));
  for (const char* k : {"max_steps", "epochs", "ckpt_every", "keep_last", "threads"})
    check(t.get_int(k) >= 0, t, k, "must be >= 0");
  s.max_steps = t.get_int("max_steps");
  s.epochs = t.get_int("epochs");
  s.log_every = t.get_int("log_every");
  check(s.log_every > 0, t, "log_every", "must be > 0");
  s.ckpt_every = t.get_int("ckpt_every");
  s.keep_last = t.get_int("keep_last");
  s.threads = t.get_int("threads");
  s.precision = parse_precision(t.get_string("precision"), s.device, t.where("precision"));
  return s;
}

OptimSettings parse_optim(Config c) {
  c.validate(keys_of("optim"), {});
  OptimSettings s;
  s.lr = c.get_float("lr");
  s.min_lr = c.get_float("min_lr");
  s.weight_decay = c.get_float("weight_decay");
  auto betas = c.get_float_list("betas");
  check(betas.size() == 2, c, "betas", "must be [beta1, beta2]");
  s.beta1 = betas[0];
  s.beta2 = betas[1];
  s.eps = c.get_float("eps");
  s.clip_grad = c.get_float("clip_grad");
  s.warmup_ratio = c.get_float("warmup_ratio");
  s.warmup_steps = c.get_int("warmup_steps");
  s.warmup_epochs = c.get_float("warmup_epochs");
  s.accum_steps = c.get_int("accum_steps");
  s.layer_decay = c.get_float("layer_decay");
  s.by_epoch = c.get_bool("by_epoch");
  s.ema = c.get_float("ema");
  s.ema_warmup = c.get_int("ema_warmup");
  if (c.has("custom_keys")) {
    Config ck = c.get_table("custom_keys");
    for (const auto& k : ck.keys()) {
      if (ck.type_of(k) != ValueType::Table)
        throw UserError(fmt::format("{}: optim.custom_keys.\"{}\" must be a table such as {{lr_mult = 0.1, "
                                    "decay_mult = 0.0}}",
                                    ck.where(k), k));
      Config e = ck.get_table(k);
      for (const auto& field : e.keys())
        if (field != "lr_mult" && field != "decay_mult")
          throw UserError(fmt::format("{}: optim.custom_keys.\"{}\" has unknown field '{}'{} (known: lr_mult, "
                                      "decay_mult)",
                                      e.where(field), k, field, did_you_mean(field, {"lr_mult", "decay_mult"})));
      OptimSettings::CustomKey entry{k, e.get_float("lr_mult", 1.0), e.get_float("decay_mult", 1.0)};
      if (entry.lr_mult < 0 || entry.decay_mult < 0)
        throw UserError(fmt::format("{}: optim.custom_keys.\"{}\": lr_mult and decay_mult must be >= 0", e.where(), k));
      s.custom_keys.push_back(entry);
    }
  }
  // mmcv sorts the keys by length, longest first, ties alphabetically, and stops at the first match.
  using CK = OptimSettings::CustomKey;
  std::stable_sort(s.custom_keys.begin(), s.custom_keys.end(), [](const CK& a, const CK& b) { return a.key < b.key; });
  std::stable_sort(s.custom_keys.begin(), s.custom_keys.end(),
                   [](const CK& a, const CK& b) { return a.key.size() > b.key.size(); });
  check(s.layer_decay > 0 && s.layer_decay <= 1, c, "layer_decay", "must be in (0, 1] (1 = off)");
  check(s.lr > 0, c, "lr", "must be > 0");
  check(s.accum_steps >= 1, c, "accum_steps", "must be >= 1");
  check(s.warmup_ratio >= 0 && s.warmup_ratio <= 1, c, "warmup_ratio", "must be in [0, 1]");
  check(s.ema >= 0 && s.ema < 1, c, "ema", "must be in [0, 1) (0 = off)");
  check(s.ema_warmup >= 0, c, "ema_warmup", "must be >= 0");
  return s;
}

LoaderSettings parse_loader(Config t) {
  t.validate(keys_of("loader"), {});
  LoaderSettings s;
  s.batch_size = t.get_int("batch_size");
  s.image_batch_size = t.get_int("image_batch_size");
  s.eval_batch_size = t.get_int("eval_batch_size");
  s.workers = t.get_int("workers");
  s.prefetch = t.get_int("prefetch");
  s.max_bad_fraction = t.get_float("max_bad_fraction");
  for (const char* k : {"batch_size", "image_batch_size", "eval_batch_size"}) check(t.get_int(k) > 0, t, k, "must be > 0");
  check(s.workers >= 0, t, "workers", "must be >= 0");
  check(s.prefetch >= 0, t, "prefetch", "must be >= 0");
  check(s.max_bad_fraction >= 0 && s.max_bad_fraction <= 1, t, "max_bad_fraction", "must be in [0, 1]");
  return s;
}

PretrainSettings parse_pretrain(Config t) {
  t.validate(keys_of("pretrain"), {});
  PretrainSettings s;
  s.streams = t.get_string_list("streams");
  check(!s.streams.empty(), t, "streams", "is empty (image, video or both)");
  for (const auto& n : s.streams)
    if (n != "image" && n != "video")
      throw UserError(fmt::format("{}: unknown stream '{}' in pretrain.streams (image | video){}", t.where("streams"),
                                  n, did_you_mean(n, {"image", "video"})));
  s.image_weight = t.get_float("image_weight");
  s.video_weight = t.get_float("video_weight");
  s.tie_lm_head = t.get_bool("tie_lm_head");
  s.allow_untrained_tokenizer = t.get_bool("allow_untrained_tokenizer");
  return s;
}

FinetuneSettings parse_finetune(Config t) {
  t.validate(keys_of("finetune"), {});
  FinetuneSettings s;
  s.label_smoothing = t.get_float("label_smoothing");
  check(s.label_smoothing >= 0 && s.label_smoothing < 1, t, "label_smoothing", "must be in [0, 1)");
  s.eval_every = t.get_int("eval_every");
  check(s.eval_every >= 0, t, "eval_every", "must be >= 0 (0 = only at the end)");
  return s;
}

InitSettings parse_init(Config t) {
  t.validate(keys_of("init"), {});
  return InitSettings{t.get_string("checkpoint")};
}

DistSettings parse_dist(Config c) {
  c.validate(keys_of("dist"), {});
  DistSettings s;
  s.backend = c.get_string("backend");
  if (s.backend != "auto" && s.backend != "nccl" && s.backend != "gloo")
    throw UserError(fmt::format("{}: dist.backend '{}' is not auto, nccl or gloo{}", c.where("backend"), s.backend,
                                did_you_mean(s.backend, {"auto", "nccl", "gloo"})));
  s.timeout_s = c.get_float("timeout");
  check(s.timeout_s > 0, c, "timeout", "must be > 0 seconds");
  s.bucket_mb = c.get_float("bucket_mb");
  check(s.bucket_mb > 0, c, "bucket_mb", "must be > 0");
  s.overlap = c.get_bool("overlap");
  s.broadcast_buffers = c.get_bool("broadcast_buffers");
  s.init_single = c.get_bool("init_single");
  return s;
}

LogSettings parse_log(Config t) {
  t.validate(keys_of("log"), {});
  return LogSettings{t.get_bool("tensorboard")};
}

Precision parse_precision(const std::string& value, const std::string& device, const std::string& where) {
  Precision p;
  if (value == "fp32")
    p = Precision::Fp32;
  else if (value == "tf32")
    p = Precision::Tf32;
  else if (value == "bf16")
    p = Precision::Bf16;
  else if (value == "fp16")
    p = Precision::Fp16;
  else
    throw UserError(fmt::format("{}: run.precision '{}' is not one of fp32, tf32, bf16, fp16{}", where, value,
                                did_you_mean(value, {"fp32", "tf32", "bf16", "fp16"})));
  if (p == Precision::Fp16 && device.rfind("cuda", 0) != 0)
    throw UserError(fmt::format("{}: run.precision = 'fp16' needs a CUDA device (run.device resolved to '{}'); "
                                "use bf16 or fp32 on the CPU",
                                where, device));
  return p;
}

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::Bf16: return "bf16";
    case Precision::Fp16: return "fp16";
    case Precision::Tf32: return "tf32";
    case Precision::Fp32: break;
  }
  return "fp32";
}

}  // namespace bevt::host

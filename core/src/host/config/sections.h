// The host-owned tables of an experiment file ([run], [optim], [loader], [pretrain], [finetune], [init],
// [dist]) as typed settings: their keys (with defaults and docs, for validation and --help), and one parse
// function per table that checks every value and names file:line on a bad one. Nothing outside src/host/config
// reads these tables: the rest of the host receives the structs below.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "bevt/config.h"

namespace bevt::host {

// fp32: float32 with IEEE arithmetic everywhere (CUDA convolutions too, which torch runs in TF32 by default);
// tf32: float32 storage, TF32 tensor cores for CUDA matmuls and convolutions (as torch.backends' allow_tf32);
// bf16 / fp16: autocast.
enum class Precision { Fp32, Tf32, Bf16, Fp16 };

struct RunSettings {
  std::string mode;
  std::string work_dir;
  uint64_t seed = 0;
  std::string device_requested = "auto";  // as written: auto | cpu | cuda | cuda:N
  std::string device;                     // resolved: "cpu" or "cuda:N"
  int64_t max_steps = 0;
  int64_t epochs = 0;
  int64_t log_every = 0;
  int64_t ckpt_every = 0;
  int64_t keep_last = 0;
  int64_t threads = 0;
  Precision precision = Precision::Fp32;
};

struct OptimSettings {
  double lr = 5e-4, min_lr = 0, weight_decay = 0.05, eps = 1e-8;
  double beta1 = 0.9, beta2 = 0.999;
  double clip_grad = 3.0;  // 0 = off
  double warmup_ratio = 0.1;
  int64_t warmup_steps = 0;
  double warmup_epochs = 0;  // converted to steps by the loop when > 0
  int64_t accum_steps = 1;
  // mmcv paramwise_cfg.custom_keys: a parameter takes the first of these (longest key first, ties in
  // alphabetical order) that its name contains; lr × lr_mult, weight decay × decay_mult, and no layer decay.
  struct CustomKey {
    std::string key;
    double lr_mult = 1.0, decay_mult = 1.0;
  };
  std::vector<CustomKey> custom_keys;
  double layer_decay = 1.0;  // BEVT/BEiT layer-wise lr decay of backbone parameters; 1 = off
  bool by_epoch = false;     // cosine evaluated at epoch starts (mmcv by_epoch=True); warmup stays per iteration
  int64_t steps_per_epoch = 0;  // set by the loop when by_epoch
  double ema = 0;               // EMA momentum (mmcv EMAHook); 0 = off
  int64_t ema_warmup = 100;
};

struct LoaderSettings {
  int64_t batch_size = 8, image_batch_size = 32, eval_batch_size = 8;
  int64_t workers = 2, prefetch = 4;
  double max_bad_fraction = 0.01;
};

struct PretrainSettings {
  std::vector<std::string> streams{"image", "video"};  // each "image" or "video", at least one
  double image_weight = 1, video_weight = 1;
  bool tie_lm_head = true;
  bool allow_untrained_tokenizer = false;  // no warning for a tokenizer without trained weights
  double weight(const std::string& stream) const { return stream == "image" ? image_weight : video_weight; }
};

struct FinetuneSettings {
  double label_smoothing = 0;
  int64_t eval_every = 1;
};

struct InitSettings {
  std::string checkpoint;  // "" = none
};

struct LogSettings {
  bool tensorboard = true;  // work_dir/events.out.tfevents.* beside metrics.jsonl
};

struct DistSettings {
  std::string backend = "auto";  // auto (nccl on CUDA when this build has it, else gloo) | nccl | gloo
  double timeout_s = 1800;       // a dead, hung or failed rank ends the others within this
  double bucket_mb = 25;         // gradient all-reduce bucket size
  bool overlap = true;           // all-reduce buckets during backward as their gradients become ready
  bool broadcast_buffers = true; // floating-point buffers (EMA codebooks, ...) follow rank 0 after each step
  bool init_single = false;      // join a process group at world size 1 too (a backend check)
};

// Host tables and their keys, in the order --help lists them; every other table of an experiment is a
// component (`plugin = ...`) or a group of them.
const std::vector<std::pair<std::string, std::vector<KeySpec>>>& host_sections();
std::vector<std::string> host_section_names();

// One parser per table. Each validates `t` against its keys (filling defaults) and checks the values.
// `experiment_path` gives the default work_dir (work_dirs/<file stem>); `modes` the valid run.mode values.
RunSettings parse_run(Config t, const std::string& experiment_path, const std::vector<std::string>& modes);
OptimSettings parse_optim(Config t);
LoaderSettings parse_loader(Config t);
PretrainSettings parse_pretrain(Config t);
FinetuneSettings parse_finetune(Config t);
InitSettings parse_init(Config t);
DistSettings parse_dist(Config t);
LogSettings parse_log(Config t);

// "auto" → cuda:0 when CUDA is present, else cpu; "cuda" → cuda:0; checks that a requested GPU exists.
std::string resolve_device(const std::string& requested, const std::string& where);

// run.precision; `device` is the resolved run.device. UserError (naming `where`) for an unknown value, or
// fp16 off CUDA (CPU autocast has bf16 kernels; fp16 ones are CUDA's).
Precision parse_precision(const std::string& value, const std::string& device, const std::string& where);
const char* precision_name(Precision p);

}  // namespace bevt::host

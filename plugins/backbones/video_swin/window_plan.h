// Window geometry of one stage for one input shape: effective window and shift (get_window_size), the
// gather/scatter indices that do padding + cyclic shift + window partition (and their inverse) in one copy
// each, the -100 region mask of shifted windows, and which rows of the relative-position table each window
// pair reads. Built once per (mode, batch, shape, device) on the CPU, moved to the input's device, and cached
// by the model under that device: a plan made for one device is never handed to a forward on another.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "bevt/torch.h"

namespace bevt::swin {

using Dims3 = std::array<int64_t, 3>;

// Official get_window_size: per dimension, x <= w gives w = x and shift 0.
void clamp_window(const Dims3& grid, Dims3& window, Dims3& shift);

// relative_position_index of a (Wd, Wh, Ww) window: [N, N] int64, N = Wd*Wh*Ww.
torch::Tensor relative_position_index(const Dims3& window);

// How one block partitions its input.
struct WindowPlan {
  int64_t batch = 0;
  Dims3 grid{}, padded{}, window{}, shift{};
  int64_t num_windows = 0, tokens = 0;  // nW per sample, N per window
  bool identity = false;   // gather is the identity: no pad, no shift, one window
  bool pad = false;        // gather reads a zero row at index batch*L for padded positions
  torch::Tensor gather;    // [batch*nW*N] int64 rows of [batch*L (+1)]
  torch::Tensor scatter;   // [batch*L] int64 rows of [batch*nW*N]
  torch::Tensor mask;      // [nW, N, N] float additive mask (0 / -100), undefined when none
  torch::Tensor bias_index;  // [N*N] int64 rows of the relative-position table
  std::string bias_key;    // identifies bias_index (for the attention's bias cache)
  uint64_t id = 0;         // unique per plan (for the attention's bias+mask cache)
};

struct StagePlan {
  WindowPlan plans[2];  // [0] blocks with even index (no shift), [1] odd blocks (shifted)
};

enum class PlanMode { Video, ImageBevt, ImageSwin };

// Plans for a stage of `grid` (t, h, w) tokens; images pass t = 1. `table_window` is the window the
// relative-position table was built for. Throws UserError when an image grid cannot hold the window
// in the official BEVT image mode. Every tensor of the plan lives on `device` (the mask in float32; the
// attention casts it to its own dtype).
std::shared_ptr<StagePlan> make_stage_plan(PlanMode mode, int64_t batch, const Dims3& grid, const Dims3& table_window,
                                           const torch::Device& device = torch::kCPU);

}  // namespace bevt::swin

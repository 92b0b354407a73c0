#include "window_plan.h"

#include <atomic>
#include <fmt/format.h>

#include "bevt/error.h"

namespace bevt::swin {

namespace {

std::atomic<uint64_t> next_plan_id{1};

// Region label per position along one padded axis, as the official slice loops assign it
// (slice(-w), slice(-w,-s), slice(-s,None); with s = 0 the last slice covers the whole axis).
std::vector<int64_t> axis_labels(int64_t P, int64_t w, int64_t s) {
  std::vector<int64_t> lab(static_cast<size_t>(P), 0);
  if (s == 0) {
    std::fill(lab.begin(), lab.end(), 2);
    return lab;
  }
  for (int64_t i = 0; i < P; ++i) lab[static_cast<size_t>(i)] = i < P - w ? 0 : (i < P - s ? 1 : 2);
  return lab;
}

// Partitions [B, Dp, Hp, Wp, ...] into [B*nW, N, ...] (window order d,h,w; tokens d,h,w row-major).
torch::Tensor partition(const torch::Tensor& x, const Dims3& P, const Dims3& w) {
  auto B = x.size(0);
  auto t = x.reshape({B, P[0] / w[0], w[0], P[1] / w[1], w[1], P[2] / w[2], w[2], -1});
  return t.permute({0, 1, 3, 5, 2, 4, 6, 7}).reshape({-1, w[0] * w[1] * w[2]});
}

torch::Tensor shift_mask(const Dims3& P, const Dims3& w, const Dims3& s) {
  auto ld = axis_labels(P[0], w[0], s[0]), lh = axis_labels(P[1], w[1], s[1]), lw = axis_labels(P[2], w[2], s[2]);
  auto labels = torch::empty({1, P[0], P[1], P[2], 1}, torch::kInt64);
  auto* p = labels.data_ptr<int64_t>();
  for (int64_t d = 0; d < P[0]; ++d)
    for (int64_t h = 0; h < P[1]; ++h)
      for (int64_t x = 0; x < P[2]; ++x) *p++ = ld[d] * 9 + lh[h] * 3 + lw[x];
  auto win = partition(labels, P, w);  // [nW, N]
  auto diff = win.unsqueeze(1) - win.unsqueeze(2);
  return torch::zeros(diff.sizes(), torch::kFloat32).masked_fill_(diff.ne(0), -100.0);
}

WindowPlan build(int64_t B, const Dims3& grid, const Dims3& w, const Dims3& s, bool with_mask, const Dims3& mask_shift,
                 const torch::Tensor& bias_index, const std::string& bias_key) {
  WindowPlan p;
  p.batch = B;
  p.grid = grid;
  p.window = w;
  p.shift = s;
  for (int i = 0; i < 3; ++i) p.padded[i] = (grid[i] + w[i] - 1) / w[i] * w[i];
  p.tokens = w[0] * w[1] * w[2];
  p.num_windows = p.padded[0] / w[0] * (p.padded[1] / w[1]) * (p.padded[2] / w[2]);
  p.pad = p.padded != grid;
  const int64_t L = grid[0] * grid[1] * grid[2];
  auto pos = torch::arange(B * L, torch::kInt64).view({B, grid[0], grid[1], grid[2]});
  if (p.pad)
    pos = torch::constant_pad_nd(pos, {0, p.padded[2] - grid[2], 0, p.padded[1] - grid[1], 0, p.padded[0] - grid[0]},
                                 B * L);
  if (s[0] || s[1] || s[2]) pos = torch::roll(pos, {-s[0], -s[1], -s[2]}, {1, 2, 3});
  p.gather = partition(pos.unsqueeze(-1), p.padded, w).reshape({-1}).contiguous();
  p.identity = !p.pad && p.gather.equal(torch::arange(B * L, torch::kInt64));
  auto valid = p.gather.lt(B * L);
  p.scatter = torch::empty({B * L}, torch::kInt64);
  p.scatter.index_put_({p.gather.masked_select(valid)},
                       torch::arange(p.gather.numel(), torch::kInt64).masked_select(valid));
  if (with_mask) p.mask = shift_mask(p.padded, w, mask_shift);
  p.bias_index = bias_index;
  p.bias_key = bias_key;
  p.id = next_plan_id++;
  return p;
}

// Rows of a (Wd, Wh, Ww) table for a 2D (wh, ww) window at temporal distance 0, geometrically.
torch::Tensor image_bias_index(const Dims3& table_window, int64_t wh, int64_t ww) {
  const int64_t Th = 2 * table_window[1] - 1, Tw = 2 * table_window[2] - 1;
  const int64_t base = (table_window[0] - 1) * Th * Tw;
  const int64_t N = wh * ww;
  auto idx = torch::empty({N, N}, torch::kInt64);
  auto* p = idx.data_ptr<int64_t>();
  for (int64_t i = 0; i < N; ++i)
    for (int64_t j = 0; j < N; ++j) {
      int64_t dh = i / ww - j / ww + table_window[1] - 1, dw = i % ww - j % ww + table_window[2] - 1;
      *p++ = base + dh * Tw + dw;
    }
  return idx.reshape({-1});
}

}  // namespace

void clamp_window(const Dims3& grid, Dims3& window, Dims3& shift) {
  for (int i = 0; i < 3; ++i)
    if (grid[i] <= window[i]) {
      window[i] = grid[i];
      shift[i] = 0;
    }
}

torch::Tensor relative_position_index(const Dims3& w) {
  const int64_t N = w[0] * w[1] * w[2];
  const int64_t sd = (2 * w[1] - 1) * (2 * w[2] - 1), sh = 2 * w[2] - 1;
  auto idx = torch::empty({N, N}, torch::kInt64);
  auto* p = idx.data_ptr<int64_t>();
  for (int64_t i = 0; i < N; ++i) {
    int64_t di = i / (w[1] * w[2]), hi = i / w[2] % w[1], wi = i % w[2];
    for (int64_t j = 0; j < N; ++j) {
      int64_t dj = j / (w[1] * w[2]), hj = j / w[2] % w[1], wj = j % w[2];
      *p++ = (di - dj + w[0] - 1) * sd + (hi - hj + w[1] - 1) * sh + (wi - wj + w[2] - 1);
    }
  }
  return idx;
}

namespace {
void move_plan(WindowPlan& p, const torch::Device& d) {
  for (torch::Tensor* t : {&p.gather, &p.scatter, &p.mask, &p.bias_index})
    if (t->defined()) *t = t->to(d);
}

std::shared_ptr<StagePlan> make_stage_plan_cpu(PlanMode mode, int64_t B, const Dims3& grid, const Dims3& tw);
}  // namespace

std::shared_ptr<StagePlan> make_stage_plan(PlanMode mode, int64_t B, const Dims3& grid, const Dims3& tw,
                                           const torch::Device& device) {
  auto sp = make_stage_plan_cpu(mode, B, grid, tw);
  if (device != torch::Device(torch::kCPU))
    for (auto& p : sp->plans) move_plan(p, device);
  return sp;
}

namespace {
std::shared_ptr<StagePlan> make_stage_plan_cpu(PlanMode mode, int64_t B, const Dims3& grid, const Dims3& tw) {
  auto sp = std::make_shared<StagePlan>();
  if (mode == PlanMode::Video) {
    Dims3 w = tw, s{tw[0] / 2, tw[1] / 2, tw[2] / 2};
    clamp_window(grid, w, s);
    const int64_t N = w[0] * w[1] * w[2];
    // The official crop [:N, :N] of the configured window's index, also when the window shrank.
    auto full = relative_position_index(tw);
    auto idx = full.index({torch::indexing::Slice(0, N), torch::indexing::Slice(0, N)}).reshape({-1}).contiguous();
    std::string key = fmt::format("v{}", N);
    bool shifted = s[0] || s[1] || s[2];
    sp->plans[0] = build(B, grid, w, {0, 0, 0}, false, {0, 0, 0}, idx, key);
    sp->plans[1] = build(B, grid, w, s, shifted, s, idx, key);
    return sp;
  }
  Dims3 w{1, tw[1], tw[2]}, s{0, tw[1] / 2, tw[2] / 2};
  if (mode == PlanMode::ImageBevt) {
    for (int i = 1; i < 3; ++i)
      if (grid[i] < w[i] || grid[i] % w[i] != 0)
        throw UserError(fmt::format(
            "video_swin: image token grid {}x{} cannot hold the {}x{} window without padding (image_attention = "
            "\"bevt\" follows the official image path, which needs every stage a multiple of the window; use an "
            "image size of patch*window*2^(stages-1) multiples or image_attention = \"swin\")",
            grid[1], grid[2], w[1], w[2]));
    // Official: index[:N,:N] of the 3D index, i.e. the d = 0 slice; the shift mask is used in every block.
    const int64_t N = w[1] * w[2];
    auto full = relative_position_index(tw);
    auto idx = full.index({torch::indexing::Slice(0, N), torch::indexing::Slice(0, N)}).reshape({-1}).contiguous();
    std::string key = fmt::format("ib{}", N);
    sp->plans[0] = build(B, grid, w, {0, 0, 0}, true, s, idx, key);
    sp->plans[1] = build(B, grid, w, s, true, s, idx, key);
    return sp;
  }
  clamp_window(grid, w, s);
  auto idx = image_bias_index(tw, w[1], w[2]);
  std::string key = fmt::format("is{}x{}", w[1], w[2]);
  bool shifted = s[1] || s[2];
  sp->plans[0] = build(B, grid, w, {0, 0, 0}, false, {0, 0, 0}, idx, key);
  sp->plans[1] = build(B, grid, w, s, shifted, s, idx, key);
  return sp;
}

}  // namespace

}  // namespace bevt::swin

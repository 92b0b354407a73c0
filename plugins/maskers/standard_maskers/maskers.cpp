// The standard maskers (issue 6). Each one is a pure function of the Rng it is handed: the same Rng state
// gives the same mask, and a masker holds no mutable state, so one instance may be shared by threads.
//
//   blockwise    BEiT's block-wise masking on (h, w), the same 2D mask on every temporal slot.
//   bevt_tube    BEVT's video mask: one blockwise (h, w) mask over a random cyclic run of temporal slots.
//   tube_random  VideoMAE's tube mask: exactly int(ratio*h*w) random cells per frame, identical frames.
//   random       exactly int(ratio*t*h*w) random cells of the whole grid (or, exact = false, each cell
//                independently with probability ratio).
//
// Algorithms, keys and measured statistics: docs/maskers.md.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "bevt/config.h"
#include "bevt/error.h"
#include "bevt/masker.h"
#include "bevt/plugin.h"
#include "bevt/rng.h"
#include "bevt/torch.h"

namespace {

using Grid = std::array<int64_t, 3>;

// "file.toml:12: key 'masker.min_aspect'" — the prefix of every configuration error.
std::string at_key(const bevt::Config& cfg, const std::string& name) {
  const std::string dotted = cfg.path().empty() ? name : cfg.path() + "." + name;
  return fmt::format("{}: key '{}'", cfg.where(name), dotted);
}

double ratio_in_unit(const bevt::Config& cfg, const std::string& name) {
  const double r = cfg.get_float(name);
  if (!(r >= 0.0 && r <= 1.0))
    throw bevt::UserError(fmt::format("{} must lie in [0, 1], got {}", at_key(cfg, name), r));
  return r;
}

void check_grid(const Grid& g, const char* masker) {
  if (g[0] < 1 || g[1] < 1 || g[2] < 1)
    throw bevt::UserError(
        fmt::format("{} masker: grid ({}, {}, {}) must have every size >= 1", masker, g[0], g[1], g[2]));
}

// Python's int(x) on a non-negative float: truncation, computed in the same double arithmetic.
int64_t py_int(double x) { return static_cast<int64_t>(x); }

// A (t, h, w) bool tensor in which every slot s with slots[s] holds the 2D pattern `frame` (h*w, row-major).
torch::Tensor tile_frames(const std::vector<uint8_t>& frame, const std::vector<uint8_t>& slots, int64_t h,
                          int64_t w) {
  const int64_t t = static_cast<int64_t>(slots.size());
  auto out = torch::zeros({t, h, w}, torch::kBool);
  bool* p = out.data_ptr<bool>();
  for (int64_t s = 0; s < t; ++s) {
    if (!slots[static_cast<size_t>(s)]) continue;
    for (int64_t i = 0; i < h * w; ++i) p[s * h * w + i] = frame[static_cast<size_t>(i)] != 0;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// BEiT's block-wise masking (beit/masking_generator.py, copied unchanged into BEVT): blocks of random area and
// aspect ratio are added until `num_masking_patches` cells are masked or a block cannot be placed in 10 tries.
// The result never exceeds the target and may fall short of it.
class BlockwiseGenerator {
 public:
  static std::vector<bevt::KeySpec> keys() {
    return {
        bevt::key("num_masking_patches", 98, "target number of masked cells per (h, w) mask (BEiT/BEVT: 98 of 14x14)"),
        bevt::key("min_num_patches", 16, "smallest block area (BEVT: 16; BEiT's own default: 4)"),
        bevt::key("max_num_patches", 0, "largest block area; 0 = num_masking_patches"),
        bevt::key("min_aspect", 0.3, "smallest block aspect ratio h/w"),
        bevt::key("max_aspect", 0.0, "largest block aspect ratio h/w; 0 = 1/min_aspect"),
    };
  }

  explicit BlockwiseGenerator(const bevt::Config& cfg) {
    target_ = cfg.get_int("num_masking_patches");
    min_patches_ = cfg.get_int("min_num_patches");
    const int64_t max_patches = cfg.get_int("max_num_patches");
    const double min_aspect = cfg.get_float("min_aspect");
    double max_aspect = cfg.get_float("max_aspect");
    where_target_ = at_key(cfg, "num_masking_patches");
    where_min_ = at_key(cfg, "min_num_patches");

    if (target_ < 0)
      throw bevt::UserError(fmt::format("{} must be >= 0, got {}", where_target_, target_));
    if (min_patches_ < 1)
      throw bevt::UserError(fmt::format("{} must be >= 1, got {}", where_min_, min_patches_));
    if (max_patches < 0)
      throw bevt::UserError(fmt::format("{} must be >= 0 (0 = num_masking_patches), got {}",
                                        at_key(cfg, "max_num_patches"), max_patches));
    max_patches_ = max_patches == 0 ? target_ : max_patches;
    if (target_ > 0 && min_patches_ > max_patches_)
      throw bevt::UserError(fmt::format(
          "{} = {} exceeds the largest block area {} (max_num_patches, or num_masking_patches when it is 0)",
          where_min_, min_patches_, max_patches_));
    if (!(min_aspect > 0.0) || !std::isfinite(min_aspect))
      throw bevt::UserError(fmt::format("{} must be > 0, got {}", at_key(cfg, "min_aspect"), min_aspect));
    if (max_aspect == 0.0) max_aspect = 1.0 / min_aspect;
    if (!(max_aspect >= min_aspect) || !std::isfinite(max_aspect))
      throw bevt::UserError(fmt::format("{} = {} must be >= min_aspect = {} (or 0 for 1/min_aspect)",
                                        at_key(cfg, "max_aspect"), max_aspect, min_aspect));
    log_aspect_lo_ = std::log(min_aspect);
    log_aspect_hi_ = std::log(max_aspect);
  }

  // Grid-dependent checks, made when the grid is first known.
  void check(int64_t h, int64_t w) const {
    if (target_ > h * w)
      throw bevt::UserError(fmt::format("{} = {} exceeds the {}x{} grid's {} cells", where_target_, target_, h,
                                        w, h * w));
    // A block must be strictly smaller than the grid on both sides. Its sides are rounded from
    // sqrt(area*aspect) and sqrt(area/aspect), so no block fits once the smallest area that can be drawn,
    // min(min_num_patches, num_masking_patches, max_num_patches), exceeds (h-0.5)(w-0.5).
    const double fits = (static_cast<double>(h) - 0.5) * (static_cast<double>(w) - 0.5);
    const int64_t smallest = std::min({min_patches_, target_, max_patches_});
    if (target_ > 0 && (h < 2 || w < 2 || static_cast<double>(smallest) > fits))
      throw bevt::UserError(fmt::format(
          "{} = {} is too large for a {}x{} grid: blocks must be smaller than the grid on both sides, so no "
          "block of that area fits",
          where_min_, min_patches_, h, w));
  }

  // One (h, w) mask, row-major, 1 = masked.
  std::vector<uint8_t> generate(int64_t h, int64_t w, bevt::Rng& rng) const {
    check(h, w);
    std::vector<uint8_t> mask(static_cast<size_t>(h * w), 0);
    int64_t count = 0;
    while (count < target_) {
      const int64_t max_mask = std::min(target_ - count, max_patches_);
      const int64_t delta = add_block(mask, h, w, max_mask, rng);
      if (delta == 0) break;
      count += delta;
    }
    return mask;
  }

 private:
  // Up to 10 attempts to place one block adding between 1 and max_mask new cells; returns the cells added.
  int64_t add_block(std::vector<uint8_t>& mask, int64_t H, int64_t W, int64_t max_mask, bevt::Rng& rng) const {
    int64_t delta = 0;
    for (int attempt = 0; attempt < 10; ++attempt) {
      // Rng::uniform(a, b) is a + (b - a) * U like Python's random.uniform, also when b < a.
      const double area = rng.uniform(static_cast<double>(min_patches_), static_cast<double>(max_mask));
      const double aspect = std::exp(rng.uniform(log_aspect_lo_, log_aspect_hi_));
      // Python's round() rounds halves to even: nearbyint under the default rounding mode does the same.
      const auto bh = static_cast<int64_t>(std::nearbyint(std::sqrt(area * aspect)));
      const auto bw = static_cast<int64_t>(std::nearbyint(std::sqrt(area / aspect)));
      if (bw < W && bh < H) {
        const int64_t top = rng.randint(0, H - bh);
        const int64_t left = rng.randint(0, W - bw);
        int64_t already = 0;
        for (int64_t i = top; i < top + bh; ++i)
          for (int64_t j = left; j < left + bw; ++j) already += mask[static_cast<size_t>(i * W + j)];
        const int64_t fresh = bh * bw - already;
        if (fresh > 0 && fresh <= max_mask) {
          for (int64_t i = top; i < top + bh; ++i)
            for (int64_t j = left; j < left + bw; ++j) {
              uint8_t& cell = mask[static_cast<size_t>(i * W + j)];
              if (!cell) {
                cell = 1;
                ++delta;
              }
            }
        }
        if (delta > 0) break;
      }
    }
    return delta;
  }

  int64_t target_ = 0, min_patches_ = 0, max_patches_ = 0;
  double log_aspect_lo_ = 0.0, log_aspect_hi_ = 0.0;
  std::string where_target_, where_min_;
};

class Blockwise : public bevt::Masker {
 public:
  static std::vector<bevt::KeySpec> keys() { return BlockwiseGenerator::keys(); }
  explicit Blockwise(const bevt::Config& cfg) : gen_(cfg) {}

  // For t > 1 the same 2D mask is repeated on every temporal slot (a tube through the whole clip).
  torch::Tensor sample(const Grid& grid, bevt::Rng& rng) const override {
    check_grid(grid, "blockwise");
    const auto frame = gen_.generate(grid[1], grid[2], rng);
    return tile_frames(frame, std::vector<uint8_t>(static_cast<size_t>(grid[0]), 1), grid[1], grid[2]);
  }

 private:
  BlockwiseGenerator gen_;
};

// ---------------------------------------------------------------------------------------------------------
// BEVT's video mask (mmaction/datasets/pipelines/mask_generator.py, MaskedPositionGenerate): one blockwise
// (h, w) mask, then start = randint(0, T-1) and len = randint(max(int(lo*T), 1), min(int(hi*T), T)); the mask
// fills slots start, start+1, ... (len of them), wrapping past T-1 to 0.
class BevtTube : public bevt::Masker {
 public:
  static std::vector<bevt::KeySpec> keys() {
    auto k = BlockwiseGenerator::keys();
    k.push_back(bevt::key("masked_tube_range", std::vector<double>{0.5, 1.0},
                          "[lo, hi]: the masked run covers between int(lo*T) (at least 1) and int(hi*T) slots"));
    return k;
  }

  explicit BevtTube(const bevt::Config& cfg) : gen_(cfg) {
    const auto range = cfg.get_float_list("masked_tube_range");
    where_range_ = at_key(cfg, "masked_tube_range");
    if (range.size() != 2)
      throw bevt::UserError(fmt::format("{} must be a list of two numbers [lo, hi], got {} values", where_range_,
                                        range.size()));
    lo_ = range[0];
    hi_ = range[1];
    if (!(lo_ >= 0.0 && lo_ <= 1.0 && hi_ >= 0.0 && hi_ <= 1.0) || lo_ > hi_)
      throw bevt::UserError(
          fmt::format("{} = [{}, {}] must satisfy 0 <= lo <= hi <= 1", where_range_, lo_, hi_));
  }

  torch::Tensor sample(const Grid& grid, bevt::Rng& rng) const override {
    check_grid(grid, "bevt_tube");
    const int64_t T = grid[0];
    const int64_t min_len = std::max<int64_t>(py_int(lo_ * static_cast<double>(T)), 1);
    const int64_t max_len = std::min<int64_t>(py_int(hi_ * static_cast<double>(T)), T);
    if (min_len > max_len)
      throw bevt::UserError(fmt::format("{} = [{}, {}] gives no run length for {} temporal slots ({} > {})",
                                        where_range_, lo_, hi_, T, min_len, max_len));
    // Same order of draws as the official code: the 2D mask, then the start, then the length.
    const auto frame = gen_.generate(grid[1], grid[2], rng);
    const int64_t start = rng.randint(0, T - 1);
    const int64_t len = rng.randint(min_len, max_len);
    std::vector<uint8_t> slots(static_cast<size_t>(T), 0);
    for (int64_t k = 0; k < len; ++k) slots[static_cast<size_t>((start + k) % T)] = 1;
    return tile_frames(frame, slots, grid[1], grid[2]);
  }

 private:
  BlockwiseGenerator gen_;
  double lo_ = 0.5, hi_ = 1.0;
  std::string where_range_;
};

// ---------------------------------------------------------------------------------------------------------
// Exactly `k` of `n` cells chosen uniformly without replacement, by the first k steps of a Fisher-Yates
// shuffle driven by the Rng (one randint per step).
std::vector<uint8_t> choose_exact(int64_t n, int64_t k, bevt::Rng& rng) {
  std::vector<int64_t> idx(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) idx[static_cast<size_t>(i)] = i;
  std::vector<uint8_t> out(static_cast<size_t>(n), 0);
  for (int64_t i = 0; i < k; ++i) {
    const int64_t j = rng.randint(i, n - 1);
    std::swap(idx[static_cast<size_t>(i)], idx[static_cast<size_t>(j)]);
    out[static_cast<size_t>(idx[static_cast<size_t>(i)])] = 1;
  }
  return out;
}

// VideoMAE's TubeMaskingGenerator: one frame pattern with exactly int(mask_ratio*h*w) masked cells, the same
// on every temporal slot.
class TubeRandom : public bevt::Masker {
 public:
  static std::vector<bevt::KeySpec> keys() {
    return {bevt::key("mask_ratio", 0.9, "fraction of each frame's cells masked: exactly int(ratio*h*w)")};
  }
  explicit TubeRandom(const bevt::Config& cfg) : ratio_(ratio_in_unit(cfg, "mask_ratio")) {}

  torch::Tensor sample(const Grid& grid, bevt::Rng& rng) const override {
    check_grid(grid, "tube_random");
    const int64_t n = grid[1] * grid[2];
    const auto frame = choose_exact(n, py_int(ratio_ * static_cast<double>(n)), rng);
    return tile_frames(frame, std::vector<uint8_t>(static_cast<size_t>(grid[0]), 1), grid[1], grid[2]);
  }

 private:
  double ratio_;
};

// Random masking of the whole (t, h, w) grid: exactly int(mask_ratio*t*h*w) cells without replacement, or,
// with exact = false, each cell independently with probability mask_ratio.
class RandomMasker : public bevt::Masker {
 public:
  static std::vector<bevt::KeySpec> keys() {
    return {bevt::key("mask_ratio", 0.5, "fraction of the grid's cells masked"),
            bevt::key("exact", true,
                      "true: exactly int(ratio*t*h*w) cells without replacement; false: each cell independently")};
  }
  explicit RandomMasker(const bevt::Config& cfg)
      : ratio_(ratio_in_unit(cfg, "mask_ratio")), exact_(cfg.get_bool("exact")) {}

  torch::Tensor sample(const Grid& grid, bevt::Rng& rng) const override {
    check_grid(grid, "random");
    const int64_t n = grid[0] * grid[1] * grid[2];
    std::vector<uint8_t> cells;
    if (exact_) {
      cells = choose_exact(n, py_int(ratio_ * static_cast<double>(n)), rng);
    } else {
      cells.resize(static_cast<size_t>(n));
      for (auto& c : cells) c = rng.bernoulli(ratio_) ? 1 : 0;
    }
    // The whole grid as one "frame" of t*h cells by w.
    return tile_frames(cells, {1}, grid[0] * grid[1], grid[2]).view({grid[0], grid[1], grid[2]});
  }

 private:
  double ratio_;
  bool exact_;
};

}  // namespace

BEVT_REGISTER(bevt::plugin<bevt::Masker, Blockwise>(
    "blockwise", "BEiT block-wise mask on (h, w) (BEVT image stream: 98 of 14x14, blocks >= 16), same on every t"));
BEVT_REGISTER(bevt::plugin<bevt::Masker, BevtTube>(
    "bevt_tube", "BEVT video mask: one blockwise (h, w) mask over a random cyclic run of temporal slots"));
BEVT_REGISTER(bevt::plugin<bevt::Masker, TubeRandom>(
    "tube_random", "VideoMAE tube mask: exactly int(ratio*h*w) random cells per frame, the same on every t"));
BEVT_REGISTER(bevt::plugin<bevt::Masker, RandomMasker>(
    "random", "random cells of the whole (t, h, w) grid: exactly int(ratio*N), or each independently"));

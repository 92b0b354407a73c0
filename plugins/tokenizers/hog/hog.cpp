// `hog`: histograms of oriented gradients of the masked cells as regression targets (MaskFeat, Wei et al. 2022),
// offered beside BEVT's token targets, never instead of them. As MaskFeat's HOG layer computes them: per channel,
// Sobel gradients of the reflect-padded view, each pixel's magnitude (weighted by a Gaussian window over its
// token cell, std = side / 2) added to the bin of its unsigned orientation (`bins` bins over 180 degrees), summed
// over cell x cell pixels, each histogram scaled to unit L2 norm. A token cell (downsample pixels a side) holds
// (downsample / cell)^2 HOG cells; its target vector is ordered (channel, bin, cell row, cell column). luma = true
// takes the luminance only. Nothing is trained and nothing is loaded. The binning goes through a one-hot sum rather
// than MaskFeat's scatter_add_, so that it is deterministic on every device (and runs on the meta device).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <string>

#include "bevt/config.h"
#include "bevt/context.h"
#include "bevt/error.h"
#include "bevt/plugin.h"
#include "bevt/tokenizer.h"

namespace {

namespace F = torch::nn::functional;

class Hog : public bevt::Tokenizer {
 public:
  static std::vector<bevt::KeySpec> keys() {
    using bevt::key;
    return {
        key("input_size", int64_t{112}, "side of the square views the targets are cut from (the host resizes to it)"),
        key("downsample", int64_t{8}, "token cell side in view pixels: one target vector per cell"),
        key("cell", int64_t{8}, "HOG cell side in pixels (MaskFeat's pool); must divide downsample"),
        key("bins", int64_t{9}, "orientation bins over 180 degrees (MaskFeat: 9)"),
        key("gaussian", true, "weight magnitudes by a Gaussian window over each token cell (MaskFeat's gaussian_window)"),
        key("norm", "l2", "\"l2\": each histogram scaled to unit L2 norm (MaskFeat) | \"none\""),
        key("luma", false, "the luminance only (ITU-R BT.601 weights): one histogram per cell instead of 3"),
        key("eps", 1e-12, "a histogram's norm is at least this before scaling (MaskFeat: 1e-12; raise it, e.g. "
                          "1e-3, where views have flat areas, whose rounding-level gradients it would blow up)"),
    };
  }

  Hog(const bevt::Config& cfg, const bevt::BuildContext&) {
    input_ = cfg.get_int("input_size");
    d_ = cfg.get_int("downsample");
    cell_ = cfg.get_int("cell");
    bins_ = cfg.get_int("bins");
    gaussian_ = cfg.get_bool("gaussian");
    norm_ = cfg.get_string("norm");
    eps_ = cfg.get_float("eps");
    luma_ = cfg.get_bool("luma");
    auto need = [&](bool ok, const char* k, const std::string& what) {
      if (!ok) throw bevt::UserError(fmt::format("{}: {} must be {}", cfg.where(k), k, what));
    };
    need(d_ >= 2, "downsample", ">= 2");
    need(input_ > 0 && input_ % d_ == 0, "input_size", fmt::format("a positive multiple of downsample = {}", d_));
    need(cell_ >= 1 && d_ % cell_ == 0, "cell", fmt::format("a divisor of downsample = {}", d_));
    need(bins_ >= 2, "bins", ">= 2");
    need(norm_ == "l2" || norm_ == "none", "norm", "\"l2\" or \"none\"");
    need(eps_ > 0, "eps", "> 0");
    const torch::Tensor sobel = torch::tensor({1.f, 0.f, -1.f, 2.f, 0.f, -2.f, 1.f, 0.f, -1.f}).reshape({1, 1, 3, 3});
    const int64_t c = channels();
    weight_x_ = sobel.repeat({c, 1, 1, 1});
    weight_y_ = sobel.transpose(2, 3).repeat({c, 1, 1, 1}).contiguous();
    // MaskFeat's window: 1-D Gaussian over the cell side, centred, std = side / 2 (integer division), the outer
    // product normalised to sum 1.
    torch::Tensor n = torch::arange(d_, torch::kFloat32);
    n = (n - n.mean()) / static_cast<float>(d_ / 2);
    const torch::Tensor g = torch::exp(-0.5 * n * n);
    const torch::Tensor g2 = torch::outer(g, g);
    gkern_ = g2 / g2.sum();
  }

  int64_t target_dim() const override { return channels() * bins_ * (d_ / cell_) * (d_ / cell_); }
  int64_t vocab_size() const override { return target_dim(); }
  int64_t input_size() const override { return input_; }
  int64_t downsample() const override { return d_; }

  torch::Tensor logits(const torch::Tensor&) override { throw bevt::UserError(not_tokens()); }
  torch::Tensor tokenize(const torch::Tensor&) override { throw bevt::UserError(not_tokens()); }

  torch::Tensor targets(const torch::Tensor& images) override {
    if (images.dim() != 4 || images.size(1) != 3 || images.size(2) % d_ != 0 || images.size(3) % d_ != 0 ||
        images.size(2) < 2 || images.size(3) < 2)
      throw bevt::UserError(fmt::format("hog: views must be [N,3,H,W] with H and W multiples of downsample = {}, got {}",
                                        d_, fmt::join(images.sizes(), "x")));
    bevt::check_unit_range(images, "hog input");
    torch::NoGradGuard no_grad;
    torch::Tensor x = images.to(torch::kFloat32);
    if (luma_) x = bevt::luminance(x);
    const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
    x = reflect_pad1(x);
    const auto conv = F::Conv2dFuncOptions().groups(C);
    // The filters are constants, not state: moved to the views' device here (no buffers in any state dict).
    const torch::Tensor gx = F::conv2d(x, weight_x_.to(x.device()), conv);
    const torch::Tensor gy = F::conv2d(x, weight_y_.to(x.device()), conv);
    torch::Tensor mag = torch::stack({gx, gy}, -1).norm(2, -1);  // [N, C, H, W]
    // Unsigned orientation: atan2 in (-pi, pi] scaled to (-bins, bins], floored, taken modulo bins.
    const torch::Tensor bin = torch::remainder(torch::floor(torch::atan2(gx, gy) / M_PI * bins_), bins_).to(torch::kLong);
    if (gaussian_) mag = mag * gkern_.to(x.device()).repeat({H / d_, W / d_});
    // [N, C, H, W, bins] → sum over each cell x cell block → [N, C, bins, Hc, Wc].
    const torch::Tensor onehot = bin.unsqueeze(-1) == torch::arange(bins_, bin.options());
    torch::Tensor hist = onehot.to(mag.dtype()) * mag.unsqueeze(-1);
    hist = hist.reshape({N, C, H / cell_, cell_, W / cell_, cell_, bins_}).sum({3, 5}).permute({0, 1, 4, 2, 3});
    if (norm_ == "l2") hist = F::normalize(hist, F::NormalizeFuncOptions().p(2).dim(2).eps(eps_));
    // Token cells: [N, C, bins, h, k, w, k] → [N, C * bins * k * k, h, w] in (channel, bin, row, column) order.
    const int64_t k = d_ / cell_, h = H / d_, w = W / d_;
    return hist.reshape({N, C, bins_, h, k, w, k}).permute({0, 1, 2, 4, 6, 3, 5}).reshape({N, -1, h, w}).contiguous();
  }

 private:
  int64_t channels() const { return luma_ ? 1 : 3; }
  // Reflect padding by one pixel (F::pad's kReflect) as two index_selects: the same values, and it runs on
  // every device, the meta device included (reflection_pad2d has no meta kernel in libtorch).
  static torch::Tensor reflect_pad1(const torch::Tensor& x) {
    auto index = [&](int64_t n) {
      torch::Tensor i = torch::arange(-1, n + 1, torch::TensorOptions().dtype(torch::kLong));
      i = torch::where(i < 0, -i, torch::where(i >= n, 2 * n - 2 - i, i));
      return i.to(x.device());
    };
    return x.index_select(2, index(x.size(2))).index_select(3, index(x.size(3)));
  }
  static std::string not_tokens() {
    return "the hog tokenizer gives regression targets (targets()), not token ids or logits: it serves "
           "pre-training only";
  }
  int64_t input_ = 112, d_ = 8, cell_ = 8, bins_ = 9;
  bool gaussian_ = true, luma_ = false;
  std::string norm_ = "l2";
  double eps_ = 1e-12;
  torch::Tensor weight_x_, weight_y_, gkern_;  // Sobel filters [C, 1, 3, 3]; the window [downsample, downsample]
};

}  // namespace

BEVT_REGISTER(bevt::plugin<bevt::Tokenizer, Hog>(
    "hog", "regression targets: each cell's histograms of oriented gradients (MaskFeat), beside the token targets"));

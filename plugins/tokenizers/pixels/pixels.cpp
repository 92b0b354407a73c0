// `pixels`: the masked cells' own pixels as regression targets (MAE, He et al. 2022, norm_pix_loss; VideoMAE
// per frame), offered beside BEVT's token targets, never instead of them. Each downsample x downsample cell of
// the tokenizer view becomes one target vector of its pixels in (row, column, channel) order, MAE's patchify
// order; with norm = "patch" each vector is standardised on its own (mean 0, variance 1, MAE's unbiased
// variance and eps), so a target tells the cell's pattern rather than its brightness or colour. luma = true
// takes the luminance only (one value per pixel), for data where colour is a nuisance. Nothing is trained and
// nothing is loaded: the targets are a fixed function of the view. The decoders' lm_head gets target_dim()
// outputs (vocab_size() returns it) and pre-training minimises the masked mean squared error (mim_metrics).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <string>

#include "bevt/config.h"
#include "bevt/context.h"
#include "bevt/error.h"
#include "bevt/plugin.h"
#include "bevt/tokenizer.h"

namespace {

class Pixels : public bevt::Tokenizer {
 public:
  static std::vector<bevt::KeySpec> keys() {
    using bevt::key;
    return {
        key("input_size", int64_t{112}, "side of the square views the targets are cut from (the host resizes to it)"),
        key("downsample", int64_t{8}, "cell side in view pixels: one target vector per cell"),
        key("norm", "patch", "\"patch\": each cell's vector standardised on its own (MAE's norm_pix_loss) | \"none\""),
        key("eps", 1e-6, "added to a cell's variance before the square root (MAE: 1e-6)"),
        key("luma", false, "the luminance only (ITU-R BT.601 weights): downsample^2 values per cell instead of 3x"),
    };
  }

  Pixels(const bevt::Config& cfg, const bevt::BuildContext&) {
    input_ = cfg.get_int("input_size");
    d_ = cfg.get_int("downsample");
    norm_ = cfg.get_string("norm");
    eps_ = cfg.get_float("eps");
    luma_ = cfg.get_bool("luma");
    auto need = [&](bool ok, const char* k, const std::string& what) {
      if (!ok) throw bevt::UserError(fmt::format("{}: {} must be {}", cfg.where(k), k, what));
    };
    need(d_ >= 1, "downsample", ">= 1");
    need(input_ > 0 && input_ % d_ == 0, "input_size", fmt::format("a positive multiple of downsample = {}", d_));
    need(norm_ == "patch" || norm_ == "none", "norm", "\"patch\" or \"none\"");
    need(eps_ > 0, "eps", "> 0");
    need(norm_ != "patch" || target_dim() >= 2, "downsample",
         ">= 2 with luma = true and norm = \"patch\" (a one-value cell has no variance to normalise)");
  }

  int64_t target_dim() const override { return d_ * d_ * (luma_ ? 1 : 3); }
  int64_t vocab_size() const override { return target_dim(); }
  int64_t input_size() const override { return input_; }
  int64_t downsample() const override { return d_; }

  torch::Tensor logits(const torch::Tensor&) override { throw bevt::UserError(not_tokens()); }
  torch::Tensor tokenize(const torch::Tensor&) override { throw bevt::UserError(not_tokens()); }

  torch::Tensor targets(const torch::Tensor& images) override {
    if (images.dim() != 4 || images.size(1) != 3 || images.size(2) % d_ != 0 || images.size(3) % d_ != 0)
      throw bevt::UserError(fmt::format("pixels: views must be [N,3,H,W] with H and W multiples of downsample = {}, "
                                        "got {}",
                                        d_, fmt::join(images.sizes(), "x")));
    bevt::check_unit_range(images, "pixels input");
    torch::Tensor x = images.to(torch::kFloat32);
    if (luma_) x = bevt::luminance(x);
    const int64_t N = x.size(0), C = x.size(1), h = x.size(2) / d_, w = x.size(3) / d_;
    torch::Tensor t = x.reshape({N, C, h, d_, w, d_}).permute({0, 2, 4, 3, 5, 1}).reshape({N, h, w, -1});
    if (norm_ == "patch") {
      const torch::Tensor mean = t.mean(-1, /*keepdim=*/true);
      const torch::Tensor var = t.var(-1, /*unbiased=*/true, /*keepdim=*/true);
      t = (t - mean) / (var + eps_).sqrt();
    }
    return t.permute({0, 3, 1, 2}).contiguous();
  }

 private:
  static std::string not_tokens() {
    return "the pixels tokenizer gives regression targets (targets()), not token ids or logits: it serves "
           "pre-training only";
  }
  int64_t input_ = 112, d_ = 8;
  std::string norm_ = "patch";
  double eps_ = 1e-6;
  bool luma_ = false;
};

}  // namespace

BEVT_REGISTER(bevt::plugin<bevt::Tokenizer, Pixels>(
    "pixels", "regression targets: each cell's normalised pixels (MAE / VideoMAE), beside the token targets"));

// Weight loading for VideoSwin: official 3D checkpoints (fine-tune or BEVT pre-train, with or without the
// relative_position_index buffers), 2D Swin checkpoints by inflation, and tables trained with another
// temporal window (trilinear resize). Export writes the official names.
#include <fmt/format.h>

#include "bevt/error.h"
#include "bevt/strings.h"
#include "video_swin.h"

namespace bevt::swin {

namespace {

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

// [L, nH] table of a (2a-1)x(2b-1)x(2c-1) grid resized to another grid.
torch::Tensor resize_table(const torch::Tensor& t, const Dims3& from, const Dims3& to, bool cubic2d) {
  const int64_t nH = t.size(1);
  auto x = t.to(torch::kFloat32).permute({1, 0});
  namespace F = torch::nn::functional;
  if (cubic2d) {
    auto y = F::interpolate(x.reshape({1, nH, from[1], from[2]}),
                            F::InterpolateFuncOptions().size(std::vector<int64_t>{to[1], to[2]}).mode(torch::kBicubic)
                                .align_corners(false));
    return y.reshape({nH, to[1] * to[2]}).permute({1, 0}).contiguous();
  }
  auto y = F::interpolate(x.reshape({1, nH, from[0], from[1], from[2]}),
                          F::InterpolateFuncOptions()
                              .size(std::vector<int64_t>{to[0], to[1], to[2]})
                              .mode(torch::kTrilinear)
                              .align_corners(false));
  return y.reshape({nH, to[0] * to[1] * to[2]}).permute({1, 0}).contiguous();
}

}  // namespace

TensorMap VideoSwin::inflate_2d(TensorMap t) const {
  const auto& w = opts_.window_size;
  const int64_t pD = opts_.patch_size[0];
  TensorMap out;
  for (auto& [k, v] : t) {
    if (ends_with(k, "attn_mask") || starts_with(k, "head.")) continue;
    if (starts_with(k, "fc_norm.")) {
      out["norm." + k.substr(8)] = v;
      continue;
    }
    out[k] = v;
  }
  auto find = [&](const std::string& k) -> torch::Tensor {
    auto it = out.find(k);
    if (it == out.end()) throw UserError(fmt::format("video_swin: inflate_2d: the 2D checkpoint has no '{}'", k));
    return it->second;
  };
  // A bevt checkpoint trained on the image stream alone (BEVT-I, supervised image pre-training) is 3D, but
  // only its 2D patch embedding and the Δt=0 slice of each table were trained: inflate those, as the official
  // code inflates its 2D image-stream checkpoint.
  auto pe2 = out.find("patch_embed_2d.proj.weight");
  if (out.count("patch_embed.proj.weight") && out.at("patch_embed.proj.weight").dim() == 5 && pe2 != out.end()) {
    for (const char* s : {"proj.weight", "proj.bias", "norm.weight", "norm.bias"}) {
      auto it = out.find(std::string("patch_embed_2d.") + s);
      if (it != out.end()) out[std::string("patch_embed.") + s] = it->second;
    }
    for (auto& [k, v] : out) {
      if (!ends_with(k, "relative_position_bias_table")) continue;
      const int64_t plane = (2 * w[1] - 1) * (2 * w[2] - 1), depth = v.size(0) / plane;
      if (v.size(0) % plane != 0 || depth % 2 == 0)
        throw UserError(fmt::format("video_swin: inflate_2d: {} has {} rows, not a 3D table of this spatial window",
                                    k, v.size(0)));
      v = v.narrow(0, (depth / 2) * plane, plane);
    }
  }
  auto w2d = find("patch_embed.proj.weight");
  if (w2d.dim() != 4)
    throw UserError(fmt::format("video_swin: inflate_2d expects a 2D patch_embed.proj.weight [C,3,h,w], got {} dims",
                                w2d.dim()));
  out["patch_embed_2d.proj.weight"] = w2d;
  for (const char* s : {"proj.bias", "norm.weight", "norm.bias"}) {
    auto it = out.find(std::string("patch_embed.") + s);
    if (it != out.end()) out[std::string("patch_embed_2d.") + s] = it->second;
  }
  out["patch_embed.proj.weight"] = w2d.unsqueeze(2).repeat({1, 1, pD, 1, 1}) / static_cast<double>(pD);
  const int64_t L2 = (2 * w[1] - 1) * (2 * w[2] - 1);
  for (auto& [k, v] : out) {
    if (!ends_with(k, "relative_position_bias_table")) continue;
    torch::Tensor tab = v;
    if (tab.size(0) != L2) {
      auto S1 = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(tab.size(0)))));
      if (S1 * S1 != tab.size(0))
        throw UserError(fmt::format("video_swin: inflate_2d: {} has {} rows, not a square 2D table", k, tab.size(0)));
      tab = resize_table(tab, {1, S1, S1}, {1, 2 * w[1] - 1, 2 * w[2] - 1}, true);
    }
    v = tab.repeat({2 * w[0] - 1, 1});
  }
  return out;
}

void VideoSwin::resize_tables(TensorMap& t, const LoadOptions& lo) const {
  const auto& w = opts_.window_size;
  const int64_t rows = (2 * w[0] - 1) * (2 * w[1] - 1) * (2 * w[2] - 1);
  for (auto& [k, v] : t) {
    if (!ends_with(k, "relative_position_bias_table") || v.dim() != 2 || v.size(0) == rows) continue;
    Dims3 from;
    if (!opts_.pretrained_window_size.empty()) {
      const auto& p = opts_.pretrained_window_size;
      from = {2 * p[0] - 1, 2 * p[1] - 1, 2 * p[2] - 1};
    } else {
      // Same spatial window, another temporal one (e.g. the (8,7,7) pre-training under a (16,7,7) model).
      const int64_t plane = (2 * w[1] - 1) * (2 * w[2] - 1);
      if (v.size(0) % plane != 0 || (v.size(0) / plane) % 2 == 0)
        throw UserError(fmt::format(
            "{}: {} has {} rows; this model's window [{},{},{}] needs {} (set pretrained_window_size to the window "
            "the weights were trained with)",
            lo.source.empty() ? "weights" : lo.source, k, v.size(0), w[0], w[1], w[2], rows));
      from = {v.size(0) / plane, 2 * w[1] - 1, 2 * w[2] - 1};
    }
    if (from[0] * from[1] * from[2] != v.size(0))
      throw UserError(fmt::format("{}: {} has {} rows, pretrained_window_size implies {}",
                                  lo.source.empty() ? "weights" : lo.source, k, v.size(0),
                                  from[0] * from[1] * from[2]));
    v = resize_table(v, from, {2 * w[0] - 1, 2 * w[1] - 1, 2 * w[2] - 1}, false);
  }
}

LoadReport VideoSwin::load_weights(const TensorMap& tensors, const LoadOptions& opts) {
  TensorMap t = strip_prefixes(tensors, opts.strip_prefixes);
  // Buffers rebuilt from the window; decoder weights that BEVT keeps in its backbone belong to the MIM heads.
  TensorMap kept;
  for (auto& [k, v] : t) {
    if (ends_with(k, "relative_position_index") || ends_with(k, "attn_mask")) continue;
    if (starts_with(k, "lm_down.") || starts_with(k, "lm_down_st.") || starts_with(k, "fpn.") ||
        starts_with(k, "fpn_s.") || starts_with(k, "fpn_t."))
      continue;
    kept[k] = v;
  }
  auto pe = kept.find("patch_embed.proj.weight");
  bool inflate = opts_.inflate_2d || (pe != kept.end() && pe->second.dim() == 4);
  if (inflate) kept = inflate_2d(std::move(kept));
  resize_tables(kept, opts);
  // Official fine-tune checkpoints (SwinTransformer3D) have no BEVT image embedding or mask token.
  bool has_2d = false, has_token = kept.count("mask_token") > 0;
  for (auto& [k, v] : kept) has_2d = has_2d || starts_with(k, "patch_embed_2d.");
  std::vector<std::string> kept_own;
  if (!has_2d || !has_token) {
    for (auto& item : named_parameters()) {
      const std::string& k = item.key();
      if ((!has_2d && starts_with(k, "patch_embed_2d.")) || (!has_token && k == "mask_token")) {
        kept[k] = item.value().detach().clone();
        kept_own.push_back(k);
      }
    }
  }
  LoadOptions lo = opts;
  lo.strip_prefixes = {};
  LoadReport rep = load_state_dict(*this, kept, lo);
  rep.loaded -= std::min(rep.loaded, kept_own.size());
  for (auto& k : kept_own) rep.missing.push_back(k);  // reported, kept at their initial values
  clear_caches();
  return rep;
}

TensorMap VideoSwin::export_weights() const { return state_dict(*this); }

}  // namespace bevt::swin

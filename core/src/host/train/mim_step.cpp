#include "mim_step.h"

#include "mim_metrics.h"

namespace bevt::host::train {

namespace {
// The stream's targets on the view's cells: token ids [N, h, w], or regression targets [N, h, w, K].
torch::Tensor stream_targets(Tokenizer& tokenizer, const torch::Tensor& views) {
  if (tokenizer.target_dim() == 0) return tokenizer.tokenize(views);
  torch::NoGradGuard no_grad;
  return tokenizer.targets(views).permute({0, 2, 3, 1});
}

// The flattened [B * L] positions whose outputs the step computes: the masked cells, which are all the loss
// reads (the decoders run their final norm and lm_head on those rows alone: an 8192-way classifier on about half
// the cells). nonzero() has a data-dependent size, so on a GPU it waits for the mask, once per stream, as the
// official x[bool_masked_pos] does; the meta device cannot size it at all, so there every position is kept (the
// terms are the same: positions outside the mask weigh nothing).
torch::Tensor loss_rows(const torch::Tensor& mask) {
  const torch::Tensor flat = mask.reshape({-1});
  if (flat.is_meta()) return torch::arange(flat.numel(), flat.options().dtype(torch::kLong));
  return flat.nonzero().squeeze(1);
}

std::map<std::string, torch::Tensor> terms_of(Tokenizer& tokenizer, Head& head, const Features& f,
                                              Backbone& backbone, const torch::Tensor& targets,
                                              const torch::Tensor& mask, const std::string& stream) {
  const torch::Tensor rows = loss_rows(mask);
  const torch::Tensor out = head.forward_at(f, backbone, rows, mask[0].numel());
  if (tokenizer.target_dim() == 0) return masked_token_terms_at(out, rows, targets, mask, stream);
  return masked_regression_terms_at(out, rows, targets, mask, stream);
}
}  // namespace

std::map<std::string, torch::Tensor> mim_stream_terms(const std::string& stream, Backbone& backbone, Head& head,
                                                      Tokenizer& tokenizer, const torch::Tensor& input,
                                                      const torch::Tensor& view, const MaskForGrid& mask_for,
                                                      torch::Tensor* targets) {
  if (stream == "image") {
    torch::Tensor tokens = stream_targets(tokenizer, view);  // [B, h, w] (regression: [B, h, w, K])
    if (targets) *targets = tokens.flatten(1, 2);
    torch::Tensor mask = mask_for({1, tokens.size(1), tokens.size(2)}).squeeze(1);
    Features f = backbone.forward_image(input, mask);
    return terms_of(tokenizer, head, f, backbone, tokens, mask, "image");
  }
  const int64_t B = view.size(0), T = view.size(1);
  // Every frame is a target: [B, T, h, w] (regression: [B, T, h, w, K]).
  torch::Tensor tokens = stream_targets(tokenizer, view.flatten(0, 1)).unflatten(0, {B, T});
  if (targets) *targets = tokens.flatten(1, 3);
  auto grid = backbone.spec().token_grid(input.size(2), input.size(3), input.size(4));
  torch::Tensor mask = mask_for({grid[0], tokens.size(2), tokens.size(3)});
  Features f = backbone.forward_video(input, mask);
  // Targets are per frame: a masked temporal slot masks each frame it covers.
  torch::Tensor frame_mask = mask.repeat_interleave(T / grid[0], 1);
  return terms_of(tokenizer, head, f, backbone, tokens, frame_mask, "video");
}

torch::Tensor to_device(const torch::Tensor& t, const torch::Device& device) {
  if (t.device() == device) return t;
  if (device.is_cuda() && t.is_cpu()) return (t.is_pinned() ? t : t.pin_memory()).to(device, /*non_blocking=*/true);
  return t.to(device);
}

}  // namespace bevt::host::train

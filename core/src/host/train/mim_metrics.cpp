#include "mim_metrics.h"

#include <fmt/format.h>

#include "bevt/error.h"

namespace bevt::host::train {

torch::Tensor copy_baseline_accuracy(const torch::Tensor& tokens, const torch::Tensor& mask, int64_t vocab) {
  torch::NoGradGuard no_grad;
  // Per-sample counts of the visible tokens: scatter_add keeps this [B, V], never [B, L, V].
  torch::Tensor visible = (~mask).to(torch::kFloat);
  torch::Tensor counts = torch::zeros({tokens.size(0), vocab}, visible.options());
  counts.scatter_add_(1, tokens, visible);
  torch::Tensor modal = counts.argmax(1, /*keepdim=*/true);  // first maximum: the smallest id on ties
  torch::Tensor hits = (tokens == modal).index({mask});
  if (hits.numel() == 0) return torch::zeros({}, visible.options());
  return hits.to(torch::kFloat).mean();
}

std::map<std::string, torch::Tensor> masked_token_terms(const torch::Tensor& logits, const torch::Tensor& tokens,
                                                        const torch::Tensor& mask, const std::string& stream) {
  torch::Tensor sel = mask.reshape({mask.size(0), -1});
  torch::Tensor tgt = tokens.reshape({tokens.size(0), -1});
  if (logits.size(1) != sel.size(1))
    throw UserError(fmt::format("{} stream: the decoder predicts {} positions but the tokenizer gives {} targets "
                                "(make the tokenizer view size / tokenizer downsample equal the decoder grid: "
                                "e.g. set data.{}.tokenizer_size)",
                                stream, logits.size(1), sel.size(1), stream));
  torch::Tensor l = logits.index({sel});
  torch::Tensor t = tgt.index({sel});
  std::map<std::string, torch::Tensor> out;
  if (t.numel() == 0) {
    out["loss_" + stream] = logits.sum() * 0;
    out["acc_" + stream] = torch::zeros({});
    out["copy_" + stream] = torch::zeros({});
    return out;
  }
  out["loss_" + stream] = torch::nn::functional::cross_entropy(l, t);
  out["acc_" + stream] = (l.argmax(-1) == t).to(torch::kFloat).mean().detach();
  out["copy_" + stream] = copy_baseline_accuracy(tgt, sel, logits.size(2));
  return out;
}

}  // namespace bevt::host::train

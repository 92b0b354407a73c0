#include "mim_metrics.h"

#include <fmt/format.h>

#include "bevt/error.h"

namespace bevt::host::train {

// Every term is a masked mean (sum over masked cells / their count): no boolean indexing, so no data-dependent
// shape and no host sync inside the step; the count is clamped to 1, so a batch with nothing masked gives 0.
namespace {
torch::Tensor masked_mean(const torch::Tensor& values, const torch::Tensor& weight) {
  return (values * weight).sum() / weight.sum().clamp_min(1);
}
}  // namespace

torch::Tensor copy_baseline_accuracy(const torch::Tensor& tokens, const torch::Tensor& mask, int64_t vocab) {
  torch::NoGradGuard no_grad;
  // Per-sample counts of the visible tokens: scatter_add keeps this [B, V], never [B, L, V].
  torch::Tensor visible = (~mask).to(torch::kFloat);
  torch::Tensor counts = torch::zeros({tokens.size(0), vocab}, visible.options());
  counts.scatter_add_(1, tokens, visible);
  torch::Tensor modal = counts.argmax(1, /*keepdim=*/true);  // first maximum: the smallest id on ties
  return masked_mean((tokens == modal).to(torch::kFloat), mask.to(torch::kFloat));
}

namespace {
torch::Tensor all_rows(const torch::Tensor& out) {
  return torch::arange(out.size(0) * out.size(1), torch::TensorOptions().dtype(torch::kLong).device(out.device()));
}
}  // namespace

std::map<std::string, torch::Tensor> masked_token_terms(const torch::Tensor& logits, const torch::Tensor& tokens,
                                                        const torch::Tensor& mask, const std::string& stream) {
  const int64_t positions = mask.reshape({mask.size(0), -1}).size(1);
  if (logits.size(1) != positions)
    throw UserError(fmt::format("{} stream: the decoder predicts {} positions but the tokenizer gives {} targets "
                                "(make the tokenizer view size / tokenizer downsample equal the decoder grid: "
                                "e.g. set data.{}.tokenizer_size)",
                                stream, logits.size(1), positions, stream));
  return masked_token_terms_at(logits.reshape({-1, logits.size(2)}), all_rows(logits), tokens, mask, stream);
}

std::map<std::string, torch::Tensor> masked_token_terms_at(const torch::Tensor& logits, const torch::Tensor& rows,
                                                           const torch::Tensor& tokens, const torch::Tensor& mask,
                                                           const std::string& stream) {
  const torch::Tensor sel = mask.reshape({mask.size(0), -1});
  const torch::Tensor tgt = tokens.reshape({tokens.size(0), -1});
  const torch::Tensor w = sel.reshape({-1}).index_select(0, rows).to(torch::kFloat);
  const torch::Tensor t = tgt.reshape({-1}).index_select(0, rows);
  namespace F = torch::nn::functional;
  // Cross-entropy in float32 whatever autocast gave the logits, as autocast itself runs cross_entropy.
  const torch::Tensor ce = F::cross_entropy(logits.to(torch::kFloat), t, F::CrossEntropyFuncOptions().reduction(torch::kNone));
  std::map<std::string, torch::Tensor> out;
  out["loss_" + stream] = masked_mean(ce, w);
  {
    torch::NoGradGuard no_grad;
    out["acc_" + stream] = masked_mean((logits.argmax(-1) == t).to(torch::kFloat), w);
  }
  out["copy_" + stream] = copy_baseline_accuracy(tgt, sel, logits.size(1));
  return out;
}

std::map<std::string, torch::Tensor> masked_regression_terms(const torch::Tensor& pred, const torch::Tensor& targets,
                                                             const torch::Tensor& mask, const std::string& stream) {
  const int64_t positions = mask.reshape({mask.size(0), -1}).size(1);
  const int64_t target_cells = targets.reshape({targets.size(0), -1, targets.size(-1)}).size(1);
  if (pred.size(1) != positions || pred.size(1) != target_cells)
    throw UserError(fmt::format("{} stream: the decoder predicts {} positions but the target tokenizer gives {} "
                                "(make the tokenizer view size / its downsample equal the decoder grid: e.g. set "
                                "data.{}.tokenizer_size)",
                                stream, pred.size(1), target_cells, stream));
  return masked_regression_terms_at(pred.reshape({-1, pred.size(2)}), all_rows(pred), targets, mask, stream);
}

std::map<std::string, torch::Tensor> masked_regression_terms_at(const torch::Tensor& pred, const torch::Tensor& rows,
                                                                const torch::Tensor& targets,
                                                                const torch::Tensor& mask, const std::string& stream) {
  const int64_t K = targets.size(-1);
  if (pred.size(1) != K)
    throw UserError(fmt::format("{} stream: the decoder predicts {} values per cell but the targets have {} (the "
                                "decoders' vocab_size must be 0, taking the tokenizer's target_dim)",
                                stream, pred.size(1), K));
  const torch::Tensor w = mask.reshape({-1}).index_select(0, rows).to(torch::kFloat);
  const torch::Tensor t = targets.reshape({-1, K}).index_select(0, rows).to(torch::kFloat);
  std::map<std::string, torch::Tensor> out;
  out["loss_" + stream] = masked_mean((pred.to(torch::kFloat) - t).pow(2).mean(-1), w);
  {
    torch::NoGradGuard no_grad;
    out["zero_" + stream] = masked_mean(t.pow(2).mean(-1), w);
  }
  return out;
}

}  // namespace bevt::host::train

// Masked-token metrics of pre-training: the loss and accuracy on masked positions, and a trivial baseline to
// read that accuracy against.
#pragma once

#include <map>
#include <string>

#include "bevt/torch.h"

namespace bevt::host::train {

// Cross-entropy and accuracy over the masked positions, and the copy baseline, as "loss_<stream>",
// "acc_<stream>" and "copy_<stream>". logits [B, L, V]; tokens and mask [B, ...] with L positions each.
// Throws UserError when L differs (the tokenizer view does not match the decoder's grid).
std::map<std::string, torch::Tensor> masked_token_terms(const torch::Tensor& logits, const torch::Tensor& tokens,
                                                        const torch::Tensor& mask, const std::string& stream);

// The same terms from the outputs at some positions only: rows `rows` [M] of the flattened [B * L] positions,
// logits [M, V] (a head's forward_at()). Positions outside `mask` among the rows weigh nothing, so the rows may
// be the masked cells (the pre-training step) or all of them (the function above); the terms are the same.
std::map<std::string, torch::Tensor> masked_token_terms_at(const torch::Tensor& logits, const torch::Tensor& rows,
                                                           const torch::Tensor& tokens, const torch::Tensor& mask,
                                                           const std::string& stream);

// Regression targets (a tokenizer with target_dim() > 0): the mean squared error over the masked cells as
// "loss_<stream>" (each cell's error averaged over its K values, as MAE's loss), and "zero_<stream>", the error of
// predicting zeros (for normalised targets: the variance a model has to explain). pred [B, L, K]; targets
// [B, ..., K] and mask [B, ...] with L cells each. UserError when L or K differ.
std::map<std::string, torch::Tensor> masked_regression_terms(const torch::Tensor& pred, const torch::Tensor& targets,
                                                             const torch::Tensor& mask, const std::string& stream);

// The regression terms from the outputs at rows `rows` only (pred [M, K]), as masked_token_terms_at.
std::map<std::string, torch::Tensor> masked_regression_terms_at(const torch::Tensor& pred, const torch::Tensor& rows,
                                                                const torch::Tensor& targets,
                                                                const torch::Tensor& mask, const std::string& stream);

// The copy baseline: the accuracy of predicting every masked token of a sample as that sample's most
// frequent visible token (ties: the smallest id; a sample with nothing visible predicts id 0). It reads the
// visible tokens, which the encoder never sees (it sees pixels), so it measures how much the context gives
// away, not what a model should reach at once. tokens [B, L] int64, mask [B, L] bool, vocab V.
torch::Tensor copy_baseline_accuracy(const torch::Tensor& tokens, const torch::Tensor& mask, int64_t vocab);

}  // namespace bevt::host::train

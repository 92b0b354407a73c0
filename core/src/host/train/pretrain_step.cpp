#include "pretrain_step.h"

#include <fmt/format.h>

#include "bevt/error.h"

namespace bevt::host::train {

std::map<std::string, torch::Tensor> pretrain_iteration(Backbone& backbone, Tokenizer& tokenizer,
                                                        const std::vector<StreamBatch>& streams,
                                                        std::map<std::string, torch::Tensor>* targets) {
  if (streams.empty()) throw UserError("pre-training needs at least one stream (pretrain.streams)");
  std::map<std::string, torch::Tensor> out;
  torch::Tensor total;
  for (const auto& s : streams) {
    if (!s.head) throw std::logic_error(fmt::format("pretrain_iteration: the {} stream has no head", s.name));
    torch::Tensor* t = targets ? &(*targets)[s.name] : nullptr;
    auto terms = mim_stream_terms(s.name, backbone, *s.head, tokenizer, s.input, s.view, s.mask_for, t);
    const torch::Tensor weighted = s.weight * terms.at("loss_" + s.name);
    total = total.defined() ? total + weighted : weighted;
    out.insert(terms.begin(), terms.end());
  }
  out["loss"] = total;
  return out;
}

}  // namespace bevt::host::train

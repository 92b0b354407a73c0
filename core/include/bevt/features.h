// Named feature maps in the order a backbone produced them ("patch_embed", "stage1", ..., "out").
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "bevt/torch.h"

namespace bevt {

class Features {
 public:
  void add(std::string name, torch::Tensor t) { items_.emplace_back(std::move(name), std::move(t)); }
  bool has(const std::string& name) const;
  const torch::Tensor& at(const std::string& name) const;  // throws UserError naming the available features
  std::vector<std::string> names() const;
  const std::vector<std::pair<std::string, torch::Tensor>>& items() const { return items_; }
  size_t size() const { return items_.size(); }

 private:
  std::vector<std::pair<std::string, torch::Tensor>> items_;
};

}  // namespace bevt

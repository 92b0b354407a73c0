// Dataset interface: indexable samples, decoded and transformed, with per-sample randomness supplied by the
// loader (derived from seed, epoch and index) so that a run does not depend on thread count or timing.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "bevt/plugin.h"
#include "bevt/rng.h"
#include "bevt/torch.h"

namespace bevt {

struct Sample {
  torch::Tensor input;           // video [3, T, H, W] or image [3, H, W], float, normalised
  torch::Tensor tokenizer_view;  // [T, 3, h, w] or [3, h, w] in [0, 1] for the tokenizer; undefined if none
  int64_t label = -1;
  std::string id;                // file or sample id, for logs and bad-file lists
  std::map<std::string, torch::Tensor> extra;
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual size_t size() const = 0;
  virtual Sample get(size_t index, Rng& rng) const = 0;  // throws on a sample that cannot be decoded
  virtual std::vector<std::string> class_names() const = 0;
  virtual bool is_video() const = 0;
};

template <>
struct KindOf<Dataset> {
  static constexpr Kind value = Kind::Dataset;
};

}  // namespace bevt

// Masker interface: a bool mask on a (t, h, w) grid, a pure function of the random state it is given.
// Image masks use t = 1.
#pragma once

#include <array>

#include "bevt/plugin.h"
#include "bevt/rng.h"
#include "bevt/torch.h"

namespace bevt {

class Masker {
 public:
  virtual ~Masker() = default;
  // Bool tensor of shape grid (t, h, w); true = masked.
  virtual torch::Tensor sample(const std::array<int64_t, 3>& grid, Rng& rng) const = 0;
};

template <>
struct KindOf<Masker> {
  static constexpr Kind value = Kind::Masker;
};

}  // namespace bevt

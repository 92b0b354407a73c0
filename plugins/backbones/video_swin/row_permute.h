// Window partition and its inverse as row permutations with a permutation as their backward. index_select's
// own backward is a scatter-add into zeros (index_add), which profiled at ~8% of a BEVT iteration on CPU; since
// every real row is read exactly once, the gradient is the inverse gather, the same numbers with no zeros,
// no atomics and no accumulation.
#pragma once

#include "bevt/torch.h"

namespace bevt::swin {

// (pad ? cat(x, zero row) : x).index_select(0, index), whose backward is
// (inverse_pad ? cat(g, zero row) : g).index_select(0, inverse). Valid when `index` reads each row of x exactly
// once (pad rows aside) and `inverse` gives, for each row of x, its position in the output (or the appended zero
// row for outputs no row of x reaches): then the two are transposes of each other. Not twice differentiable.
torch::Tensor permute_rows(const torch::Tensor& x, const torch::Tensor& index, bool pad, const torch::Tensor& inverse,
                           bool inverse_pad);

}  // namespace bevt::swin

// Loading named tensors into a module with a report of what did not fit, as PyTorch's load_state_dict does,
// plus the prefix handling official checkpoints need (mmcv's "backbone.", DDP's "module.", TimeSformer's
// "model."). Module parameter names equal the official attribute names, so no renaming table is needed.
#pragma once

#include <string>
#include <vector>

#include "bevt/tensor_map.h"

namespace bevt {

struct LoadOptions {
  bool strict = true;
  // Applied in order: when any key starts with a prefix, keys with it are kept (prefix removed) and keys
  // without it are dropped (a backbone loaded from a whole-model checkpoint ignores "cls_head.*").
  std::vector<std::string> strip_prefixes = {"module.", "backbone.", "model."};
  // Key suffixes that may be absent or present without complaint (rebuilt buffers).
  std::vector<std::string> optional_suffixes = {"relative_position_index"};
  std::string source;  // file name for messages
};

struct LoadReport {
  std::vector<std::string> missing;      // in the module, not in the file
  std::vector<std::string> unexpected;   // in the file, not in the module
  std::vector<std::string> mismatched;   // "name: file [a,b] vs module [c,d]"
  size_t loaded = 0;
  bool ok() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  // One line: counts and the first few names of each list (with the nearest module name for unexpected keys).
  std::string summary() const;
};

// Copies matching tensors into the module's parameters and buffers (no grad). Strict: throws UserError with
// the summary when anything is missing, unexpected or mis-shaped; lenient: loads what fits and reports.
LoadReport load_state_dict(torch::nn::Module& module, const TensorMap& tensors, const LoadOptions& opts = {});

// Parameters and buffers under their module names.
TensorMap state_dict(const torch::nn::Module& module);

// Applies LoadOptions::strip_prefixes to a tensor map (exposed for converters and tests).
TensorMap strip_prefixes(const TensorMap& tensors, const std::vector<std::string>& prefixes);

}  // namespace bevt

// Reading (memory-mapped, copy-on-write) and writing (atomic: temporary file, fsync, rename) safetensors files
// as torch tensors. Everything bevt writes and reads by default is in this format; names follow the official
// PyTorch state dicts so files load from Python too.
#pragma once

#include <map>
#include <string>

#include "bevt/safetensors_format.h"
#include "bevt/tensor_map.h"

namespace bevt {

struct SafetensorsFile {
  TensorMap tensors;
  std::map<std::string, std::string> metadata;
};

// Throws UserError naming the file on a missing, truncated or malformed file.
SafetensorsFile load_safetensors(const std::string& path);
// Writes atomically; the destination either keeps its old content or holds the complete new file.
void save_safetensors(const std::string& path, const TensorMap& tensors,
                      const std::map<std::string, std::string>& metadata = {});

torch::Dtype to_torch_dtype(Dtype d);
Dtype from_torch_dtype(torch::Dtype d);  // throws UserError for dtypes safetensors cannot hold here

}  // namespace bevt

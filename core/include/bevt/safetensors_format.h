// The safetensors container without torch: header parsing with every field bounds-checked against the file
// size, so that a malformed file is one clear UserError and never a crash or an out-of-bounds read. The fuzz
// target drives this directly.
//
// Layout: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets: [b, e]},
// "__metadata__": {str: str}}, then the data block; offsets are relative to the data block.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace bevt {

enum class Dtype { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };
std::string_view dtype_name(Dtype d);  // the safetensors spelling ("F32", ...)
size_t dtype_size(Dtype d);

struct TensorEntry {
  std::string name;
  Dtype dtype = Dtype::F32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offsets inside the data block
  uint64_t end = 0;
};

struct SafetensorsHeader {
  std::vector<TensorEntry> tensors;  // in file order of their data
  std::map<std::string, std::string> metadata;
  uint64_t data_offset = 0;  // 8 + header length
};

// Parses and validates the header of a whole file image (`size` bytes). `source` names the file in errors.
SafetensorsHeader parse_safetensors_header(const uint8_t* data, size_t size, const std::string& source);

// Serialises a header for tensors laid out back to back in the order given (begin/end are filled in).
std::string make_safetensors_header(std::vector<TensorEntry>& tensors,
                                    const std::map<std::string, std::string>& metadata);

}  // namespace bevt

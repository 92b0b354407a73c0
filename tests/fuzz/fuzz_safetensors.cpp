// Any byte string given to the safetensors header parser must end in a parsed header or a UserError:
// never a crash, an out-of-bounds read (ASan) or undefined behaviour (UBSan).
#include <cstddef>
#include <cstdint>

#include "bevt/error.h"
#include "bevt/safetensors_format.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto h = bevt::parse_safetensors_header(data, size, "fuzz");
    // Everything the parser accepted must lie inside the buffer.
    for (const auto& e : h.tensors)
      if (h.data_offset + e.end > size) __builtin_trap();
  } catch (const bevt::UserError&) {
  }
  return 0;
}

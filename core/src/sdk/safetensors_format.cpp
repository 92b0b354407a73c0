#include "bevt/safetensors_format.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>

#include "bevt/error.h"

namespace bevt {

namespace {
struct DtypeRow {
  Dtype dtype;
  std::string_view name;
  size_t size;
};
constexpr DtypeRow kDtypes[] = {
    {Dtype::F64, "F64", 8}, {Dtype::F32, "F32", 4}, {Dtype::F16, "F16", 2}, {Dtype::BF16, "BF16", 2},
    {Dtype::I64, "I64", 8}, {Dtype::I32, "I32", 4}, {Dtype::I16, "I16", 2}, {Dtype::I8, "I8", 1},
    {Dtype::U8, "U8", 1},   {Dtype::BOOL, "BOOL", 1},
};
// Headers past this are not safetensors files but attacks or corruption (the Python library uses 100 MB).
constexpr uint64_t kMaxHeader = 100ull << 20;
}  // namespace

std::string_view dtype_name(Dtype d) {
  for (const auto& r : kDtypes)
    if (r.dtype == d) return r.name;
  return "?";
}
size_t dtype_size(Dtype d) {
  for (const auto& r : kDtypes)
    if (r.dtype == d) return r.size;
  return 0;
}

SafetensorsHeader parse_safetensors_header(const uint8_t* data, size_t size, const std::string& source) {
  auto fail = [&](const std::string& what) -> UserError {
    return UserError(fmt::format("{}: not a valid safetensors file: {}", source, what));
  };
  if (size < 8) throw fail(fmt::format("{} bytes, shorter than the 8-byte header length", size));
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | data[i];
  if (n == 0) throw fail("empty header");
  if (n > kMaxHeader) throw fail(fmt::format("header length {} exceeds the 100 MiB limit", n));
  if (n > size - 8) throw fail(fmt::format("header length {} runs past the end of the {}-byte file", n, size));
  SafetensorsHeader out;
  out.data_offset = 8 + n;
  const uint64_t data_size = size - out.data_offset;

  nlohmann::json j;
  try {
    j = nlohmann::json::parse(data + 8, data + 8 + n);
  } catch (const nlohmann::json::exception& e) {
    throw fail(fmt::format("header is not JSON ({})", e.what()));
  }
  if (!j.is_object()) throw fail("header is not a JSON object");

  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const auto& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) throw fail("__metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) throw fail(fmt::format("__metadata__['{}'] is not a string", m.key()));
        out.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (!v.is_object()) throw fail(fmt::format("entry '{}' is not an object", name));
    TensorEntry e;
    e.name = name;
    auto dt = v.find("dtype");
    if (dt == v.end() || !dt->is_string()) throw fail(fmt::format("entry '{}' has no dtype string", name));
    std::string dts = dt->get<std::string>();
    bool found = false;
    for (const auto& r : kDtypes)
      if (r.name == dts) {
        e.dtype = r.dtype;
        found = true;
      }
    if (!found)
      throw fail(fmt::format("entry '{}' has unsupported dtype '{}' (supported: F64 F32 F16 BF16 I64 I32 I16 "
                             "I8 U8 BOOL)",
                             name, dts));
    auto sh = v.find("shape");
    if (sh == v.end() || !sh->is_array()) throw fail(fmt::format("entry '{}' has no shape list", name));
    uint64_t numel = 1;
    for (const auto& d : *sh) {
      if (!d.is_number_unsigned() && !(d.is_number_integer() && d.get<int64_t>() >= 0))
        throw fail(fmt::format("entry '{}' has a shape entry that is not a non-negative integer", name));
      uint64_t dim = d.get<uint64_t>();
      if (dim != 0 && numel > std::numeric_limits<uint64_t>::max() / dim)
        throw fail(fmt::format("entry '{}' has a shape whose size overflows", name));
      numel *= dim;
      if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        throw fail(fmt::format("entry '{}' has a dimension too large", name));
      e.shape.push_back(static_cast<int64_t>(dim));
    }
    auto off = v.find("data_offsets");
    if (off == v.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
        !(*off)[1].is_number_unsigned())
      throw fail(fmt::format("entry '{}' needs data_offsets [begin, end] of non-negative integers", name));
    e.begin = (*off)[0].get<uint64_t>();
    e.end = (*off)[1].get<uint64_t>();
    if (e.begin > e.end) throw fail(fmt::format("entry '{}' has begin {} after end {}", name, e.begin, e.end));
    if (e.end > data_size)
      throw fail(fmt::format("entry '{}' ends at byte {} past the {}-byte data block", name, e.end, data_size));
    uint64_t esize = dtype_size(e.dtype);
    if (numel > std::numeric_limits<uint64_t>::max() / esize || numel * esize != e.end - e.begin)
      throw fail(fmt::format("entry '{}' holds {} bytes but dtype {} and its shape need {}", name,
                             e.end - e.begin, dts, numel * esize));
    out.tensors.push_back(std::move(e));
  }
  std::sort(out.tensors.begin(), out.tensors.end(),
            [](const TensorEntry& a, const TensorEntry& b) { return a.begin < b.begin || (a.begin == b.begin && a.end < b.end); });
  uint64_t pos = 0;
  for (const auto& e : out.tensors) {
    if (e.begin < pos) throw fail(fmt::format("entry '{}' overlaps the tensor before it", e.name));
    if (e.begin > pos) throw fail(fmt::format("a gap of {} bytes before entry '{}'", e.begin - pos, e.name));
    pos = e.end;
  }
  if (pos != data_size)
    throw fail(fmt::format("{} bytes after the last tensor are not described by the header", data_size - pos));
  return out;
}

std::string make_safetensors_header(std::vector<TensorEntry>& tensors,
                                    const std::map<std::string, std::string>& metadata) {
  nlohmann::json j = nlohmann::json::object();
  if (!metadata.empty()) j["__metadata__"] = metadata;
  uint64_t pos = 0;
  for (auto& e : tensors) {
    uint64_t numel = 1;
    for (int64_t d : e.shape) numel *= static_cast<uint64_t>(d);
    e.begin = pos;
    e.end = pos + numel * dtype_size(e.dtype);
    pos = e.end;
    j[e.name] = {{"dtype", std::string(dtype_name(e.dtype))}, {"shape", e.shape}, {"data_offsets", {e.begin, e.end}}};
  }
  std::string header = j.dump();
  // Pad with spaces so the data block starts 8-byte aligned (tensors can then be mapped in place).
  while ((header.size() + 8) % 8 != 0) header.push_back(' ');
  return header;
}

}  // namespace bevt

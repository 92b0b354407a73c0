#include "bevt/safetensors.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

#include "bevt/error.h"
#include "bevt/atomic_file.h"

namespace bevt {

torch::Dtype to_torch_dtype(Dtype d) {
  switch (d) {
    case Dtype::F64: return torch::kFloat64;
    case Dtype::F32: return torch::kFloat32;
    case Dtype::F16: return torch::kFloat16;
    case Dtype::BF16: return torch::kBFloat16;
    case Dtype::I64: return torch::kInt64;
    case Dtype::I32: return torch::kInt32;
    case Dtype::I16: return torch::kInt16;
    case Dtype::I8: return torch::kInt8;
    case Dtype::U8: return torch::kUInt8;
    case Dtype::BOOL: return torch::kBool;
  }
  return torch::kFloat32;
}

Dtype from_torch_dtype(torch::Dtype d) {
  switch (d) {
    case torch::kFloat64: return Dtype::F64;
    case torch::kFloat32: return Dtype::F32;
    case torch::kFloat16: return Dtype::F16;
    case torch::kBFloat16: return Dtype::BF16;
    case torch::kInt64: return Dtype::I64;
    case torch::kInt32: return Dtype::I32;
    case torch::kInt16: return Dtype::I16;
    case torch::kInt8: return Dtype::I8;
    case torch::kUInt8: return Dtype::U8;
    case torch::kBool: return Dtype::BOOL;
    default: throw UserError(fmt::format("safetensors cannot store torch dtype {}", c10::toString(d)));
  }
}

namespace {
// A private (copy-on-write) mapping of a whole file: tensors are views into it, so loading costs no copy and
// an in-place op on a loaded tensor never writes to the file.
struct Mapping {
  void* addr = MAP_FAILED;
  size_t size = 0;
  ~Mapping() {
    if (addr != MAP_FAILED) munmap(addr, size);
  }
};
}  // namespace

SafetensorsFile load_safetensors(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw UserError(fmt::format("{}: cannot open ({})", path, std::strerror(errno)));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw UserError(fmt::format("{}: not a regular file", path));
  }
  auto map = std::make_shared<Mapping>();
  map->size = static_cast<size_t>(st.st_size);
  if (map->size < 8) {
    ::close(fd);
    throw UserError(fmt::format("{}: not a valid safetensors file: {} bytes, shorter than the 8-byte header length",
                                path, map->size));
  }
  map->addr = mmap(nullptr, map->size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map->addr == MAP_FAILED) throw UserError(fmt::format("{}: cannot map ({})", path, std::strerror(errno)));
  const auto* bytes = static_cast<const uint8_t*>(map->addr);
  SafetensorsHeader header = parse_safetensors_header(bytes, map->size, path);

  SafetensorsFile out;
  out.metadata = header.metadata;
  for (const auto& e : header.tensors) {
    auto* ptr = static_cast<uint8_t*>(map->addr) + header.data_offset + e.begin;
    auto dtype = to_torch_dtype(e.dtype);
    auto opts = torch::TensorOptions().dtype(dtype);
    torch::Tensor t;
    if (reinterpret_cast<uintptr_t>(ptr) % dtype_size(e.dtype) == 0) {
      t = torch::from_blob(ptr, e.shape, [map](void*) {}, opts);
    } else {  // unaligned data: copy rather than hand torch a misaligned pointer
      t = torch::empty(e.shape, opts);
      std::memcpy(t.data_ptr(), ptr, e.end - e.begin);
    }
    if (e.dtype == Dtype::BOOL) {
      for (uint64_t i = 0; i < e.end - e.begin; ++i)
        if (ptr[i] > 1)
          throw UserError(fmt::format("{}: not a valid safetensors file: BOOL tensor '{}' holds byte {} (not 0/1)",
                                      path, e.name, static_cast<int>(ptr[i])));
    }
    out.tensors.emplace(e.name, std::move(t));
  }
  return out;
}

void save_safetensors(const std::string& path, const TensorMap& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<TensorEntry> entries;
  std::vector<torch::Tensor> data;
  for (const auto& [name, t] : tensors) {
    if (!t.defined()) throw UserError(fmt::format("{}: tensor '{}' is undefined", path, name));
    TensorEntry e;
    e.name = name;
    e.dtype = from_torch_dtype(t.scalar_type());
    e.shape = t.sizes().vec();
    entries.push_back(e);
    data.push_back(t.detach().to(torch::kCPU).contiguous());
  }
  std::string header = make_safetensors_header(entries, metadata);
  AtomicFile file(path);
  uint64_t n = header.size();
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(n >> (8 * i));
  file.write(len, 8);
  file.write(header.data(), header.size());
  for (size_t i = 0; i < data.size(); ++i) file.write(data[i].data_ptr(), entries[i].end - entries[i].begin);
  file.commit();
}

}  // namespace bevt

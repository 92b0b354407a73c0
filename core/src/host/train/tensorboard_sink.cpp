#include "tensorboard_sink.h"

#include <fmt/format.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "bevt/error.h"

namespace bevt::host::train {

namespace {

const std::array<uint32_t, 256>& crc_table() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;  // reflected Castagnoli
      t[i] = c;
    }
    return t;
  }();
  return table;
}

// Protobuf wire format: varints, and fields as (number << 3 | wire type).
void varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void field_bytes(std::string& out, int number, const std::string& bytes) {
  varint(out, (static_cast<uint64_t>(number) << 3) | 2);
  varint(out, bytes.size());
  out += bytes;
}
void field_double(std::string& out, int number, double v) {
  varint(out, (static_cast<uint64_t>(number) << 3) | 1);
  char b[8];
  std::memcpy(b, &v, 8);
  out.append(b, 8);
}
void field_float(std::string& out, int number, float v) {
  varint(out, (static_cast<uint64_t>(number) << 3) | 5);
  char b[4];
  std::memcpy(b, &v, 4);
  out.append(b, 4);
}
void field_varint(std::string& out, int number, uint64_t v) {
  varint(out, static_cast<uint64_t>(number) << 3);
  varint(out, v);
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

class TensorBoardSink : public MetricsSink {
 public:
  explicit TensorBoardSink(const std::string& work_dir) {
    char host[256] = "localhost";
    gethostname(host, sizeof(host) - 1);
    path_ = (std::filesystem::path(work_dir) /
             fmt::format("events.out.tfevents.{}.{}", static_cast<int64_t>(now_s()), host))
                .string();
    out_.open(path_, std::ios::binary | std::ios::app);
    if (!out_) throw RunError(fmt::format("{}: cannot write the TensorBoard events file", path_));
    std::string event;  // Event{wall_time = 1, file_version = 3}
    field_double(event, 1, now_s());
    field_bytes(event, 3, "brain.Event:2");
    record(event);
  }

  void write(const nlohmann::json& rec, const std::string& line) override {
    const int64_t step = rec.value("step", int64_t{0});
    const std::string prefix = line.empty() ? "val/" : "train/";  // evaluations carry no progress line
    std::string summary;  // Summary{repeated Value value = 1}; Value{tag = 1, simple_value = 2}
    for (const auto& [k, v] : rec.items()) {
      if (k == "step" || !v.is_number()) continue;
      std::string value;
      field_bytes(value, 1, prefix + k);
      field_float(value, 2, v.get<float>());
      field_bytes(summary, 1, value);
    }
    std::string event;  // Event{wall_time = 1, step = 2, summary = 5}
    field_double(event, 1, now_s());
    field_varint(event, 2, static_cast<uint64_t>(step));
    field_bytes(event, 5, summary);
    record(event);
  }

 private:
  // TFRecord: length (u64 LE), masked CRC of the length, data, masked CRC of the data.
  void record(const std::string& data) {
    char len[8];
    const uint64_t n = data.size();
    std::memcpy(len, &n, 8);
    const uint32_t len_crc = masked_crc32c(len, 8), data_crc = masked_crc32c(data.data(), data.size());
    out_.write(len, 8);
    out_.write(reinterpret_cast<const char*>(&len_crc), 4);
    out_.write(data.data(), static_cast<std::streamsize>(data.size()));
    out_.write(reinterpret_cast<const char*>(&data_crc), 4);
    out_.flush();  // TensorBoard reads the file while the run writes it
    if (!out_) throw RunError(fmt::format("{}: writing the TensorBoard events failed (disk full?)", path_));
  }

  std::string path_;
  std::ofstream out_;
};

}  // namespace

uint32_t crc32c(const void* data, size_t size) {
  const auto& t = crc_table();
  uint32_t c = 0xffffffffu;
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) c = t[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

uint32_t masked_crc32c(const void* data, size_t size) {
  const uint32_t c = crc32c(data, size);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

std::unique_ptr<MetricsSink> tensorboard_sink(const std::string& work_dir) {
  return std::make_unique<TensorBoardSink>(work_dir);
}

}  // namespace bevt::host::train

// Helpers for the data tests: videos whose frames carry their index (8 bits as black/white blocks), tiny
// encoders, file corruption.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "bevt/data/video_io.h"

namespace bevt::test {

constexpr int64_t kIdxW = 128, kIdxH = 32;  // 8 blocks of 16×32 pixels

inline Clip index_clip(int64_t frames) {
  Clip c(frames, kIdxH, kIdxW);
  for (int64_t t = 0; t < frames; ++t) {
    uint8_t* p = c.frame(t);
    for (int64_t y = 0; y < kIdxH; ++y)
      for (int64_t x = 0; x < kIdxW; ++x) {
        bool on = (t >> (x / 16)) & 1;
        for (int ch = 0; ch < 3; ++ch) p[(y * kIdxW + x) * 3 + ch] = on ? 235 : 20;
      }
  }
  return c;
}

// Reads back the index drawn in frame t of a clip at kIdxW × kIdxH (or any size: blocks scale).
inline int64_t read_index(const Clip& c, int64_t t) {
  int64_t v = 0;
  const uint8_t* p = c.frame(t);
  for (int b = 0; b < 8; ++b) {
    int64_t x = (2 * b + 1) * c.width / 16, y = c.height / 2;
    if (p[(y * c.width + x) * 3 + 1] > 128) v |= int64_t{1} << b;
  }
  return v;
}

inline void write_index_video(const std::string& path, int64_t frames, EncodeOptions o) {
  VideoWriter w(path, kIdxW, kIdxH, o);
  w.write(index_clip(frames));
  w.close();
}

inline void write_raw(const std::string& path, const Clip& c) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(c.data.data()), static_cast<std::streamsize>(c.data.size()));
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace bevt::test

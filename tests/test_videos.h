// Helpers for the data tests: videos whose frames carry their index (8 bits as black/white blocks), tiny
// encoders, file corruption.
#pragma once

#include <algorithm>
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

// An index video whose frames also carry noise in stripes at the top and bottom (read_index looks at the middle
// row), so that the frames, not the container's index, make up most of the file, as in real videos: a cut at a
// third then lands in the frame data.
inline void write_noisy_index_video(const std::string& path, int64_t frames, EncodeOptions o) {
  Clip c = index_clip(frames);
  uint32_t x = 12345;
  for (int64_t t = 0; t < frames; ++t)
    for (int64_t y = 0; y < kIdxH; ++y) {
      if (y >= 8 && y < kIdxH - 8) continue;
      for (int64_t i = 0; i < kIdxW * 3; ++i) {
        x = x * 1664525u + 1013904223u;
        c.frame(t)[y * kIdxW * 3 + i] = static_cast<uint8_t>(x >> 24);
      }
    }
  VideoWriter w(path, kIdxW, kIdxH, o);
  w.write(c);
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

// Damage, as datasets in the wild have it: a download cut off, a disk block zeroed, the header alone.
inline void cut_file(const std::string& path, double keep_fraction) {
  std::string b = read_bytes(path);
  write_bytes(path, b.substr(0, static_cast<size_t>(static_cast<double>(b.size()) * keep_fraction)));
}

inline void zero_middle(const std::string& path, double from = 0.4, double to = 0.6) {
  std::string b = read_bytes(path);
  for (size_t i = static_cast<size_t>(static_cast<double>(b.size()) * from); i < static_cast<size_t>(static_cast<double>(b.size()) * to); ++i)
    b[i] = 0;
  write_bytes(path, b);
}

// Keeps only what precedes the first frame: up to the first Matroska Cluster (webm, mkv), else the first 64 bytes
// (mp4 without faststart: ftyp and the start of mdat).
inline void keep_header_only(const std::string& path) {
  std::string b = read_bytes(path);
  size_t cluster = b.find(std::string("\x1f\x43\xb6\x75", 4));
  write_bytes(path, b.substr(0, cluster != std::string::npos ? cluster : std::min<size_t>(64, b.size())));
}

}  // namespace bevt::test

// Stable digests: the same bytes give the same value on every compiler, standard library, build and machine
// (std::hash promises none of that). Everything bevt persists or compares across processes uses these: config
// hashes in checkpoints and results, weight-input digests, cache folder names, the ranks' handshake.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace bevt {

// XXH3-64 of `bytes` (xxHash 0.8, Debian's libxxhash), as 16 lower-case hex digits.
std::string digest_hex(std::string_view bytes);

// The same digest over data given in pieces (files read in blocks).
class Digest {
 public:
  Digest();
  ~Digest();
  Digest(const Digest&) = delete;
  Digest& operator=(const Digest&) = delete;
  void update(const void* data, size_t size);
  std::string hex() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// The 64-bit Murmur variant (MurmurHash2, 64-bit mix; libstdc++ uses it for std::hash<std::string> on 64-bit
// targets) written out here, so that the per-sample seeds derived from names ("mask/video") keep the values
// bevt has always drawn, whatever compiler or library builds it.
uint64_t murmur64(std::string_view bytes, uint64_t seed = 0xc70f6907ull);

}  // namespace bevt

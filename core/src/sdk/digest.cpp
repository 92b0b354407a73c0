#include "bevt/digest.h"

#include <fmt/format.h>

// xxHash compiled into the SDK from Debian's header (libxxhash-dev): no shared library to ship beside it.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <cstring>
#include <stdexcept>

namespace bevt {

std::string digest_hex(std::string_view bytes) {
  return fmt::format("{:016x}", static_cast<uint64_t>(XXH3_64bits(bytes.data(), bytes.size())));
}

struct Digest::State {
  XXH3_state_t* s = nullptr;
};

Digest::Digest() : state_(std::make_unique<State>()) {
  state_->s = XXH3_createState();
  if (!state_->s || XXH3_64bits_reset(state_->s) != XXH_OK) throw std::runtime_error("xxHash: cannot start a digest");
}

Digest::~Digest() { XXH3_freeState(state_->s); }

void Digest::update(const void* data, size_t size) {
  if (XXH3_64bits_update(state_->s, data, size) != XXH_OK) throw std::runtime_error("xxHash: update failed");
}

std::string Digest::hex() const { return fmt::format("{:016x}", static_cast<uint64_t>(XXH3_64bits_digest(state_->s))); }

namespace {
uint64_t load8(const unsigned char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);  // little-endian targets only (x86-64, aarch64), as the seeds have always been
  return v;
}
uint64_t shift_mix(uint64_t v) { return v ^ (v >> 47); }
}  // namespace

uint64_t murmur64(std::string_view bytes, uint64_t seed) {
  constexpr uint64_t mul = (uint64_t{0xc6a4a793} << 32) + 0x5bd1e995;
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t len = bytes.size();
  const size_t aligned = len & ~size_t{7};
  uint64_t h = seed ^ (len * mul);
  for (size_t i = 0; i < aligned; i += 8) {
    h ^= shift_mix(load8(p + i) * mul) * mul;
    h *= mul;
  }
  if (len & 7) {
    uint64_t tail = 0;  // the remaining bytes, the last one most significant
    for (size_t i = len; i-- > aligned;) tail = (tail << 8) + p[i];
    h ^= tail;
    h *= mul;
  }
  h = shift_mix(h) * mul;
  return shift_mix(h);
}

}  // namespace bevt

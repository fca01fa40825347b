#include "flow/flow_key.hpp"

#include <cstring>
#include <random>
#include <tuple>

namespace sg::flow {
namespace {

// The addresses and ports are chosen by whoever sends the packets, so a fixed public hash would
// let a sender aim many flows at one bucket. The hash is keyed with a per-process random seed
// (not cryptographic: it only has to make such collisions impractical to predict).
struct HashSeed {
  uint64_t s[4];
};

HashSeed make_seed() noexcept {
  // Fractional digits of pi: a usable key even if the random device is unavailable.
  HashSeed seed{{0x243f6a8885a308d3, 0x13198a2e03707344, 0xa4093822299f31d0, 0x082efa98ec4e6c89}};
  try {
    std::random_device rd;
    for (auto& s : seed.s) s ^= uint64_t{rd()} << 32 | rd();
  } catch (...) {
    // Keep the constant seed: startup must not fail over hash quality.
  }
  return seed;
}

const HashSeed& hash_seed() {
  static const HashSeed seed = make_seed();
  return seed;
}

// Full 64x64->128 multiply, folded: every input bit reaches every output bit.
uint64_t mix(uint64_t a, uint64_t b) {
  __extension__ using Wide = unsigned __int128;
  const Wide r = static_cast<Wide>(a) * b;
  return static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
}

uint64_t word(const net::IpAddress& a, size_t i) {
  uint64_t w;
  std::memcpy(&w, a.bytes.data() + 8 * i, sizeof(w));
  return w;
}

}  // namespace

KeyedPacket canonical_key(const net::PacketView& v) {
  KeyedPacket k;
  k.src_is_lo = std::tie(v.src, v.src_port) <= std::tie(v.dst, v.dst_port);
  if (k.src_is_lo) {
    k.key = FlowKey{v.src, v.dst, v.src_port, v.dst_port};
  } else {
    k.key = FlowKey{v.dst, v.src, v.dst_port, v.src_port};
  }
  return k;
}

size_t FlowKeyHash::operator()(const FlowKey& k) const noexcept {
  const HashSeed& seed = hash_seed();
  const uint64_t ports = uint64_t{k.lo_port} << 16 | k.hi_port;
  const uint64_t h = mix(word(k.lo_addr, 0) ^ seed.s[0], word(k.lo_addr, 1) ^ seed.s[1]) ^
                     mix(word(k.hi_addr, 0) ^ seed.s[2], word(k.hi_addr, 1) ^ seed.s[3]);
  return static_cast<size_t>(mix(h ^ seed.s[1], ports ^ seed.s[2]));
}

}  // namespace sg::flow

#include "net/checksum.hpp"

#include <bit>
#include <cstring>

#include "net/wire.hpp"
#include "util/byte_order.hpp"

namespace sg::net {
namespace {

uint32_t fold32(uint64_t x) {
  x = (x & 0xffffffff) + (x >> 32);
  x = (x & 0xffffffff) + (x >> 32);
  return static_cast<uint32_t>(x);
}

uint16_t fold16(uint64_t x) {
  uint32_t y = fold32(x);
  y = (y & 0xffff) + (y >> 16);
  y = (y & 0xffff) + (y >> 16);
  return static_cast<uint16_t>(y);
}

// The pseudo-header of RFC 9293 §3.1 (IPv4) or RFC 8200 §8.1 (IPv6), summed but not folded.
// v.dst is the final destination when an IPv6 routing header is in transit, as §8.1 requires.
uint32_t pseudo_header_sum(const PacketView& v, size_t tcp_len) {
  const size_t addr_at = v.ip_version == 4 ? 12 : 0;
  const std::span<const uint8_t> src(v.src.bytes.data() + addr_at, 16 - addr_at);
  const std::span<const uint8_t> dst(v.dst.bytes.data() + addr_at, 16 - addr_at);
  const uint64_t sum = uint64_t{ones_complement_sum(src)} + ones_complement_sum(dst) + kProtoTcp +
                       (tcp_len >> 16) + (tcp_len & 0xffff);
  return fold16(sum);
}

// The view must describe this very packet; anything else is a caller bug that must not turn
// into an out-of-bounds write.
bool view_fits(std::span<const uint8_t> packet, const PacketView& v) {
  return (v.ip_version == 4 || v.ip_version == 6) && v.packet_len <= packet.size() &&
         v.tcp_offset >= v.ip_header_len && v.tcp_offset + kTcpMinHeader <= v.packet_len &&
         (v.ip_version == 6 || v.ip_header_len >= 20);
}

}  // namespace

uint16_t ones_complement_sum(std::span<const uint8_t> data, uint32_t initial) {
  // RFC 1071 §2: the sum is byte-order independent, so add native 64-bit loads as two 32-bit
  // halves into a 64-bit accumulator (no carry is lost below 2^31 words) and swap once at the end.
  const uint8_t* p = data.data();
  size_t n = data.size();
  uint64_t a0 = 0, a1 = 0;  // two accumulators keep the dependency chains short
  while (n >= 16) {
    uint64_t w0, w1;
    std::memcpy(&w0, p, 8);
    std::memcpy(&w1, p + 8, 8);
    a0 += (w0 & 0xffffffff) + (w0 >> 32);
    a1 += (w1 & 0xffffffff) + (w1 >> 32);
    p += 16;
    n -= 16;
  }
  if (n > 0) {
    // Zero padding at the end is exactly RFC 1071's rule for an odd trailing byte.
    uint64_t w0 = 0, w1 = 0;
    std::memcpy(&w0, p, n < 8 ? n : 8);
    if (n > 8) std::memcpy(&w1, p + 8, n - 8);
    a0 += (w0 & 0xffffffff) + (w0 >> 32);
    a1 += (w1 & 0xffffffff) + (w1 >> 32);
  }
  uint16_t sum = fold16(uint64_t{fold32(a0)} + fold32(a1));
  if constexpr (std::endian::native == std::endian::little) {
    sum = static_cast<uint16_t>(sum << 8 | sum >> 8);
  }
  return fold16(uint64_t{sum} + initial);
}

void finalize_checksums(std::span<uint8_t> packet, const PacketView& v) {
  if (!view_fits(packet, v)) return;
  if (v.ip_version == 4) {
    store_be16(packet, kIpv4ChecksumAt, 0);
    const uint16_t sum = ones_complement_sum(packet.first(v.ip_header_len));
    store_be16(packet, kIpv4ChecksumAt, static_cast<uint16_t>(~sum));
  }
  const std::span<uint8_t> tcp = packet.subspan(v.tcp_offset, v.packet_len - v.tcp_offset);
  // Whatever the field held (a full checksum, a pseudo-header sum under CSUMNOTREADY, garbage)
  // is dropped before summing.
  store_be16(tcp, kTcpChecksumAt, 0);
  const uint16_t sum = ones_complement_sum(tcp, pseudo_header_sum(v, tcp.size()));
  store_be16(tcp, kTcpChecksumAt, static_cast<uint16_t>(~sum));
}

bool tcp_checksum_ok(std::span<const uint8_t> packet, const PacketView& v) {
  if (!view_fits(packet, v)) return false;
  const auto tcp = packet.subspan(v.tcp_offset, v.packet_len - v.tcp_offset);
  return ones_complement_sum(tcp, pseudo_header_sum(v, tcp.size())) == 0xffff;
}

bool ipv4_checksum_ok(std::span<const uint8_t> packet, const PacketView& v) {
  if (!view_fits(packet, v)) return false;
  if (v.ip_version != 4) return true;  // IPv6 has no header checksum
  return ones_complement_sum(packet.first(v.ip_header_len)) == 0xffff;
}

}  // namespace sg::net

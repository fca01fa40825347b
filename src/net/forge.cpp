#include "net/forge.hpp"

#include <algorithm>

#include "net/checksum.hpp"
#include "net/wire.hpp"
#include "util/byte_order.hpp"

namespace sg::net {
namespace {

constexpr uint8_t kTimestampsLen = 10;
// NOP NOP kind len TSval TSecr: the layout Linux sends, which keeps both values 4-byte aligned.
constexpr size_t kTimestampsBlock = 12;

// Writes the IP header for `tcp_len` bytes of TCP and returns where TCP starts.
size_t write_ip_header(std::span<uint8_t> p, const SegmentSpec& s, size_t tcp_len) {
  if (s.src.is_v4()) {
    p[0] = 0x45;  // version 4, IHL 5
    store_be16(p, 2, static_cast<uint16_t>(kIpv4MinHeader + tcp_len));
    // Identification 0 with DF: RFC 6864 allows it for atomic datagrams, and Linux does the same.
    store_be16(p, 6, kIpv4DontFragment);
    p[8] = s.ttl;
    p[9] = kProtoTcp;
    std::copy_n(s.src.bytes.begin() + 12, 4, p.begin() + 12);
    std::copy_n(s.dst.bytes.begin() + 12, 4, p.begin() + 16);
    return kIpv4MinHeader;
  }
  p[0] = 0x60;  // version 6, traffic class 0, flow label 0
  store_be16(p, 4, static_cast<uint16_t>(tcp_len));
  p[6] = kProtoTcp;
  p[7] = s.ttl;
  std::copy(s.src.bytes.begin(), s.src.bytes.end(), p.begin() + 8);
  std::copy(s.dst.bytes.begin(), s.dst.bytes.end(), p.begin() + 24);
  return kIpv6Header;
}

}  // namespace

std::vector<uint8_t> forge_segment(const SegmentSpec& s) {
  const size_t ip_len = s.src.is_v4() ? kIpv4MinHeader : kIpv6Header;
  const size_t tcp_header_len = kTcpMinHeader + (s.timestamps ? kTimestampsBlock : 0);
  // The IP length fields are 16 bits: a caller asking for more gets the payload cut to fit
  // rather than a packet whose length field lies (answers and RSTs are far below this).
  const size_t max_payload = 65535 - tcp_header_len - (s.src.is_v4() ? ip_len : 0);
  const std::span<const uint8_t> payload = s.payload.first(std::min(s.payload.size(), max_payload));
  const size_t tcp_len = tcp_header_len + payload.size();

  std::vector<uint8_t> packet(ip_len + tcp_len, 0);
  const std::span<uint8_t> p(packet);
  const size_t tcp = write_ip_header(p, s, tcp_len);

  store_be16(p, tcp, s.src_port);
  store_be16(p, tcp + 2, s.dst_port);
  store_be32(p, tcp + 4, s.seq);
  store_be32(p, tcp + 8, s.ack);
  p[tcp + 12] = static_cast<uint8_t>(tcp_header_len / 4 << 4);
  p[tcp + 13] = s.flags;
  store_be16(p, tcp + 14, s.window);
  // Checksum (16) and urgent pointer (18) stay 0 until finalize_checksums below.
  if (s.timestamps) {
    const size_t o = tcp + kTcpMinHeader;
    p[o] = kTcpOptNop;
    p[o + 1] = kTcpOptNop;
    p[o + 2] = kTcpOptTimestamps;
    p[o + 3] = kTimestampsLen;
    store_be32(p, o + 4, s.timestamps->value);
    store_be32(p, o + 8, s.timestamps->echo);
  }
  std::copy(payload.begin(), payload.end(),
            packet.begin() + static_cast<ptrdiff_t>(tcp + tcp_header_len));

  // Well-formed by construction: parsing only yields the view the checksum code works on. (A
  // spec mixing families gets an IPv4 header with the low 4 bytes of dst, summed as written.)
  if (auto v = parse_packet(packet)) finalize_checksums(p, *v);
  return packet;
}

std::optional<TcpTimestamps> read_timestamps(std::span<const uint8_t> bytes, const PacketView& v) {
  const size_t end = std::min(v.tcp_offset + v.tcp_header_len, bytes.size());
  size_t i = v.tcp_offset + kTcpMinHeader;
  // Each round advances by at least one byte: at most 40 rounds.
  while (i < end) {
    const uint8_t kind = bytes[i];
    if (kind == kTcpOptEnd) break;
    if (kind == kTcpOptNop) {
      ++i;
      continue;
    }
    if (i + 1 >= end) break;
    const size_t len = bytes[i + 1];
    if (len < 2 || i + len > end) break;  // parse_packet refuses these; never read past them
    if (kind == kTcpOptTimestamps && len == kTimestampsLen) {
      return TcpTimestamps{load_be32(bytes, i + 2), load_be32(bytes, i + 6)};
    }
    i += len;
  }
  return std::nullopt;
}

}  // namespace sg::net

#include "net/packet.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <optional>
#include <string>

#include "net/wire.hpp"
#include "util/byte_order.hpp"

namespace sg::net {
namespace {

// IPv6 next-header values walked (or refused) by the extension-header loop.
constexpr uint8_t kIp6HopByHop = 0;
constexpr uint8_t kIp6Routing = 43;
constexpr uint8_t kIp6Fragment = 44;
constexpr uint8_t kIp6Auth = 51;
constexpr uint8_t kIp6DestOpts = 60;

// Routing types whose final destination we can locate (RFC 6275 type 2, RFC 8754 SRH).
constexpr uint8_t kRoutingMobileIp = 2;
constexpr uint8_t kRoutingSegment = 4;

constexpr size_t kSackBlockLen = 8;

using Status = std::optional<ParseError>;  // nullopt: this layer is fine

IpAddress v4_mapped(std::span<const uint8_t> b, size_t off) {
  IpAddress a;
  a.bytes[10] = 0xff;
  a.bytes[11] = 0xff;
  std::copy_n(b.begin() + static_cast<ptrdiff_t>(off), 4, a.bytes.begin() + 12);
  return a;
}

IpAddress v6_at(std::span<const uint8_t> b, size_t off) {
  IpAddress a;
  std::copy_n(b.begin() + static_cast<ptrdiff_t>(off), 16, a.bytes.begin());
  return a;
}

Status parse_ipv4(std::span<const uint8_t> b, PacketView& v) {
  if (b.size() < kIpv4MinHeader) return ParseError::kTooShort;
  const size_t header_len = static_cast<size_t>(b[0] & 0x0f) * 4;
  if (header_len < kIpv4MinHeader || header_len > b.size()) return ParseError::kBadIpHeaderLength;
  const size_t total_len = load_be16(b, 2);
  if (total_len < header_len || total_len > b.size()) return ParseError::kBadTotalLength;
  // DF and the reserved bit are irrelevant here; any real fragment is not ours to reassemble.
  if (load_be16(b, 6) & (kIpv4MoreFragments | kIpv4OffsetMask)) return ParseError::kFragment;
  if (b[9] != kProtoTcp) return ParseError::kNotTcp;
  v.ip_header_len = header_len;
  v.packet_len = total_len;
  v.src = v4_mapped(b, 12);
  v.dst = v4_mapped(b, 16);
  return std::nullopt;
}

// A routing header still in transit names the final destination, which is the TCP peer: the flow
// key and the checksum pseudo-header (RFC 8200 §8.1) must use it, not the next hop in the IPv6
// header. Types we cannot decode (0 is deprecated by RFC 5095, 3 is RPL-domain only) make the
// endpoint discard the packet anyway (RFC 8200 §4.4), so they are refused.
Status read_routing_destination(std::span<const uint8_t> b, size_t off, size_t len, PacketView& v) {
  const uint8_t type = b[off + 2];
  const uint8_t segments_left = b[off + 3];
  if (segments_left == 0) return std::nullopt;
  constexpr size_t kAddressAt = 8, kWithOneAddress = 24;
  if (type == kRoutingMobileIp && segments_left == 1 && len == kWithOneAddress) {
    v.dst = v6_at(b, off + kAddressAt);  // the home address
    return std::nullopt;
  }
  if (type == kRoutingSegment && len >= kWithOneAddress) {
    v.dst = v6_at(b, off + kAddressAt);  // Segment List[0] is the last segment
    return std::nullopt;
  }
  return ParseError::kBadExtensionHeader;
}

Status parse_ipv6(std::span<const uint8_t> b, PacketView& v) {
  if (b.size() < kIpv6Header) return ParseError::kTooShort;
  const size_t payload_len = load_be16(b, 4);
  // Payload length 0 announces a jumbogram (RFC 2675), which is not supported.
  if (payload_len == 0 || kIpv6Header + payload_len > b.size()) return ParseError::kBadTotalLength;
  const size_t total_len = kIpv6Header + payload_len;
  v.src = v6_at(b, 8);
  v.dst = v6_at(b, 24);

  uint8_t next = b[6];
  size_t off = kIpv6Header;
  // Every header is at least 8 bytes, so the loop ends within total_len / 8 rounds.
  for (;;) {
    switch (next) {
      case kProtoTcp:
        v.ip_header_len = off;
        v.packet_len = total_len;
        return std::nullopt;
      case kIp6Fragment:
        return ParseError::kFragment;
      case kIp6HopByHop:
        // Only valid right after the IPv6 header; elsewhere the receiver drops the packet, so
        // inspecting its payload would let it disagree with the endpoint.
        if (off != kIpv6Header) return ParseError::kBadExtensionHeader;
        [[fallthrough]];
      case kIp6Routing:
      case kIp6DestOpts:
      case kIp6Auth: {
        if (off + 2 > total_len) return ParseError::kBadExtensionHeader;
        // AH counts 4-byte units minus 2 (RFC 4302); the others 8-byte units minus 1 (RFC 8200).
        const size_t len = next == kIp6Auth ? (static_cast<size_t>(b[off + 1]) + 2) * 4
                                            : (static_cast<size_t>(b[off + 1]) + 1) * 8;
        if (off + len > total_len) return ParseError::kBadExtensionHeader;
        if (next == kIp6Routing) {
          if (Status s = read_routing_destination(b, off, len, v)) return s;
        }
        next = b[off];
        off += len;
        break;
      }
      default:  // no-next-header (59), ESP, UDP, ICMPv6, ...
        return ParseError::kNotTcp;
    }
  }
}

Status parse_tcp_options(std::span<const uint8_t> b, PacketView& v) {
  const size_t end = v.tcp_offset + v.tcp_header_len;
  size_t i = v.tcp_offset + kTcpMinHeader;
  while (i < end) {
    const uint8_t kind = b[i];
    if (kind == kTcpOptEnd) break;  // the rest is padding
    if (kind == kTcpOptNop) {
      ++i;
      continue;
    }
    if (i + 1 >= end) return ParseError::kBadTcpOptions;
    const size_t len = b[i + 1];
    if (len < 2 || i + len > end) return ParseError::kBadTcpOptions;
    if (kind == kTcpOptMss && len == 4) v.mss = load_be16(b, i + 2);
    // A SACK option of any other length is ignored by receivers (Linux checks the same shape),
    // so it is not recorded either. 40 option bytes hold at most 4 blocks in total.
    if (kind == kTcpOptSack && len > 2 && (len - 2) % kSackBlockLen == 0) {
      for (size_t at = i + 2; at < i + len && v.sack_count < v.sack_offsets.size();
           at += kSackBlockLen) {
        v.sack_offsets[v.sack_count++] = at;
      }
    }
    i += len;
  }
  return std::nullopt;
}

Status parse_tcp(std::span<const uint8_t> b, PacketView& v) {
  const size_t off = v.ip_header_len;
  if (off + kTcpMinHeader > v.packet_len) return ParseError::kBadTcpHeaderLength;
  const size_t header_len = static_cast<size_t>(b[off + 12] >> 4) * 4;
  if (header_len < kTcpMinHeader || off + header_len > v.packet_len) {
    return ParseError::kBadTcpHeaderLength;
  }
  v.tcp_offset = off;
  v.tcp_header_len = header_len;
  v.payload_offset = off + header_len;
  v.payload_len = v.packet_len - v.payload_offset;
  v.src_port = load_be16(b, off);
  v.dst_port = load_be16(b, off + 2);
  v.seq = load_be32(b, off + 4);
  v.ack = load_be32(b, off + 8);
  v.flags = b[off + 13];
  v.window = load_be16(b, off + 14);
  v.urgent = load_be16(b, off + 18);
  return parse_tcp_options(b, v);
}

constexpr std::string_view kParseErrorNames[] = {
#define SG_X(name, text) text,
    SG_PARSE_ERRORS(SG_X)
#undef SG_X
};
static_assert(std::size(kParseErrorNames) == kParseErrorCount);

}  // namespace

std::string_view to_string(ParseError e) {
  const auto i = static_cast<size_t>(e);
  return i < kParseErrorCount ? kParseErrorNames[i] : std::string_view("unknown");
}

bool IpAddress::is_v4() const {
  constexpr std::array<uint8_t, 12> kMappedPrefix{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::equal(kMappedPrefix.begin(), kMappedPrefix.end(), bytes.begin());
}

IpAddressText IpAddress::text() const noexcept {
  static_assert(sizeof(IpAddressText::chars) >= INET6_ADDRSTRLEN);
  IpAddressText t;
  const bool v4 = is_v4();
  if (inet_ntop(v4 ? AF_INET : AF_INET6, bytes.data() + (v4 ? 12 : 0), t.chars.data(),
                t.chars.size()) != nullptr)
    t.size = std::char_traits<char>::length(t.chars.data());
  return t;
}

std::string IpAddress::to_string() const {
  return std::string(text().view());
}

Expected<PacketView, ParseError> parse_packet(std::span<const uint8_t> bytes) {
  if (bytes.empty()) return unexpected(ParseError::kTooShort);
  PacketView v;
  v.ip_version = bytes[0] >> 4;
  Status s;
  if (v.ip_version == 4) {
    s = parse_ipv4(bytes, v);
  } else if (v.ip_version == 6) {
    s = parse_ipv6(bytes, v);
  } else {
    s = ParseError::kBadVersion;
  }
  if (!s) s = parse_tcp(bytes, v);
  if (s) return unexpected(*s);
  return v;
}

SackBlock read_sack(std::span<const uint8_t> bytes, const PacketView& v, size_t i) {
  if (i >= v.sack_count) return {};
  const size_t at = v.sack_offsets[i];
  if (at + kSackBlockLen > bytes.size()) return {};
  return SackBlock{load_be32(bytes, at), load_be32(bytes, at + 4)};
}

void write_sack(std::span<uint8_t> bytes, const PacketView& v, size_t i, SackBlock b) {
  if (i >= v.sack_count) return;
  const size_t at = v.sack_offsets[i];
  if (at + kSackBlockLen > bytes.size()) return;
  store_be32(bytes, at, b.left);
  store_be32(bytes, at + 4, b.right);
}

void write_seq(std::span<uint8_t> bytes, const PacketView& v, uint32_t seq) {
  if (v.tcp_offset + 8 <= bytes.size()) store_be32(bytes, v.tcp_offset + 4, seq);
}

void write_ack(std::span<uint8_t> bytes, const PacketView& v, uint32_t ack) {
  if (v.tcp_offset + 12 <= bytes.size()) store_be32(bytes, v.tcp_offset + 8, ack);
}

bool clear_urgent(std::span<uint8_t> bytes, const PacketView& v) {
  if (v.tcp_offset + 20 > bytes.size()) return false;
  uint8_t& flags = bytes[v.tcp_offset + 13];
  uint8_t* pointer = &bytes[v.tcp_offset + 18];
  if (!(flags & kTcpUrg) && pointer[0] == 0 && pointer[1] == 0) return false;
  flags = static_cast<uint8_t>(flags & ~kTcpUrg);
  pointer[0] = 0;
  pointer[1] = 0;
  return true;
}

}  // namespace sg::net

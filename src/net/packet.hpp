#pragma once
// Parsing and validation of IPv4/IPv6 + TCP packets as NFQUEUE hands them over.
// Pure: takes bytes, returns a view with offsets; never touches the kernel.
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "net/wire.hpp"
#include "util/expected.hpp"

namespace sg::net {

// Every way a packet can fail validation. Declared once; counters and logs use these names.
#define SG_PARSE_ERRORS(X)                                                                       \
  X(kTooShort, "too_short")                       /* fewer bytes than a minimal IP header */     \
  X(kBadVersion, "bad_version")                   /* IP version neither 4 nor 6 */               \
  X(kBadIpHeaderLength, "bad_ip_header_length")   /* IHL < 5 or beyond the packet */             \
  X(kBadTotalLength, "bad_total_length")          /* IP length field disagrees with the bytes */ \
  X(kFragment, "fragment")                        /* IPv4/IPv6 fragment: not reassembled here */ \
  X(kBadExtensionHeader, "bad_extension_header")  /* IPv6 extension chain truncated */           \
  X(kNotTcp, "not_tcp")                           /* upper layer is not TCP */                   \
  X(kBadTcpHeaderLength, "bad_tcp_header_length") /* data offset < 5 or past the end */          \
  X(kBadTcpOptions, "bad_tcp_options")            /* an option length runs past the header */

enum class ParseError : uint8_t {
#define SG_X(name, text) name,
  SG_PARSE_ERRORS(SG_X)
#undef SG_X
};
inline constexpr size_t kParseErrorCount = 0
#define SG_X(name, text) +1
    SG_PARSE_ERRORS(SG_X)
#undef SG_X
    ;
std::string_view to_string(ParseError e);

// An address as text, without allocating (the decision log formats on the workers' threads).
struct IpAddressText {
  std::array<char, 46> chars{};  // INET6_ADDRSTRLEN
  size_t size = 0;
  std::string_view view() const { return {chars.data(), size}; }
};

// An IPv4 address is stored v4-mapped (::ffff:a.b.c.d) so one type serves both families.
struct IpAddress {
  std::array<uint8_t, 16> bytes{};
  bool operator==(const IpAddress&) const = default;
  auto operator<=>(const IpAddress&) const = default;
  bool is_v4() const;
  // "198.18.1.1" for a v4-mapped address, "2001:db8::1" otherwise (inet_ntop's forms).
  IpAddressText text() const noexcept;
  std::string to_string() const;
};

struct SackBlock {
  uint32_t left = 0, right = 0;
};

// Offsets into the packet's bytes; the bytes themselves stay where NFQUEUE put them.
struct PacketView {
  uint8_t ip_version = 0;     // 4 or 6
  size_t ip_header_len = 0;   // IPv4 IHL*4, or IPv6 40 + extension headers
  size_t tcp_offset = 0;      // where the TCP header starts
  size_t tcp_header_len = 0;  // data offset * 4
  size_t payload_offset = 0;  // tcp_offset + tcp_header_len
  size_t payload_len = 0;     // bytes of TCP payload
  size_t packet_len = 0;      // IP total length (<= the span handed in)
  IpAddress src, dst;
  uint16_t src_port = 0, dst_port = 0;
  uint32_t seq = 0, ack = 0;
  uint8_t flags = 0;  // kTcp* bits
  uint16_t window = 0;
  uint16_t urgent = 0;
  uint8_t sack_count = 0;                // SACK blocks found in the options (at most 4)
  std::array<size_t, 4> sack_offsets{};  // offset of each block's left edge in the packet
  uint16_t mss = 0;                      // MSS option value when present (SYN), else 0
};

// Validates every length field. `bytes` may be longer than the IP datagram (trailing bytes are
// ignored) but never shorter. IPv6 extension headers (hop-by-hop, routing, destination options)
// are walked; a fragment header is reported as kFragment.
// Also walked: AH (its length counts 4-byte units). A hop-by-hop header that is not first is
// kBadExtensionHeader (receivers drop it). A routing header with segments left > 0 makes `dst`
// the final destination (type 2: home address; type 4 SRH: segment list [0]), which the flow key
// and the TCP pseudo-header (RFC 8200 §8.1) need; other routing types in transit are
// kBadExtensionHeader.
Expected<PacketView, ParseError> parse_packet(std::span<const uint8_t> bytes);

// Reads SACK block i (host order) of a parsed packet.
SackBlock read_sack(std::span<const uint8_t> bytes, const PacketView& v, size_t i);
// Writes SACK block i (host order). Checksums are not touched.
void write_sack(std::span<uint8_t> bytes, const PacketView& v, size_t i, SackBlock b);
void write_seq(std::span<uint8_t> bytes, const PacketView& v, uint32_t seq);
void write_ack(std::span<uint8_t> bytes, const PacketView& v, uint32_t ack);
// Clears the URG flag and zeroes the urgent pointer (RFC 9293 3.8.5: "urgent data" is a
// receiver-side cut of one byte out of the stream, placed differently by BSD and RFC 1122
// stacks; an inspected stream must reach the receiver as the bytes that were inspected).
// True when either was set. Checksums are not touched.
bool clear_urgent(std::span<uint8_t> bytes, const PacketView& v);

}  // namespace sg::net

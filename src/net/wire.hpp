#pragma once
// The wire layout of IPv4, IPv6 and TCP that the parser, the forger, the checksum code and the
// injector share: protocol numbers, header sizes, field offsets, flag bits and TCP option
// kinds, declared once (RFC 791, RFC 8200, RFC 9293, RFC 7323, RFC 2018).

#include <cstddef>
#include <cstdint>

namespace sg::net {

// Protocol numbers (the IPv4 protocol field, the IPv6 next header).
inline constexpr uint8_t kProtoTcp = 6;

// Header sizes.
inline constexpr size_t kIpv4MinHeader = 20;  // without options
inline constexpr size_t kIpv6Header = 40;     // the fixed header
inline constexpr size_t kTcpMinHeader = 20;   // without options

// Field offsets inside a header.
inline constexpr size_t kIpv4ChecksumAt = 10;
inline constexpr size_t kTcpFlagsAt = 13;
inline constexpr size_t kTcpChecksumAt = 16;

// IPv4 flags and fragment offset (the 16 bits at offset 6).
inline constexpr uint16_t kIpv4DontFragment = 0x4000;
inline constexpr uint16_t kIpv4MoreFragments = 0x2000;
inline constexpr uint16_t kIpv4OffsetMask = 0x1fff;

// TCP flag bits (the byte at kTcpFlagsAt).
inline constexpr uint8_t kTcpFin = 0x01, kTcpSyn = 0x02, kTcpRst = 0x04, kTcpPsh = 0x08,
                         kTcpAck = 0x10, kTcpUrg = 0x20;

// TCP option kinds.
inline constexpr uint8_t kTcpOptEnd = 0;
inline constexpr uint8_t kTcpOptNop = 1;
inline constexpr uint8_t kTcpOptMss = 2;
inline constexpr uint8_t kTcpOptSack = 5;
inline constexpr uint8_t kTcpOptTimestamps = 8;

}  // namespace sg::net

#pragma once
// A fluent builder for packet-level test fixtures: one IPv4 or IPv6 TCP segment with correct IP
// and TCP checksums, e.g.
//
//   auto syn = PacketBuilder().v4("198.18.0.1", "198.18.0.2").ports(40000, 25)
//                  .flags(net::kTcpSyn).seq(1000).mss(1460).build();
//
// Project rule: test addresses come from 198.18.0.0/15 or 2001:db8::/32; anything else is
// refused. The checksums are computed by a plain RFC 1071 loop written here, independent of
// src/net/checksum.cpp, so tests can compare the two. Misuse throws std::invalid_argument (this
// is test code, not the packet path).
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "net/packet.hpp"

namespace sg::test {

class PacketBuilder {
 public:
  // Defaults: IPv4 198.18.0.1:40000 -> 198.18.0.2:25, seq 1000, ack 0, flags ACK, window 65535,
  // TTL / hop limit 64, DF set, no options, no payload.
  PacketBuilder();

  PacketBuilder& v4(std::string_view src, std::string_view dst);
  PacketBuilder& v6(std::string_view src, std::string_view dst);
  PacketBuilder& ports(uint16_t sport, uint16_t dport);
  PacketBuilder& seq(uint32_t seq);
  PacketBuilder& ack(uint32_t ack);
  PacketBuilder& flags(uint8_t flags);  // net::kTcp* bits
  PacketBuilder& window(uint16_t window);
  PacketBuilder& urgent(uint16_t urgent);
  PacketBuilder& ttl(uint8_t ttl);  // IPv4 TTL or IPv6 hop limit
  PacketBuilder& payload(std::string_view payload);

  // TCP options, laid out in call order the way Linux aligns them (NOPs before the option so
  // that each one ends on a 4-byte boundary). At most 40 option bytes in total.
  PacketBuilder& mss(uint16_t mss);                                   // 4 bytes
  PacketBuilder& window_scale(uint8_t shift);                         // NOP + 3 bytes
  PacketBuilder& sack_permitted();                                    // 2 NOPs + 2 bytes
  PacketBuilder& timestamps(uint32_t tsval, uint32_t tsecr);          // 2 NOPs + 10 bytes
  PacketBuilder& sack(std::vector<net::SackBlock> blocks);            // 2 NOPs + 2 + 8n, n 1..4
  PacketBuilder& raw_option(std::vector<uint8_t> kind_len_and_data);  // as given, NOP-padded

  // Appends an IPv6 extension header before TCP (the first call comes right after the IPv6
  // header). `len8` is the header's whole size in 8-byte units (>= 1); the length field is
  // encoded in the unit of `type` (AH: RFC 4302). Hop-by-hop and destination options are
  // filled with a PadN option, other types with zeros (a routing header with segments left 0).
  PacketBuilder& ipv6_extension(uint8_t type, size_t len8);
  // Marks the IPv4 packet as a fragment: offset in 8-byte units, `more` sets MF (clears DF).
  PacketBuilder& ipv4_fragment(uint16_t offset8, bool more);

  std::vector<uint8_t> build() const;

 private:
  struct Extension {
    uint8_t type;
    size_t len8;
  };
  void add_option(size_t leading_nops, std::vector<uint8_t> option);

  bool v6_ = false;
  std::array<uint8_t, 16> src_{}, dst_{};  // IPv4 uses the first 4 bytes
  uint16_t sport_ = 40000, dport_ = 25;
  uint32_t seq_ = 1000, ack_ = 0;
  uint8_t flags_ = net::kTcpAck;
  uint16_t window_ = 65535, urgent_ = 0;
  uint8_t ttl_ = 64;
  uint16_t fragment_ = 0x4000;  // IPv4 flags + offset field: DF
  std::vector<uint8_t> options_;
  std::vector<Extension> extensions_;
  std::string payload_;
};

// The TCP payload of a packet that parse_packet accepts; throws std::invalid_argument otherwise.
std::string payload_of(std::span<const uint8_t> packet);

}  // namespace sg::test

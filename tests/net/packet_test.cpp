#include "net/packet.hpp"

#include <arpa/inet.h>

#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <vector>

#include "net/checksum.hpp"
#include "support/packet_builder.hpp"
#include "util/byte_order.hpp"

namespace sg::net {
namespace {

using test::PacketBuilder;
using test::payload_of;
using Bytes = std::vector<uint8_t>;

IpAddress address(const char* text) {
  IpAddress a;
  if (inet_pton(AF_INET6, text, a.bytes.data()) != 1) FAIL("bad IPv6 literal " << text);
  return a;
}

// What "never reaches past the bytes" means for a view of an n-byte buffer.
void check_within(const PacketView& v, size_t n) {
  CHECK(v.packet_len <= n);
  CHECK(v.ip_header_len >= 20);
  CHECK(v.tcp_offset == v.ip_header_len);
  CHECK(v.tcp_header_len >= 20);
  CHECK(v.tcp_offset + v.tcp_header_len == v.payload_offset);
  CHECK(v.payload_offset + v.payload_len == v.packet_len);
  CHECK(v.sack_count <= 4);
  for (size_t i = 0; i < v.sack_count; ++i) {
    CHECK(v.sack_offsets[i] >= v.tcp_offset + 20);
    CHECK(v.sack_offsets[i] + 8 <= v.payload_offset);
  }
}

TEST_CASE("an IPv4 SYN with the usual options parses", "[net][packet]") {
  const Bytes p = PacketBuilder()
                      .v4("198.18.0.1", "198.19.255.254")
                      .ports(40000, 25)
                      .flags(kTcpSyn)
                      .seq(0xfffffff0)
                      .window(29200)
                      .mss(1460)
                      .sack_permitted()
                      .timestamps(1234, 0)
                      .window_scale(7)
                      .build();
  auto r = parse_packet(p);
  REQUIRE(r);
  const PacketView& v = *r;
  CHECK(v.ip_version == 4);
  CHECK(v.ip_header_len == 20);
  CHECK(v.tcp_offset == 20);
  CHECK(v.tcp_header_len == 20 + 4 + 4 + 12 + 4);
  CHECK(v.payload_offset == p.size());
  CHECK(v.payload_len == 0);
  CHECK(v.packet_len == p.size());
  CHECK(v.src.to_string() == "198.18.0.1");
  CHECK(v.dst.to_string() == "198.19.255.254");
  CHECK(v.src.is_v4());
  CHECK(v.src_port == 40000);
  CHECK(v.dst_port == 25);
  CHECK(v.seq == 0xfffffff0);
  CHECK(v.ack == 0);
  CHECK(v.flags == kTcpSyn);
  CHECK(v.window == 29200);
  CHECK(v.mss == 1460);
  CHECK(v.sack_count == 0);
}

TEST_CASE("an IPv4 data segment exposes its payload", "[net][packet]") {
  const Bytes p = PacketBuilder()
                      .ports(25, 40000)
                      .flags(kTcpPsh | kTcpAck)
                      .seq(7)
                      .ack(0x80000000)
                      .urgent(3)
                      .payload("250-mx.example.org\r\n250 PIPELINING\r\n")
                      .build();
  auto v = parse_packet(p);
  REQUIRE(v);
  CHECK(v->payload_offset == 40);
  CHECK(v->payload_len == 36);
  CHECK(v->ack == 0x80000000);
  CHECK(v->flags == (kTcpPsh | kTcpAck));
  CHECK(v->urgent == 3);
  CHECK(v->mss == 0);
  CHECK(payload_of(p) == "250-mx.example.org\r\n250 PIPELINING\r\n");
}

TEST_CASE("bytes after the IPv4 datagram are ignored", "[net][packet]") {
  Bytes p = PacketBuilder().payload("QUIT\r\n").build();
  const size_t len = p.size();
  p.insert(p.end(), 10, 0xee);  // Ethernet padding or a short capture of something longer
  auto v = parse_packet(p);
  REQUIRE(v);
  CHECK(v->packet_len == len);
  CHECK(v->payload_len == 6);
}

TEST_CASE("IPv4 header options are skipped", "[net][packet]") {
  Bytes p = PacketBuilder().payload("DATA\r\n").build();
  p.insert(p.begin() + 20, {1, 1, 1, 0});  // NOP NOP NOP EOL
  p[0] = 0x46;
  store_be16(p, 2, static_cast<uint16_t>(p.size()));
  auto v = parse_packet(p);
  REQUIRE(v);
  CHECK(v->ip_header_len == 24);
  CHECK(v->tcp_offset == 24);
  CHECK(payload_of(p) == "DATA\r\n");
}

struct ExtensionChain {
  const char* what;
  std::vector<std::pair<uint8_t, size_t>> headers;  // {type, size in 8-byte units}
  size_t ip_header_len;
};

TEST_CASE("IPv6 extension header chains are walked to TCP", "[net][packet]") {
  const ExtensionChain chain = GENERATE(values<ExtensionChain>({
      {"no extension headers", {}, 40},
      {"hop-by-hop", {{0, 1}}, 48},
      {"destination options, 16 bytes", {{60, 2}}, 56},
      {"routing, segments left 0", {{43, 1}}, 48},
      {"AH counts 4-byte units", {{51, 2}}, 56},
      {"AH of 8 units", {{51, 8}}, 104},
      {"large destination options", {{60, 40}}, 360},
      {"everything", {{0, 1}, {60, 1}, {43, 3}, {51, 3}, {60, 1}}, 112},
  }));
  INFO(chain.what);
  PacketBuilder b;
  b.v6("2001:db8::1", "2001:db8:ffff::2").ports(40001, 587).mss(1220);
  for (auto [type, len8] : chain.headers) b.ipv6_extension(type, len8);
  const Bytes p = b.payload("STARTTLS\r\n").build();
  auto v = parse_packet(p);
  REQUIRE(v);
  CHECK(v->ip_version == 6);
  CHECK(v->ip_header_len == chain.ip_header_len);
  CHECK(v->tcp_offset == chain.ip_header_len);
  CHECK(v->packet_len == p.size());
  CHECK(v->src.to_string() == "2001:db8::1");
  CHECK(v->dst.to_string() == "2001:db8:ffff::2");
  CHECK_FALSE(v->src.is_v4());
  CHECK(v->dst_port == 587);
  CHECK(v->mss == 1220);
  CHECK(payload_of(p) == "STARTTLS\r\n");
}

struct Refusal {
  const char* what;
  Bytes (*make)();
  ParseError expected;
};

TEST_CASE("packets that are not ours are refused with the right reason", "[net][packet]") {
  const Refusal r = GENERATE(values<Refusal>({
      {"empty", [] { return Bytes{}; }, ParseError::kTooShort},
      {"19 bytes of IPv4", [] { return Bytes(19, 0x45); }, ParseError::kTooShort},
      {"39 bytes of IPv6", [] { return Bytes(39, 0x60); }, ParseError::kTooShort},
      {"version 5",
       [] {
         Bytes p = PacketBuilder().build();
         p[0] = 0x55;
         return p;
       },
       ParseError::kBadVersion},
      {"version 0", [] { return Bytes(60, 0x05); }, ParseError::kBadVersion},
      {"IPv4 first fragment (MF)", [] { return PacketBuilder().ipv4_fragment(0, true).build(); },
       ParseError::kFragment},
      {"IPv4 middle fragment",
       [] { return PacketBuilder().ipv4_fragment(185, true).payload("x").build(); },
       ParseError::kFragment},
      {"IPv4 last fragment (offset only)",
       [] { return PacketBuilder().ipv4_fragment(1, false).build(); }, ParseError::kFragment},
      {"IPv4 UDP",
       [] {
         Bytes p = PacketBuilder().build();
         p[9] = 17;
         return p;
       },
       ParseError::kNotTcp},
      {"IPv6 fragment header",
       [] {
         return PacketBuilder().v6("2001:db8::1", "2001:db8::2").ipv6_extension(44, 1).build();
       },
       ParseError::kFragment},
      {"IPv6 fragment header after hop-by-hop",
       [] {
         return PacketBuilder()
             .v6("2001:db8::1", "2001:db8::2")
             .ipv6_extension(0, 1)
             .ipv6_extension(44, 1)
             .build();
       },
       ParseError::kFragment},
      {"IPv6 no next header",
       [] {
         return PacketBuilder().v6("2001:db8::1", "2001:db8::2").ipv6_extension(59, 1).build();
       },
       ParseError::kNotTcp},
      {"IPv6 ESP",
       [] {
         return PacketBuilder().v6("2001:db8::1", "2001:db8::2").ipv6_extension(50, 1).build();
       },
       ParseError::kNotTcp},
      {"IPv6 UDP",
       [] {
         Bytes p = PacketBuilder().v6("2001:db8::1", "2001:db8::2").build();
         p[6] = 17;
         return p;
       },
       ParseError::kNotTcp},
      {"IPv6 hop-by-hop that is not first",
       [] {
         return PacketBuilder()
             .v6("2001:db8::1", "2001:db8::2")
             .ipv6_extension(60, 1)
             .ipv6_extension(0, 1)
             .build();
       },
       ParseError::kBadExtensionHeader},
  }));
  INFO(r.what);
  const Bytes p = r.make();
  auto v = parse_packet(p);
  REQUIRE_FALSE(v);
  CHECK(v.error() == r.expected);
}

TEST_CASE("an IPv4 packet with only DF set is not a fragment", "[net][packet]") {
  const Bytes p = PacketBuilder().build();
  REQUIRE((p[6] & 0x40) != 0);
  CHECK(parse_packet(p));
}

// Fixed layouts of the two base packets below, so corruptions can name the field they hit.
constexpr size_t kV4Tcp = 20;
constexpr size_t kV6Hbh = 40, kV6Ah = 48, kV6Tcp = 64;
constexpr size_t kOpt = 20;          // options start, relative to TCP
constexpr size_t kOptTs = kOpt + 6;  // MSS(4) NOP NOP TS(10)

Bytes v4_base() {
  return PacketBuilder().mss(1460).timestamps(5, 6).payload("HELO x\r\n").build();  // 64 bytes
}

Bytes v6_base() {
  return PacketBuilder()
      .v6("2001:db8::1", "2001:db8::2")
      .ipv6_extension(0, 1)
      .ipv6_extension(51, 2)
      .mss(1460)
      .timestamps(5, 6)
      .payload("HELO x\r\n")
      .build();  // 108 bytes
}

struct Corruption {
  const char* what;
  bool v6;
  void (*mutate)(Bytes&);
  ParseError expected;
};

TEST_CASE("every corrupted length field is reported as what it is", "[net][packet]") {
  const Corruption c = GENERATE(values<Corruption>({
      // IPv4 header length (IHL)
      {"IHL 0", false, [](Bytes& p) { p[0] = 0x40; }, ParseError::kBadIpHeaderLength},
      {"IHL 4", false, [](Bytes& p) { p[0] = 0x44; }, ParseError::kBadIpHeaderLength},
      {"IHL 15 beyond the bytes", false,
       [](Bytes& p) {
         p.resize(40);
         store_be16(p, 2, 40);
         p[0] = 0x4f;
       },
       ParseError::kBadIpHeaderLength},
      {"IHL 15 leaves no room for TCP", false, [](Bytes& p) { p[0] = 0x4f; },
       ParseError::kBadTcpHeaderLength},
      {"IHL beyond the total length", false,
       [](Bytes& p) {
         p[0] = 0x46;
         store_be16(p, 2, 22);
       },
       ParseError::kBadTotalLength},
      // IPv4 total length
      {"total length 0", false, [](Bytes& p) { store_be16(p, 2, 0); }, ParseError::kBadTotalLength},
      {"total length 19", false, [](Bytes& p) { store_be16(p, 2, 19); },
       ParseError::kBadTotalLength},
      {"total length one past the bytes", false, [](Bytes& p) { store_be16(p, 2, 65); },
       ParseError::kBadTotalLength},
      {"total length 65535", false, [](Bytes& p) { store_be16(p, 2, 65535); },
       ParseError::kBadTotalLength},
      {"total length cuts the TCP header", false, [](Bytes& p) { store_be16(p, 2, 39); },
       ParseError::kBadTcpHeaderLength},
      {"total length cuts the TCP options", false, [](Bytes& p) { store_be16(p, 2, 50); },
       ParseError::kBadTcpHeaderLength},
      // TCP data offset
      {"data offset 0", false, [](Bytes& p) { p[kV4Tcp + 12] = 0x00; },
       ParseError::kBadTcpHeaderLength},
      {"data offset 4", false, [](Bytes& p) { p[kV4Tcp + 12] = 0x40; },
       ParseError::kBadTcpHeaderLength},
      {"data offset 15", false, [](Bytes& p) { p[kV4Tcp + 12] = 0xf0; },
       ParseError::kBadTcpHeaderLength},
      // TCP option lengths
      {"MSS length 0", false, [](Bytes& p) { p[kV4Tcp + kOpt + 1] = 0; },
       ParseError::kBadTcpOptions},
      {"MSS length 1", false, [](Bytes& p) { p[kV4Tcp + kOpt + 1] = 1; },
       ParseError::kBadTcpOptions},
      {"MSS length 40", false, [](Bytes& p) { p[kV4Tcp + kOpt + 1] = 40; },
       ParseError::kBadTcpOptions},
      {"timestamps one byte too long", false, [](Bytes& p) { p[kV4Tcp + kOptTs + 1] = 11; },
       ParseError::kBadTcpOptions},
      {"an option kind in the last byte", false,
       [](Bytes& p) {
         for (size_t i = kOptTs; i < kOptTs + 10; ++i) p[kV4Tcp + i] = 1;
         p[kV4Tcp + kOptTs + 9] = 8;
       },
       ParseError::kBadTcpOptions},
      // IPv6 payload length
      {"payload length 0 (jumbogram)", true, [](Bytes& p) { store_be16(p, 4, 0); },
       ParseError::kBadTotalLength},
      {"payload length one past the bytes", true, [](Bytes& p) { store_be16(p, 4, 69); },
       ParseError::kBadTotalLength},
      {"payload length 65535", true, [](Bytes& p) { store_be16(p, 4, 65535); },
       ParseError::kBadTotalLength},
      {"payload length cuts the first header's length byte", true,
       [](Bytes& p) { store_be16(p, 4, 1); }, ParseError::kBadExtensionHeader},
      {"payload length cuts hop-by-hop", true, [](Bytes& p) { store_be16(p, 4, 4); },
       ParseError::kBadExtensionHeader},
      {"payload length cuts AH", true, [](Bytes& p) { store_be16(p, 4, 20); },
       ParseError::kBadExtensionHeader},
      {"payload length cuts the TCP header", true, [](Bytes& p) { store_be16(p, 4, 30); },
       ParseError::kBadTcpHeaderLength},
      {"payload length cuts the TCP options", true, [](Bytes& p) { store_be16(p, 4, 40); },
       ParseError::kBadTcpHeaderLength},
      // IPv6 extension header lengths and chaining
      {"hop-by-hop length 255", true, [](Bytes& p) { p[kV6Hbh + 1] = 255; },
       ParseError::kBadExtensionHeader},
      {"AH length 255", true, [](Bytes& p) { p[kV6Ah + 1] = 255; },
       ParseError::kBadExtensionHeader},
      {"AH length past the packet by 4", true, [](Bytes& p) { p[kV6Ah + 1] = 14; },
       ParseError::kBadExtensionHeader},
      {"hop-by-hop followed by a fragment header", true, [](Bytes& p) { p[kV6Hbh] = 44; },
       ParseError::kFragment},
      {"AH followed by no next header", true, [](Bytes& p) { p[kV6Ah] = 59; }, ParseError::kNotTcp},
      {"AH followed by a second hop-by-hop", true, [](Bytes& p) { p[kV6Ah] = 0; },
       ParseError::kBadExtensionHeader},
      {"IPv6 data offset 4", true, [](Bytes& p) { p[kV6Tcp + 12] = 0x40; },
       ParseError::kBadTcpHeaderLength},
      {"IPv6 MSS length 0", true, [](Bytes& p) { p[kV6Tcp + kOpt + 1] = 0; },
       ParseError::kBadTcpOptions},
  }));
  INFO(c.what);
  Bytes p = c.v6 ? v6_base() : v4_base();
  REQUIRE(p.size() == (c.v6 ? 108u : 64u));
  auto ok = parse_packet(p);
  REQUIRE(ok);
  REQUIRE(ok->tcp_offset == (c.v6 ? kV6Tcp : kV4Tcp));
  c.mutate(p);
  auto v = parse_packet(p);
  REQUIRE_FALSE(v);
  CHECK(to_string(v.error()) == to_string(c.expected));
}

Bytes v4_with_everything() {
  return PacketBuilder()
      .v4("198.18.7.7", "198.19.0.25")
      .mss(1400)
      .timestamps(1, 2)
      .sack({{100, 200}, {300, 400}})
      .payload("RCPT TO:<b@example.org>\r\n")
      .build();
}

Bytes v6_with_everything() {
  return PacketBuilder()
      .v6("2001:db8::7", "2001:db8::25")
      .ipv6_extension(0, 1)
      .ipv6_extension(60, 2)
      .ipv6_extension(43, 1)
      .ipv6_extension(51, 3)
      .timestamps(1, 2)
      .sack({{100, 200}, {300, 400}, {500, 600}})
      .payload("RCPT TO:<b@example.org>\r\n")
      .build();
}

TEST_CASE("every truncation is refused and never read past", "[net][packet]") {
  const bool v6 = GENERATE(false, true);
  const Bytes full = v6 ? v6_with_everything() : v4_with_everything();
  const auto whole = parse_packet(full);
  REQUIRE(whole);
  check_within(*whole, full.size());
  REQUIRE(whole->sack_count == (v6 ? 3 : 2));

  for (size_t n = 0; n < full.size(); ++n) {
    INFO("prefix of " << n << " bytes");
    // Exactly n bytes on the heap, so a sanitizer catches any read beyond them.
    const Bytes prefix(full.begin(), full.begin() + static_cast<ptrdiff_t>(n));
    auto v = parse_packet(prefix);
    CHECK_FALSE(v);  // the length fields still announce the whole packet

    // The same prefix with its IP length field made to agree: now the inner layers are cut.
    Bytes agreed = prefix;
    if (!v6 && n >= 4) store_be16(agreed, 2, static_cast<uint16_t>(n));
    if (v6 && n >= 40) store_be16(agreed, 4, static_cast<uint16_t>(n - 40));
    auto w = parse_packet(agreed);
    if (n >= whole->payload_offset) {
      REQUIRE(w);
      check_within(*w, n);
      CHECK(w->payload_len == n - whole->payload_offset);
    } else {
      CHECK_FALSE(w);
    }
  }
}

TEST_CASE("any single corrupted byte never yields a view past the bytes", "[net][packet]") {
  const bool v6 = GENERATE(false, true);
  const Bytes full = v6 ? v6_with_everything() : v4_with_everything();
  size_t accepted = 0;
  for (size_t i = 0; i < full.size(); ++i) {
    for (uint8_t delta : {0x01, 0x08, 0x10, 0x80, 0xff}) {
      Bytes p = full;
      p[i] ^= delta;
      auto v = parse_packet(p);
      if (v) {
        ++accepted;
        check_within(*v, p.size());
      }
    }
  }
  CHECK(accepted > 0);
}

TEST_CASE("SACK blocks read back, rewrite in place, and nothing else changes", "[net][packet]") {
  const size_t n = GENERATE(1u, 2u, 3u, 4u);
  const bool with_timestamps = GENERATE(false, true);
  if (n == 4 && with_timestamps) return;  // 48 option bytes do not fit in 40
  std::vector<SackBlock> blocks;
  for (size_t i = 0; i < n; ++i) {
    blocks.push_back({static_cast<uint32_t>(0xfffff000 + 0x1000 * i),
                      static_cast<uint32_t>(0xfffff800 + 0x1000 * i)});
  }
  PacketBuilder b;
  b.flags(kTcpAck).ack(0xfffff000);
  if (with_timestamps) b.timestamps(10, 20);
  Bytes p = b.sack(blocks).build();
  auto v = parse_packet(p);
  REQUIRE(v);
  REQUIRE(v->sack_count == n);
  for (size_t i = 0; i < n; ++i) {
    CHECK(read_sack(p, *v, i).left == blocks[i].left);
    CHECK(read_sack(p, *v, i).right == blocks[i].right);
  }
  const Bytes before = p;
  for (size_t i = 0; i < n; ++i) {
    write_sack(p, *v, i, {blocks[i].left + 0x20000, blocks[i].right + 0x20000});
  }
  size_t changed = 0;
  for (size_t i = 0; i < p.size(); ++i) changed += p[i] != before[i];
  CHECK(changed > 0);
  CHECK(changed <= 8 * n);
  auto again = parse_packet(p);
  REQUIRE(again);
  for (size_t i = 0; i < n; ++i) {
    CHECK(read_sack(p, *again, i).left == blocks[i].left + 0x20000);
    CHECK(read_sack(p, *again, i).right == blocks[i].right + 0x20000);
  }
  // Indices past the blocks read as empty and write nothing.
  CHECK(read_sack(p, *v, n).left == 0);
  const Bytes after = p;
  write_sack(p, *v, n, {1, 2});
  CHECK(p == after);
}

TEST_CASE("SACK options of a shape receivers ignore are not recorded", "[net][packet]") {
  struct Case {
    const char* what;
    std::vector<uint8_t> option;
    uint8_t sack_count;
  };
  const Case c = GENERATE(values<Case>({
      {"no blocks", {5, 2}, 0},
      {"a block and a stray byte", {5, 11, 0, 0, 0, 1, 0, 0, 0, 2, 9}, 0},
      {"one block", {5, 10, 0, 0, 0, 1, 0, 0, 0, 2}, 1},
  }));
  INFO(c.what);
  const Bytes p = PacketBuilder().raw_option(c.option).build();
  auto v = parse_packet(p);
  REQUIRE(v);
  CHECK(v->sack_count == c.sack_count);
}

TEST_CASE("blocks of two SACK options are all recorded", "[net][packet]") {
  const Bytes p = PacketBuilder().sack({{1, 2}, {3, 4}}).sack({{5, 6}, {7, 8}}).build();
  auto v = parse_packet(p);
  REQUIRE(v);
  REQUIRE(v->sack_count == 4);
  CHECK(read_sack(p, *v, 3).left == 7);
  CHECK(read_sack(p, *v, 3).right == 8);
}

TEST_CASE("options after an end-of-list are padding", "[net][packet]") {
  const Bytes p = PacketBuilder().raw_option({0, 2, 0}).build();  // EOL, then junk "MSS len 0"
  auto v = parse_packet(p);
  REQUIRE(v);
  CHECK(v->mss == 0);
}

TEST_CASE("write_seq and write_ack change exactly those fields", "[net][packet]") {
  const bool v6 = GENERATE(false, true);
  PacketBuilder b;
  if (v6) b.v6("2001:db8::1", "2001:db8::2").ipv6_extension(60, 1);
  Bytes p = b.seq(1).ack(2).payload("RSET\r\n").build();
  auto v = parse_packet(p);
  REQUIRE(v);
  const Bytes before = p;
  write_seq(p, *v, 0xdeadbeef);
  write_ack(p, *v, 0x01020304);
  auto again = parse_packet(p);
  REQUIRE(again);
  CHECK(again->seq == 0xdeadbeef);
  CHECK(again->ack == 0x01020304);
  size_t changed = 0;
  for (size_t i = 0; i < p.size(); ++i) changed += p[i] != before[i];
  CHECK(changed == 8);
}

struct Routing {
  const char* what;
  uint8_t type, segments_left;
  size_t len8;
  bool ok;
  const char* dst;  // expected view destination
};

TEST_CASE("an IPv6 routing header in transit names the TCP destination", "[net][packet]") {
  const Routing r = GENERATE(values<Routing>({
      {"segments left 0: the header destination is final", 2, 0, 3, true, "2001:db8::7"},
      {"type 2 (Mobile IPv6): the home address", 2, 1, 3, true, "2001:db8::99"},
      {"type 4 (SRH): segment list [0]", 4, 2, 5, true, "2001:db8::99"},
      {"type 2 of the wrong size", 2, 1, 5, false, ""},
      {"type 0 is deprecated", 0, 1, 3, false, ""},
      {"type 3 (RPL) cannot be decoded", 3, 1, 3, false, ""},
  }));
  INFO(r.what);
  Bytes p = PacketBuilder()
                .v6("2001:db8::1", "2001:db8::7")
                .ipv6_extension(43, r.len8)
                .payload("EHLO a\r\n")
                .build();
  p[42] = r.type;
  p[43] = r.segments_left;
  const IpAddress final_hop = address("2001:db8::99");
  std::copy(final_hop.bytes.begin(), final_hop.bytes.end(), p.begin() + 48);
  auto v = parse_packet(p);
  if (!r.ok) {
    REQUIRE_FALSE(v);
    CHECK(v.error() == ParseError::kBadExtensionHeader);
    return;
  }
  REQUIRE(v);
  CHECK(v->dst.to_string() == r.dst);
  CHECK(payload_of(p) == "EHLO a\r\n");
}

TEST_CASE("addresses print like inet_ntop, IPv4 dotted", "[net][packet]") {
  struct Case {
    const char* v6_literal;
    bool is_v4;
    const char* text;
  };
  const Case c = GENERATE(values<Case>({
      {"::ffff:198.18.0.1", true, "198.18.0.1"},
      {"::ffff:198.19.255.255", true, "198.19.255.255"},
      {"2001:db8::1", false, "2001:db8::1"},
      {"2001:db8:0:0:1:0:0:1", false, "2001:db8::1:0:0:1"},
      {"2001:db8::ffff:c612:1", false, "2001:db8::ffff:c612:1"},
  }));
  const IpAddress a = address(c.v6_literal);
  CHECK(a.is_v4() == c.is_v4);
  CHECK(a.to_string() == c.text);
}

TEST_CASE("IPv4 sources and destinations are v4-mapped", "[net][packet]") {
  const Bytes p = PacketBuilder().v4("198.18.1.2", "198.19.3.4").build();
  auto v = parse_packet(p);
  REQUIRE(v);
  CHECK(v->src == address("::ffff:198.18.1.2"));
  CHECK(v->dst == address("::ffff:198.19.3.4"));
}

TEST_CASE("every parse error has its own name", "[net][packet]") {
  std::set<std::string_view> names;
  for (size_t i = 0; i < kParseErrorCount; ++i) {
    const auto name = to_string(static_cast<ParseError>(i));
    CHECK_FALSE(name.empty());
    names.insert(name);
  }
  CHECK(names.size() == kParseErrorCount);
  CHECK(to_string(ParseError::kFragment) == "fragment");
  CHECK(to_string(ParseError::kBadTcpOptions) == "bad_tcp_options");
}

TEST_CASE("clear_urgent clears the URG flag and the pointer and nothing else", "[net][packet]") {
  const bool v6 = GENERATE(false, true);
  const uint8_t flags = GENERATE(uint8_t{kTcpAck | kTcpUrg}, uint8_t{kTcpAck | kTcpPsh | kTcpUrg},
                                 uint8_t{kTcpAck});  // pointer without the flag: zeroed too
  PacketBuilder b;
  if (v6) b.v6("2001:db8:1::1", "2001:db8:2::1");
  b.flags(flags).urgent(1).payload("XEXPN root\r\n").timestamps(7, 9);
  Bytes p = b.build();
  const Bytes before = p;
  auto v = parse_packet(p);
  REQUIRE(v);
  REQUIRE(clear_urgent(p, *v));
  auto after = parse_packet(p);
  REQUIRE(after);
  CHECK(after->flags == (flags & ~kTcpUrg));
  CHECK(after->urgent == 0);
  CHECK(payload_of(p) == "XEXPN root\r\n");
  // Only the flags byte and the two pointer bytes changed.
  size_t changed = 0;
  for (size_t i = 0; i < p.size(); ++i)
    if (p[i] != before[i]) {
      ++changed;
      CHECK((i == v->tcp_offset + 13 || i == v->tcp_offset + 18 || i == v->tcp_offset + 19));
    }
  CHECK(changed >= 1);
  // Checksums are the caller's: now stale, correct once finalised.
  CHECK_FALSE(tcp_checksum_ok(p, *after));
  finalize_checksums(p, *after);
  CHECK(tcp_checksum_ok(p, *after));
  // Nothing left to clear.
  CHECK_FALSE(clear_urgent(p, *after));
}

TEST_CASE("clear_urgent leaves a segment without urgent data untouched", "[net][packet]") {
  Bytes p = PacketBuilder().flags(kTcpAck | kTcpPsh).payload("EXPN root\r\n").build();
  const Bytes before = p;
  auto v = parse_packet(p);
  REQUIRE(v);
  CHECK_FALSE(clear_urgent(p, *v));
  CHECK(p == before);
}

}  // namespace
}  // namespace sg::net

#include "net/forge.hpp"

#include <arpa/inet.h>

#include <catch2/catch.hpp>
#include <optional>
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

IpAddress v4(const char* text) {
  IpAddress a;
  a.bytes[10] = 0xff;
  a.bytes[11] = 0xff;
  if (inet_pton(AF_INET, text, a.bytes.data() + 12) != 1) FAIL("bad IPv4 literal " << text);
  return a;
}

IpAddress v6(const char* text) {
  IpAddress a;
  if (inet_pton(AF_INET6, text, a.bytes.data()) != 1) FAIL("bad IPv6 literal " << text);
  return a;
}

std::span<const uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

struct Case {
  const char* description;
  bool ipv6;
  std::optional<TcpTimestamps> timestamps;
  const char* payload;
  uint8_t flags;
};

TEST_CASE("forged segments parse back with every field as specified", "[net][forge]") {
  const Case c = GENERATE(values<Case>({
      {"IPv4 bare ACK", false, std::nullopt, "", kTcpAck},
      {"IPv4 answer with timestamps", false, TcpTimestamps{0x01020304, 0xfffffffe},
       "550 5.7.1 Command blocked by policy\r\n", kTcpAck | kTcpPsh},
      {"IPv4 RST without timestamps", false, std::nullopt, "", kTcpRst | kTcpAck},
      {"IPv4 odd payload", false, std::nullopt, "250 ok\r\nX", kTcpAck | kTcpPsh},
      {"IPv6 bare ACK with timestamps", true, TcpTimestamps{7, 0}, "", kTcpAck},
      {"IPv6 answer", true, std::nullopt, "550 5.7.1 no\r\n", kTcpAck | kTcpPsh},
      {"IPv6 answer with timestamps", true, TcpTimestamps{0x80000000, 0x7fffffff},
       "221 2.0.0 bye\r\n", kTcpAck | kTcpPsh | kTcpFin},
  }));
  INFO(c.description);

  SegmentSpec s;
  s.src = c.ipv6 ? v6("2001:db8:2::2") : v4("198.18.2.2");
  s.dst = c.ipv6 ? v6("2001:db8:1::2") : v4("198.19.1.2");
  s.src_port = 25;
  s.dst_port = 40001;
  s.seq = 0xfffffff0;
  s.ack = 0x12345678;
  s.flags = c.flags;
  s.window = 502;
  s.ttl = 63;
  s.timestamps = c.timestamps;
  s.payload = bytes_of(c.payload);

  const Bytes p = forge_segment(s);
  auto r = parse_packet(p);
  REQUIRE(r);
  const PacketView& v = *r;
  const size_t ip_len = c.ipv6 ? 40 : 20;
  const size_t tcp_len = c.timestamps ? 32 : 20;
  CHECK(v.ip_version == (c.ipv6 ? 6 : 4));
  CHECK(v.ip_header_len == ip_len);
  CHECK(v.tcp_offset == ip_len);
  CHECK(v.tcp_header_len == tcp_len);
  CHECK(v.payload_offset == ip_len + tcp_len);
  CHECK(v.payload_len == std::string_view(c.payload).size());
  CHECK(v.packet_len == p.size());
  CHECK(v.src == s.src);
  CHECK(v.dst == s.dst);
  CHECK(v.src.is_v4() == !c.ipv6);
  CHECK(v.src_port == 25);
  CHECK(v.dst_port == 40001);
  CHECK(v.seq == 0xfffffff0);
  CHECK(v.ack == 0x12345678);
  CHECK(v.flags == c.flags);
  CHECK(v.window == 502);
  CHECK(v.urgent == 0);
  CHECK(v.sack_count == 0);
  CHECK(v.mss == 0);
  CHECK(payload_of(p) == c.payload);
  CHECK(tcp_checksum_ok(p, v));
  CHECK(ipv4_checksum_ok(p, v));

  if (c.ipv6) {
    CHECK(p[0] == 0x60);
    CHECK((p[1] & 0x0f) == 0);  // flow label 0
    CHECK(load_be16(p, 2) == 0);
    CHECK(load_be16(p, 4) == p.size() - 40);
    CHECK(p[6] == 6);  // no extension header
    CHECK(p[7] == 63);
  } else {
    CHECK(p[0] == 0x45);
    CHECK(p[1] == 0);
    CHECK(load_be16(p, 2) == p.size());
    CHECK(load_be16(p, 4) == 0);       // identification
    CHECK(load_be16(p, 6) == 0x4000);  // DF, offset 0
    CHECK(p[8] == 63);
    CHECK(p[9] == 6);
  }

  const auto ts = read_timestamps(p, v);
  REQUIRE(ts.has_value() == c.timestamps.has_value());
  if (ts) {
    CHECK(ts->value == c.timestamps->value);
    CHECK(ts->echo == c.timestamps->echo);
    // NOP NOP kind 8 length 10, right after the fixed header.
    CHECK(Bytes(p.begin() + 20 + ip_len, p.begin() + 24 + ip_len) == Bytes{1, 1, 8, 10});
  }
}

TEST_CASE("a forged segment is the same bytes as the test builder's", "[net][forge]") {
  // The builder computes checksums with its own RFC 1071 loop, so this also checks the forged
  // checksums independently. Only the IPv4 identification (and so the IP checksum) differ.
  const bool ipv6 = GENERATE(false, true);
  INFO((ipv6 ? "IPv6" : "IPv4"));
  PacketBuilder b;
  SegmentSpec s;
  if (ipv6) {
    b.v6("2001:db8:1::2", "2001:db8:2::2");
    s.src = v6("2001:db8:1::2");
    s.dst = v6("2001:db8:2::2");
  } else {
    b.v4("198.18.1.2", "198.18.2.2");
    s.src = v4("198.18.1.2");
    s.dst = v4("198.18.2.2");
  }
  const std::string payload = "RSET\r\n";
  const Bytes expected = b.ports(40000, 25)
                             .seq(1)
                             .ack(2)
                             .flags(kTcpAck | kTcpPsh)
                             .window(1000)
                             .ttl(64)
                             .timestamps(3, 4)
                             .payload(payload)
                             .build();
  s.src_port = 40000;
  s.dst_port = 25;
  s.seq = 1;
  s.ack = 2;
  s.flags = kTcpAck | kTcpPsh;
  s.window = 1000;
  s.ttl = 64;
  s.timestamps = TcpTimestamps{3, 4};
  s.payload = bytes_of(payload);
  Bytes forged = forge_segment(s);
  REQUIRE(forged.size() == expected.size());
  if (!ipv6) {
    // Patch the builder's identification in and redo the header checksum our way.
    forged[4] = expected[4];
    forged[5] = expected[5];
    auto v = parse_packet(forged);
    REQUIRE(v);
    finalize_checksums(forged, *v);
  }
  CHECK(forged == expected);
}

TEST_CASE("read_timestamps finds the option wherever the builder puts it", "[net][forge]") {
  struct Layout {
    const char* description;
    PacketBuilder builder;
    std::optional<TcpTimestamps> expected;
  };
  const std::vector<Layout> layouts = {
      {"SYN: MSS, SACK permitted, TS, window scale",
       PacketBuilder().flags(kTcpSyn).mss(1460).sack_permitted().timestamps(11, 0).window_scale(7),
       TcpTimestamps{11, 0}},
      {"TS then SACK", PacketBuilder().timestamps(0xdeadbeef, 0xcafef00d).sack({{1, 2}, {3, 4}}),
       TcpTimestamps{0xdeadbeef, 0xcafef00d}},
      {"SACK then TS on IPv6",
       PacketBuilder().v6("2001:db8::1", "2001:db8::2").sack({{5, 6}}).timestamps(1, 2),
       TcpTimestamps{1, 2}},
      {"IPv6 with an extension header",
       PacketBuilder().v6("2001:db8::1", "2001:db8::2").ipv6_extension(60, 2).timestamps(9, 8),
       TcpTimestamps{9, 8}},
      {"no options", PacketBuilder(), std::nullopt},
      {"MSS only", PacketBuilder().flags(kTcpSyn).mss(1460), std::nullopt},
      {"a kind-8 option of the wrong length is not timestamps",
       PacketBuilder().raw_option({8, 6, 0, 0, 0, 1}), std::nullopt},
      {"options after end-of-list are padding",
       PacketBuilder().raw_option({0, 1, 1, 1}).timestamps(5, 5), std::nullopt},
  };
  for (const Layout& l : layouts) {
    INFO(l.description);
    const Bytes p = l.builder.build();
    auto v = parse_packet(p);
    REQUIRE(v);
    const auto ts = read_timestamps(p, *v);
    REQUIRE(ts.has_value() == l.expected.has_value());
    if (ts) {
      CHECK(ts->value == l.expected->value);
      CHECK(ts->echo == l.expected->echo);
    }
  }
}

TEST_CASE("read_timestamps never reads past a view that claims too much", "[net][forge]") {
  const Bytes p = PacketBuilder().timestamps(1, 2).build();
  auto v = parse_packet(p);
  REQUIRE(v);
  // The bytes handed in end inside the option: nothing is read beyond them.
  const std::span<const uint8_t> cut(p.data(), p.size() - 4);
  CHECK_FALSE(read_timestamps(cut, *v));
  CHECK(read_timestamps(p, *v));
}

}  // namespace
}  // namespace sg::net

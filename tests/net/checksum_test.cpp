#include "net/checksum.hpp"

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "net/packet.hpp"
#include "support/packet_builder.hpp"
#include "util/byte_order.hpp"

namespace sg::net {
namespace {

using test::PacketBuilder;

std::vector<uint8_t> from_hex(std::string_view hex) {
  std::vector<uint8_t> out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<uint8_t>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

// RFC 1071 the plain way: big-endian 16-bit words, a zero pad byte, end-around carry.
uint16_t reference_sum(std::span<const uint8_t> data, uint32_t sum = 0) {
  for (size_t i = 0; i < data.size(); i += 2) {
    sum += static_cast<uint32_t>(data[i]) << 8 | (i + 1 < data.size() ? data[i + 1] : 0);
    sum = (sum & 0xffff) + (sum >> 16);
  }
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

// The pseudo-header sum alone, as the kernel leaves it in the field under CSUMNOTREADY.
uint16_t reference_pseudo_sum(std::span<const uint8_t> p, const PacketView& v) {
  const size_t tcp_len = v.packet_len - v.tcp_offset;
  uint32_t sum = 6 + static_cast<uint32_t>(tcp_len);
  if (v.ip_version == 4) {
    sum = reference_sum(p.subspan(12, 8), sum);
  } else {
    sum = reference_sum(p.subspan(8, 32), sum);
  }
  return static_cast<uint16_t>(sum);
}

PacketView parsed(std::span<const uint8_t> p) {
  auto v = parse_packet(p);
  REQUIRE(v.has_value());
  return *v;
}

// Packets written out by hand, with checksums computed separately (by a script, not this code).
struct KnownPacket {
  const char* what;
  const char* hex;
  size_t tcp_offset;
  uint16_t ip_checksum;  // 0 for IPv6
  uint16_t tcp_checksum;
};

const KnownPacket kKnownPackets[] = {
    {"IPv4 SYN with MSS 1460",
     "4500002c1c4640004006925ec6120001c6120002"
     "9c40001901020304000000006002faf070ae0000020405b4",
     20, 0x925e, 0x70ae},
    {"IPv4 segment with an odd payload 'EHLO mx\\r\\n'",
     "450000311c46400040069259c6120001c6120002"
     "9c400019010203050a0b0c0d5018faf03e200000"
     "45484c4f206d780d0a",
     20, 0x9259, 0x3e20},
    {"IPv6 segment with an odd payload 'EHLO mx\\r\\n'",
     "60000000001d064020010db800000000000000000000000120010db8000000000000000000000002"
     "9c400019010203040a0b0c0d5018faf06ed40000"
     "45484c4f206d780d0a",
     40, 0, 0x6ed4},
};

TEST_CASE("known-good packets verify, and recompute to the same checksums", "[net][checksum]") {
  const KnownPacket& k = GENERATE(from_range(std::begin(kKnownPackets), std::end(kKnownPackets)));
  INFO(k.what);
  std::vector<uint8_t> p = from_hex(k.hex);
  const PacketView v = parsed(p);
  REQUIRE(v.tcp_offset == k.tcp_offset);
  CHECK(tcp_checksum_ok(p, v));
  CHECK(ipv4_checksum_ok(p, v));
  CHECK(reference_sum(std::span(p).subspan(v.tcp_offset), reference_pseudo_sum(p, v)) == 0xffff);

  store_be16(p, v.tcp_offset + 16, 0xdead);
  if (v.ip_version == 4) store_be16(p, 10, 0xbeef);
  CHECK_FALSE(tcp_checksum_ok(p, v));
  finalize_checksums(p, v);
  CHECK(load_be16(p, v.tcp_offset + 16) == k.tcp_checksum);
  if (v.ip_version == 4) CHECK(load_be16(p, 10) == k.ip_checksum);
  CHECK(p == from_hex(k.hex));
}

TEST_CASE("ones_complement_sum matches RFC 1071 at every length and alignment", "[net][checksum]") {
  std::vector<uint8_t> data(300);
  uint32_t x = 12345;
  for (auto& b : data) {
    x = x * 1103515245 + 12345;  // any fixed pseudo-random fill will do
    b = static_cast<uint8_t>(x >> 16);
  }
  const uint32_t initial = GENERATE(0u, 1u, 0xffffu, 0x1fffeu, 0xffffffffu);
  for (size_t start = 0; start < 8; ++start) {
    for (size_t len = 0; start + len <= data.size(); ++len) {
      const auto span = std::span<const uint8_t>(data).subspan(start, len);
      const uint16_t expected = reference_sum(span, (initial & 0xffff) + (initial >> 16));
      const uint16_t got = ones_complement_sum(span, initial);
      // 0 and 0xffff are the same number in one's complement.
      if (got != expected) {
        INFO("start " << start << " len " << len << " initial " << initial);
        CHECK(((got == 0 || got == 0xffff) && (expected == 0 || expected == 0xffff)));
      }
    }
  }
}

TEST_CASE("ones_complement_sum of all-0xff bytes does not lose carries", "[net][checksum]") {
  const std::vector<uint8_t> ones(65536, 0xff);
  CHECK(ones_complement_sum(ones) == 0xffff);
  CHECK(ones_complement_sum(std::span(ones).first(65535)) ==
        reference_sum(std::span(ones).first(65535)));
}

struct Shape {
  const char* what;
  bool v6;
  size_t payload_len;
};

TEST_CASE("finalize_checksums repairs any field content, odd lengths and 64 KiB included",
          "[net][checksum]") {
  const Shape shape = GENERATE(values<Shape>({
      {"IPv4 no payload", false, 0},
      {"IPv4 one byte", false, 1},
      {"IPv4 odd", false, 7},
      {"IPv4 even", false, 8},
      {"IPv4 odd", false, 9},
      {"IPv4 MSS-sized", false, 1460},
      {"IPv4 odd and large", false, 1461},
      {"IPv4 GSO super-packet", false, 60000},
      {"IPv4 largest possible", false, 65535 - 40 - 12},
      {"IPv6 no payload", true, 0},
      {"IPv6 odd", true, 3},
      {"IPv6 GSO super-packet", true, 60001},
      {"IPv6 largest payload length", true, 65535 - 20 - 12},
  }));
  INFO(shape.what << ", " << shape.payload_len << " payload bytes");
  std::string payload(shape.payload_len, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>('a' + i % 26);
  PacketBuilder b;
  if (shape.v6) b.v6("2001:db8::25", "2001:db8:1::9");
  const auto good =
      b.ports(25, 51000).seq(0xfffffff0).ack(77).timestamps(1, 2).payload(payload).build();
  const PacketView v = parsed(good);
  REQUIRE(v.payload_len == shape.payload_len);
  REQUIRE(tcp_checksum_ok(good, v));

  SECTION("garbage in the fields") {
    auto p = good;
    store_be16(p, v.tcp_offset + 16, 0x5a5a);
    if (!shape.v6) store_be16(p, 10, 0xa5a5);
    finalize_checksums(p, v);
    CHECK(p == good);
  }
  SECTION("CSUMNOTREADY: the TCP field holds only the pseudo-header sum") {
    auto p = good;
    store_be16(p, v.tcp_offset + 16, reference_pseudo_sum(p, v));
    CHECK_FALSE(tcp_checksum_ok(p, v));
    finalize_checksums(p, v);
    CHECK(tcp_checksum_ok(p, v));
    CHECK(p == good);
  }
  SECTION("a rewritten payload byte") {
    auto p = good;
    if (v.payload_len > 0) {
      p[v.payload_offset + v.payload_len / 2] ^= 0x20;
      CHECK_FALSE(tcp_checksum_ok(p, v));
    }
    finalize_checksums(p, v);
    CHECK(tcp_checksum_ok(p, v));
    CHECK(ipv4_checksum_ok(p, v));
    CHECK(reference_sum(std::span(p).subspan(v.tcp_offset), reference_pseudo_sum(p, v)) == 0xffff);
  }
}

TEST_CASE("trailing bytes after the IP datagram are not summed", "[net][checksum]") {
  auto p = PacketBuilder().payload("MAIL FROM:<a@example.org>\r\n").build();
  const size_t len = p.size();
  p.insert(p.end(), {0xde, 0xad, 0xbe});
  const PacketView v = parsed(p);
  REQUIRE(v.packet_len == len);
  CHECK(tcp_checksum_ok(p, v));
  store_be16(p, v.tcp_offset + 16, 0);
  finalize_checksums(p, v);
  CHECK(tcp_checksum_ok(p, v));
  CHECK(p[len] == 0xde);
}

TEST_CASE("a damaged IPv4 header fails its check and is repaired", "[net][checksum]") {
  auto p = PacketBuilder().payload("QUIT\r\n").build();
  const PacketView v = parsed(p);
  p[8] = 1;  // TTL changed on the way
  CHECK_FALSE(ipv4_checksum_ok(p, v));
  CHECK(tcp_checksum_ok(p, v));  // the TTL is not in the pseudo-header
  finalize_checksums(p, v);
  CHECK(ipv4_checksum_ok(p, v));
  CHECK(reference_sum(std::span(p).first(20)) == 0xffff);
}

TEST_CASE("an IPv6 routing header in transit: the pseudo-header uses the final destination",
          "[net][checksum]") {
  // Built towards the final destination, so the builder's checksum covers that address; then
  // the header destination becomes the next hop and a type 2 routing header carries the final.
  auto p = PacketBuilder()
               .v6("2001:db8::1", "2001:db8::99")
               .ipv6_extension(43, 3)
               .payload("EHLO mobile\r\n")
               .build();
  std::copy(p.begin() + 24, p.begin() + 40, p.begin() + 48);
  p[39] = 0x07;  // header destination 2001:db8::7
  p[42] = 2;     // routing type 2
  p[43] = 1;     // segments left
  const PacketView v = parsed(p);
  CHECK(tcp_checksum_ok(p, v));
  const auto good = p;
  store_be16(p, v.tcp_offset + 16, 0);
  finalize_checksums(p, v);
  CHECK(p == good);
}

TEST_CASE("a view that does not fit the packet is refused, not written", "[net][checksum]") {
  auto p = PacketBuilder().payload("NOOP\r\n").build();
  PacketView v = parsed(p);
  v.packet_len = p.size() + 1;
  const auto before = p;
  finalize_checksums(p, v);
  CHECK(p == before);
  CHECK_FALSE(tcp_checksum_ok(p, v));
}

}  // namespace
}  // namespace sg::net

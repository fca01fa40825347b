#include "flow/flow_key.hpp"

#include <catch2/catch.hpp>
#include <set>
#include <unordered_set>

#include "support/packet_builder.hpp"

namespace sg::flow {
namespace {

using test::PacketBuilder;

net::PacketView view_of(const std::vector<uint8_t>& p) {
  auto v = net::parse_packet(p);
  REQUIRE(v);
  return *v;
}

struct Endpoints {
  const char* what;
  bool v6;
  const char* a;
  uint16_t a_port;
  const char* b;
  uint16_t b_port;
};

TEST_CASE("both directions of a connection share one key and one hash", "[flow][key]") {
  const Endpoints e = GENERATE(values<Endpoints>({
      {"IPv4, client address lower", false, "198.18.0.1", 40000, "198.18.0.2", 25},
      {"IPv4, client address higher", false, "198.19.0.9", 40000, "198.18.0.2", 25},
      {"IPv4, same address, ports decide", false, "198.18.0.1", 40000, "198.18.0.1", 25},
      {"IPv6", true, "2001:db8::1", 51000, "2001:db8:1::25", 587},
      {"IPv6, client address higher", true, "2001:db8:ffff::1", 51000, "2001:db8::25", 465},
  }));
  INFO(e.what);
  PacketBuilder to_server, to_client;
  if (e.v6) {
    to_server.v6(e.a, e.b);
    to_client.v6(e.b, e.a);
  } else {
    to_server.v4(e.a, e.b);
    to_client.v4(e.b, e.a);
  }
  const auto out = canonical_key(view_of(to_server.ports(e.a_port, e.b_port).build()));
  const auto back = canonical_key(view_of(to_client.ports(e.b_port, e.a_port).build()));
  CHECK(out.key == back.key);
  CHECK(out.src_is_lo != back.src_is_lo);
  CHECK(FlowKeyHash{}(out.key) == FlowKeyHash{}(back.key));
  // The ordering the header promises.
  const FlowKey& k = out.key;
  CHECK(std::tie(k.lo_addr, k.lo_port) < std::tie(k.hi_addr, k.hi_port));
  // src_is_lo tells which end sent the packet.
  const auto& sender = out.src_is_lo ? k.lo_port : k.hi_port;
  CHECK(sender == e.a_port);
}

TEST_CASE("a packet from an endpoint to itself keys consistently", "[flow][key]") {
  const auto p = PacketBuilder().v4("198.18.0.1", "198.18.0.1").ports(25, 25).build();
  const auto k = canonical_key(view_of(p));
  CHECK(k.key.lo_addr == k.key.hi_addr);
  CHECK(k.src_is_lo);
}

TEST_CASE("different connections get different keys", "[flow][key]") {
  const auto base = canonical_key(view_of(PacketBuilder().ports(40000, 25).build())).key;
  const auto other_port = canonical_key(view_of(PacketBuilder().ports(40001, 25).build())).key;
  const auto other_addr =
      canonical_key(view_of(PacketBuilder().v4("198.18.0.3", "198.18.0.2").build())).key;
  const auto mirrored_ports = canonical_key(view_of(PacketBuilder().ports(25, 40000).build())).key;
  CHECK_FALSE(base == other_port);
  CHECK_FALSE(base == other_addr);
  CHECK_FALSE(base == mirrored_ports);
}

TEST_CASE("the hash spreads sequential ports and addresses", "[flow][key]") {
  // Scanners and SYN floods vary one field at a time; buckets must not line up.
  std::unordered_set<size_t> hashes;
  std::set<size_t> low_bits;
  FlowKey k;
  k.lo_addr.bytes = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 18, 0, 0};
  k.hi_addr.bytes = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 19, 0, 25};
  k.hi_port = 25;
  for (int host = 0; host < 64; ++host) {
    k.lo_addr.bytes[15] = static_cast<uint8_t>(host);
    for (int port = 0; port < 256; ++port) {
      k.lo_port = static_cast<uint16_t>(1024 + port);
      const size_t h = FlowKeyHash{}(k);
      hashes.insert(h);
      low_bits.insert(h & 0x3fff);
    }
  }
  CHECK(hashes.size() == 64 * 256);
  // 16384 keys into 16384 slots: a random function fills about 1 - 1/e of them.
  CHECK(low_bits.size() > 9000);
}

}  // namespace
}  // namespace sg::flow

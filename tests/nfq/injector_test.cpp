// The pure parts of the raw-socket injector: where a packet goes and how a failure is counted.
// Sending is covered by the integration tests (namespaces); nothing here sends a packet.
#include "nfq/injector.hpp"

#include <arpa/inet.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "core/counters.hpp"
#include "nfq/queue.hpp"
#include "support/packet_builder.hpp"

namespace sg::nfq {
namespace {

using test::PacketBuilder;
using Bytes = std::vector<uint8_t>;

std::string address_of(const InjectDestination& d) {
  char text[INET6_ADDRSTRLEN] = {};
  if (d.family == AF_INET) {
    sockaddr_in sin{};
    std::memcpy(&sin, &d.address, sizeof(sin));
    CHECK(sin.sin_port == 0);
    inet_ntop(AF_INET, &sin.sin_addr, text, sizeof(text));
  } else {
    sockaddr_in6 sin6{};
    std::memcpy(&sin6, &d.address, sizeof(sin6));
    CHECK(sin6.sin6_port == 0);  // a non-zero port would name another protocol: EINVAL
    CHECK(sin6.sin6_flowinfo == 0);
    CHECK(sin6.sin6_scope_id == 0);
    inet_ntop(AF_INET6, &sin6.sin6_addr, text, sizeof(text));
  }
  return text;
}

TEST_CASE("the destination comes from the packet's own IP header", "[nfq][injector]") {
  const Bytes p4 = PacketBuilder().v4("198.18.2.2", "198.19.1.2").payload("550 no\r\n").build();
  auto d4 = injection_destination(p4);
  REQUIRE(d4);
  CHECK(d4->family == AF_INET);
  CHECK(d4->length == sizeof(sockaddr_in));
  CHECK(address_of(*d4) == "198.19.1.2");

  const Bytes p6 = PacketBuilder().v6("2001:db8:2::2", "2001:db8:1::2").flags(net::kTcpRst).build();
  auto d6 = injection_destination(p6);
  REQUIRE(d6);
  CHECK(d6->family == AF_INET6);
  CHECK(d6->length == sizeof(sockaddr_in6));
  CHECK(address_of(*d6) == "2001:db8:1::2");
}

TEST_CASE("bytes that are not exactly one IP packet have no destination", "[nfq][injector]") {
  const Bytes p4 = PacketBuilder().payload("QUIT\r\n").build();
  const Bytes p6 = PacketBuilder().v6("2001:db8::1", "2001:db8::2").payload("QUIT\r\n").build();
  struct Case {
    const char* description;
    Bytes bytes;
  };
  auto with = [](Bytes b, size_t at, uint8_t value) {
    b[at] = value;
    return b;
  };
  auto cut = [](Bytes b, size_t n) {
    b.resize(b.size() - n);
    return b;
  };
  auto padded = [](Bytes b) {
    b.push_back(0);
    return b;
  };
  const std::vector<Case> cases = {
      {"empty", {}},
      {"version 5", with(p4, 0, 0x55)},
      {"version 0", with(p4, 0, 0x05)},
      {"IPv4 shorter than a header", Bytes(p4.begin(), p4.begin() + 19)},
      {"IPv4 IHL 4", with(p4, 0, 0x44)},
      {"IPv4 IHL past the bytes", with(Bytes(p4.begin(), p4.begin() + 20), 0, 0x46)},
      {"IPv4 total length larger than the bytes", cut(p4, 1)},
      {"IPv4 total length smaller than the bytes", padded(p4)},
      {"IPv6 shorter than a header", Bytes(p6.begin(), p6.begin() + 39)},
      {"IPv6 payload length larger than the bytes", cut(p6, 1)},
      {"IPv6 payload length smaller than the bytes", padded(p6)},
  };
  for (const Case& c : cases) {
    INFO(c.description);
    CHECK_FALSE(injection_destination(c.bytes));
  }
}

TEST_CASE("send errors are counted by class", "[nfq][injector]") {
  struct Case {
    int err;
    InjectCounter counter;
  };
  auto c = GENERATE(
      Case{EAGAIN, InjectCounter::inject_dropped}, Case{EWOULDBLOCK, InjectCounter::inject_dropped},
      Case{ENOBUFS, InjectCounter::inject_dropped}, Case{ENOMEM, InjectCounter::inject_dropped},
      Case{ENETUNREACH, InjectCounter::inject_unroutable},
      Case{EHOSTUNREACH, InjectCounter::inject_unroutable},
      Case{EADDRNOTAVAIL, InjectCounter::inject_unroutable},
      Case{EPERM, InjectCounter::inject_filtered}, Case{EMSGSIZE, InjectCounter::inject_too_big},
      Case{EINVAL, InjectCounter::inject_malformed}, Case{EIO, InjectCounter::inject_errors});
  INFO("errno " << c.err << " (" << std::strerror(c.err) << ")");
  CHECK(classify_send_error(c.err) == c.counter);
}

TEST_CASE("injector counter names are unique among everything main prints", "[nfq][injector]") {
  // main prints the pipeline's, the queue's and the injector's counters as one block.
  std::set<std::string_view> names;
  for (const auto& c : core::kCounterInfo) names.insert(c.name);
  for (const auto& c : kQueueCounterInfo) names.insert(c.name);
  for (const auto& info : kInjectCounterInfo) {
    INFO(info.name);
    CHECK(info.name.substr(0, 7) == "inject_");
    CHECK_FALSE(info.help.empty());
    CHECK(names.insert(info.name).second);
  }
}

TEST_CASE("create opens both sockets, or names the call that failed", "[nfq][injector]") {
  // Opening sockets sends nothing. As root (CI) this succeeds; unprivileged it must fail with a
  // sentence an operator can act on.
  auto injector = RawInjector::create(0x200000);
  if (!injector) {
    INFO(injector.error());
    CHECK(geteuid() != 0);
    CHECK_THAT(injector.error(), Catch::StartsWith("injector: ") && Catch::Contains("CAP_NET_"));
    return;
  }
  RawInjector& r = **injector;
  CHECK(r.mark() == 0x200000);
  // A malformed packet is refused before any system call.
  CHECK_FALSE(r.send(Bytes{0x45, 0, 0}));
  CHECK(r.last_errno() == EINVAL);
  CHECK(r.counters().get(InjectCounter::inject_malformed) == 1);
  CHECK(r.counters().get(InjectCounter::inject_sent) == 0);
}

}  // namespace
}  // namespace sg::nfq

// The watch filter (src/eventlog/watch_filter.hpp): parsing the request argument and matching
// decisions by client and server prefix and port, IPv4 and IPv6.
#include "eventlog/watch_filter.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace sg;
using namespace sg::eventlog;

namespace {

core::Decision decision(const char* client, uint16_t client_port, const char* server,
                        uint16_t server_port) {
  core::Decision d;
  d.client = policy::parse_subnet(client)->address;
  d.server = policy::parse_subnet(server)->address;
  d.client_port = client_port;
  d.server_port = server_port;
  return d;
}

}  // namespace

TEST_CASE("watch filter: no word matches every decision") {
  auto f = parse_watch_filter("");
  REQUIRE(f);
  CHECK(f->matches(decision("198.18.1.2", 40000, "198.18.2.2", 25)));
  CHECK(f->matches(decision("2001:db8:1::2", 40000, "2001:db8:2::2", 25)));
  CHECK(f->queue == kDefaultWatchQueue);
  CHECK(f->to_string() == "queue=1024");
}

TEST_CASE("watch filter: client, server and port") {
  struct Row {
    std::string filter;
    const char* client;
    uint16_t client_port;
    const char* server;
    uint16_t server_port;
    bool match;
  };
  const Row row = GENERATE(values<Row>({
      {"client=198.18.1.0/24", "198.18.1.2", 40000, "198.18.2.2", 25, true},
      {"client=198.18.1.0/24", "198.18.3.2", 40000, "198.18.2.2", 25, false},
      {"client=198.18.1.0/24", "2001:db8:1::2", 40000, "2001:db8:2::2", 25, false},
      {"client=198.18.1.2", "198.18.1.2", 40000, "198.18.2.2", 25, true},
      {"client=198.18.1.2", "198.18.1.3", 40000, "198.18.2.2", 25, false},
      {"server=198.18.2.0/24", "198.18.1.2", 40000, "198.18.2.2", 25, true},
      {"server=198.18.2.0/24", "198.18.2.2", 40000, "198.18.1.2", 25, false},
      {"client=2001:db8::/32", "2001:db8:1::2", 40000, "2001:db8:2::2", 25, true},
      {"client=2001:db8::/32", "2001:db9::2", 40000, "2001:db8:2::2", 25, false},
      {"client=2001:db8::/32", "198.18.1.2", 40000, "198.18.2.2", 25, false},
      {"server=2001:db8:2::/48 port=25", "2001:db8:1::2", 40000, "2001:db8:2::2", 25, true},
      {"server=2001:db8:2::/48 port=587", "2001:db8:1::2", 40000, "2001:db8:2::2", 25, false},
      {"port=25", "198.18.1.2", 40000, "198.18.2.2", 25, true},
      {"port=40000", "198.18.1.2", 40000, "198.18.2.2", 25, true},  // either side's port
      {"port=26", "198.18.1.2", 40000, "198.18.2.2", 25, false},
      {"port=25 client=198.18.1.0/24 server=198.18.2.0/24", "198.18.1.9", 1, "198.18.2.9", 25,
       true},
      {"port=25 client=198.18.1.0/24 server=198.18.2.0/24", "198.18.1.9", 1, "198.18.4.9", 25,
       false},
  }));
  INFO(row.filter << " " << row.client << " -> " << row.server);
  auto f = parse_watch_filter(row.filter);
  REQUIRE(f);
  CHECK(f->matches(decision(row.client, row.client_port, row.server, row.server_port)) ==
        row.match);
  // The filter travels as text: what it prints parses back to the same filter.
  auto again = parse_watch_filter(f->to_string());
  REQUIRE(again);
  CHECK(again->to_string() == f->to_string());
}

TEST_CASE("watch filter: queue bounds") {
  CHECK(parse_watch_filter("queue=16")->queue == 16);
  CHECK(parse_watch_filter("queue=65536")->queue == 65536);
  CHECK_FALSE(parse_watch_filter("queue=15"));
  CHECK_FALSE(parse_watch_filter("queue=65537"));
}

TEST_CASE("watch filter: malformed arguments are refused with a reason") {
  struct Row {
    std::string argument;
    std::string error;
  };
  const Row row = GENERATE(values<Row>({
      {"client=198.18.1.1/24", "client: '198.18.1.1/24'"},  // host bits set
      {"client=nonsense", "client: 'nonsense' is not an IPv4 or IPv6 address"},
      {"server=2001:db8::/129", "server: '2001:db8::/129': the prefix length must be 0..128"},
      {"port=0", "port: expected 1 to 65535, got '0'"},
      {"port=65536", "port: expected 1 to 65535, got '65536'"},
      {"port=x", "port: expected 1 to 65535, got 'x'"},
      {"port=25 port=26", "port given twice"},
      {"client=198.18.1.0/24 client=198.18.2.0/24", "client given twice"},
      {"queue=10", "queue: expected 16 to 65536, got '10'"},
      {"verbose", "expected client=, server=, port= or queue=, got 'verbose'"},
      {"host=198.18.1.1", "expected client=, server=, port= or queue=, got 'host=198.18.1.1'"},
      {"=25", "expected client=, server=, port= or queue=, got '=25'"},
  }));
  INFO(row.argument);
  auto f = parse_watch_filter(row.argument);
  REQUIRE_FALSE(f);
  CHECK_THAT(f.error(), Catch::StartsWith(row.error));
}

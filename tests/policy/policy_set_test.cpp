#include "policy/policy_set.hpp"

#include <arpa/inet.h>

#include <catch2/catch.hpp>
#include <cstring>

using namespace sg;
using policy::parse_subnet;

namespace {

net::IpAddress addr(const char* text) {
  net::IpAddress a;
  in_addr v4{};
  if (inet_pton(AF_INET, text, &v4) == 1) {
    a.bytes[10] = a.bytes[11] = 0xff;
    std::memcpy(a.bytes.data() + 12, &v4, 4);
  } else {
    REQUIRE(inet_pton(AF_INET6, text, a.bytes.data()) == 1);
  }
  return a;
}

}  // namespace

TEST_CASE("subnets parse and contain", "[policy_set]") {
  struct Row {
    const char* subnet;
    const char* inside;
    const char* outside;
  };
  const Row row = GENERATE(Row{"198.18.2.0/24", "198.18.2.77", "198.18.3.1"},
                           Row{"198.18.2.1", "198.18.2.1", "198.18.2.2"},
                           Row{"198.18.0.0/15", "198.19.255.255", "198.20.0.0"},
                           Row{"0.0.0.0/0", "198.18.1.1", "2001:db8::1"},
                           Row{"2001:db8:2::/64", "2001:db8:2::25", "2001:db8:3::25"},
                           Row{"2001:db8::/32", "2001:db8:ffff::1", "2001:db9::1"},
                           Row{"::/0", "2001:db8::1", "198.18.1.1"});
  INFO(row.subnet);
  const auto s = parse_subnet(row.subnet);
  REQUIRE(s);
  CHECK(s->contains(addr(row.inside)));
  CHECK_FALSE(s->contains(addr(row.outside)));
}

TEST_CASE("bad subnets are refused with the reason", "[policy_set]") {
  struct Row {
    const char* text;
    const char* message;
  };
  const Row row = GENERATE(
      Row{"198.18.2.1/24", "'198.18.2.1/24' has host bits set (did you mean 198.18.2.0/24?)"},
      Row{"198.18.2.0/33", "'198.18.2.0/33': the prefix length must be 0..32"},
      Row{"2001:db8::/129", "'2001:db8::/129': the prefix length must be 0..128"},
      Row{"198.18.2.0/", "'198.18.2.0/': the prefix length must be 0..32"},
      Row{"mx.example.org",
          "'mx.example.org' is not an IPv4 or IPv6 address or prefix (a.b.c.d/N or x:y::/N)"},
      Row{"::ffff:198.18.2.1", "'::ffff:198.18.2.1': write IPv4 as a.b.c.d"});
  const auto s = parse_subnet(row.text);
  REQUIRE_FALSE(s);
  CHECK(s.error() == row.message);
}

TEST_CASE("the first matching rule wins; nothing matching gets the fallback", "[policy_set]") {
  auto modern = policy::builtin_profile("modern");
  auto asa = policy::builtin_profile("asa-default");
  auto pix = policy::builtin_profile("pix-mailguard");
  std::vector<policy::PolicyRule> rules;
  rules.push_back(
      {"mx1", {*parse_subnet("198.18.2.1")}, {*parse_subnet("198.18.1.0/24")}, 25, pix});
  rules.push_back({"servers",
                   {*parse_subnet("198.18.2.0/24"), *parse_subnet("2001:db8:2::/64")},
                   {},
                   std::nullopt,
                   asa});
  const policy::PolicySet set(modern, rules);
  CHECK(set.select(addr("198.18.1.1"), addr("198.18.2.1"), 25) == pix);
  CHECK(set.select_name(addr("198.18.1.1"), addr("198.18.2.1"), 25) == "mx1");
  CHECK(set.select(addr("198.18.1.1"), addr("198.18.2.1"), 587) == asa);  // port differs
  CHECK(set.select(addr("198.18.9.9"), addr("198.18.2.1"), 25) == asa);   // client differs
  CHECK(set.select(addr("2001:db8:1::1"), addr("2001:db8:2::1"), 25) == asa);
  CHECK(set.select(addr("198.18.1.1"), addr("198.18.3.1"), 25) == modern);
  CHECK(set.select_name(addr("198.18.1.1"), addr("198.18.3.1"), 25) == "default");
}

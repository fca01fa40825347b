#pragma once
// Which profile applies to a connection: one gateway may protect several mail servers with
// different rules. A policy set is an ordered list of rules matching the client and server
// addresses (and the server port); the first rule that matches wins, and a connection no rule
// matches gets the default profile. Immutable once built: a reload builds a new set, flows keep
// the profile they started with.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "net/packet.hpp"
#include "policy/profile.hpp"
#include "util/expected.hpp"

namespace sg::policy {

// An IPv4 or IPv6 prefix ("198.18.2.0/24", "2001:db8:2::/64", or an address alone: /32, /128).
struct Subnet {
  net::IpAddress address;  // host bits are zero
  uint8_t prefix_len = 0;
  bool contains(const net::IpAddress& a) const;
  std::string to_string() const;
  bool operator==(const Subnet&) const = default;
};
Expected<Subnet, std::string> parse_subnet(std::string_view text);

struct PolicyRule {
  std::string name;                     // the config section it came from, for logs
  std::vector<Subnet> servers;          // empty: any server
  std::vector<Subnet> clients;          // empty: any client
  std::optional<uint16_t> server_port;  // unset: any port
  std::shared_ptr<const Profile> profile;
};

class PolicySet {
 public:
  explicit PolicySet(std::shared_ptr<const Profile> fallback, std::vector<PolicyRule> rules = {});

  // The profile for a connection from `client` to `server`:`server_port`. Never null.
  const std::shared_ptr<const Profile>& select(const net::IpAddress& client,
                                               const net::IpAddress& server,
                                               uint16_t server_port) const;
  // The name of the rule that selected it ("default" for the fallback).
  std::string_view select_name(const net::IpAddress& client, const net::IpAddress& server,
                               uint16_t server_port) const;
  const std::shared_ptr<const Profile>& fallback() const { return fallback_; }
  const std::vector<PolicyRule>& rules() const { return rules_; }

 private:
  const PolicyRule* match(const net::IpAddress& client, const net::IpAddress& server,
                          uint16_t server_port) const;

  std::shared_ptr<const Profile> fallback_;
  std::vector<PolicyRule> rules_;
};

// A set of one profile for every connection.
std::shared_ptr<const PolicySet> single_policy(std::shared_ptr<const Profile> profile);

}  // namespace sg::policy

#include "policy/policy_set.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace sg::policy {
namespace {

// An IPv4 prefix is stored v4-mapped (::ffff:a.b.c.d), as packets are: its length counts from
// bit 96.
constexpr uint8_t kV4MappedBits = 96;

bool prefix_equal(const net::IpAddress& a, const net::IpAddress& b, unsigned bits) {
  for (unsigned i = 0; i < 16 && bits > 0; ++i) {
    const unsigned take = bits >= 8 ? 8 : bits;
    const auto mask = static_cast<uint8_t>(0xff00u >> take);
    if ((a.bytes[i] & mask) != (b.bytes[i] & mask)) return false;
    bits -= take;
  }
  return true;
}

bool any_contains(const std::vector<Subnet>& subnets, const net::IpAddress& a) {
  if (subnets.empty()) return true;
  for (const Subnet& s : subnets)
    if (s.contains(a)) return true;
  return false;
}

}  // namespace

bool Subnet::contains(const net::IpAddress& a) const {
  if (address.is_v4() != a.is_v4()) return false;
  return prefix_equal(address, a, address.is_v4() ? kV4MappedBits + prefix_len : prefix_len);
}

std::string Subnet::to_string() const {
  return address.to_string() + "/" + std::to_string(prefix_len);
}

Expected<Subnet, std::string> parse_subnet(std::string_view text) {
  const size_t slash = text.find('/');
  const std::string host(text.substr(0, slash));
  Subnet s;
  unsigned max_len = 0;
  in_addr v4{};
  in6_addr v6{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    s.address.bytes[10] = s.address.bytes[11] = 0xff;
    std::memcpy(s.address.bytes.data() + 12, &v4, 4);
    max_len = 32;
  } else if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    std::memcpy(s.address.bytes.data(), &v6, 16);
    if (s.address.is_v4()) return unexpected("'" + std::string(text) + "': write IPv4 as a.b.c.d");
    max_len = 128;
  } else {
    return unexpected("'" + std::string(text) +
                      "' is not an IPv4 or IPv6 address or prefix (a.b.c.d/N or x:y::/N)");
  }
  s.prefix_len = static_cast<uint8_t>(max_len);
  if (slash != std::string_view::npos) {
    const std::string_view len = text.substr(slash + 1);
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(len.data(), len.data() + len.size(), value);
    if (len.empty() || ec != std::errc() || end != len.data() + len.size() || value > max_len)
      return unexpected("'" + std::string(text) + "': the prefix length must be 0.." +
                        std::to_string(max_len));
    s.prefix_len = static_cast<uint8_t>(value);
  }
  // Host bits must be zero: "198.18.2.1/24" is more likely a typo than a network.
  net::IpAddress network = s.address;
  const unsigned bits = (max_len == 32 ? kV4MappedBits : 0) + s.prefix_len;
  for (unsigned i = 0; i < 16; ++i) {
    const unsigned first = i * 8;
    if (first >= bits) {
      network.bytes[i] = 0;
    } else if (bits - first < 8) {
      network.bytes[i] &= static_cast<uint8_t>(0xff00u >> (bits - first));
    }
  }
  if (network != s.address)
    return unexpected("'" + std::string(text) + "' has host bits set (did you mean " +
                      Subnet{network, s.prefix_len}.to_string() + "?)");
  return s;
}

PolicySet::PolicySet(std::shared_ptr<const Profile> fallback, std::vector<PolicyRule> rules)
    : fallback_(std::move(fallback)), rules_(std::move(rules)) {}

const PolicyRule* PolicySet::match(const net::IpAddress& client, const net::IpAddress& server,
                                   uint16_t server_port) const {
  for (const PolicyRule& r : rules_) {
    if (r.server_port && *r.server_port != server_port) continue;
    if (any_contains(r.servers, server) && any_contains(r.clients, client)) return &r;
  }
  return nullptr;
}

const std::shared_ptr<const Profile>& PolicySet::select(const net::IpAddress& client,
                                                        const net::IpAddress& server,
                                                        uint16_t server_port) const {
  const PolicyRule* r = match(client, server, server_port);
  return r ? r->profile : fallback_;
}

std::string_view PolicySet::select_name(const net::IpAddress& client, const net::IpAddress& server,
                                        uint16_t server_port) const {
  const PolicyRule* r = match(client, server, server_port);
  return r ? std::string_view(r->name) : std::string_view("default");
}

std::shared_ptr<const PolicySet> single_policy(std::shared_ptr<const Profile> profile) {
  return std::make_shared<const PolicySet>(std::move(profile));
}

}  // namespace sg::policy

#pragma once
// A decision as the event log tests log it: the lab's client 198.18.1.1:40000 and server
// 198.18.2.1:25, client-to-server.
#include <string>
#include <string_view>

#include "core/decision.hpp"
#include "policy/policy_set.hpp"

namespace sg::test {

inline net::IpAddress ip(const char* text) {
  return policy::parse_subnet(text)->address;
}

inline core::Decision decision(policy::Event e, std::string_view action, std::string subject,
                               std::string detail = "") {
  core::Decision d;
  d.event = e;
  d.action = action;
  d.client = ip("198.18.1.1");
  d.server = ip("198.18.2.1");
  d.client_port = 40000;
  d.server_port = 25;
  d.subject = std::move(subject);
  d.detail = std::move(detail);
  return d;
}

}  // namespace sg::test

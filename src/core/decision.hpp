#pragma once
// A policy decision on a connection, logged once with a stable event id (policy/events.hpp).
// The inspector fills in what it knows (event, action, direction, subject); the pipeline adds
// the connection's addresses.
#include <cstdint>
#include <string>
#include <string_view>

#include "net/packet.hpp"
#include "policy/events.hpp"
#include "smtp/session.hpp"

namespace sg::core {

struct Decision {
  policy::Event event = policy::Event::kCount;
  std::string_view action;  // "mask", "reset", ... (static text: the actions' to_string)
  net::IpAddress client, server;
  uint16_t client_port = 0, server_port = 0;
  smtp::Dir dir = smtp::Dir::kClientToServer;  // whose bytes it concerns
  std::string subject;  // the verb, keyword, address or check concerned, as sent (may hold any
                        // byte: loggers must escape it), at most kMaxSubject bytes
  std::string detail;   // e.g. "601 > 512"; may be empty
  // The SMTP context the server had been given when it was decided (core/session_context.hpp):
  // the HELO/EHLO name, the transaction's sender and its recipients so far. Empty, 0: none yet.
  std::string helo, mail_from;
  uint32_t rcpt_count = 0;
  // Only while somebody watches (eventlog/watch_hub.hpp): the line the decision changed, as
  // received and as forwarded (empty: removed), each at most kMaxEditText bytes.
  bool edited = false;
  std::string before, after;
  bool ends_connection = false;  // the gateway resets or drops the connection for it (set by
                                 // whoever decides, from the action's enum, never its text)
  static constexpr size_t kMaxSubject = 64;
  static constexpr size_t kMaxEditText = 256;
};

}  // namespace sg::core

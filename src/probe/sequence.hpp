#pragma once
// The probe's dialogue with one server: bounded and polite. It sends only what a mail admin
// would type by hand (KB 320027's telnet test) and never a message:
//
//   banner, EHLO (HELO when EHLO is refused or answered like a NOOP), goodmorning, NOOP,
//   [--deep: XEXCH50, X-LINK2STATE, no arguments], [--auth-check: AUTH MECH, then "*"],
//   [--mail-from/--rcpt-to: MAIL FROM, RCPT TO, RSET], STARTTLS when offered (or masked the
//   way ASA masks it) + the TLS handshake + EHLO inside TLS, RSET, QUIT.
//
// The optional checks run in the clear, before STARTTLS: that is the part of the dialogue an
// inspecting gateway sees. A step that times out or loses the connection ends the dialogue.
#include <chrono>
#include <optional>
#include <string>

#include "probe/socket_io.hpp"
#include "probe/transcript.hpp"

namespace sg::probe {

struct SequenceOptions {
  std::string helo_name = "smtpguard-probe.invalid";
  std::chrono::milliseconds step_timeout{10'000};
  Family family = Family::kAny;
  bool starttls = true;  // --no-tls: never send STARTTLS
  bool auth_check = false;
  bool deep = false;
  std::optional<std::string> mail_from;  // an address without <>; "" is the null sender
  std::optional<std::string> rcpt_to;
};

// The verbs --deep sends, without arguments: both are Exchange's, masked by smtpguard's modern
// profile and by every Cisco profile, and answered "unrecognized" by servers that lack them.
inline constexpr std::string_view kDeepVerbs[] = {"XEXCH50", "X-LINK2STATE"};

// Runs the dialogue with host:port. Never throws for network trouble: a connection that fails
// sets Transcript::failure, a step that fails is recorded with its status.
Transcript run_sequence(const std::string& host, uint16_t port, const SequenceOptions& o);

// "host:port", "[2001:db8::1]:25".
std::string host_port_text(const std::string& host, uint16_t port);

}  // namespace sg::probe

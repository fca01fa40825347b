#pragma once
// Which decisions a watcher (`smtpguardctl watch`) is sent: the daemon applies the filter before
// anything is formatted or queued, so a watcher that asks for one client costs the others
// nothing but the comparison.
//
// The filter travels as the argument of the control socket's `watch` request, words separated by
// single spaces, each at most once, in any order:
//
//   client=PREFIX   the connection's client address is in PREFIX (198.18.1.0/24, 2001:db8::/32,
//                   or an address alone)
//   server=PREFIX   the same for the server address
//   port=N          the client's or the server's port is N (1-65535)
//   queue=N         records this watcher may have waiting, 16-65536 (default 1024): beyond it
//                   records are dropped and counted, never waited for
//
// No word: every decision.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/decision.hpp"
#include "policy/policy_set.hpp"
#include "util/expected.hpp"

namespace sg::eventlog {

inline constexpr size_t kDefaultWatchQueue = 1024;
inline constexpr size_t kMinWatchQueue = 16;
inline constexpr size_t kMaxWatchQueue = 65536;

struct WatchFilter {
  std::optional<policy::Subnet> client;
  std::optional<policy::Subnet> server;
  std::optional<uint16_t> port;
  size_t queue = kDefaultWatchQueue;

  bool matches(const core::Decision& d) const noexcept;
  // The request argument that parses back to this filter ("client=198.18.1.0/24 queue=1024").
  std::string to_string() const;
};

// Errors are sentences for the operator ("port: expected 1 to 65535, got '0'").
Expected<WatchFilter, std::string> parse_watch_filter(std::string_view argument);

}  // namespace sg::eventlog

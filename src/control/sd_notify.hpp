#pragma once
// The service manager's notification protocol (sd_notify(3)), written directly rather than
// linked from libsystemd: one datagram of "KEY=VALUE" lines to the Unix socket named by
// NOTIFY_SOCKET. smtpguardd's unit is Type=notify: systemd waits for READY=1 (sent once the
// queues are bound and the rules installed, so "started" means "inspecting"), shows STATUS=
// in `systemctl status`, and with WatchdogSec= restarts a daemon whose WATCHDOG=1 pings stop
// (main pings only while every worker is alive).
//
// Without NOTIFY_SOCKET (started by hand, by a test, in a container) every call is a no-op.
// A failed send is reported, never thrown: the daemon keeps inspecting whatever systemd thinks.
//
// The sender is identified by the kernel's credentials of the socket (the process id, from any
// thread), so NotifyAccess=main accepts these datagrams from the worker threads too.
#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

#include "util/expected.hpp"
#include "util/time.hpp"

namespace sg::control {

class SystemdNotifier {
 public:
  // Looks a variable up: ::getenv, or a table in tests.
  using EnvLookup = const char* (*)(const char*);

  // From NOTIFY_SOCKET ("/path" or "@abstract"), WATCHDOG_USEC and WATCHDOG_PID. `self` is this
  // process's id: a WATCHDOG_PID naming another process means the watchdog is not ours.
  static SystemdNotifier from_environment(EnvLookup lookup, pid_t self);
  static SystemdNotifier from_environment();  // ::getenv, getpid()

  // Disabled: no socket, no watchdog.
  SystemdNotifier() = default;
  // `socket` as in NOTIFY_SOCKET (empty: disabled); `watchdog` the service's WatchdogSec.
  SystemdNotifier(std::string socket, std::optional<Duration> watchdog);

  // True when NOTIFY_SOCKET was set: the service manager listens.
  bool enabled() const { return !socket_.empty(); }

  // Sends `state` ("READY=1\nSTATUS=...") as one datagram. true: sent; false: not enabled
  // (nothing to do); an error: why it could not be sent (a sentence for the log).
  Expected<bool, std::string> notify(std::string_view state) const;

  // The messages the daemon sends. `status` text is one line: any newline becomes a space.
  Expected<bool, std::string> ready(std::string_view status) const;
  Expected<bool, std::string> reloading() const;  // RELOADING=1: READY=1 again when done
  Expected<bool, std::string> stopping() const;
  Expected<bool, std::string> status(std::string_view status) const;
  Expected<bool, std::string> watchdog() const;

  // How often to send WATCHDOG=1: half the service's WatchdogSec (sd_watchdog_enabled(3)
  // recommends that), or nothing when no watchdog is set for this process.
  std::optional<Duration> watchdog_interval() const;
  // The service's WatchdogSec itself (WATCHDOG_USEC), if set for this process.
  std::optional<Duration> watchdog_timeout() const { return watchdog_; }

 private:
  std::string socket_;
  std::optional<Duration> watchdog_;
};

// "STATUS=<text>" with newlines replaced: the value of one assignment is one line.
std::string status_assignment(std::string_view text);

}  // namespace sg::control

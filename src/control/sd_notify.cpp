#include "control/sd_notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace sg::control {
namespace {

// Parses a whole unsigned decimal, as systemd writes WATCHDOG_USEC and WATCHDOG_PID.
std::optional<unsigned long long> parse_unsigned(const char* text) {
  if (text == nullptr || *text == '\0') return std::nullopt;
  const char* end = text + std::strlen(text);
  unsigned long long value = 0;
  auto [ptr, ec] = std::from_chars(text, end, value);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

// Closes the descriptor however the send ends.
struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

std::string status_assignment(std::string_view text) {
  std::string out = "STATUS=";
  for (char c : text) out += (c == '\n' || c == '\r') ? ' ' : c;
  return out;
}

SystemdNotifier::SystemdNotifier(std::string socket, std::optional<Duration> watchdog)
    : socket_(std::move(socket)), watchdog_(watchdog) {}

SystemdNotifier SystemdNotifier::from_environment(EnvLookup lookup, pid_t self) {
  const char* socket = lookup("NOTIFY_SOCKET");
  std::optional<Duration> watchdog;
  if (auto usec = parse_unsigned(lookup("WATCHDOG_USEC")); usec && *usec > 0) {
    // WATCHDOG_PID is set by systemd for the main process; a forked child that inherited the
    // environment must not ping in its parent's name.
    const char* pid_text = lookup("WATCHDOG_PID");
    auto pid = parse_unsigned(pid_text);
    if (pid_text == nullptr || (pid && *pid == static_cast<unsigned long long>(self)))
      watchdog = std::chrono::duration_cast<Duration>(std::chrono::microseconds(*usec));
  }
  return SystemdNotifier(socket != nullptr ? socket : "", watchdog);
}

SystemdNotifier SystemdNotifier::from_environment() {
  return from_environment([](const char* name) -> const char* { return ::getenv(name); },
                          ::getpid());
}

Expected<bool, std::string> SystemdNotifier::notify(std::string_view state) const {
  if (!enabled()) return false;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  // '@' names an abstract socket: the name starts with a NUL and the length, not a terminator,
  // says where it ends.
  const bool abstract = socket_[0] == '@';
  if (socket_[0] != '/' && !abstract)
    return unexpected<std::string>("NOTIFY_SOCKET '" + socket_ +
                                   "': neither a path nor an abstract socket name");
  if (socket_.size() >= sizeof(address.sun_path))
    return unexpected<std::string>("NOTIFY_SOCKET '" + socket_ + "': name too long");
  std::memcpy(address.sun_path, socket_.data(), socket_.size());
  if (abstract) address.sun_path[0] = '\0';
  const auto length =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket_.size() + (abstract ? 0 : 1));

  Fd s{::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)};
  if (s.fd < 0)
    return unexpected<std::string>(std::string("notify socket: ") + std::strerror(errno));
  iovec iov{const_cast<char*>(state.data()), state.size()};
  msghdr message{};
  message.msg_name = &address;
  message.msg_namelen = length;
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  ssize_t sent;
  do {
    sent = ::sendmsg(s.fd, &message, MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) return unexpected<std::string>("notify " + socket_ + ": " + std::strerror(errno));
  if (static_cast<size_t>(sent) != state.size())
    return unexpected<std::string>("notify " + socket_ + ": short send");
  return true;
}

Expected<bool, std::string> SystemdNotifier::ready(std::string_view status) const {
  return notify("READY=1\n" + status_assignment(status));
}

Expected<bool, std::string> SystemdNotifier::reloading() const {
  return notify("RELOADING=1");
}

Expected<bool, std::string> SystemdNotifier::stopping() const {
  return notify("STOPPING=1");
}

Expected<bool, std::string> SystemdNotifier::status(std::string_view status) const {
  return notify(status_assignment(status));
}

Expected<bool, std::string> SystemdNotifier::watchdog() const {
  return notify("WATCHDOG=1");
}

std::optional<Duration> SystemdNotifier::watchdog_interval() const {
  if (!watchdog_) return std::nullopt;
  return *watchdog_ / 2;
}

}  // namespace sg::control

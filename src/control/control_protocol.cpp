#include "control/control_protocol.hpp"
#include "util/ascii.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace sg::control {
namespace {

constexpr std::string_view kOk = "ok ";
constexpr std::string_view kError = "error ";

ClientFailure failure(ClientError kind, std::string message) {
  return ClientFailure{kind, std::move(message)};
}

ClientFailure errno_failure(const std::string& what, int err) {
  ClientError kind = ClientError::kOther;
  if (err == ENOENT || err == ENOTDIR) kind = ClientError::kNoSocket;
  if (err == ECONNREFUSED) kind = ClientError::kRefused;
  if (err == EACCES || err == EPERM) kind = ClientError::kPermission;
  return failure(kind, what + ": " + std::strerror(err));
}

// Closes the descriptor when it goes out of scope.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

std::string encode_reply(const Reply& reply) {
  std::string out(reply.ok ? kOk : kError);
  out += std::to_string(reply.body.size());
  out += '\n';
  out += reply.body;
  return out;
}

ParsedReply parse_reply(std::string_view bytes) {
  ParsedReply r;
  const size_t lf = bytes.find('\n');
  if (lf == std::string_view::npos) {
    // The header is short: a long run of bytes without its LF is not this protocol.
    r.status = bytes.size() > kMaxReplyHeader ? ParseStatus::kMalformed : ParseStatus::kNeedMore;
    return r;
  }
  std::string_view header = bytes.substr(0, lf);
  bool ok;
  if (header.starts_with(kOk)) {
    ok = true;
    header.remove_prefix(kOk.size());
  } else if (header.starts_with(kError)) {
    ok = false;
    header.remove_prefix(kError.size());
  } else {
    r.status = ParseStatus::kMalformed;
    return r;
  }
  size_t length = 0;
  auto [end, ec] = std::from_chars(header.data(), header.data() + header.size(), length);
  if (ec != std::errc() || end != header.data() + header.size() || header.empty() ||
      length > kMaxReply) {
    r.status = ParseStatus::kMalformed;
    return r;
  }
  if (bytes.size() - lf - 1 < length) return r;  // kNeedMore
  r.status = ParseStatus::kDone;
  r.reply.ok = ok;
  r.reply.body.assign(bytes.substr(lf + 1, length));
  r.consumed = lf + 1 + length;
  return r;
}

Expected<Request, std::string> parse_request(std::string_view line) {
  if (line.ends_with('\r')) line.remove_suffix(1);
  for (char c : line) {
    if (!is_printable(c)) return unexpected(std::string("malformed request: not printable"));
  }
  while (line.starts_with(' ')) line.remove_prefix(1);
  while (line.ends_with(' ')) line.remove_suffix(1);
  if (line.empty()) return unexpected(std::string("empty request (try: help)"));
  Request r;
  const size_t space = line.find(' ');
  r.command = line.substr(0, space);
  if (space != std::string_view::npos) {
    r.argument = line.substr(space + 1);
    while (r.argument.starts_with(' ')) r.argument.remove_prefix(1);
  }
  return r;
}

namespace {

// After an ok answer to a streaming request: its body, the bytes that came with it, then every byte
// the daemon sends, to `sink`, until the daemon closes or `sink` says stop. No deadline: a watch
// may be quiet for hours.
Expected<Reply, ClientFailure> follow_stream(int fd, Reply reply, std::string_view first,
                                             const StreamSink& sink) {
  if (!sink(reply.body)) return reply;  // what is watched, then the stream
  if (!first.empty() && !sink(first)) return reply;
  char buf[16384];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    int ready = ::poll(&p, 1, 60'000);
    if (ready < 0 && errno != EINTR) return unexpected(errno_failure("poll", errno));
    if (ready <= 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) {
      if (!sink(std::string_view(buf, static_cast<size_t>(n)))) return reply;
    } else if (n == 0 || errno == ECONNRESET) {
      return reply;  // the daemon ended the stream (it stopped)
    } else if (errno != EAGAIN && errno != EINTR) {
      return unexpected(errno_failure("receive", errno));
    }
  }
}

Expected<Reply, ClientFailure> exchange(const std::string& path, std::string_view request,
                                        Duration timeout, const StreamSink* sink);

}  // namespace

Expected<Reply, ClientFailure> request(const std::string& path, std::string_view request,
                                       Duration timeout) {
  return exchange(path, request, timeout, nullptr);
}

Expected<Reply, ClientFailure> request_stream(const std::string& path, std::string_view request,
                                              Duration timeout, const StreamSink& sink) {
  return exchange(path, request, timeout, &sink);
}

namespace {

Expected<Reply, ClientFailure> exchange(const std::string& path, std::string_view request,
                                        Duration timeout, const StreamSink* sink) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path))
    return unexpected(failure(ClientError::kOther, "socket path too long or empty: " + path));
  if (request.size() + 1 > kMaxRequest || request.find('\n') != std::string_view::npos)
    return unexpected(failure(ClientError::kOther, "request too long or not one line"));
  std::memcpy(addr.sun_path, path.data(), path.size());

  Fd s{::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)};
  if (s.fd < 0) return unexpected(errno_failure("socket", errno));
  const Timestamp deadline = Clock::now() + timeout;
  auto wait = [&](short events) -> bool {
    for (;;) {
      const Timestamp now = Clock::now();
      if (now >= deadline) return false;
      pollfd p{s.fd, events, 0};
      auto ms = std::chrono::ceil<milliseconds>(deadline - now).count();
      int n = ::poll(&p, 1, static_cast<int>(std::min<long long>(ms, 60'000)));
      if (n > 0) return true;
      if (n < 0 && errno != EINTR) return false;
    }
  };

  if (::connect(s.fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    // A Unix socket whose backlog is full answers EAGAIN; anything else is final.
    if (errno != EAGAIN && errno != EINPROGRESS)
      return unexpected(errno_failure("connect to " + path, errno));
    if (!wait(POLLOUT))
      return unexpected(failure(ClientError::kTimeout, "connect to " + path + ": timed out"));
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err != 0) return unexpected(errno_failure("connect to " + path, err));
  }

  std::string out(request);
  out += '\n';
  size_t sent = 0;
  while (sent < out.size()) {
    ssize_t n = ::send(s.fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait(POLLOUT)) return unexpected(failure(ClientError::kTimeout, "send: timed out"));
    } else if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
      break;  // the daemon closed at once (e.g. "busy"): its answer may be waiting to be read
    } else {
      return unexpected(errno_failure("send", errno));
    }
  }

  std::string in;
  char buf[16384];
  for (;;) {
    ParsedReply parsed = parse_reply(in);
    if (parsed.status == ParseStatus::kDone) {
      if (sink == nullptr || !parsed.reply.ok) return std::move(parsed.reply);
      return follow_stream(s.fd, std::move(parsed.reply),
                           std::string_view(in).substr(parsed.consumed), *sink);
    }
    if (parsed.status == ParseStatus::kMalformed)
      return unexpected(failure(ClientError::kProtocol,
                                "the answer on " + path + " is not smtpguardd's protocol"));
    ssize_t n = ::recv(s.fd, buf, sizeof(buf), 0);
    if (n > 0) {
      in.append(buf, static_cast<size_t>(n));
    } else if (n == 0 || errno == ECONNRESET) {
      return unexpected(failure(ClientError::kClosed, "the daemon closed the connection"));
    } else if (errno == EAGAIN || errno == EINTR) {
      if (!wait(POLLIN))
        return unexpected(failure(ClientError::kTimeout, "no answer from the daemon in time"));
    } else {
      return unexpected(errno_failure("receive", errno));
    }
  }
}

}  // namespace

}  // namespace sg::control

#include "control/stream_server.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <vector>

namespace sg::control {
namespace {

// How long accepting pauses when the process is out of file descriptors (the listening socket
// stays readable, and polling it again at once would spin).
constexpr Duration kAcceptPause = milliseconds(100);
constexpr size_t kReadChunk = 4096;

struct Client {
  int fd = -1;
  std::string in;
  std::string out;
  size_t out_pos = 0;
  Timestamp deadline{};
  bool eof = false;      // the peer shut down its side
  bool closing = false;  // close once `out` is sent
  bool dead = false;     // close now
  SocketTaker take;      // hand the connection over once `out` is sent
  bool handed = false;   // `out` is sent: give it to `take` instead of closing
};

bool set_nonblocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  return flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

// Closes a connection without losing the last reply: closing a TCP socket that still has
// unread input sends RST, and the peer's kernel then throws away the reply it has not read yet.
// So: no more writes, discard what has arrived, close.
void close_gracefully(int fd) {
  ::shutdown(fd, SHUT_WR);
  char buf[kReadChunk];
  for (int i = 0; i < 16; ++i) {
    if (::recv(fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0) break;
  }
  ::close(fd);
}

int poll_timeout(Timestamp now, Timestamp deadline) {
  if (deadline <= now) return 0;
  auto ms = std::chrono::ceil<milliseconds>(deadline - now).count();
  return static_cast<int>(std::min<long long>(ms, 60'000));
}

}  // namespace

Expected<std::unique_ptr<StreamServer>, std::string> StreamServer::start(
    int listen_fd, StreamServerOptions options, StreamProtocol protocol) {
  if (!set_nonblocking(listen_fd)) {
    std::string error = std::string("fcntl(O_NONBLOCK): ") + std::strerror(errno);
    ::close(listen_fd);
    return unexpected(error);
  }
  int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) {
    std::string error = std::string("eventfd: ") + std::strerror(errno);
    ::close(listen_fd);
    return unexpected(error);
  }
  if (options.max_clients == 0) options.max_clients = 1;
  if (options.max_input == 0) options.max_input = 1;
  std::unique_ptr<StreamServer> server(
      new StreamServer(listen_fd, wake, std::move(options), std::move(protocol)));
  server->thread_ = std::thread([s = server.get()] { s->run(); });
  return server;
}

StreamServer::StreamServer(int listen_fd, int wake_fd, StreamServerOptions options,
                           StreamProtocol protocol)
    : listen_fd_(listen_fd),
      wake_fd_(wake_fd),
      options_(std::move(options)),
      protocol_(std::move(protocol)) {}

StreamServer::~StreamServer() {
  stop();
}

void StreamServer::stop() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    ssize_t ignored = ::write(wake_fd_, &one, sizeof(one));
    (void)ignored;
    thread_.join();
  }
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
  listen_fd_ = wake_fd_ = -1;
}

void StreamServer::run() {
  std::vector<Client> clients;
  std::vector<pollfd> fds;
  Timestamp accept_paused_until{};

  // Feeds the client's input to the protocol until a reply is pending, the input is used up, or
  // the connection is to close.
  auto advance = [&](Client& c, Timestamp now) {
    while (c.out.empty() && !c.closing && !c.dead) {
      InputState state = c.eof                               ? InputState::kEnd
                         : c.in.size() >= options_.max_input ? InputState::kFull
                                                             : InputState::kMore;
      if (c.in.empty()) {
        if (c.eof) c.closing = true;
        return;
      }
      StreamStep step;
      try {
        step = protocol_(c.in, state);
      } catch (const std::exception&) {
        c.dead = true;
        return;
      }
      step.consumed = std::min(step.consumed, c.in.size());
      if (step.consumed > 0) {
        c.in.erase(0, step.consumed);
        stats_.requests.fetch_add(1, std::memory_order_relaxed);
        c.deadline = now + options_.timeout;
      }
      if (!step.reply.empty()) {
        c.out = std::move(step.reply);
        c.out_pos = 0;
      }
      if (step.close) c.closing = true;
      if (step.take) {
        c.take = std::move(step.take);
        c.closing = true;  // read no more: what follows is the taker's stream
      }
      if (step.consumed == 0 && c.out.empty() && !c.closing) {
        // The protocol needs more bytes; a full or ended input cannot give it any.
        if (state != InputState::kMore) c.closing = true;
        return;
      }
    }
  };

  auto flush = [&](Client& c, Timestamp now) {
    while (c.out_pos < c.out.size()) {
      ssize_t n = ::send(c.fd, c.out.data() + c.out_pos, c.out.size() - c.out_pos,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        c.out_pos += static_cast<size_t>(n);
        c.deadline = now + options_.timeout;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      c.dead = true;  // EPIPE, ECONNRESET: the client is gone
      return;
    }
    c.out.clear();
    c.out_pos = 0;
    if (c.take) {
      c.handed = true;
      c.dead = true;
      return;
    }
    if (c.closing) {
      c.dead = true;
      return;
    }
    advance(c, now);
  };

  auto receive = [&](Client& c, Timestamp now) {
    char buf[kReadChunk];
    const size_t room = options_.max_input - std::min(options_.max_input, c.in.size());
    if (room == 0) return;
    ssize_t n = ::recv(c.fd, buf, std::min(room, sizeof(buf)), MSG_DONTWAIT);
    if (n > 0) {
      c.in.append(buf, static_cast<size_t>(n));
    } else if (n == 0) {
      c.eof = true;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      return;
    } else {
      c.dead = true;
      return;
    }
    advance(c, now);
  };

  for (;;) {
    Timestamp now = Clock::now();
    fds.clear();
    fds.push_back({wake_fd_, POLLIN, 0});
    const bool accepting = now >= accept_paused_until;
    fds.push_back({accepting ? listen_fd_ : -1, POLLIN, 0});
    Timestamp wake_at = accepting ? now + seconds(60) : accept_paused_until;
    for (const Client& c : clients) {
      short events = 0;
      if (!c.out.empty()) {
        events |= POLLOUT;
      } else if (!c.closing && !c.eof && c.in.size() < options_.max_input) {
        events |= POLLIN;
      }
      fds.push_back({c.fd, events, 0});
      wake_at = std::min(wake_at, c.deadline);
    }
    int ready = ::poll(fds.data(), fds.size(), poll_timeout(now, wake_at));
    if (ready < 0 && errno != EINTR) break;
    if (fds[0].revents != 0) break;  // stop()
    now = Clock::now();

    for (size_t i = 0; i < clients.size(); ++i) {
      Client& c = clients[i];
      const short re = fds[i + 2].revents;
      if (re & POLLNVAL) {
        c.dead = true;
      } else if (re & POLLOUT) {
        flush(c, now);
      } else if (re & (POLLIN | POLLHUP | POLLERR)) {
        receive(c, now);
      }
      if (!c.dead && !c.out.empty() && c.out_pos == 0) flush(c, now);  // a fresh reply
      if (!c.dead && c.closing && c.out.empty()) c.dead = true;
      if (!c.dead && now >= c.deadline) {
        stats_.timed_out.fetch_add(1, std::memory_order_relaxed);
        c.dead = true;
      }
    }
    std::erase_if(clients, [this](Client& c) {
      if (c.dead && c.handed) {
        stats_.handed_over.fetch_add(1, std::memory_order_relaxed);
        try {
          c.take(c.fd);
        } catch (const std::exception&) {
          ::close(c.fd);
        }
      } else if (c.dead) {
        close_gracefully(c.fd);
      }
      return c.dead;
    });

    if (fds[1].revents & POLLIN) {
      for (;;) {
        int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
          if (errno == EINTR || errno == ECONNABORTED) continue;
          if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
            accept_paused_until = now + kAcceptPause;
          break;  // EAGAIN: all taken
        }
        if (clients.size() >= options_.max_clients) {
          stats_.refused_busy.fetch_add(1, std::memory_order_relaxed);
          if (!options_.busy_reply.empty()) {
            ssize_t ignored = ::send(fd, options_.busy_reply.data(), options_.busy_reply.size(),
                                     MSG_NOSIGNAL | MSG_DONTWAIT);
            (void)ignored;
          }
          close_gracefully(fd);
          continue;
        }
        stats_.accepted.fetch_add(1, std::memory_order_relaxed);
        Client c;
        c.fd = fd;
        c.deadline = now + options_.timeout;
        clients.push_back(std::move(c));
      }
    }
    clients_.store(clients.size(), std::memory_order_relaxed);
  }
  for (const Client& c : clients) ::close(c.fd);
  clients_.store(0, std::memory_order_relaxed);
}

}  // namespace sg::control

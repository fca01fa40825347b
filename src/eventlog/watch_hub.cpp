#include "eventlog/watch_hub.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "eventlog/watch_record.hpp"

namespace sg::eventlog {
namespace {

constexpr int kPollMs = 1000;
constexpr size_t kReadChunk = 512;

}  // namespace

Expected<std::unique_ptr<WatchHub>, std::string> WatchHub::start() {
  int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) return unexpected(std::string("eventfd: ") + std::strerror(errno));
  std::unique_ptr<WatchHub> hub(new WatchHub(wake));
  hub->thread_ = std::thread([h = hub.get()] { h->run(); });
  return hub;
}

WatchHub::~WatchHub() {
  stop();
}

void WatchHub::stop() {
  stopping_.store(true);
  if (thread_.joinable()) {
    wake();
    thread_.join();
  }
  std::lock_guard lock(mutex_);
  for (const auto& w : watchers_) ::close(w->fd);
  watchers_.clear();
  watched_.store(false);
  count_.store(0);
  if (wake_fd_ >= 0) ::close(wake_fd_);
  wake_fd_ = -1;
}

void WatchHub::wake() noexcept {
  uint64_t one = 1;
  ssize_t ignored = ::write(wake_fd_, &one, sizeof(one));
  (void)ignored;
}

bool WatchHub::attach(int fd, WatchFilter filter) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_.load() && watchers_.size() < kMaxWatchers) {
      // A small send buffer: what waits for a watcher is bounded by its queue, not the kernel's.
      int size = kSendBuffer;
      ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
      watchers_.push_back(std::make_shared<Watcher>(fd, std::move(filter)));
      count_.store(watchers_.size(), std::memory_order_relaxed);
      watched_.store(true, std::memory_order_relaxed);
      add(WatchCounter::watch_attached);
      wake();
      return true;
    }
  }
  add(WatchCounter::watch_refused);
  ::close(fd);
  return false;
}

void WatchHub::publish(const core::Decision& d) noexcept {
  if (!watched_.load(std::memory_order_relaxed)) return;
  try {
    std::string record;
    bool queued = false;
    {
      std::lock_guard lock(mutex_);
      for (const auto& w : watchers_) {
        if (!w->filter.matches(d)) continue;
        if (record.empty()) record = format_watch_record(d, std::chrono::system_clock::now());
        if (w->queue.push(record)) {
          add(WatchCounter::watch_records);
          queued = true;
        } else {
          add(WatchCounter::watch_dropped);
        }
      }
    }
    if (queued) wake();
  } catch (...) {
    add(WatchCounter::watch_dropped);  // out of memory: the record is lost, and counted
  }
}

void WatchHub::run() {
  struct Conn {
    std::shared_ptr<Watcher> watcher;
    std::string out;
    size_t pos = 0;
    bool dead = false;
  };
  std::vector<Conn> conns;
  std::vector<pollfd> fds;
  std::vector<std::string> taken;

  while (!stopping_.load()) {
    {
      // Watchers attached since the last round.
      std::lock_guard lock(mutex_);
      for (const auto& w : watchers_) {
        bool known = false;
        for (const Conn& c : conns) known = known || c.watcher == w;
        if (!known) conns.push_back(Conn{w, {}, 0, false});
      }
    }
    const auto now = std::chrono::system_clock::now();
    for (Conn& c : conns) {
      if (c.pos == c.out.size()) {
        c.out.clear();
        c.pos = 0;
        taken.clear();
        const uint64_t dropped = c.watcher->queue.take(taken);
        for (const std::string& r : taken) c.out += r;
        if (dropped > 0) c.out += format_watch_dropped(dropped, now);
      }
      while (c.pos < c.out.size()) {
        ssize_t n = ::send(c.watcher->fd, c.out.data() + c.pos, c.out.size() - c.pos,
                           MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
          c.pos += static_cast<size_t>(n);
          continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        c.dead = true;  // EPIPE, ECONNRESET: the watcher is gone
        break;
      }
    }

    fds.clear();
    fds.push_back({wake_fd_, POLLIN, 0});
    for (const Conn& c : conns) {
      short events = POLLIN;  // its end, or bytes to discard
      if (c.pos < c.out.size()) events |= POLLOUT;
      fds.push_back({c.dead ? -1 : c.watcher->fd, events, 0});
    }
    int ready = ::poll(fds.data(), fds.size(), kPollMs);
    if (ready < 0 && errno != EINTR) break;
    if (fds[0].revents & POLLIN) {
      uint64_t v = 0;
      ssize_t ignored = ::read(wake_fd_, &v, sizeof(v));
      (void)ignored;
    }
    for (size_t i = 0; i < conns.size(); ++i) {
      Conn& c = conns[i];
      const short re = fds[i + 1].revents;
      if (re & (POLLERR | POLLNVAL)) c.dead = true;
      if (!c.dead && (re & (POLLIN | POLLHUP))) {
        char buf[kReadChunk];
        ssize_t n = ::recv(c.watcher->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
          c.dead = true;
      }
    }
    bool any_dead = false;
    for (const Conn& c : conns) any_dead = any_dead || c.dead;
    if (any_dead) {
      std::lock_guard lock(mutex_);
      for (const Conn& c : conns) {
        if (!c.dead) continue;
        std::erase(watchers_, c.watcher);
        ::close(c.watcher->fd);
      }
      count_.store(watchers_.size(), std::memory_order_relaxed);
      watched_.store(!watchers_.empty(), std::memory_order_relaxed);
      std::erase_if(conns, [](const Conn& c) { return c.dead; });
    }
  }
}

}  // namespace sg::eventlog

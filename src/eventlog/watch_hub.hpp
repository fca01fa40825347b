#pragma once
// The live stream of decisions behind `smtpguardctl watch`. The control thread hands over a
// watcher's socket (after the `watch` request's reply) with its filter; from then on every
// decision that matches the filter is formatted (eventlog/watch_record.hpp) and queued for it,
// and a thread of the hub's own writes the queues out, non-blocking.
//
// A worker never waits for a watcher: publish() costs one relaxed atomic load when nobody
// watches; otherwise the filter, the formatting, and a push into each matching watcher's bounded
// queue (eventlog/watch_queue.hpp), which drops and counts when full. A watcher that does not
// read keeps its queue full and loses records (counted, and announced to it as "dropped N" when
// it reads again); it never holds a worker. The hub's own socket buffer per watcher is kept small
// (kSendBuffer) so that the bound on what waits for a stuck watcher is the queue.
//
// A watcher ends when it closes its socket (or any error on it); stop() closes them all.
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/decision.hpp"
#include "eventlog/watch_counters.hpp"
#include "eventlog/watch_filter.hpp"
#include "eventlog/watch_queue.hpp"
#include "util/expected.hpp"

namespace sg::eventlog {

class WatchHub {
 public:
  static constexpr size_t kMaxWatchers = 4;
  static constexpr int kSendBuffer = 16 * 1024;  // SO_SNDBUF asked for each watcher's socket

  static Expected<std::unique_ptr<WatchHub>, std::string> start();
  ~WatchHub();
  WatchHub(const WatchHub&) = delete;
  WatchHub& operator=(const WatchHub&) = delete;

  // Closes every watcher and joins the thread. Idempotent.
  void stop();

  // Takes `fd` (a connected stream socket) as a watcher with `filter`. False when kMaxWatchers
  // watch already or the hub stopped: the socket is closed.
  bool attach(int fd, WatchFilter filter);

  // A decision, from any thread (after the pipeline filled in its addresses). Never blocks on a
  // watcher's socket.
  void publish(const core::Decision& d) noexcept;

  // Someone watches: decisions should carry the before/after of their lines.
  const std::atomic<bool>& watched() const { return watched_; }
  size_t watchers() const { return count_.load(std::memory_order_relaxed); }
  uint64_t get(WatchCounter c) const {
    return counters_[static_cast<size_t>(c)].load(std::memory_order_relaxed);
  }

 private:
  struct Watcher {
    Watcher(int socket, WatchFilter f) : fd(socket), filter(std::move(f)), queue(filter.queue) {}
    int fd;
    WatchFilter filter;
    WatchQueue queue;
  };

  explicit WatchHub(int wake_fd) : wake_fd_(wake_fd) {}
  void run();
  void wake() noexcept;
  void add(WatchCounter c, uint64_t n = 1) noexcept {
    counters_[static_cast<size_t>(c)].fetch_add(n, std::memory_order_relaxed);
  }

  int wake_fd_ = -1;  // eventfd: a record queued, a watcher attached, or stop()
  std::atomic<bool> stopping_{false};
  std::atomic<bool> watched_{false};
  std::atomic<size_t> count_{0};
  std::array<std::atomic<uint64_t>, static_cast<size_t>(WatchCounter::kCount)> counters_{};

  std::mutex mutex_;  // guards watchers_ (publishers and the thread; never held over I/O)
  std::vector<std::shared_ptr<Watcher>> watchers_;
  std::thread thread_;
};

}  // namespace sg::eventlog

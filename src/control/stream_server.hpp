#pragma once
// A small, bounded stream-socket server in a thread of its own, for the control socket and the
// metrics endpoint: poll() over one listening socket and at most `max_clients` connections.
// A protocol function turns what a client sent into replies; the server does the I/O.
//
// Bounds: a client may buffer at most `max_input` bytes of an unfinished request; it must finish
// each request (and read each reply) within `timeout` of the last one, or it is closed (so a
// slow client holds a slot for at most `timeout`); the next request is read only once the reply
// to the previous one has been sent. A client over `max_clients` gets `busy_reply` and is closed.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "util/expected.hpp"
#include "util/time.hpp"

namespace sg::control {

struct StreamServerOptions {
  size_t max_clients = 8;
  size_t max_input = 4096;
  Duration timeout = seconds(10);
  std::string busy_reply;  // written (best effort) to a connection refused for max_clients
};

// Takes over a connection (a stream of its own, e.g. `watch`): from then on the descriptor is
// the taker's to write to and to close.
using SocketTaker = std::function<void(int fd)>;

// What the protocol makes of a client's unconsumed input.
struct StreamStep {
  size_t consumed = 0;  // bytes of the input used up; 0 with no reply: it needs more
  std::string reply;    // bytes to send
  bool close = false;   // close the connection once the reply is sent
  // Set: once the reply is sent the connection is handed to it and leaves this server (input
  // not consumed yet is dropped). If the client goes before that, it is closed as usual.
  SocketTaker take;
};

enum class InputState : uint8_t {
  kMore,  // more bytes may come
  kFull,  // the input reached max_input without a complete request: answer and close
  kEnd,   // the client shut down its side: nothing more will come
};

using StreamProtocol = std::function<StreamStep(std::string_view input, InputState state)>;

struct StreamServerStats {
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> refused_busy{0};
  std::atomic<uint64_t> timed_out{0};
  std::atomic<uint64_t> requests{0};     // protocol steps that consumed input
  std::atomic<uint64_t> handed_over{0};  // connections given to a SocketTaker
};

class StreamServer {
 public:
  // Takes ownership of `listen_fd` (a listening socket; made non-blocking here) and starts the
  // thread. The protocol runs on that thread.
  static Expected<std::unique_ptr<StreamServer>, std::string> start(int listen_fd,
                                                                    StreamServerOptions options,
                                                                    StreamProtocol protocol);
  ~StreamServer();
  StreamServer(const StreamServer&) = delete;
  StreamServer& operator=(const StreamServer&) = delete;

  // Closes every connection and the listening socket and joins the thread. Idempotent.
  void stop();

  const StreamServerStats& stats() const { return stats_; }
  size_t clients() const { return clients_.load(std::memory_order_relaxed); }

 private:
  StreamServer(int listen_fd, int wake_fd, StreamServerOptions options, StreamProtocol protocol);
  void run();

  int listen_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: stop() writes, the thread wakes
  StreamServerOptions options_;
  StreamProtocol protocol_;
  StreamServerStats stats_;
  std::atomic<size_t> clients_{0};
  std::thread thread_;
};

}  // namespace sg::control

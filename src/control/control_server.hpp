#pragma once
// smtpguardd's control socket: a Unix stream socket speaking the line protocol of
// control_protocol.hpp, served by a thread of its own (StreamServer). The daemon registers one
// handler per command; the handlers run on the server's thread, one at a time, so they must not
// touch a worker's state directly (read atomics, or ask the worker and wait).
//
// The socket file is created with the requested mode (0600 or 0660; the process umask is set
// around bind()), in its directory, which is created (0755) when missing (its parent must
// exist). It never replaces a socket somebody still answers on, replaces a stale one (a socket
// file nobody listens on), refuses to replace anything that is not a socket, and is removed on
// stop() if it is still the one this server created.
#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "control/control_protocol.hpp"
#include "control/stream_server.hpp"
#include "util/expected.hpp"
#include "util/time.hpp"

namespace sg::control {

// Gets the request's argument ("json" for "stats json", "" for "stats").
using ControlHandler = std::function<Reply(std::string_view argument)>;

// A command that turns its connection into a stream (`watch`): it answers like any other, and
// when the reply is ok and `take` is set, the connection is handed to `take` once the reply is
// sent (StreamStep::take).
struct StreamingReply {
  Reply reply;
  SocketTaker take;
};
using StreamingHandler = std::function<StreamingReply(std::string_view argument)>;

struct ControlCommand {
  std::string name;   // the command word, e.g. "stats"
  std::string usage;  // for `help`, e.g. "stats [json]"
  ControlHandler handler;
  StreamingHandler streaming;  // instead of `handler` when set
};

struct ControlServerOptions {
  std::string path{kDefaultSocket};
  mode_t mode = 0660;  // of the socket file: 0600 (owner) or 0660 (owner and group)
  size_t max_clients = 8;
  size_t max_request = kMaxRequest;
  Duration timeout = seconds(10);  // per request, and per reply to be read
};

// The protocol without the socket: answers the complete lines at the start of `input`
// (StreamProtocol contract). Unknown commands get an error reply and the connection stays
// open; a line too long or not printable gets an error and the connection closes.
StreamProtocol control_protocol(std::vector<ControlCommand> commands, size_t max_request);

class ControlServer {
 public:
  // Creates the socket and starts serving. Errors are sentences for the operator.
  static Expected<std::unique_ptr<ControlServer>, std::string> start(
      ControlServerOptions options, std::vector<ControlCommand> commands);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Stops the thread, closes the connections, removes the socket file. Idempotent.
  void stop();

  const std::string& path() const { return path_; }
  const StreamServerStats& stats() const { return server_->stats(); }

 private:
  ControlServer(std::string path, dev_t dev, ino_t ino, std::unique_ptr<StreamServer> server);

  std::string path_;
  dev_t dev_ = 0;  // the socket file this server created, to remove only that one
  ino_t ino_ = 0;
  std::unique_ptr<StreamServer> server_;
  bool stopped_ = false;
};

}  // namespace sg::control

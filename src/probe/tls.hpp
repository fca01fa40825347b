#pragma once
// TLS over an already connected socket (after "220" to STARTTLS), with OpenSSL. Every
// handshake round trip, read and write waits at most until its deadline. The peer's
// certificate is recorded, verified against the system's CA store for the report, and never
// required: the probe asks whether TLS gets through the path, not whether the server is trusted.
#include <memory>
#include <string>
#include <string_view>

#include "probe/socket_io.hpp"
#include "probe/transcript.hpp"

namespace sg::probe {

class TlsChannel {
 public:
  // Runs the client handshake on `fd` (non-blocking). `server_name` goes into SNI unless it is
  // empty or an address literal. On failure `info.error` says why and the result is null.
  static std::unique_ptr<TlsChannel> handshake(int fd, const std::string& server_name,
                                               Deadline deadline, TlsInfo& info);
  ~TlsChannel();
  TlsChannel(const TlsChannel&) = delete;
  TlsChannel& operator=(const TlsChannel&) = delete;

  IoResult read_some(std::string& out, Deadline deadline);
  IoResult write_all(std::string_view bytes, Deadline deadline);
  // Sends close_notify, without waiting for the peer's.
  void shutdown();

 private:
  struct State;
  explicit TlsChannel(std::unique_ptr<State> s);
  std::unique_ptr<State> s_;
};

}  // namespace sg::probe

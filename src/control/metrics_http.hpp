#pragma once
// Prometheus exposition over HTTP and into a file.
//
// MetricsHttpServer: a minimal HTTP/1.0 server (StreamServer, a thread of its own) answering
// `GET /metrics` (and HEAD) with the text the daemon's callback renders, one response per
// connection, then close. It binds only an explicit address: 127.0.0.1:9125, [::1]:9125, or an
// address of this host the operator names; the wildcards (0.0.0.0, ::) and host names are
// refused, so the counters are never exposed to every network by accident. Requests are bounded
// (head at most 8 KiB, read within the timeout).
//
// write_file_atomically: for node_exporter's textfile collector, which may read the file at any
// moment: the text goes to a temporary file in the same directory, then rename() replaces the
// old one.
#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "control/stream_server.hpp"
#include "util/expected.hpp"
#include "util/time.hpp"

namespace sg::control {

inline constexpr std::string_view kPrometheusContentType =
    "text/plain; version=0.0.4; charset=utf-8";

struct ListenAddress {
  sockaddr_storage address{};
  socklen_t length = 0;
  int family = 0;  // AF_INET or AF_INET6
};

// "IPv4:PORT" or "[IPv6]:PORT". The wildcard addresses and host names are refused; port 0 lets
// the kernel pick one (tests).
Expected<ListenAddress, std::string> parse_listen_address(std::string_view text);
// "127.0.0.1:9125" / "[::1]:9125".
std::string to_string(const ListenAddress& a);

using MetricsSource = std::function<std::string()>;

// The whole HTTP response to one request head (the bytes up to and including the blank line).
std::string http_response(std::string_view head, const MetricsSource& metrics);
// The StreamProtocol around it: waits for the head, answers once, closes.
StreamProtocol metrics_http_protocol(MetricsSource metrics);

struct MetricsHttpOptions {
  std::string listen;  // parse_listen_address
  size_t max_clients = 8;
  size_t max_request = 8192;  // bytes of a request head
  Duration timeout = seconds(5);
};

class MetricsHttpServer {
 public:
  // Binds and starts serving. Errors are sentences for the operator.
  static Expected<std::unique_ptr<MetricsHttpServer>, std::string> start(
      const MetricsHttpOptions& options, MetricsSource metrics);
  ~MetricsHttpServer() = default;
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  // The address bound, with the port the kernel picked if 0 was asked for.
  const ListenAddress& address() const { return address_; }
  uint16_t port() const;
  void stop() { server_->stop(); }
  const StreamServerStats& stats() const { return server_->stats(); }

 private:
  MetricsHttpServer(ListenAddress address, std::unique_ptr<StreamServer> server)
      : address_(address), server_(std::move(server)) {}
  ListenAddress address_;
  std::unique_ptr<StreamServer> server_;
};

// Replaces `path` with `content` atomically (temporary file + rename, mode 0644). Returns the
// bytes written.
Expected<size_t, std::string> write_file_atomically(const std::string& path,
                                                    std::string_view content);

}  // namespace sg::control

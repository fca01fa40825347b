#include "control/metrics_http.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <exception>

#include "net/socket_address.hpp"

namespace sg::control {
namespace {

constexpr int kBacklog = 16;

std::string errno_text(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

std::string response(std::string_view status, std::string_view content_type, std::string_view body,
                     bool head_only, std::string_view extra = {}) {
  std::string out = "HTTP/1.0 ";
  out += status;
  out += "\r\nContent-Type: ";
  out += content_type;
  out += "\r\nContent-Length: " + std::to_string(body.size());
  out += "\r\nConnection: close\r\n";
  out += extra;
  out += "\r\n";
  if (!head_only) out += body;
  return out;
}

std::string plain(std::string_view status, std::string_view body, bool head_only = false,
                  std::string_view extra = {}) {
  return response(status, "text/plain; charset=utf-8", body, head_only, extra);
}

// Where the request head ends (after CRLF CRLF, or LF LF from a lenient client), or npos.
size_t head_end(std::string_view input) {
  size_t crlf = input.find("\r\n\r\n");
  size_t lf = input.find("\n\n");
  size_t end = std::string_view::npos;
  if (crlf != std::string_view::npos) end = crlf + 4;
  if (lf != std::string_view::npos) end = std::min(end, lf + 2);
  return end;
}

}  // namespace

Expected<ListenAddress, std::string> parse_listen_address(std::string_view text) {
  const std::string quoted = "--prometheus-listen " + std::string(text);
  std::string_view host;
  std::string_view port_text;
  bool v6 = false;
  if (text.starts_with('[')) {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return unexpected(quoted + ": expected [IPv6]:PORT");
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
    v6 = true;
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos)
      return unexpected(quoted + ": expected ADDRESS:PORT (e.g. 127.0.0.1:9125 or [::1]:9125)");
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos)
      return unexpected(quoted + ": an IPv6 address goes in brackets: [::1]:9125");
  }
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535)
    return unexpected(quoted + ": port must be a number from 0 to 65535");

  ListenAddress a;
  a.family = v6 ? AF_INET6 : AF_INET;
  std::array<uint8_t, 16> raw{};
  if (inet_pton(a.family, std::string(host).c_str(), raw.data()) != 1)
    return unexpected(quoted + (v6 ? ": not an IPv6 address"
                                   : ": not an IPv4 address (host names are not looked up)"));
  if (std::all_of(raw.begin(), raw.begin() + (v6 ? 16 : 4), [](uint8_t b) { return b == 0; }))
    return unexpected(quoted + ": refusing the wildcard address; name the address to serve on " +
                      (v6 ? "([::1] for this host only)" : "(127.0.0.1 for this host only)"));
  a.length = net::fill_socket_address(a.address, a.family, raw.data(), static_cast<uint16_t>(port));
  return a;
}

std::string to_string(const ListenAddress& a) {
  char text[INET6_ADDRSTRLEN] = {};
  if (a.family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&a.address);
    inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text));
    return std::string(text) + ":" + std::to_string(ntohs(sin->sin_port));
  }
  const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&a.address);
  inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text));
  return "[" + std::string(text) + "]:" + std::to_string(ntohs(sin6->sin6_port));
}

std::string http_response(std::string_view head, const MetricsSource& metrics) {
  const size_t eol = head.find('\n');
  std::string_view line = head.substr(0, eol);
  if (line.ends_with('\r')) line.remove_suffix(1);
  // METHOD SP TARGET SP HTTP/1.x
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
    return plain("400 Bad Request", "malformed request line\n");
  const std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!version.starts_with("HTTP/1.")) return plain("400 Bad Request", "HTTP/1.x only\n");
  const bool head_only = method == "HEAD";
  if (method != "GET" && !head_only)
    return plain("405 Method Not Allowed", "GET or HEAD only\n", false, "Allow: GET, HEAD\r\n");
  target = target.substr(0, target.find('?'));  // Prometheus may add query parameters
  if (target == "/") {
    return plain("200 OK", "smtpguardd: the metrics are at /metrics\n", head_only);
  }
  if (target != "/metrics") return plain("404 Not Found", "not found: try /metrics\n", head_only);
  std::string body;
  try {
    body = metrics();
  } catch (const std::exception& e) {
    return plain("500 Internal Server Error", std::string("metrics: ") + e.what() + "\n",
                 head_only);
  }
  return response("200 OK", kPrometheusContentType, body, head_only);
}

StreamProtocol metrics_http_protocol(MetricsSource metrics) {
  return [metrics = std::move(metrics)](std::string_view input, InputState state) -> StreamStep {
    const size_t end = head_end(input);
    if (end != std::string_view::npos)
      return StreamStep{input.size(), http_response(input.substr(0, end), metrics), true};
    if (state == InputState::kFull)
      return StreamStep{input.size(),
                        plain("431 Request Header Fields Too Large", "request head too long\n"),
                        true};
    if (state == InputState::kEnd)
      return StreamStep{input.size(), plain("400 Bad Request", "incomplete request\n"), true};
    return {};
  };
}

Expected<std::unique_ptr<MetricsHttpServer>, std::string> MetricsHttpServer::start(
    const MetricsHttpOptions& options, MetricsSource metrics) {
  auto parsed = parse_listen_address(options.listen);
  if (!parsed) return unexpected(parsed.error());
  ListenAddress address = *parsed;
  const std::string where = "metrics on " + options.listen;

  int fd = ::socket(address.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return unexpected(errno_text(where + ": socket"));
  int one = 1;
  (void)::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (address.family == AF_INET6)
    (void)::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&address.address), address.length) != 0) {
    std::string error = errno_text(where + ": bind");
    if (errno == EADDRNOTAVAIL) error += " (not an address of this host)";
    ::close(fd);
    return unexpected(error);
  }
  socklen_t len = sizeof(address.address);
  if (::listen(fd, kBacklog) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address.address), &len) != 0) {
    std::string error = errno_text(where);
    ::close(fd);
    return unexpected(error);
  }
  address.length = len;

  StreamServerOptions so;
  so.max_clients = options.max_clients;
  so.max_input = options.max_request;
  so.timeout = options.timeout;
  so.busy_reply = plain("503 Service Unavailable", "too many clients\n");
  auto server = StreamServer::start(fd, std::move(so), metrics_http_protocol(std::move(metrics)));
  if (!server) return unexpected(where + ": " + server.error());
  return std::unique_ptr<MetricsHttpServer>(new MetricsHttpServer(address, std::move(*server)));
}

uint16_t MetricsHttpServer::port() const {
  if (address_.family == AF_INET)
    return ntohs(reinterpret_cast<const sockaddr_in*>(&address_.address)->sin_port);
  return ntohs(reinterpret_cast<const sockaddr_in6*>(&address_.address)->sin6_port);
}

Expected<size_t, std::string> write_file_atomically(const std::string& path,
                                                    std::string_view content) {
  // The temporary name does not end in ".prom": the textfile collector ignores it.
  std::string tmp = path + ".XXXXXX";
  int fd = ::mkstemp(tmp.data());
  if (fd < 0) return unexpected(errno_text("metrics file " + path + ": mkstemp " + tmp));
  auto fail = [&](const std::string& what) {
    std::string error = errno_text("metrics file " + path + ": " + what);
    ::close(fd);
    ::unlink(tmp.c_str());
    return unexpected(error);
  };
  if (::fchmod(fd, 0644) != 0) return fail("fchmod");
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("write");
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) {
    std::string error = errno_text("metrics file " + path + ": close");
    ::unlink(tmp.c_str());
    return unexpected(error);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string error = errno_text("metrics file " + path + ": rename");
    ::unlink(tmp.c_str());
    return unexpected(error);
  }
  return done;
}

}  // namespace sg::control

// The Prometheus endpoint and file (src/control/metrics_http.hpp): address rules, the HTTP
// answers, a real server on 127.0.0.1 with a kernel-picked port, and the atomic file write.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "control/metrics_http.hpp"
#include "support/temp_dir.hpp"

using namespace sg;
using namespace sg::control;
namespace fs = std::filesystem;

namespace {

const std::string kBody =
    "# HELP smtpguard_x_total x\n# TYPE smtpguard_x_total counter\n"
    "smtpguard_x_total 1\n";

std::string metrics() {
  return kBody;
}

// Sends `request` to 127.0.0.1:port (in one go, then shuts down writing if asked) and reads
// until the server closes or 2 s pass without data.
std::string exchange(uint16_t port, std::string_view request, bool shut = false,
                     bool* closed = nullptr) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  if (!request.empty()) REQUIRE(send(fd, request.data(), request.size(), MSG_NOSIGNAL) > 0);
  if (shut) shutdown(fd, SHUT_WR);
  std::string out;
  char buf[65536];
  bool eof = false;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 2000) <= 0) break;
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) {
      eof = true;
      break;
    }
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  if (closed) *closed = eof;
  return out;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("metrics listen address: explicit addresses only") {
  auto v4 = parse_listen_address("127.0.0.1:9125");
  REQUIRE(v4);
  CHECK(v4->family == AF_INET);
  CHECK(to_string(*v4) == "127.0.0.1:9125");
  auto v6 = parse_listen_address("[::1]:0");
  REQUIRE(v6);
  CHECK(v6->family == AF_INET6);
  CHECK(to_string(*v6) == "[::1]:0");
  auto lan = parse_listen_address("198.18.2.254:9125");  // the operator's explicit choice
  CHECK(lan);

  struct Case {
    const char* text;
    const char* why;
  };
  auto c =
      GENERATE(Case{"0.0.0.0:9125", "wildcard"}, Case{"[::]:9125", "wildcard"},
               Case{"localhost:9125", "host names are not looked up"},
               Case{"127.0.0.1", "expected ADDRESS:PORT"}, Case{"127.0.0.1:65536", "port must be"},
               Case{"127.0.0.1:", "port must be"}, Case{"127.0.0.1:9x", "port must be"},
               Case{"::1:9125", "in brackets"}, Case{"[::1]9125", "[IPv6]:PORT"},
               Case{"[fe80::zz]:1", "not an IPv6 address"}, Case{"", "ADDRESS:PORT"});
  INFO(c.text);
  auto r = parse_listen_address(c.text);
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error(), Catch::Contains(c.why));
  CHECK_THAT(r.error(), Catch::StartsWith("--prometheus-listen "));
}

TEST_CASE("metrics HTTP: answers to request heads") {
  const MetricsSource m = metrics;
  CHECK(http_response("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", m) ==
        "HTTP/1.0 200 OK\r\n"
        "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
        "Content-Length: " +
            std::to_string(kBody.size()) +
            "\r\n"
            "Connection: close\r\n\r\n" +
            kBody);
  CHECK(http_response("GET /metrics?name[]=x HTTP/1.0\r\n\r\n", m).starts_with("HTTP/1.0 200 OK"));
  const std::string head = http_response("HEAD /metrics HTTP/1.1\r\n\r\n", m);
  CHECK_THAT(head, Catch::Contains("Content-Length: " + std::to_string(kBody.size()) + "\r\n"));
  CHECK_THAT(head, Catch::EndsWith("\r\n\r\n"));
  CHECK(http_response("GET / HTTP/1.1\r\n\r\n", m).starts_with("HTTP/1.0 200 OK"));
  CHECK(http_response("GET /other HTTP/1.1\r\n\r\n", m).starts_with("HTTP/1.0 404 Not Found"));
  const std::string post = http_response("POST /metrics HTTP/1.1\r\n\r\n", m);
  CHECK(post.starts_with("HTTP/1.0 405 Method Not Allowed"));
  CHECK_THAT(post, Catch::Contains("\r\nAllow: GET, HEAD\r\n"));
  CHECK(http_response("GET /metrics\r\n\r\n", m).starts_with("HTTP/1.0 400"));
  CHECK(http_response("GET /metrics HTTP/2\r\n\r\n", m).starts_with("HTTP/1.0 400"));
  CHECK(http_response("GET  /metrics HTTP/1.1\r\n\r\n", m).starts_with("HTTP/1.0 400"));
  CHECK(http_response("\x16\x03\x01\x02\x00\r\n\r\n", m).starts_with("HTTP/1.0 400"));
  const std::string failed = http_response("GET /metrics HTTP/1.1\r\n\r\n", []() -> std::string {
    throw std::runtime_error("snapshot failed");
  });
  CHECK(failed.starts_with("HTTP/1.0 500"));
  CHECK_THAT(failed, Catch::EndsWith("metrics: snapshot failed\n"));
}

TEST_CASE("metrics HTTP server: real loopback TCP, one response per connection") {
  std::atomic<int> calls{0};
  MetricsHttpOptions o;
  o.listen = "127.0.0.1:0";
  o.timeout = milliseconds(300);
  o.max_clients = 2;
  auto server = MetricsHttpServer::start(o, [&] {
    ++calls;
    return kBody;
  });
  REQUIRE(server);
  const uint16_t port = (*server)->port();
  REQUIRE(port != 0);
  CHECK(to_string((*server)->address()) == "127.0.0.1:" + std::to_string(port));

  bool closed = false;
  std::string r =
      exchange(port, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", false, &closed);
  CHECK(closed);  // the server closes after its one response
  CHECK(r.starts_with("HTTP/1.0 200 OK\r\n"));
  CHECK_THAT(r, Catch::EndsWith("\r\n\r\n" + kBody));
  CHECK(calls == 1);
  // The request head may come in pieces; a second request on the connection is ignored.
  r = exchange(port, "GET /metrics HTTP/1.0\n\nGET /metrics HTTP/1.0\n\n");
  CHECK(r.starts_with("HTTP/1.0 200 OK\r\n"));
  CHECK(r.find("HTTP/1.0", 1) == std::string::npos);
  CHECK(calls == 2);

  SECTION("a head larger than the limit gets 431") {
    std::string big = "GET /metrics HTTP/1.1\r\nX-Junk: " + std::string(10000, 'j');
    r = exchange(port, big, false, &closed);
    CHECK(r.starts_with("HTTP/1.0 431 "));
    CHECK(closed);
    CHECK(calls == 2);
  }
  SECTION("an unfinished request is answered 400 when the client stops sending") {
    r = exchange(port, "GET /metr", true, &closed);
    CHECK(r.starts_with("HTTP/1.0 400 "));
    CHECK(closed);
  }
  SECTION("a client that sends nothing is dropped after the timeout") {
    const auto start = Clock::now();
    r = exchange(port, "", false, &closed);
    CHECK(r.empty());
    CHECK(closed);
    CHECK(Clock::now() - start < seconds(2));
    CHECK((*server)->stats().timed_out >= 1);
  }
  SECTION("clients over the limit get 503") {
    int a = socket(AF_INET, SOCK_STREAM, 0), b = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(connect(a, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    REQUIRE(connect(b, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    r = exchange(port, "GET /metrics HTTP/1.1\r\n\r\n");
    CHECK(r.starts_with("HTTP/1.0 503 "));
    close(a);
    close(b);
  }
  (*server)->stop();
  // Stopped: nothing listens on the port any more.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0);
  close(fd);
}

TEST_CASE("metrics HTTP server: refuses the wildcard, reports a busy port") {
  MetricsHttpOptions o;
  o.listen = "0.0.0.0:0";
  auto wildcard = MetricsHttpServer::start(o, metrics);
  REQUIRE_FALSE(wildcard);
  CHECK_THAT(wildcard.error(), Catch::Contains("wildcard"));

  o.listen = "127.0.0.1:0";
  auto first = MetricsHttpServer::start(o, metrics);
  REQUIRE(first);
  o.listen = "127.0.0.1:" + std::to_string((*first)->port());
  auto second = MetricsHttpServer::start(o, metrics);
  REQUIRE_FALSE(second);
  CHECK_THAT(second.error(), Catch::Contains("bind: Address already in use"));
}

TEST_CASE("metrics file: written atomically, mode 0644, no temporary left") {
  const test::TempDir tmp("sg_metrics");
  const fs::path dir = tmp.path;
  const fs::path file = dir / "smtpguard.prom";

  auto w1 = write_file_atomically(file.string(), "first\n");
  REQUIRE(w1);
  CHECK(*w1 == 6);
  CHECK(read_file(file) == "first\n");
  auto w2 = write_file_atomically(file.string(), kBody);
  REQUIRE(w2);
  CHECK(read_file(file) == kBody);
  struct stat st {};
  REQUIRE(stat(file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0644);
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    (void)e;
    ++entries;
  }
  CHECK(entries == 1);

  auto missing = write_file_atomically((dir / "no" / "such.prom").string(), "x");
  REQUIRE_FALSE(missing);
  CHECK_THAT(missing.error(), Catch::Contains("mkstemp"));
}

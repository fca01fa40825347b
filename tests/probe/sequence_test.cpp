// The probe's dialogue against scripted servers on 127.0.0.1 (loopback only): the steps it sends,
// TLS after STARTTLS (a certificate made in memory), and the bounds that keep it from hanging.
#include "probe/sequence.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "probe/classify.hpp"

using namespace sg::probe;
using namespace std::chrono_literals;

namespace {

// The scripted server may close while the probe's TLS layer writes (main ignores SIGPIPE too).
const bool kSigpipeIgnored = [] {
  signal(SIGPIPE, SIG_IGN);
  return true;
}();

// A self-signed certificate and key for the scripted server, made in memory.
struct ServerTls {
  SSL_CTX* ctx = nullptr;
  ServerTls() {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("mx.test"), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    X509_sign(cert, key, EVP_sha256());
    ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate(ctx, cert);
    SSL_CTX_use_PrivateKey(ctx, key);
    X509_free(cert);
    EVP_PKEY_free(key);
  }
  ~ServerTls() { SSL_CTX_free(ctx); }
};

// What the scripted server does, in order.
struct Act {
  enum Kind { kSend, kRead, kTls, kSleep, kWaitClose } kind;
  std::string text;
  std::chrono::milliseconds pause{0};
};
Act send(std::string s) {
  return {Act::kSend, std::move(s)};
}
Act read_line() {
  return {Act::kRead, ""};
}
Act tls() {
  return {Act::kTls, ""};
}
Act sleep_for(std::chrono::milliseconds d) {
  return {Act::kSleep, "", d};
}
Act wait_close() {
  return {Act::kWaitClose, ""};
}

// One connection on 127.0.0.1, one script. Blocking I/O with a receive timeout, so a test that
// goes wrong fails instead of hanging.
class ScriptedServer {
 public:
  explicit ScriptedServer(std::vector<Act> script) : script_(std::move(script)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(listener_, 1) == 0);
    socklen_t len = sizeof a;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~ScriptedServer() {
    ::shutdown(listener_, SHUT_RDWR);  // an accept() still waiting returns
    join();
    ::close(listener_);
  }
  uint16_t port() const { return port_; }
  // Waits for the script to end; `received` is complete afterwards.
  void join() {
    if (thread_.joinable()) thread_.join();
  }
  std::vector<std::string> received;  // the command lines the server read, without CR LF

 private:
  void serve() {
    const int fd = ::accept(listener_, nullptr, nullptr);
    if (fd < 0) return;
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    SSL* ssl = nullptr;
    std::string buf;
    auto read_some = [&](char* p, size_t n) -> ssize_t {
      return ssl ? SSL_read(ssl, p, static_cast<int>(n)) : ::recv(fd, p, n, 0);
    };
    for (const Act& act : script_) {
      if (act.kind == Act::kSend) {
        if (ssl)
          SSL_write(ssl, act.text.data(), static_cast<int>(act.text.size()));
        else
          ::send(fd, act.text.data(), act.text.size(), MSG_NOSIGNAL);
      } else if (act.kind == Act::kRead) {
        char c;
        std::string line;
        while (read_some(&c, 1) == 1 && c != '\n') line += c;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        received.push_back(line);
      } else if (act.kind == Act::kTls) {
        ssl = SSL_new(tls_.ctx);
        SSL_set_fd(ssl, fd);
        if (SSL_accept(ssl) != 1) break;
      } else if (act.kind == Act::kSleep) {
        std::this_thread::sleep_for(act.pause);
      } else if (act.kind == Act::kWaitClose) {
        char c;
        while (read_some(&c, 1) > 0) {
        }
      }
    }
    if (ssl) SSL_free(ssl);
    ::close(fd);
  }

  ServerTls tls_;
  std::vector<Act> script_;
  int listener_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
};

SequenceOptions fast() {
  SequenceOptions o;
  o.helo_name = "client.test";
  o.step_timeout = 400ms;
  return o;
}

std::chrono::milliseconds since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               t0);
}

const std::string kEhloTls = "250-mx.test\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n";

}  // namespace

TEST_CASE("the polite sequence, with STARTTLS and a TLS handshake over loopback") {
  REQUIRE(kSigpipeIgnored);
  ScriptedServer server({send("220 mx.test ESMTP\r\n"), read_line(), send(kEhloTls), read_line(),
                         send("500 5.5.2 Error: command not recognized\r\n"), read_line(),
                         send("250 2.0.0 Ok\r\n"), read_line(),
                         send("220 2.0.0 Ready to start TLS\r\n"), tls(), read_line(),
                         send("250-mx.test\r\n250 8BITMIME\r\n"), read_line(),
                         send("250 2.0.0 Ok\r\n"), read_line(), send("221 2.0.0 Bye\r\n")});
  SequenceOptions o = fast();
  o.step_timeout = 5s;  // a handshake on a busy machine
  const Transcript t = run_sequence("127.0.0.1", server.port(), o);
  server.join();
  CHECK(t.failure.empty());
  CHECK(t.address == "127.0.0.1:" + std::to_string(server.port()));
  CHECK(server.received == std::vector<std::string>{"EHLO client.test", "goodmorning", "NOOP",
                                                    "STARTTLS", "EHLO client.test", "RSET",
                                                    "QUIT"});
  REQUIRE(t.tls);
  CHECK(t.tls->ok);
  CHECK(t.tls->protocol.rfind("TLSv1.", 0) == 0);
  CHECK(t.tls->peer_subject == "CN = mx.test");
  CHECK(t.tls->verify != "ok");  // self-signed: recorded, not required
  REQUIRE(t.reply(Step::kEhloTls));
  CHECK(t.reply(Step::kEhloTls)->lines.back() == "250 8BITMIME");
  CHECK(t.find(Step::kQuit)->status == StepStatus::kOk);
  CHECK(classify(t, nullptr).findings.empty());
}

TEST_CASE("optional checks: AUTH cancelled with '*', a null transaction ending in RSET") {
  ScriptedServer server({send("220 mx.test ESMTP\r\n"),
                         read_line(),
                         send("250-mx.test\r\n250 AUTH LOGIN PLAIN\r\n"),
                         read_line(),
                         send("500 5.5.2 Error\r\n"),
                         read_line(),
                         send("250 Ok\r\n"),
                         read_line(),
                         send("500 5.5.2 Error\r\n"),
                         read_line(),
                         send("500 5.5.2 Error\r\n"),
                         read_line(),
                         send("334 \r\n"),
                         read_line(),
                         send("501 5.7.0 Authentication aborted\r\n"),
                         read_line(),
                         send("250 2.1.0 Ok\r\n"),
                         read_line(),
                         send("250 2.1.5 Ok\r\n"),
                         read_line(),
                         send("250 2.0.0 Ok\r\n"),
                         read_line(),
                         send("250 Ok\r\n"),
                         read_line(),
                         send("221 Bye\r\n")});
  SequenceOptions o = fast();
  o.auth_check = true;
  o.deep = true;
  o.mail_from = "";
  o.rcpt_to = "user@mx.test";
  o.step_timeout = 5s;
  const Transcript t = run_sequence("127.0.0.1", server.port(), o);
  server.join();
  CHECK(server.received == std::vector<std::string>{"EHLO client.test", "goodmorning", "NOOP",
                                                    "XEXCH50", "X-LINK2STATE", "AUTH LOGIN", "*",
                                                    "MAIL FROM:<>", "RCPT TO:<user@mx.test>",
                                                    "RSET", "RSET", "QUIT"});
  CHECK(t.find(Step::kAuthCancel)->reply->code == 501);
}

TEST_CASE("EHLO answered like a NOOP: the probe greets again with HELO") {
  ScriptedServer server({send("220 ***************\r\n"), read_line(), send("250 OK\r\n"),
                         read_line(), send("250 mx.test\r\n"), read_line(), send("250 OK\r\n"),
                         read_line(), send("250 OK\r\n"), read_line(), send("250 OK\r\n"),
                         read_line(), send("221 Bye\r\n")});
  const Transcript t = run_sequence("127.0.0.1", server.port(), fast());
  server.join();
  CHECK(server.received == std::vector<std::string>{"EHLO client.test", "HELO client.test",
                                                    "goodmorning", "NOOP", "RSET", "QUIT"});
  CHECK(classify(t, nullptr).find(FindingKind::kUnknownCommandOk));
}

TEST_CASE("a PIX banner without a separator is a complete greeting, not a wait") {
  ScriptedServer server({send("220*********************0*2******0****\r\n"), read_line(),
                         send("500 Command unrecognized\r\n"), wait_close()});
  const auto t0 = std::chrono::steady_clock::now();
  const Transcript t = run_sequence("127.0.0.1", server.port(), fast());
  server.join();
  REQUIRE(t.reply(Step::kBanner));
  CHECK(t.reply(Step::kBanner)->code == 220);
  // EHLO refused, then HELO gets no answer: bounded by one step timeout.
  CHECK(t.find(Step::kHelo)->status == StepStatus::kTimeout);
  CHECK(since(t0) < 2s);
}

TEST_CASE("every step is bounded: the probe never hangs") {
  SECTION("a server that never greets") {
    ScriptedServer server({wait_close()});
    const auto t0 = std::chrono::steady_clock::now();
    const Transcript t = run_sequence("127.0.0.1", server.port(), fast());
    server.join();
    CHECK(since(t0) >= 350ms);
    CHECK(since(t0) < 2s);
    CHECK(t.failure.find("no greeting from 127.0.0.1:") == 0);
    CHECK(t.failure.find("no complete reply within 400 ms") != std::string::npos);
  }
  SECTION("a server that drips a reply that never ends") {
    std::vector<Act> drip{send("220 mx.test\r\n"), read_line()};
    for (int i = 0; i < 20; ++i) {
      drip.push_back(send("250-still going\r\n"));
      drip.push_back(sleep_for(50ms));
    }
    drip.push_back(wait_close());
    ScriptedServer server(drip);
    const auto t0 = std::chrono::steady_clock::now();
    const Transcript t = run_sequence("127.0.0.1", server.port(), fast());
    CHECK(since(t0) < 2s);
    server.join();
    CHECK(t.failure.empty());
    CHECK(t.find(Step::kEhlo)->status == StepStatus::kTimeout);
  }
  SECTION("the connection closes in the middle") {
    ScriptedServer server(
        {send("220 mx.test\r\n"), read_line(), send("250 mx.test\r\n"), read_line()});
    const Transcript t = run_sequence("127.0.0.1", server.port(), fast());
    server.join();
    CHECK(t.find(Step::kUnknownVerb)->status == StepStatus::kClosed);
    const Classification c = classify(t, nullptr);
    CHECK(c.find(FindingKind::kSessionIncomplete));
  }
  SECTION("220 to STARTTLS, then no TLS: the handshake fails or times out, bounded") {
    ScriptedServer server({send("220 mx.test\r\n"), read_line(), send(kEhloTls), read_line(),
                           send("500 unknown\r\n"), read_line(), send("250 Ok\r\n"), read_line(),
                           send("220 Ready\r\nthis is not TLS\r\n"), wait_close()});
    const auto t0 = std::chrono::steady_clock::now();
    const Transcript t = run_sequence("127.0.0.1", server.port(), fast());
    server.join();
    CHECK(since(t0) < 2s);
    REQUIRE(t.tls);
    CHECK_FALSE(t.tls->ok);
    CHECK_FALSE(t.tls->error.empty());
    CHECK(t.find(Step::kTlsHandshake)->status != StepStatus::kOk);
    const Classification c = classify(t, nullptr);
    CHECK(c.find(FindingKind::kTlsFailed));
    // The plain-text line after the 220 belongs to neither side of TLS.
    CHECK(t.after_starttls == "this is not TLS\n");
    CHECK(c.find(FindingKind::kPlaintextAfterStarttls));
  }
}

TEST_CASE("could not probe: refused connections and names that do not resolve") {
  SECTION("connection refused") {
    // A port that was just free: nobody listens there.
    const int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(s);
    const Transcript t = run_sequence("127.0.0.1", ntohs(a.sin_port), fast());
    CHECK(t.failure.find("cannot connect to 127.0.0.1:") == 0);
    CHECK(t.failure == "cannot connect to 127.0.0.1:" + std::to_string(ntohs(a.sin_port)) +
                           ": Connection refused");
    CHECK(t.exchanges.empty());
  }
  SECTION("a name under .invalid never resolves") {
    const auto t0 = std::chrono::steady_clock::now();
    const Transcript t = run_sequence("nowhere.invalid", 25, fast());
    CHECK(t.failure.find("cannot connect to nowhere.invalid:25: cannot resolve") == 0);
    CHECK(since(t0) < 3s);
  }
  SECTION("IPv6 loopback is an address like any other") {
    ScriptedServer server(
        {send("554 5.7.1 No SMTP service here\r\n"), read_line(), send("221 Bye\r\n")});
    // The server listens on IPv4 only: ::1 is refused, 127.0.0.1 refuses the session.
    const Transcript v6 = run_sequence("::1", server.port(), fast());
    CHECK(v6.target == "[::1]:" + std::to_string(server.port()));
    CHECK_FALSE(v6.failure.empty());
    const Transcript v4 = run_sequence("127.0.0.1", server.port(), fast());
    server.join();
    CHECK(v4.failure.find("refused the session: 554 5.7.1 No SMTP service here") !=
          std::string::npos);
  }
}

// The control socket (src/control/control_server.hpp, control_protocol.hpp): a real Unix socket
// in a temporary directory, fake handlers, well-behaved and hostile clients.
#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>

#include "control/control_server.hpp"
#include "support/temp_dir.hpp"

using namespace sg;
using namespace sg::control;
namespace fs = std::filesystem;

namespace {

std::atomic<int> g_stats_calls{0};

std::vector<ControlCommand> fake_commands() {
  std::vector<ControlCommand> c;
  c.push_back({"status", "status", [](std::string_view) {
                 return control::Reply::success("smtpguardd 0.1.0 fake\n");
               }});
  c.push_back({"stats", "stats [json]", [](std::string_view arg) {
                 ++g_stats_calls;
                 if (arg.empty()) return control::Reply::success("packets = 1\n");
                 if (arg == "json") return control::Reply::success("{\"packets\": 1}\n");
                 return control::Reply::error("stats takes no argument but json");
               }});
  c.push_back({"reload", "reload", [](std::string_view) -> control::Reply {
                 throw std::runtime_error("no configuration file");
               }});
  c.push_back({"flows", "flows", [](std::string_view) {
                 return control::Reply::success(std::string(3 << 20, 'f'));
               }});
  c.push_back({"rules", "rules show|install|remove", [](std::string_view arg) {
                 return control::Reply::success("rules " + std::string(arg) + "\n");
               }});
  return c;
}

// A raw client: connects, sends bytes as given, reads until the server closes or `wait` passes.
class RawClient {
 public:
  explicit RawClient(const std::string& path) {
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~RawClient() {
    if (fd_ >= 0) close(fd_);
  }
  bool connected() const { return connected_; }
  void send_bytes(std::string_view s) {
    REQUIRE(::send(fd_, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size()));
  }
  void shut_write() { shutdown(fd_, SHUT_WR); }
  // Everything until EOF (closed = true) or until nothing came for `wait`.
  std::string read_all(std::chrono::milliseconds wait, bool* closed = nullptr) {
    std::string out;
    char buf[65536];
    for (;;) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(wait.count())) <= 0) break;
      ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) {
        if (closed) *closed = true;
        return out;
      }
      out.append(buf, static_cast<size_t>(n));
    }
    if (closed) *closed = false;
    return out;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

control::Reply ask(const std::string& path, std::string_view request) {
  auto r = control::request(path, request, seconds(5));
  INFO("request " << request << ": " << (r ? "" : r.error().message));
  REQUIRE(r.has_value());
  return *r;
}

mode_t file_mode(const std::string& path) {
  struct stat st {};
  REQUIRE(lstat(path.c_str(), &st) == 0);
  return st.st_mode;
}

}  // namespace

TEST_CASE("control protocol: replies are framed by length") {
  CHECK(control::encode_reply(control::Reply::success("a\nb")) == "ok 3\na\nb");
  CHECK(control::encode_reply(control::Reply::error("no")) == "error 2\nno");
  CHECK(control::encode_reply(control::Reply::success("")) == "ok 0\n");

  auto done = control::parse_reply("ok 3\na\nbNEXT");
  CHECK(done.status == control::ParseStatus::kDone);
  CHECK(done.reply == control::Reply::success("a\nb"));
  CHECK(done.consumed == 8);
  CHECK(control::parse_reply("error 2\nno").reply == control::Reply::error("no"));
  CHECK(control::parse_reply("ok 3\na\n").status == control::ParseStatus::kNeedMore);
  CHECK(control::parse_reply("ok 3").status == control::ParseStatus::kNeedMore);
  CHECK(control::parse_reply("").status == control::ParseStatus::kNeedMore);
  for (const char* bad :
       {"OK 3\nabc", "ok\n", "ok -1\n", "ok 3x\nabc", "ok  3\nabc", "ok 99999999999\n",
        "HTTP/1.1 200 OK\r\n", "a long line without a newline that is not ours"}) {
    INFO(bad);
    CHECK(control::parse_reply(bad).status == control::ParseStatus::kMalformed);
  }

  auto r = control::parse_request("rules  install\r");
  REQUIRE(r);
  CHECK(r->command == "rules");
  CHECK(r->argument == "install");
  auto plain = control::parse_request(" status ");
  REQUIRE(plain);
  CHECK(plain->command == "status");
  CHECK(plain->argument.empty());
  CHECK_FALSE(control::parse_request(""));
  CHECK_FALSE(control::parse_request("   "));
  CHECK_FALSE(control::parse_request("sta\ttus"));
  CHECK_FALSE(control::parse_request("status\x80"));
}

TEST_CASE("control server: commands, arguments, errors, help") {
  test::TempDir dir("sg_control");
  const std::string path = (dir.path / "ctl.sock").string();
  ControlServerOptions o;
  o.path = path;
  auto server = ControlServer::start(o, fake_commands());
  REQUIRE(server);
  CHECK(S_ISSOCK(file_mode(path)));
  CHECK((file_mode(path) & 0777) == 0660);

  CHECK(ask(path, "status") == control::Reply::success("smtpguardd 0.1.0 fake\n"));
  CHECK(ask(path, "stats") == control::Reply::success("packets = 1\n"));
  CHECK(ask(path, "stats json") == control::Reply::success("{\"packets\": 1}\n"));
  CHECK(ask(path, "stats xml") == control::Reply::error("stats takes no argument but json"));
  CHECK(ask(path, "rules install") == control::Reply::success("rules install\n"));
  CHECK(ask(path, "reload") == control::Reply::error("reload failed: no configuration file"));
  CHECK(ask(path, "frobnicate now") ==
        control::Reply::error("unknown command \"frobnicate\" (try: help)"));
  CHECK(ask(path, "help") == control::Reply::success("status\nstats [json]\nreload\nflows\n"
                                                     "rules show|install|remove\nhelp\n"));
  // A large reply arrives whole.
  control::Reply flows = ask(path, "flows");
  CHECK(flows.ok);
  CHECK(flows.body.size() == (3u << 20));
  CHECK(flows.body.find_first_not_of('f') == std::string::npos);

  server->reset();
  // stop() removed the socket file.
  CHECK_FALSE(fs::exists(path));
}

TEST_CASE("control server: several requests on one connection are answered in order") {
  test::TempDir dir("sg_control");
  const std::string path = (dir.path / "ctl.sock").string();
  ControlServerOptions o;
  o.path = path;
  auto server = ControlServer::start(o, fake_commands());
  REQUIRE(server);
  RawClient c(path);
  REQUIRE(c.connected());
  c.send_bytes("status\r\nstats\nnope\n\nstats json");
  c.shut_write();  // the last line comes without its LF: still a request
  bool closed = false;
  const std::string got = c.read_all(std::chrono::milliseconds(2000), &closed);
  CHECK(closed);
  CHECK(got ==
        "ok 22\nsmtpguardd 0.1.0 fake\n"
        "ok 12\npackets = 1\n"
        "error 34\nunknown command \"nope\" (try: help)"
        "error 25\nempty request (try: help)"
        "ok 15\n{\"packets\": 1}\n");
}

TEST_CASE("control server: garbage and oversized requests are refused and closed") {
  test::TempDir dir("sg_control");
  const std::string path = (dir.path / "ctl.sock").string();
  ControlServerOptions o;
  o.path = path;
  auto server = ControlServer::start(o, fake_commands());
  REQUIRE(server);

  SECTION("binary bytes") {
    RawClient c(path);
    c.send_bytes(std::string("stat\x00\x01\xff\n", 8) + "status\n");
    bool closed = false;
    CHECK(c.read_all(std::chrono::milliseconds(2000), &closed) ==
          "error 38\nmalformed request: not printable ASCII");
    CHECK(closed);
  }
  SECTION("a line longer than the limit, without LF") {
    RawClient c(path);
    c.send_bytes(std::string(5000, 'a'));
    bool closed = false;
    CHECK(c.read_all(std::chrono::milliseconds(2000), &closed) ==
          "error 30\nrequest longer than 1024 bytes");
    CHECK(closed);
  }
  SECTION("a line longer than the limit, with LF") {
    RawClient c(path);
    c.send_bytes("stats " + std::string(1100, 'j') + "\n");
    bool closed = false;
    CHECK(c.read_all(std::chrono::milliseconds(2000), &closed) ==
          "error 30\nrequest longer than 1024 bytes");
    CHECK(closed);
  }
  SECTION("the longest request that fits is served") {
    RawClient c(path);
    c.send_bytes("stats " + std::string(1024 - 7, 'j') + "\n");
    bool closed = true;
    CHECK(c.read_all(std::chrono::milliseconds(300), &closed) ==
          "error 32\nstats takes no argument but json");
    CHECK_FALSE(closed);
  }
  // The server is still there for well-behaved clients.
  CHECK(ask(path, "status").ok);
}

TEST_CASE("control server: bounded clients and timeouts") {
  test::TempDir dir("sg_control");
  const std::string path = (dir.path / "ctl.sock").string();
  ControlServerOptions o;
  o.path = path;
  o.max_clients = 2;
  o.timeout = milliseconds(300);
  auto server = ControlServer::start(o, fake_commands());
  REQUIRE(server);

  RawClient idle1(path), idle2(path);
  REQUIRE(idle1.connected());
  REQUIRE(idle2.connected());
  idle1.send_bytes("sta");  // never finished
  // A third client is told the server is busy.
  auto busy = control::request(path, "status", seconds(2));
  REQUIRE(busy);
  CHECK(*busy == control::Reply::error("busy: too many control clients"));
  CHECK((*server)->stats().refused_busy >= 1);

  // The idle ones are closed after the timeout, and their slots are free again.
  bool closed1 = false, closed2 = false;
  CHECK(idle1.read_all(std::chrono::milliseconds(2000), &closed1).empty());
  CHECK(idle2.read_all(std::chrono::milliseconds(2000), &closed2).empty());
  CHECK(closed1);
  CHECK(closed2);
  CHECK((*server)->stats().timed_out >= 2);
  CHECK(ask(path, "status").ok);
}

TEST_CASE("control server: socket file mode, stale and live sockets, non-sockets") {
  test::TempDir dir("sg_control");
  const std::string path = (dir.path / "ctl.sock").string();

  SECTION("mode 0600") {
    ControlServerOptions o;
    o.path = path;
    o.mode = 0600;
    auto server = ControlServer::start(o, fake_commands());
    REQUIRE(server);
    CHECK((file_mode(path) & 0777) == 0600);
  }
  SECTION("modes giving others access are refused") {
    ControlServerOptions o;
    o.path = path;
    o.mode = 0666;
    auto server = ControlServer::start(o, fake_commands());
    REQUIRE_FALSE(server);
    CHECK_THAT(server.error(), Catch::Contains("0600 or 0660"));
  }
  SECTION("a stale socket (nobody listening) is replaced") {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    close(fd);
    auto refused = control::request(path, "status", seconds(1));
    REQUIRE_FALSE(refused);
    CHECK(refused.error().kind == control::ClientError::kRefused);

    ControlServerOptions o;
    o.path = path;
    auto server = ControlServer::start(o, fake_commands());
    REQUIRE(server);
    CHECK(ask(path, "status").ok);
  }
  SECTION("a live socket is left alone") {
    ControlServerOptions o;
    o.path = path;
    auto first = ControlServer::start(o, fake_commands());
    REQUIRE(first);
    auto second = ControlServer::start(o, fake_commands());
    REQUIRE_FALSE(second);
    CHECK_THAT(second.error(), Catch::Contains("another process answers on it"));
    CHECK(ask(path, "status").ok);  // the first still serves
  }
  SECTION("a file that is not a socket is never removed") {
    { std::ofstream(path) << "precious"; }
    ControlServerOptions o;
    o.path = path;
    auto server = ControlServer::start(o, fake_commands());
    REQUIRE_FALSE(server);
    CHECK_THAT(server.error(), Catch::Contains("exists and is not a socket"));
    std::ifstream in(path);
    std::string content;
    in >> content;
    CHECK(content == "precious");
  }
  SECTION("the socket's own directory is created; a path too long is refused") {
    ControlServerOptions o;
    o.path = (dir.path / "run" / "ctl.sock").string();
    auto server = ControlServer::start(o, fake_commands());
    REQUIRE(server);
    CHECK(ask(o.path, "status").ok);
    o.path = (dir.path / std::string(120, 'x')).string();
    auto too_long = ControlServer::start(o, fake_commands());
    REQUIRE_FALSE(too_long);
    CHECK_THAT(too_long.error(), Catch::Contains("path longer than"));
  }
  SECTION("stop() leaves a socket that another server created meanwhile") {
    ControlServerOptions o;
    o.path = path;
    auto first = ControlServer::start(o, fake_commands());
    REQUIRE(first);
    REQUIRE(unlink(path.c_str()) == 0);  // an operator removed it; a new daemon starts
    auto second = ControlServer::start(o, fake_commands());
    REQUIRE(second);
    (*first)->stop();
    CHECK(fs::exists(path));
    CHECK(ask(path, "status").ok);
    (*second)->stop();
    CHECK_FALSE(fs::exists(path));
  }
}

TEST_CASE("control client: no daemon, and a daemon that says nothing useful") {
  test::TempDir dir("sg_control");
  const std::string path = (dir.path / "none.sock").string();
  auto missing = control::request(path, "status", seconds(1));
  REQUIRE_FALSE(missing);
  CHECK(missing.error().kind == control::ClientError::kNoSocket);

  // Something that accepts and answers another protocol.
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  REQUIRE(listen(fd, 4) == 0);
  std::thread peer([fd] {
    for (const char* answer :
         std::initializer_list<const char*>{"HTTP/1.1 400 Bad Request\r\n\r\n", "", nullptr}) {
      int c = accept(fd, nullptr, nullptr);
      if (c < 0) return;
      if (answer == nullptr) {
        // Silent: the client times out.
        char buf[64];
        (void)!recv(c, buf, sizeof(buf), 0);
        std::this_thread::sleep_for(std::chrono::milliseconds(700));
      } else {
        char buf[64];
        (void)!recv(c, buf, sizeof(buf), 0);
        if (*answer != '\0') (void)!send(c, answer, std::strlen(answer), MSG_NOSIGNAL);
      }
      close(c);
    }
  });
  auto wrong = control::request(path, "status", seconds(2));
  REQUIRE_FALSE(wrong);
  CHECK(wrong.error().kind == control::ClientError::kProtocol);
  auto closed = control::request(path, "status", seconds(2));
  REQUIRE_FALSE(closed);
  CHECK(closed.error().kind == control::ClientError::kClosed);
  auto slow = control::request(path, "status", milliseconds(300));
  REQUIRE_FALSE(slow);
  CHECK(slow.error().kind == control::ClientError::kTimeout);
  peer.join();
  close(fd);
}

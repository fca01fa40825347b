// The sd_notify protocol (src/control/sd_notify.hpp) against a real datagram socket standing in
// for systemd's: a path socket in a temporary directory and an abstract one.
#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>

#include "control/sd_notify.hpp"
#include "support/temp_dir.hpp"

using namespace sg;
using namespace sg::control;
namespace fs = std::filesystem;

namespace {

// What systemd does: a bound SOCK_DGRAM socket that reads one datagram per message.
struct Listener {
  int fd = -1;
  std::string name;  // as NOTIFY_SOCKET would say it

  explicit Listener(const std::string& socket_name) : name(socket_name) {
    fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path, name.data(), name.size());
    socklen_t len = offsetof(sockaddr_un, sun_path) + name.size();
    if (name[0] == '@') {
      a.sun_path[0] = '\0';
    } else {
      len += 1;
    }
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), len) == 0);
  }
  ~Listener() { ::close(fd); }

  // The next datagram, or "(nothing)" after a short wait.
  std::string receive() const {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 1000) != 1) return "(nothing)";
    char buffer[4096];
    ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    REQUIRE(n >= 0);
    return std::string(buffer, static_cast<size_t>(n));
  }
  bool empty() const {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 0) == 0;
  }
};

std::map<std::string, std::string> g_env;
const char* fake_getenv(const char* name) {
  auto it = g_env.find(name);
  return it == g_env.end() ? nullptr : it->second.c_str();
}

}  // namespace

TEST_CASE("sd_notify: each message is one datagram on a path socket", "[sd_notify]") {
  test::TempDir dir("sg_notify");
  Listener systemd((dir.path / "notify").string());
  SystemdNotifier n(systemd.name, std::nullopt);
  REQUIRE(n.enabled());

  auto sent = n.ready("inspecting queues 0-1, profile modern");
  REQUIRE(sent);
  CHECK(*sent);
  CHECK(systemd.receive() == "READY=1\nSTATUS=inspecting queues 0-1, profile modern");
  REQUIRE(n.status("2 workers\nreload failed"));
  CHECK(systemd.receive() == "STATUS=2 workers reload failed");
  REQUIRE(n.watchdog());
  CHECK(systemd.receive() == "WATCHDOG=1");
  REQUIRE(n.reloading());
  CHECK(systemd.receive() == "RELOADING=1");
  REQUIRE(n.stopping());
  CHECK(systemd.receive() == "STOPPING=1");
  CHECK(systemd.empty());
}

TEST_CASE("sd_notify: abstract socket names start with @", "[sd_notify]") {
  Listener systemd("@sg_notify_test." + std::to_string(::getpid()));
  SystemdNotifier n(systemd.name, std::nullopt);
  REQUIRE(n.ready("up"));
  CHECK(systemd.receive() == "READY=1\nSTATUS=up");
}

TEST_CASE("sd_notify: without NOTIFY_SOCKET nothing is sent and nothing fails", "[sd_notify]") {
  g_env.clear();
  SystemdNotifier n = SystemdNotifier::from_environment(fake_getenv, 4242);
  CHECK_FALSE(n.enabled());
  auto r = n.ready("up");
  REQUIRE(r);
  CHECK_FALSE(*r);
  REQUIRE(n.watchdog());
  CHECK_FALSE(n.watchdog_interval());

  SystemdNotifier d;
  REQUIRE(d.stopping());
  CHECK_FALSE(*d.stopping());
}

TEST_CASE("sd_notify: a socket that is not there, or a bad name, is an error", "[sd_notify]") {
  test::TempDir dir("sg_notify");
  SECTION("no listener") {
    SystemdNotifier n((dir.path / "gone").string(), std::nullopt);
    auto r = n.ready("up");
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error(), Catch::Contains("gone") && Catch::Contains("No such file"));
  }
  SECTION("neither a path nor abstract") {
    SystemdNotifier n("vsock:2:1234", std::nullopt);
    auto r = n.watchdog();
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error(), Catch::Contains("neither a path nor an abstract socket"));
  }
  SECTION("too long for sun_path") {
    SystemdNotifier n("/" + std::string(200, 'x'), std::nullopt);
    auto r = n.watchdog();
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error(), Catch::Contains("too long"));
  }
}

TEST_CASE("sd_notify: the environment gives the socket and the watchdog", "[sd_notify]") {
  test::TempDir dir("sg_notify");
  Listener systemd((dir.path / "notify").string());
  g_env = {{"NOTIFY_SOCKET", systemd.name}, {"WATCHDOG_USEC", "30000000"}};

  SECTION("WATCHDOG_USEC without WATCHDOG_PID: ours") {
    SystemdNotifier n = SystemdNotifier::from_environment(fake_getenv, 4242);
    REQUIRE(n.enabled());
    REQUIRE(n.watchdog_timeout());
    CHECK(*n.watchdog_timeout() == seconds(30));
    REQUIRE(n.watchdog_interval());
    CHECK(*n.watchdog_interval() == seconds(15));
    REQUIRE(n.watchdog());
    CHECK(systemd.receive() == "WATCHDOG=1");
  }
  SECTION("WATCHDOG_PID is this process") {
    g_env["WATCHDOG_PID"] = "4242";
    SystemdNotifier n = SystemdNotifier::from_environment(fake_getenv, 4242);
    REQUIRE(n.watchdog_interval());
    CHECK(*n.watchdog_interval() == seconds(15));
  }
  SECTION("WATCHDOG_PID names another process: not ours") {
    g_env["WATCHDOG_PID"] = "1";
    SystemdNotifier n = SystemdNotifier::from_environment(fake_getenv, 4242);
    CHECK(n.enabled());
    CHECK_FALSE(n.watchdog_interval());
  }
  SECTION("WATCHDOG_USEC that is not a number, or 0") {
    auto bad = GENERATE(as<std::string>{}, "", "0", "30s", "-5", "12 ");
    g_env["WATCHDOG_USEC"] = bad;
    SystemdNotifier n = SystemdNotifier::from_environment(fake_getenv, 4242);
    CHECK_FALSE(n.watchdog_interval());
  }
}

TEST_CASE("sd_notify: from the real environment", "[sd_notify]") {
  test::TempDir dir("sg_notify");
  Listener systemd((dir.path / "notify").string());
  ::setenv("NOTIFY_SOCKET", systemd.name.c_str(), 1);
  ::setenv("WATCHDOG_USEC", "2000000", 1);
  ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
  SystemdNotifier n = SystemdNotifier::from_environment();
  ::unsetenv("NOTIFY_SOCKET");
  ::unsetenv("WATCHDOG_USEC");
  ::unsetenv("WATCHDOG_PID");
  REQUIRE(n.watchdog_interval());
  CHECK(*n.watchdog_interval() == seconds(1));
  REQUIRE(n.stopping());
  CHECK(systemd.receive() == "STOPPING=1");
}

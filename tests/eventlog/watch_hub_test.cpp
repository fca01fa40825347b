// The watch hub (src/eventlog/watch_hub.hpp) over real sockets: filtered records reach the
// watcher, a watcher that never reads costs the publisher nothing but drops (counted, then
// announced), and a watcher that goes away is forgotten.
#include "eventlog/watch_hub.hpp"

#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "policy/policy_set.hpp"

using namespace sg;
using namespace sg::eventlog;
using Clock = std::chrono::steady_clock;

namespace {

core::Decision masked(const char* client, const char* subject) {
  core::Decision d;
  d.event = policy::Event::kCommandMasked;
  d.action = "mask";
  d.client = policy::parse_subnet(client)->address;
  d.server = policy::parse_subnet("198.18.2.2")->address;
  d.client_port = 40000;
  d.server_port = 25;
  d.subject = subject;
  return d;
}

// What arrives on `fd` until `until` is in it or 5 s pass.
std::string read_until(int fd, const std::string& until) {
  std::string got;
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (got.find(until) == std::string::npos && Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

bool wait_for(const std::function<bool()>& ok) {
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (!ok()) {
    if (Clock::now() > deadline) return false;
    ::usleep(10'000);
  }
  return true;
}

struct Pair {
  int hub_end = -1, watcher_end = -1;
  Pair() {
    int sv[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    hub_end = sv[0];
    watcher_end = sv[1];
  }
  ~Pair() {
    if (watcher_end >= 0) ::close(watcher_end);
  }
};

}  // namespace

TEST_CASE("watch hub: nobody watching, nothing is formatted or counted") {
  auto hub = WatchHub::start();
  REQUIRE(hub);
  CHECK_FALSE((*hub)->watched().load());
  (*hub)->publish(masked("198.18.1.2", "VRFY"));
  CHECK((*hub)->get(WatchCounter::watch_records) == 0);
  CHECK((*hub)->get(WatchCounter::watch_dropped) == 0);
}

TEST_CASE("watch hub: the filter decides what a watcher reads") {
  auto started = WatchHub::start();
  REQUIRE(started);
  WatchHub& hub = **started;
  Pair p;
  REQUIRE(hub.attach(p.hub_end, *parse_watch_filter("client=198.18.1.0/24")));
  CHECK(hub.watched().load());
  CHECK(hub.watchers() == 1);
  hub.publish(masked("198.18.3.3", "OTHER"));  // not this watcher's
  hub.publish(masked("198.18.1.2", "VRFY"));
  const std::string got = read_until(p.watcher_end, "VRFY");
  CHECK_THAT(got, Catch::Contains("198.18.1.2:40000 -> 198.18.2.2:25 command_masked action=mask "
                                  "dir=c2s subject=\"VRFY\""));
  CHECK_THAT(got, !Catch::Contains("OTHER"));
  CHECK(hub.get(WatchCounter::watch_records) == 1);
  CHECK(hub.get(WatchCounter::watch_attached) == 1);

  // The watcher closes: the hub forgets it and stops formatting.
  ::close(p.watcher_end);
  p.watcher_end = -1;
  CHECK(wait_for([&] { return hub.watchers() == 0; }));
  CHECK_FALSE(hub.watched().load());
}

TEST_CASE("watch hub: a watcher that never reads loses records, counted, and is told later") {
  auto started = WatchHub::start();
  REQUIRE(started);
  WatchHub& hub = **started;
  Pair p;
  REQUIRE(hub.attach(p.hub_end, *parse_watch_filter("queue=16")));
  // 20,000 records of ~150 bytes: far beyond the socket buffer and the queue. Publishing never
  // waits for the watcher, so all of it takes well under the time one blocked write would.
  const auto started_at = Clock::now();
  constexpr int kRecords = 20000;
  for (int i = 0; i < kRecords; ++i) hub.publish(masked("198.18.1.2", "VRFY"));
  const auto took = Clock::now() - started_at;
  CHECK(took < std::chrono::seconds(2));
  const uint64_t dropped = hub.get(WatchCounter::watch_dropped);
  const uint64_t queued = hub.get(WatchCounter::watch_records);
  CHECK(dropped > 0);
  CHECK(queued + dropped == kRecords);

  // It reads at last: the records queued before the loss, then "dropped N" with the loss, then
  // what comes next.
  // (The hub drained some while the records were published: the loss may come in pieces.)
  std::string got;
  uint64_t announced = 0;
  for (int round = 0; round < 100 && announced < dropped; ++round) {
    got += read_until(p.watcher_end, "\n");
    announced = 0;
    for (size_t pos = 0; (pos = got.find(" dropped ", pos)) != std::string::npos; ++pos)
      announced += std::stoull(got.substr(pos + 9));
  }
  CHECK(announced == dropped);
  hub.publish(masked("198.18.1.2", "LAST"));
  got += read_until(p.watcher_end, "LAST");
  CHECK_THAT(got, Catch::Contains("subject=\"LAST\""));
  CHECK(got.find(" dropped ") < got.find("LAST"));
  // Every record the hub did not drop arrived.
  size_t lines = 0;
  for (size_t pos = 0; (pos = got.find("command_masked", pos)) != std::string::npos; ++pos) ++lines;
  CHECK(lines == hub.get(WatchCounter::watch_records));
}

TEST_CASE("watch hub: at most kMaxWatchers, the next is refused and closed") {
  auto started = WatchHub::start();
  REQUIRE(started);
  WatchHub& hub = **started;
  std::vector<std::unique_ptr<Pair>> pairs;
  for (size_t i = 0; i < WatchHub::kMaxWatchers; ++i) {
    pairs.push_back(std::make_unique<Pair>());
    CHECK(hub.attach(pairs.back()->hub_end, WatchFilter{}));
  }
  Pair extra;
  CHECK_FALSE(hub.attach(extra.hub_end, WatchFilter{}));
  CHECK(hub.get(WatchCounter::watch_refused) == 1);
  char c;
  CHECK(::recv(extra.watcher_end, &c, 1, 0) == 0);  // closed
  hub.stop();
  for (auto& p : pairs) CHECK(::recv(p->watcher_end, &c, 1, 0) == 0);
}

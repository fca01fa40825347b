// The decision log (src/eventlog/event_log.hpp): line format, escaping, rate limit, suppression
// summaries, thread safety, and the event table of docs/operations.md against policy/events.hpp.
#include <catch2/catch.hpp>

#include <syslog.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "eventlog/decision_fixture.hpp"
#include "eventlog/event_log.hpp"
#include "policy/policy_set.hpp"

using namespace sg;
using namespace sg::eventlog;
using policy::Event;

namespace {

using test::decision;
using test::ip;

struct Captured {
  std::mutex mutex;
  std::vector<std::pair<int, std::string>> lines;
  LogSink sink() {
    return [this](int priority, std::string_view line) {
      std::lock_guard lock(mutex);
      lines.emplace_back(priority, std::string(line));
    };
  }
};

const Timestamp t0 = Timestamp{} + seconds(1000);

}  // namespace

TEST_CASE("event log: one key=value line per decision, fields in a fixed order") {
  core::Decision d = decision(Event::kCommandMasked, "mask", "VRFY", "601 > 512");
  CHECK(format_decision(d) ==
        "event=command_masked id=1102 asa=108004 action=mask client=198.18.1.1:40000 "
        "server=198.18.2.1:25 dir=c2s subject=\"VRFY\" detail=\"601 > 512\"");

  core::Decision v6 = decision(Event::kBannerMasked, "mask", "");
  v6.client = ip("2001:db8:1::10");
  v6.server = ip("2001:db8:2::25");
  v6.dir = smtp::Dir::kServerToClient;
  CHECK(format_decision(v6) ==
        "event=banner_masked id=1001 asa=- action=mask client=[2001:db8:1::10]:40000 "
        "server=[2001:db8:2::25]:25 dir=s2c subject=\"\" detail=\"\"");

  core::Decision unknown = decision(Event::kCount, "", "x");
  CHECK(format_decision(unknown).starts_with("event=unknown id=0 asa=- action=- client="));
}

TEST_CASE("event log: hostile subjects are escaped and capped") {
  SECTION("quotes, backslashes, control and high bytes") {
    std::string subject = "A\"B\\C";
    subject += '\r';
    subject += '\n';
    subject += '\0';
    subject +=
        "\xff"
        "D";
    core::Decision d = decision(Event::kSpecialChars, "reset", subject);
    CHECK_THAT(format_decision(d),
               Catch::Contains(R"(subject="A\"B\\C\x0d\x0a\x00\xffD" detail="")"));
  }
  SECTION("a value over its cap is cut and ends in ...") {
    core::Decision d = decision(Event::kCommandLineLength, "drop-connection", std::string(200, 'A'),
                                std::string(1000, '\x01'));
    const std::string line = format_decision(d);
    CHECK_THAT(line, Catch::Contains("subject=\"" + std::string(kMaxLoggedSubject, 'A') + "...\""));
    std::string detail;
    for (size_t i = 0; i < kMaxLoggedDetail; ++i) detail += "\\x01";
    CHECK_THAT(line, Catch::EndsWith("detail=\"" + detail + "...\""));
    CHECK(line.size() < kMaxLogLine);
  }
  SECTION("every emitted byte is printable ASCII") {
    std::string all;
    for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
    core::Decision d = decision(Event::kSenderPattern, "log", all, all);
    for (char c : format_decision(d)) {
      CHECK(static_cast<unsigned char>(c) >= 0x20);
      CHECK(static_cast<unsigned char>(c) < 0x7f);
    }
  }
}

TEST_CASE("event log: warnings for decisions that end a connection, notices otherwise") {
  CHECK(decision_priority(decision(Event::kCommandMasked, "mask", "VRFY")) == LOG_NOTICE);
  CHECK(decision_priority(decision(Event::kKeywordStripped, "strip", "AUTH")) == LOG_NOTICE);
  // A command, a check or an exception ends the connection when its decider says so (from the
  // action's enum); neither the event nor the action's text decides the level.
  core::Decision reset = decision(Event::kCommandReset, "reset", "EXPN");
  CHECK(decision_priority(reset) == LOG_NOTICE);
  reset.ends_connection = true;
  CHECK(decision_priority(reset) == LOG_WARNING);
  core::Decision recipients = decision(Event::kRecipients, "drop-connection", "");
  recipients.ends_connection = true;
  CHECK(decision_priority(recipients) == LOG_WARNING);
  core::Decision sender = decision(Event::kSenderLength, "reset", "");
  CHECK(decision_priority(sender) == LOG_NOTICE);
  sender.ends_connection = true;
  CHECK(decision_priority(sender) == LOG_WARNING);
  // Other bytes for inspected sequence numbers: a warning although only the packet was dropped.
  CHECK(decision_priority(decision(Event::kOverlapConflict, "drop", "")) == LOG_WARNING);
}

TEST_CASE("token bucket: burst at once, then the rate; no credit from an earlier clock") {
  TokenBucket b(10, 3);
  CHECK(b.take(t0));
  CHECK(b.take(t0));
  CHECK(b.take(t0));
  CHECK_FALSE(b.take(t0));
  CHECK_FALSE(b.take(t0 + milliseconds(99)));
  CHECK(b.take(t0 + milliseconds(100)));  // 0.1 s x 10/s = 1 token (the 99 ms carried over)
  CHECK_FALSE(b.take(t0 + milliseconds(100)));
  CHECK_FALSE(b.take(t0 - seconds(5)));  // another worker's older reading adds nothing
  CHECK(b.take(t0 + milliseconds(200)));
  // A long quiet spell refills to the burst, no more (and does not overflow).
  const Timestamp later = t0 + std::chrono::hours(24 * 365 * 100);
  int taken = 0;
  while (b.take(later)) ++taken;
  CHECK(taken == 3);

  TokenBucket unlimited(0, 0);
  for (int i = 0; i < 10000; ++i) REQUIRE(unlimited.take(t0));
}

TEST_CASE("event log: the rate limit suppresses, counts per event, and summarises") {
  Captured cap;
  EventLog log(EventLogOptions{false, false, 2, 2}, cap.sink());
  log.log(decision(Event::kCommandMasked, "mask", "VRFY"), t0);
  log.log(decision(Event::kCommandMasked, "mask", "EXPN"), t0);
  log.log(decision(Event::kCommandMasked, "mask", "TURN"), t0);  // suppressed from here
  log.log(decision(Event::kKeywordMasked, "mask", "STARTTLS"), t0);
  log.log(decision(Event::kCommandMasked, "mask", "ATRN"), t0 + milliseconds(400));
  REQUIRE(cap.lines.size() == 2);
  CHECK(log.suppressed() == 3);
  CHECK(log.lines() == 2);

  // The next line that passes is preceded by the summary of what was suppressed.
  core::Decision reset = decision(Event::kCommandReset, "reset", "EXPN");
  reset.ends_connection = true;  // as the inspector decides it
  log.log(reset, t0 + milliseconds(500));
  REQUIRE(cap.lines.size() == 4);
  CHECK(cap.lines[2].first == LOG_WARNING);
  CHECK(cap.lines[2].second == "event=log_suppressed lines=3 command_masked=2 keyword_masked=1");
  CHECK_THAT(cap.lines[3].second, Catch::StartsWith("event=command_reset id=1105 "));
  CHECK(cap.lines[3].first == LOG_WARNING);
  CHECK(log.lines() == 4);

  // Every decision is counted, logged or not.
  CHECK(log.events().get(Event::kCommandMasked) == 4);
  CHECK(log.events().get(Event::kKeywordMasked) == 1);
  CHECK(log.events().get(Event::kCommandReset) == 1);
  CHECK(log.events().get(Event::kBannerMasked) == 0);

  // A flood that stops gets its summary from flush(); flush with nothing pending says nothing.
  log.log(decision(Event::kCommandMasked, "mask", "VRFY"), t0 + milliseconds(500));
  log.log(decision(Event::kCommandMasked, "mask", "VRFY"), t0 + milliseconds(500));
  REQUIRE(cap.lines.size() == 4);
  log.flush(t0 + milliseconds(600));
  REQUIRE(cap.lines.size() == 5);
  CHECK(cap.lines[4].second == "event=log_suppressed lines=2 command_masked=2");
  log.flush(t0 + milliseconds(700));
  CHECK(cap.lines.size() == 5);

  // Within a second of the last summary (t0+600), a line that passes comes without one; the
  // counts wait for the next.
  log.log(decision(Event::kCommandMasked, "mask", "VRFY"), t0 + milliseconds(1100));  // 1.2 tokens
  log.log(decision(Event::kBannerMasked, "mask", ""), t0 + milliseconds(1200));  // 0.4: suppressed
  log.log(decision(Event::kCommandMasked, "mask", "EXPN"), t0 + milliseconds(1500));  // 1.0
  REQUIRE(cap.lines.size() == 7);
  CHECK_THAT(cap.lines[5].second, Catch::Contains("subject=\"VRFY\""));
  CHECK_THAT(cap.lines[6].second, Catch::Contains("subject=\"EXPN\""));
  log.log(decision(Event::kCommandMasked, "mask", "TURN"), t0 + milliseconds(2100));
  REQUIRE(cap.lines.size() == 9);
  CHECK(cap.lines[7].second == "event=log_suppressed lines=1 banner_masked=1");
  CHECK_THAT(cap.lines[8].second, Catch::Contains("subject=\"TURN\""));
}

TEST_CASE("event log: a sustained flood logs at the rate, plus one summary per flush") {
  Captured cap;
  EventLog log(EventLogOptions{false, false, 10, 10}, cap.sink());
  // 1000 decisions a second for 10 seconds, flush once a second.
  for (int ms = 0; ms < 10'000; ++ms) {
    log.log(decision(Event::kCommandMasked, "mask", "VRFY"), t0 + milliseconds(ms));
    if (ms % 1000 == 999) log.flush(t0 + milliseconds(ms));
  }
  CHECK(log.events().get(Event::kCommandMasked) == 10'000);
  uint64_t summarised = 0, summaries = 0, decision_lines = 0;
  std::regex summary(R"(event=log_suppressed lines=(\d+) command_masked=(\d+))");
  for (const auto& [prio, line] : cap.lines) {
    std::smatch m;
    if (std::regex_match(line, m, summary)) {
      CHECK(m[1] == m[2]);
      summarised += std::stoull(m[1]);
      ++summaries;
    } else {
      ++decision_lines;
    }
  }
  // The burst of 10 at t0, then 10 a second for 9.999 s.
  CHECK(decision_lines == 109);
  CHECK(decision_lines + log.suppressed() == 10'000);
  CHECK(summarised == log.suppressed());
  CHECK(summaries <= 20);  // at most one a second from log(), one from each flush
  CHECK(log.lines() == decision_lines + summaries);
}

TEST_CASE("event log: workers log concurrently; nothing lost or torn") {
  Captured cap;
  EventLog log(EventLogOptions{false, false, 0, 0}, cap.sink());
  constexpr int kThreads = 4, kEach = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        log.log(decision(t % 2 ? Event::kCommandMasked : Event::kKeywordMasked, "mask",
                         "T" + std::to_string(t) + "-" + std::to_string(i)),
                t0 + milliseconds(i));
      }
    });
  }
  for (auto& th : threads) th.join();
  REQUIRE(cap.lines.size() == kThreads * kEach);
  CHECK(log.events().get(Event::kCommandMasked) == kThreads * kEach / 2);
  CHECK(log.events().get(Event::kKeywordMasked) == kThreads * kEach / 2);
  std::set<std::string> subjects;
  std::regex whole(R"re(event=(command|keyword)_masked id=1[12]0[12] asa=108004 action=mask )re"
                   R"re(client=198\.18\.1\.1:40000 server=198\.18\.2\.1:25 dir=c2s )re"
                   R"re(subject="(T\d-\d+)" detail="")re");
  for (const auto& [prio, line] : cap.lines) {
    std::smatch m;
    REQUIRE(std::regex_match(line, m, whole));
    subjects.insert(m[2]);
  }
  CHECK(subjects.size() == kThreads * kEach);
}

TEST_CASE("event log: stderr lines carry the daemon's prefix, one write each") {
  char path[] = "/tmp/sg_event_log_XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  std::fflush(stderr);
  int saved = dup(STDERR_FILENO);
  REQUIRE(dup2(fd, STDERR_FILENO) == STDERR_FILENO);
  {
    EventLog log(EventLogOptions{false, true, 100, 0});
    log.log(decision(Event::kStarttls, "log", "STARTTLS"), t0);
  }
  dup2(saved, STDERR_FILENO);
  close(saved);
  close(fd);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::remove(path);
  CHECK(text.str() ==
        "smtpguardd: event=starttls id=1401 asa=108007 action=log client=198.18.1.1:40000 "
        "server=198.18.2.1:25 dir=c2s subject=\"STARTTLS\" detail=\"\"\n");
}

TEST_CASE("docs/operations.md: the event table lists exactly the events of policy/events.hpp") {
  const auto page =
      std::filesystem::path(__FILE__).parent_path() / ".." / ".." / "docs" / "operations.md";
  std::ifstream in(page);
  REQUIRE(in.good());
  // Rows of the table in "## Logging and statistics", by id: | id | `name` | ASA id | meaning |
  std::regex row(R"(^\| (\d{4}) \| `([a-z_]+)` \| (\d{6}|-) \| .+ \|$)");
  std::map<uint32_t, std::pair<std::string, uint32_t>> rows;
  uint32_t last_id = 0;
  bool in_section = false;
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("## ")) in_section = line == "## Logging and statistics";
    std::smatch m;
    if (in_section && std::regex_match(line, m, row)) {
      const uint32_t id = std::stoul(m[1]);
      INFO(line);
      CHECK(id > last_id);  // in order of id, each once
      last_id = id;
      rows[id] = {m[2], m[3] == "-" ? 0 : std::stoul(m[3])};
    }
  }
  CHECK(rows.size() == kEventCount);
  for (const policy::EventInfo& e : policy::kEventInfo) {
    INFO("event " << e.id << " " << e.name
                  << ": docs/operations.md, section Logging and statistics");
    REQUIRE(rows.count(e.id) == 1);
    CHECK(rows[e.id].first == e.name);
    CHECK(rows[e.id].second == e.asa_id);
  }
}

TEST_CASE("event log: capture_events puts its counts into a statistics snapshot") {
  EventLog log(EventLogOptions{false, false, 1, 1}, [](int, std::string_view) {});
  core::Decision d;
  d.event = Event::kKeywordStripped;
  d.action = "strip";
  const Timestamp t = Timestamp{} + seconds(5);
  log.log(d, t);
  log.log(d, t);  // over the rate: suppressed, still counted
  control::StatsSnapshot s;
  capture_events(log, s);
  CHECK(s.events[static_cast<size_t>(Event::kKeywordStripped)] == 2);
  CHECK(s.decisions() == 2);
  CHECK(s.log_lines == 1);
  CHECK(s.log_suppressed == 1);
}

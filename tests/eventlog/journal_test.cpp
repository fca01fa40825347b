// The decision log as native journal entries (src/eventlog/journal.hpp): the MESSAGE_ID of each
// event type, the fields of a decision and of a summary, escaping (no value may hold a newline),
// JOURNAL_STREAM against stderr, and EventLog sending to a real datagram socket, with syslog as
// the counted fallback when nothing takes the entry. The daemon against a real journald runs in
// tests/integration/journal_test.sh.
#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "eventlog/decision_fixture.hpp"
#include "eventlog/event_json.hpp"
#include "eventlog/event_log.hpp"
#include "eventlog/journal.hpp"
#include "support/temp_dir.hpp"

using namespace sg;
using namespace sg::eventlog;
using policy::Event;
using test::decision;

namespace {

// NAME=value lines into a map; fails the test on a line that is not one.
std::map<std::string, std::string> fields_of(std::string_view entry) {
  std::map<std::string, std::string> out;
  REQUIRE(!entry.empty());
  REQUIRE(entry.back() == '\n');
  size_t start = 0;
  while (start < entry.size()) {
    const size_t end = entry.find('\n', start);
    const std::string_view line = entry.substr(start, end - start);
    const size_t eq = line.find('=');
    INFO(line);
    REQUIRE(eq != std::string_view::npos);
    REQUIRE(eq > 0);
    const std::string name(line.substr(0, eq));
    for (char c : name) CHECK(((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'));
    CHECK(out.count(name) == 0);
    out[name] = std::string(line.substr(eq + 1));
    start = end + 1;
  }
  return out;
}

std::map<std::string, std::string> journal_fields(const core::Decision& d, int priority = 5) {
  JournalEntry e;
  format_journal_decision(d, format_decision(d), priority, e);
  return fields_of(e.view());
}

// A datagram socket bound at `path`, as journald's is.
struct Listener {
  int fd = -1;
  explicit Listener(const std::string& path) {
    fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    REQUIRE(path.size() < sizeof(a.sun_path));
    std::copy(path.begin(), path.end(), a.sun_path);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  }
  ~Listener() { ::close(fd); }
  std::string receive() {
    char buf[kMaxJournalEntry + 1];
    const ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    REQUIRE(n > 0);
    return std::string(buf, static_cast<size_t>(n));
  }
};

}  // namespace

TEST_CASE("message ids: the prefix and the event id, distinct per event type") {
  CHECK(message_id(1102) == "8d4c1f3a9e2b47d6b5a0000000001102");
  CHECK(message_id(0) == "8d4c1f3a9e2b47d6b5a0000000000000");
  std::set<std::string> ids;
  for (const policy::EventInfo& e : policy::kEventInfo) {
    const std::string id = message_id(e.id);
    CHECK(id.size() == 32);
    CHECK(id.find_first_not_of("0123456789abcdef") == std::string::npos);
    ids.insert(id);
  }
  CHECK(ids.size() == policy::kEventInfo.size());
  CHECK(ids.count(message_id(0)) == 0);  // the summary's id is no event's
}

TEST_CASE("journal entry of a decision: the line as MESSAGE and a field per fact") {
  core::Decision d = decision(Event::kCommandMasked, "mask", "VRFY", "not allowed");
  d.helo = "client.example.org";
  d.mail_from = "a@example.org";
  d.rcpt_count = 2;
  const auto f = journal_fields(d, 5);
  CHECK(f.at("MESSAGE") == format_decision(d));
  CHECK(f.at("MESSAGE_ID") == message_id(1102));
  CHECK(f.at("PRIORITY") == "5");
  CHECK(f.at("SYSLOG_FACILITY") == "2");
  CHECK(f.at("SYSLOG_IDENTIFIER") == "smtpguardd");
  CHECK(f.at("SMTPGUARD_EVENT") == "command_masked");
  CHECK(f.at("SMTPGUARD_EVENT_ID") == "1102");
  CHECK(f.at("SMTPGUARD_ASA_ID") == "108004");
  CHECK(f.at("SMTPGUARD_ACTION") == "mask");
  CHECK(f.at("SMTPGUARD_DIR") == "c2s");
  CHECK(f.at("SMTPGUARD_ENDS_CONNECTION") == "0");
  CHECK(f.at("SMTPGUARD_CLIENT") == "198.18.1.1:40000");
  CHECK(f.at("SMTPGUARD_SERVER") == "198.18.2.1:25");
  CHECK(f.at("SMTPGUARD_FLOW_ID") == std::to_string(flow_id(d)));
  CHECK(f.at("SMTPGUARD_SUBJECT") == "VRFY");
  CHECK(f.at("SMTPGUARD_DETAIL") == "not allowed");
  CHECK(f.at("SMTPGUARD_HELO") == "client.example.org");
  CHECK(f.at("SMTPGUARD_MAIL_FROM") == "a@example.org");
  CHECK(f.at("SMTPGUARD_RCPT_COUNT") == "2");
  CHECK(f.size() == 19);
}

TEST_CASE("journal entry: an event without an ASA id has no SMTPGUARD_ASA_ID; v6 endpoints") {
  core::Decision d = decision(Event::kFlowReset, "reset", "");
  d.client = test::ip("2001:db8:1::1");
  d.server = test::ip("2001:db8:2::2");
  d.dir = smtp::Dir::kServerToClient;
  d.ends_connection = true;
  const auto f = journal_fields(d, 4);
  CHECK(f.count("SMTPGUARD_ASA_ID") == 0);
  CHECK(f.at("PRIORITY") == "4");
  CHECK(f.at("SMTPGUARD_DIR") == "s2c");
  CHECK(f.at("SMTPGUARD_ENDS_CONNECTION") == "1");
  CHECK(f.at("SMTPGUARD_CLIENT") == "[2001:db8:1::1]:40000");
  CHECK(f.at("SMTPGUARD_SERVER") == "[2001:db8:2::2]:25");
}

TEST_CASE("journal entry: hostile bytes never make a field of their own") {
  // A peer's CR LF followed by what looks like a field must stay inside the value.
  const std::string hostile = "X\r\nMESSAGE_ID=00000000000000000000000000000000\nPRIORITY=0\x01";
  core::Decision d = decision(Event::kCommandMasked, "mask", hostile, hostile);
  d.helo = hostile;
  d.mail_from = std::string(500, '\n');
  const auto f = journal_fields(d);
  CHECK(f.at("MESSAGE_ID") == message_id(1102));
  CHECK(f.at("PRIORITY") == "5");
  CHECK(f.at("SMTPGUARD_SUBJECT") ==
        "X\\x0d\\x0aMESSAGE_ID=00000000000000000000000000000000\\x0aPRIORITY=0\\x01");
  CHECK(f.at("SMTPGUARD_HELO") == f.at("SMTPGUARD_SUBJECT"));
  // Cut at the subject's cap, then "...".
  CHECK(f.at("SMTPGUARD_MAIL_FROM").size() == kMaxLoggedSubject * 4 + 3);
  CHECK(f.at("SMTPGUARD_MAIL_FROM").ends_with("\\x0a..."));
}

TEST_CASE("journal entry of a rate-limit summary") {
  JournalEntry e;
  format_journal_suppressed("event=log_suppressed lines=3 command_masked=3", 4, e);
  const auto f = fields_of(e.view());
  CHECK(f.at("MESSAGE") == "event=log_suppressed lines=3 command_masked=3");
  CHECK(f.at("MESSAGE_ID") == message_id(0));
  CHECK(f.at("SMTPGUARD_EVENT") == "log_suppressed");
  CHECK(f.at("PRIORITY") == "4");
}

TEST_CASE("JOURNAL_STREAM must name the file on stderr") {
  struct stat st {};
  REQUIRE(::fstat(STDERR_FILENO, &st) == 0);
  const std::string mine = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  CHECK(journal_stream_is_stderr(mine.c_str()));
  CHECK_FALSE(journal_stream_is_stderr(nullptr));
  CHECK_FALSE(journal_stream_is_stderr(""));
  CHECK_FALSE(journal_stream_is_stderr(
      (std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino + 1)).c_str()));
  CHECK_FALSE(journal_stream_is_stderr((mine + "x").c_str()));
  CHECK_FALSE(journal_stream_is_stderr(std::to_string(st.st_ino).c_str()));
}

TEST_CASE("EventLog sends journal entries to the socket, and falls back to syslog, counted") {
  test::TempDir dir("sg_journal");
  const std::string path = (dir.path / "socket").string();
  EventLogOptions options;
  options.syslog = false;  // the fallback has nowhere to go here: only the count is checked
  options.stderr_lines = false;
  options.rate = 0;
  EventLog log(options);
  {
    Listener journald(path);
    auto socket = JournalSocket::open(path);
    REQUIRE(socket);
    log.attach_journal(std::move(*socket));
    CHECK(log.journal());
    const core::Decision d = decision(Event::kKeywordMasked, "mask", "STARTTLS");
    log.log(d, Timestamp{} + seconds(1));
    const auto f = fields_of(journald.receive());
    CHECK(f.at("MESSAGE_ID") == message_id(1201));
    CHECK(f.at("SMTPGUARD_SUBJECT") == "STARTTLS");
    CHECK(f.at("MESSAGE") == format_decision(d));
    CHECK(log.journal_fallbacks() == 0);
  }
  // journald gone: the entry is not taken, and counted.
  log.log(decision(Event::kKeywordMasked, "mask", "AUTH"), Timestamp{} + seconds(2));
  CHECK(log.journal_fallbacks() == 1);
  CHECK(log.lines() == 2);
}

TEST_CASE("JournalSocket::open: a clear error without journald") {
  test::TempDir dir("sg_journal");
  auto socket = JournalSocket::open((dir.path / "none").string());
  REQUIRE_FALSE(socket);
  CHECK(socket.error().find("connect to ") == 0);
  CHECK_FALSE(JournalSocket::open(std::string(200, 'x')));
}

// What a watcher reads (src/eventlog/watch_record.hpp): the decision line, the before/after of a
// changed line, escaping and the caps.
#include "eventlog/watch_record.hpp"

#include <catch2/catch.hpp>

#include <string>

#include "policy/policy_set.hpp"

using namespace sg;
using namespace sg::eventlog;
using namespace std::chrono;

namespace {

// 2026-12-07 23:10:04.512 UTC
const WatchTime kTime = WatchTime(sys_days(year(2026) / 12 / 7).time_since_epoch() + hours(23) +
                                  minutes(10) + seconds(4) + milliseconds(512));

core::Decision keyword_masked() {
  core::Decision d;
  d.event = policy::Event::kKeywordMasked;
  d.action = "mask";
  d.client = policy::parse_subnet("198.18.1.2")->address;
  d.server = policy::parse_subnet("198.18.2.2")->address;
  d.client_port = 40000;
  d.server_port = 25;
  d.dir = smtp::Dir::kServerToClient;
  d.subject = "CHUNKING";
  return d;
}

std::string escaped(std::string_view s, size_t cap) {
  std::string out;
  append_watch_escaped(out, s, cap);
  return out;
}

}  // namespace

TEST_CASE("watch record: a decision without an edit is one line") {
  core::Decision d = keyword_masked();
  CHECK(format_watch_record(d, kTime) ==
        "23:10:04.512 198.18.1.2:40000 -> 198.18.2.2:25 keyword_masked action=mask dir=s2c "
        "subject=\"CHUNKING\" detail=\"\"\n");
}

TEST_CASE("watch record: an edited line shows before and after") {
  core::Decision d = keyword_masked();
  d.edited = true;
  d.before = "250-CHUNKING\r\n";
  d.after = "250-XXXXXXXG\r\n";
  CHECK(format_watch_record(d, kTime) ==
        "23:10:04.512 198.18.1.2:40000 -> 198.18.2.2:25 keyword_masked action=mask dir=s2c "
        "subject=\"CHUNKING\" detail=\"\"\n"
        "  - 250-CHUNKING\\r\\n\n"
        "  + 250-XXXXXXXG\\r\\n\n");
}

TEST_CASE("watch record: a removed line has an empty after") {
  core::Decision d = keyword_masked();
  d.event = policy::Event::kKeywordStripped;
  d.action = "strip";
  d.edited = true;
  d.before = "250-CHUNKING\r\n";
  CHECK_THAT(format_watch_record(d, kTime), Catch::EndsWith("  - 250-CHUNKING\\r\\n\n  +\n"));
}

TEST_CASE("watch record: resets say they end the connection; IPv6 endpoints are bracketed") {
  core::Decision d;
  d.event = policy::Event::kCommandReset;
  d.action = "reset";
  d.client = policy::parse_subnet("2001:db8:1::2")->address;
  d.server = policy::parse_subnet("2001:db8:2::2")->address;
  d.client_port = 40000;
  d.server_port = 25;
  d.subject = "ETRN";
  d.detail = "a \"quoted\" detail";
  d.ends_connection = true;
  CHECK(format_watch_record(d, kTime) ==
        "23:10:04.512 [2001:db8:1::2]:40000 -> [2001:db8:2::2]:25 command_reset action=reset "
        "dir=c2s subject=\"ETRN\" detail=\"a \\\"quoted\\\" detail\" ends-connection\n");
}

TEST_CASE("watch record: escaping") {
  struct Row {
    std::string in;
    std::string out;
  };
  const Row row = GENERATE(values<Row>({
      {"MAIL FROM:<a@b>\r\n", "MAIL FROM:<a@b>\\r\\n"},
      {std::string("A\0B", 3), "A\\x00B"},
      {"tab\there", "tab\\there"},
      {"back\\slash", "back\\\\slash"},
      {"\x7f\x80\xff", "\\x7f\\x80\\xff"},
      {"\x1b[31m", "\\x1b[31m"},  // no terminal escape reaches the watcher's screen
      {"", ""},
  }));
  CHECK(escaped(row.in, kWatchLineCap) == row.out);
}

TEST_CASE("watch record: lines are capped, and a cut says so") {
  const std::string long_line = std::string(300, 'X') + "\r\n";
  const std::string shown = escaped(long_line, kWatchLineCap);
  CHECK(shown == std::string(kWatchLineCap, 'X') + "...");
  CHECK(escaped("ABCD", 4) == "ABCD");
  CHECK(escaped("ABCDE", 4) == "ABCD...");

  core::Decision d = keyword_masked();
  d.subject = std::string(100, 'S');
  d.edited = true;
  d.before = long_line;
  d.after = long_line;
  const std::string r = format_watch_record(d, kTime);
  CHECK_THAT(r, Catch::Contains("subject=\"" + std::string(kWatchSubjectCap, 'S') + "...\""));
  CHECK_THAT(r, Catch::Contains("  - " + std::string(kWatchLineCap, 'X') + "...\n"));
}

TEST_CASE("watch record: dropped records") {
  CHECK(format_watch_dropped(17, kTime) == "23:10:04.512 dropped 17\n");
}

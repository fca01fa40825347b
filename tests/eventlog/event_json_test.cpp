// The decision log as JSON lines (src/eventlog/event_json.hpp): the line of a decision and of a
// summary, escaping of any byte, the flow id, the file (append, reopen after a move) and the
// EventLog writing both forms under one rate limit. The JSON Schema check runs in
// tests/integration/event_json_test.sh (python3-jsonschema) on lines a real daemon wrote.
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "eventlog/decision_fixture.hpp"
#include "eventlog/event_json.hpp"
#include "eventlog/event_log.hpp"
#include "policy/policy_set.hpp"
#include "support/temp_dir.hpp"

using namespace sg;
using namespace sg::eventlog;
using policy::Event;

namespace {

using test::decision;
using test::ip;

// 2026-12-07T20:15:01.123456Z
const WallClock::time_point kWhen =
    WallClock::time_point{} + std::chrono::seconds(1796674501) + std::chrono::microseconds(123456);

std::string json_of(const core::Decision& d) {
  JsonLine j;
  format_json_decision(d, kWhen, j);
  return std::string(j.view());
}

std::vector<std::string> lines_of(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

}  // namespace

TEST_CASE("event json: one decision, every field in its place") {
  core::Decision d = decision(Event::kCommandMasked, "mask", "VRFY");
  d.helo = "client.example.org";
  d.mail_from = "a@example.org";
  d.rcpt_count = 2;
  const std::string id = std::to_string(flow_id(d));
  CHECK(json_of(d) ==
        "{\"timestamp\":\"2026-12-07T20:15:01.123456Z\",\"flow_id\":" + id +
            ",\"event_type\":\"smtpguard\",\"src_ip\":\"198.18.1.1\",\"src_port\":40000,"
            "\"dest_ip\":\"198.18.2.1\",\"dest_port\":25,\"proto\":\"TCP\",\"smtp\":{"
            "\"helo\":\"client.example.org\",\"mail_from\":\"a@example.org\",\"rcpt_count\":2},"
            "\"smtpguard\":{"
            "\"event\":\"command_masked\",\"id\":1102,\"asa\":108004,\"action\":\"mask\","
            "\"dir\":\"c2s\",\"ends_connection\":false,\"subject\":\"VRFY\",\"detail\":\"\"}}");
  SECTION("a server-side decision: src is the server; no ASA id is null; IPv6 without brackets") {
    core::Decision s = decision(Event::kBannerMasked, "mask", "");
    s.dir = smtp::Dir::kServerToClient;
    s.client = ip("2001:db8:1::1");
    s.server = ip("2001:db8:2::1");
    s.ends_connection = true;
    const std::string j = json_of(s);
    CHECK(j.find("\"src_ip\":\"2001:db8:2::1\",\"src_port\":25,\"dest_ip\":\"2001:db8:1::1\","
                 "\"dest_port\":40000") != std::string::npos);
    CHECK(j.find("\"asa\":null") != std::string::npos);
    CHECK(j.find("\"dir\":\"s2c\",\"ends_connection\":true") != std::string::npos);
  }
}

TEST_CASE("event json: any byte a peer sends comes out as ASCII JSON, cut at the cap") {
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  JsonLine j;
  j.string(all.substr(0, 40));
  const std::string s(j.view());
  CHECK(s.substr(0, 13) == "\"\\u0000\\u0001");
  CHECK(s.find("\\u001f !\\\"#$%&'") != std::string::npos);  // 0x1f, then ' ', '!', '"' escaped
  for (char c : s) {
    CHECK(static_cast<unsigned char>(c) >= 0x20);
    CHECK(static_cast<unsigned char>(c) < 0x7f);
  }
  JsonLine high;
  high.string("\x7f\x80\xff\\");
  CHECK(high.view() == "\"\\u007f\\u0080\\u00ff\\\\\"");
  JsonLine cut;
  cut.string("abcdef", 3);
  CHECK(cut.view() == "\"abc...\"");
  // The longest decision line, every subject and detail byte escaped, is whole.
  const std::string j2 = json_of(
      decision(Event::kSenderPattern, "log", std::string(500, '\x01'), std::string(1000, '\x02')));
  CHECK(j2.size() < kMaxJsonLine);
  CHECK(j2.substr(j2.size() - 2) == "}}");
}

TEST_CASE("event json: one flow id per connection, another for another connection") {
  core::Decision a = decision(Event::kCommandMasked, "mask", "VRFY");
  core::Decision b = decision(Event::kKeywordMasked, "mask", "STARTTLS");
  b.dir = smtp::Dir::kServerToClient;
  CHECK(flow_id(a) == flow_id(b));
  core::Decision other = a;
  other.client_port = 40001;
  CHECK(flow_id(other) != flow_id(a));
  CHECK(flow_id(a) < (uint64_t{1} << 52));
}

TEST_CASE("event json: the suppression summary") {
  std::array<uint64_t, policy::kEventCount> by{};
  by[static_cast<size_t>(Event::kCommandMasked)] = 30;
  by[static_cast<size_t>(Event::kKeywordMasked)] = 7;
  JsonLine j;
  format_json_suppressed(37, by, kWhen, j);
  CHECK(j.view() ==
        "{\"timestamp\":\"2026-12-07T20:15:01.123456Z\",\"event_type\":\"smtpguard_suppressed\","
        "\"smtpguard_suppressed\":{\"lines\":37,\"by_event\":{\"command_masked\":30,"
        "\"keyword_masked\":7}}}");
}

TEST_CASE("event json: the file is appended to, and reopened after a move") {
  test::TempDir dir("sg_event_json");
  const auto path = dir.path / "events.json";
  { std::ofstream(path) << "{\"earlier\":1}\n"; }
  auto file = JsonEventFile::open(path.string());
  REQUIRE(file);
  (*file)->write("{\"a\":1}");
  std::filesystem::rename(path, dir.path / "events.json.1");
  (*file)->write("{\"b\":2}");  // still the moved file
  REQUIRE((*file)->reopen());
  (*file)->write("{\"c\":3}");
  CHECK(lines_of(dir.path / "events.json.1") ==
        std::vector<std::string>{"{\"earlier\":1}", "{\"a\":1}", "{\"b\":2}"});
  CHECK(lines_of(path) == std::vector<std::string>{"{\"c\":3}"});
  CHECK((*file)->write_errors() == 0);

  SECTION("a path that cannot be opened is a clear error") {
    auto bad = JsonEventFile::open((dir.path / "missing" / "events.json").string());
    REQUIRE_FALSE(bad);
    CHECK(bad.error().find("event-json") != std::string::npos);
    CHECK(bad.error().find("No such file or directory") != std::string::npos);
  }
  SECTION("reopen failing keeps the old file") {
    std::filesystem::remove_all(dir.path);
    CHECK_FALSE((*file)->reopen());
    (*file)->write("{\"d\":4}");  // to the open (unlinked) file: no error
    CHECK((*file)->write_errors() == 0);
  }
}

TEST_CASE("event json: the event log writes both forms under one rate limit") {
  test::TempDir dir("sg_event_json_log");
  const auto path = dir.path / "events.json";
  std::vector<std::string> kv;
  EventLog log(EventLogOptions{false, false, 2, 2},
               [&kv](int, std::string_view line) { kv.emplace_back(line); });
  auto file = JsonEventFile::open(path.string());
  REQUIRE(file);
  log.attach_json(std::move(*file));
  const Timestamp t0 = Timestamp{} + std::chrono::seconds(100);
  log.log(decision(Event::kCommandMasked, "mask", "VRFY"), t0);
  log.log(decision(Event::kCommandMasked, "mask", "EXPN"), t0);
  log.log(decision(Event::kCommandMasked, "mask", "TURN"), t0);  // suppressed
  log.flush(t0 + std::chrono::seconds(1));
  const auto json = lines_of(path);
  REQUIRE(kv.size() == 3);
  REQUIRE(json.size() == 3);
  CHECK(json[0].find("\"subject\":\"VRFY\"") != std::string::npos);
  CHECK(json[1].find("\"subject\":\"EXPN\"") != std::string::npos);
  CHECK(json[2].find("\"smtpguard_suppressed\":{\"lines\":1,") != std::string::npos);
  CHECK(log.reopen_json());
}

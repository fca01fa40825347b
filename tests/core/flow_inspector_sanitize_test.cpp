// check.smuggling = sanitize through the inspector: every stray CR, LF and NUL of a message
// (DATA body or BDAT chunks) reaches the server as a space, the real end of data still ends the
// message, nothing else changes, and the only bytes ever held are a message's last CR until the
// byte after it arrives.
#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <utility>
#include <vector>

#include "core/flow_inspector.hpp"
#include "policy/profile.hpp"

using namespace sg;
using core::FlowInspector;
using smtp::Dir;

namespace {

constexpr Dir C = Dir::kClientToServer;
constexpr Dir S = Dir::kServerToClient;

struct Step {
  Dir dir;
  std::string text;
};

std::span<const uint8_t> bytes_of(const std::string& s, size_t from, size_t n) {
  return {reinterpret_cast<const uint8_t*>(s.data()) + from, n};
}

policy::Profile sanitizing() {
  policy::Profile p = *policy::builtin_profile("modern");
  p.checks.smuggling = policy::CheckAction::kSanitize;
  return p;
}

std::string render(const FlowInspector& in, Dir d, const std::string& original, size_t n) {
  std::vector<uint8_t> out;
  in.edits(d).render(0, bytes_of(original, 0, n), out);
  return {out.begin(), out.end()};
}

struct Outcome {
  std::string out[2];
  std::vector<std::string> events;  // "name action subject"
  bool reset = false;
  bool stable = true;  // bytes once decided never changed later
  uint64_t undecided = 0;
  smtp::LineKind client_next = smtp::LineKind::kCommand;
};

// Feeds the steps, each cut at the given points, checking after every piece that what was
// decided stays as it was.
Outcome feed(const policy::Profile& p, const std::vector<Step>& steps,
             const std::vector<size_t>& cuts) {
  core::Counters counters;
  FlowInspector in(p, counters);
  std::string original[2];
  std::vector<std::pair<int, std::string>> decided;
  Outcome o;
  for (const Step& s : steps) {
    const int d = static_cast<int>(s.dir);
    std::vector<size_t> points = cuts;
    points.push_back(s.text.size());
    size_t from = 0;
    for (size_t at : points) {
      if (at <= from || at > s.text.size()) continue;
      original[d] += s.text.substr(from, at - from);
      in.on_data(s.dir, bytes_of(s.text, from, at - from));
      from = at;
      for (int k = 0; k < 2; ++k)
        decided.emplace_back(
            k, render(in, static_cast<Dir>(k), original[k], in.decided_until(static_cast<Dir>(k))));
    }
  }
  for (int k = 0; k < 2; ++k)
    o.out[k] = render(in, static_cast<Dir>(k), original[k], original[k].size());
  for (const auto& [k, text] : decided)
    if (o.out[k].compare(0, text.size(), text) != 0) o.stable = false;
  for (const core::Decision& d : in.take_decisions())
    o.events.push_back(std::string(policy::info(d.event).name) + " " + std::string(d.action) + " " +
                       d.subject);
  o.reset = in.reset_requested();
  o.undecided = in.frontier(C) - in.decided_until(C);
  o.client_next = in.next_kind(C);
  return o;
}

// The definition: a CR not followed by LF, an LF not preceded by CR, a NUL become spaces.
std::string sanitized(const std::string& m) {
  std::string out = m;
  for (size_t i = 0; i < m.size(); ++i) {
    if (m[i] == '\0' || (m[i] == '\r' && (i + 1 == m.size() || m[i + 1] != '\n')) ||
        (m[i] == '\n' && (i == 0 || m[i - 1] != '\r')))
      out[i] = ' ';
  }
  return out;
}

bool only_crlf(const std::string& m) {
  return sanitized(m) == m;
}

const Step kGreeting{S, "220 mx.example.org ESMTP Postfix\r\n"};
const Step kEhlo{C, "EHLO client.example.net\r\n"};
const Step kEhloReply{S, "250-mx.example.org\r\n250-PIPELINING\r\n250 CHUNKING\r\n"};

std::vector<Step> data_dialogue(const std::string& message) {
  return {kGreeting,
          kEhlo,
          kEhloReply,
          {C, "MAIL FROM:<a@example.net>\r\n"},
          {S, "250 2.1.0 Ok\r\n"},
          {C, "RCPT TO:<b@example.org>\r\n"},
          {S, "250 2.1.5 Ok\r\n"},
          {C, "DATA\r\n"},
          {S, "354 End data with <CR><LF>.<CR><LF>\r\n"},
          {C, message},
          {S, "250 2.0.0 Ok: queued\r\n"},
          {C, "QUIT\r\n"},
          {S, "221 2.0.0 Bye\r\n"}};
}

std::vector<std::string> smuggling_events(const Outcome& o) {
  std::vector<std::string> out;
  for (const std::string& e : o.events)
    if (e.rfind("smtp_smuggling", 0) == 0 || e.rfind("line_neutralised", 0) == 0) out.push_back(e);
  return out;
}

// One inspector fed a piece at a time, keeping what the client sent.
struct Live {
  explicit Live(policy::Profile profile) : p(std::move(profile)), in(p, counters) {}
  void send(Dir d, const std::string& t) {
    if (d == C) client += t;
    in.on_data(d, bytes_of(t, 0, t.size()));
  }
  // Up to the message: greeting, EHLO, MAIL, RCPT, DATA, each answered.
  void open_data() {
    for (const Step& s : data_dialogue("")) {
      if (s.text.empty()) break;
      send(s.dir, s.text);
    }
  }
  std::string rendered() const { return render(in, C, client, client.size()); }

  policy::Profile p;
  core::Counters counters;
  FlowInspector in;
  std::string client;
};

}  // namespace

TEST_CASE("sanitize turns every smuggling sequence into spaces; the real end of data ends it",
          "[flow_inspector][sanitize]") {
  using namespace std::string_literals;
  const std::string seq =
      GENERATE("\n.\n"s, "\n.\r\n"s, "\r.\r"s, "\r.\n"s, "\n.\r"s, "\r\n.\n"s, "\r\n.\r"s,
               "\r.\r\n"s, "\r\n.\r\r\n"s, "\r\r\n.\r\r\n"s, "\r\n\0.\r\n"s, "\r\n.\0\r\n"s,
               "bare\rcr"s, "bare\nlf"s, "nul\0byte"s);
  INFO("sequence of " << seq.size() << " bytes");
  const std::string body = "Subject: x\r\n\r\nhello" + seq +
                           "MAIL FROM:<evil@example.net>\r\nRCPT TO:<victim@example.org>\r\n"
                           "DATA\r\n\r\nsmuggled\r\n";
  const std::string message = body + ".\r\n";
  const std::vector<Step> steps = data_dialogue(message);
  std::string client;  // the whole client stream
  for (const Step& s : steps)
    if (s.dir == C) client += s.text;
  const size_t at = client.find(message);
  const std::string want =
      client.substr(0, at) + sanitized(message) + client.substr(at + message.size());
  REQUIRE(want.size() == client.size());
  REQUIRE(want != client);

  auto check = [&](const Outcome& o) {
    CHECK_FALSE(o.reset);
    CHECK(o.stable);
    CHECK(o.undecided == 0);
    CHECK(o.out[0] == want);
    CHECK(only_crlf(o.out[0]));
    // One end of data in what the server reads: the real one, right before QUIT.
    const std::string& server_reads = o.out[0];
    CHECK(server_reads.find("\r\n.\r\n") == server_reads.size() - 11);
    CHECK(o.client_next == smtp::LineKind::kCommand);
    const std::vector<std::string> ev = smuggling_events(o);
    REQUIRE(ev.size() == 1);
    CHECK(ev[0].rfind("smtp_smuggling sanitize ", 0) == 0);
  };
  const policy::Profile p = sanitizing();
  check(feed(p, steps, {}));
  for (size_t cut = 1; cut < message.size(); ++cut) {
    INFO("cut at " << cut);
    check(feed(p, steps, {cut}));
  }
  std::vector<size_t> every;
  for (size_t cut = 1; cut < message.size(); ++cut) every.push_back(cut);
  check(feed(p, steps, every));
}

TEST_CASE("sanitize passes a clean message byte-identical", "[flow_inspector][sanitize]") {
  const std::string message =
      "From: a@example.net\r\nSubject: x\r\n\r\nline one\r\n..dot-stuffed\r\n.\r\n..\r\n"
      "\r\nend\r\n.\r\n";
  const std::vector<Step> steps = data_dialogue(message);
  std::string client;
  for (const Step& s : steps)
    if (s.dir == C) client += s.text;
  for (size_t cut = 0; cut < message.size(); ++cut) {
    INFO("cut at " << cut);
    const Outcome o = feed(sanitizing(), steps, {cut});
    CHECK(o.out[0] == client);
    CHECK(smuggling_events(o).empty());
    CHECK(o.undecided == 0);
    CHECK_FALSE(o.reset);
  }
}

TEST_CASE("sanitize scans BDAT chunks as one message", "[flow_inspector][sanitize]") {
  // A CRLF split between two chunks is the message's CRLF; ".\r\n" inside a chunk is data; a
  // bare LF and a CR ending the last chunk are stray.
  const std::string chunk1 = "Subject: x\r\n\r\nab\r";
  const std::string chunk2 = "\n.\r\ncd\nef\r";
  const std::string client_tail = "BDAT " + std::to_string(chunk1.size()) + "\r\n" + chunk1 +
                                  "BDAT " + std::to_string(chunk2.size()) + " LAST\r\n" + chunk2;
  const std::vector<Step> steps{kGreeting,
                                kEhlo,
                                kEhloReply,
                                {C, "MAIL FROM:<a@example.net>\r\n"},
                                {S, "250 2.1.0 Ok\r\n"},
                                {C, "RCPT TO:<b@example.org>\r\n"},
                                {S, "250 2.1.5 Ok\r\n"},
                                {C, client_tail},
                                {S, "250 2.0.0 Ok\r\n250 2.0.0 Ok: queued\r\n"},
                                {C, "QUIT\r\n"}};
  std::string client;
  for (const Step& s : steps)
    if (s.dir == C) client += s.text;
  std::string want = client;
  want[want.find("cd\nef\r") + 2] = ' ';
  want[want.find("cd ef\r") + 5] = ' ';
  for (size_t cut = 0; cut < client_tail.size(); ++cut) {
    INFO("cut at " << cut);
    const Outcome o = feed(sanitizing(), steps, {cut});
    CHECK(o.out[0] == want);
    CHECK(o.stable);
    CHECK(o.undecided == 0);
    CHECK_FALSE(o.reset);
    const std::vector<std::string> ev = smuggling_events(o);
    REQUIRE(ev.size() == 1);
    CHECK(ev[0] == "smtp_smuggling sanitize bare_lf");
  }
}

TEST_CASE("a message's last CR is held until the next byte, then decided by it",
          "[flow_inspector][sanitize]") {
  Live x(sanitizing());
  x.open_data();
  REQUIRE(x.in.next_kind(C) == smtp::LineKind::kDataBody);
  x.send(C, "Subject: x\r\n\r\nhello\r");
  CHECK(x.in.frontier(C) - x.in.decided_until(C) == 1);  // the CR
  x.send(C, "\n.");
  CHECK(x.in.frontier(C) == x.in.decided_until(C));
  x.send(C, "\r");
  CHECK(x.in.frontier(C) - x.in.decided_until(C) == 1);
  x.send(C, "\n");
  CHECK(x.in.frontier(C) == x.in.decided_until(C));
  CHECK(x.rendered() == x.client);  // all CRLF: untouched
  CHECK(x.in.next_kind(C) == smtp::LineKind::kCommand);
}

TEST_CASE("a held CR that times out leaves as a space, and a late LF after it too",
          "[flow_inspector][sanitize]") {
  Live x(sanitizing());
  x.open_data();
  x.send(C, "Subject: x\r\n\r\nhello\r");
  REQUIRE(x.in.frontier(C) - x.in.decided_until(C) == 1);
  x.in.force_decide(C);
  CHECK(x.in.frontier(C) == x.in.decided_until(C));
  CHECK(x.counters.get(core::Counter::hold_timeouts) == 1);
  x.send(C, "\nworld\r\n.\r\n");
  std::string want = x.client;
  want[want.find("hello\r\n") + 5] = ' ';
  want[want.find("hello \n") + 6] = ' ';
  CHECK(x.rendered() == want);
  CHECK(only_crlf(x.rendered()));
  CHECK(x.in.next_kind(C) == smtp::LineKind::kCommand);
  std::vector<std::string> events;
  for (const core::Decision& d : x.in.take_decisions())
    events.push_back(std::string(policy::info(d.event).name) + " " + std::string(d.action));
  CHECK(std::count(events.begin(), events.end(), "line_neutralised sanitize") == 1);
  // The sender wrote a CRLF: no smuggling in what it sent, only a stall; the log says so.
  CHECK(std::count(events.begin(), events.end(), "smtp_smuggling sanitize") == 0);
}

TEST_CASE("a CR ending a BDAT chunk is settled by a command other than BDAT",
          "[flow_inspector][sanitize]") {
  Live x(sanitizing());
  for (const Step& s : {kGreeting, kEhlo, kEhloReply, Step{C, "MAIL FROM:<a@example.net>\r\n"},
                        Step{S, "250 2.1.0 Ok\r\n"}, Step{C, "RCPT TO:<b@example.org>\r\n"},
                        Step{S, "250 2.1.5 Ok\r\n"}})
    x.send(s.dir, s.text);
  x.send(C, "BDAT 3\r\nab\r");
  CHECK(x.in.frontier(C) - x.in.decided_until(C) == 1);
  x.send(C, "RSET\r\n");  // the message is abandoned: no byte will follow the CR
  CHECK(x.in.frontier(C) == x.in.decided_until(C));
  std::string want = x.client;
  want[want.find("ab\r") + 2] = ' ';
  CHECK(x.rendered() == want);
}

TEST_CASE("reset and log profiles never hold message bytes", "[flow_inspector][sanitize]") {
  const policy::CheckAction action =
      GENERATE(policy::CheckAction::kLog, policy::CheckAction::kReset, policy::CheckAction::kOff);
  policy::Profile p = *policy::builtin_profile("modern");
  p.checks.smuggling = action;
  Live x(p);
  x.open_data();
  x.send(C, "Subject: x\r\n\r\nhello\r");
  CHECK(x.in.frontier(C) == x.in.decided_until(C));
  CHECK(x.in.edits(C).empty());
}

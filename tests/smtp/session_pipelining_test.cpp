// The session's pipelining bookkeeping (RFC 2920 section 3.1): which client input arrives
// before a reply the client had to wait for. Every dialogue is fed whole and with each step cut
// at every point: the report must not depend on segmentation. Legitimate pipelined groups
// (RFC 2920's own example, swaks --pipe, Postfix, smtplib's lockstep) report nothing.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "smtp/session.hpp"

using namespace sg::smtp;

namespace {

constexpr Dir C = Dir::kClientToServer;
constexpr Dir S = Dir::kServerToClient;

struct Step {
  Dir dir;
  std::string text;
};

// Records the pipelining reports as "after=VERB terminator|unoffered @pos".
struct Recorder : SessionSink {
  std::vector<std::string> reports;
  CommandFate on_command(const CommandLine&) override { return CommandFate::kForwarded; }
  void on_reply(const ReplyLine&) override {}
  void on_pipelined(const PipelinedInput& p) override {
    reports.push_back(
        "after=" + std::string(p.after_body_end ? "end-of-data" : to_string(p.after)) +
        (p.terminator ? " terminator" : " unoffered") + " @" + std::to_string(p.pos));
  }
};

std::span<const uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Feeds the steps the way the inspector does (the unconsumed rest is offered again, and the
// other direction after each piece), each step cut once at `cut` when inside it.
std::vector<std::string> feed(const std::vector<Step>& steps, size_t cut) {
  Session session;
  Recorder rec;
  std::string pending[2];
  uint64_t pos[2] = {0, 0};
  auto refeed = [&](Dir d) {
    const int i = static_cast<int>(d);
    const size_t n = session.feed(d, pos[i], bytes_of(pending[i]), rec);
    pending[i].erase(0, n);
    pos[i] += n;
  };
  for (const Step& s : steps) {
    const size_t at = std::min(cut, s.text.size());
    for (const std::string& piece : {s.text.substr(0, at), s.text.substr(at)}) {
      if (piece.empty()) continue;
      pending[static_cast<int>(s.dir)] += piece;
      refeed(s.dir);
      refeed(s.dir == C ? S : C);
      refeed(s.dir);
    }
  }
  return rec.reports;
}

// The reports of the whole dialogue, checked to be the same at every cut.
std::vector<std::string> feed_every_split(const std::vector<Step>& steps) {
  const std::vector<std::string> whole = feed(steps, SIZE_MAX);
  size_t longest = 0;
  for (const Step& s : steps) longest = std::max(longest, s.text.size());
  for (size_t cut = 1; cut < longest; ++cut) {
    INFO("cut at " << cut);
    CHECK(feed(steps, cut) == whole);
  }
  return whole;
}

const Step kGreeting{S, "220 mx.example.org ESMTP\r\n"};                                    // 26
const Step kEhlo{C, "EHLO c.example.net\r\n"};                                              // 20
const Step kEhloReply{S, "250-mx.example.org\r\n250-PIPELINING\r\n250 8BITMIME\r\n"};       //
const Step kEhloReplyNoPipe{S, "250-mx.example.org\r\n250-SIZE 1000\r\n250 8BITMIME\r\n"};  //

std::vector<Step> after_ehlo(const Step& reply, std::vector<Step> tail) {
  std::vector<Step> steps{kGreeting, kEhlo, reply};
  steps.insert(steps.end(), tail.begin(), tail.end());
  return steps;
}

struct Row {
  const char* name;
  std::vector<Step> steps;
  std::vector<std::string> reports;
};

}  // namespace

TEST_CASE("client input before a reply it had to wait for is reported at its first byte",
          "[session][pipelining]") {
  const Row row = GENERATE_COPY(
      Row{"EHLO and MAIL in one segment",
          {kGreeting, {C, "EHLO x\r\nMAIL FROM:<a@b>\r\n"}},
          {"after=EHLO terminator @8"}},
      Row{"a message sent before DATA's 354 (the smuggling-adjacent case)",
          after_ehlo(
              kEhloReply,
              {{C, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\n"},
               {S, "250 ok\r\n250 ok\r\n354 go\r\n"},
               {S, "250 queued\r\n"}}),
          {"after=DATA terminator @58"}},
      Row{"a command after QUIT",
          after_ehlo(kEhloReply, {{C, "QUIT\r\nNOOP\r\n"}}),
          {"after=QUIT terminator @26"}},
      Row{"MAIL after NOOP, the synchronisation point",
          after_ehlo(kEhloReply, {{C, "NOOP\r\nMAIL FROM:<>\r\n"}, {S, "250 ok\r\n250 ok\r\n"}}),
          {"after=NOOP terminator @26"}},
      Row{"RCPT after VRFY",
          after_ehlo(kEhloReply, {{C, "VRFY root\r\nRCPT TO:<c@d>\r\n"}}),
          {"after=VRFY terminator @31"}},
      Row{"an AUTH LOGIN response before the 334 (RFC 4954)",
          after_ehlo(kEhloReply, {{C, "AUTH LOGIN\r\ndXNlcg==\r\n"}, {S, "334 UGFzc3dvcmQ6\r\n"}}),
          {"after=AUTH terminator @32"}},
      Row{"MAIL and RCPT together where PIPELINING was not offered",
          after_ehlo(kEhloReplyNoPipe,
                     {{C, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"}, {S, "250 ok\r\n250 ok\r\n"}}),
          {"after=MAIL unoffered @37"}},
      Row{"a HELO session pipelining",
          {kGreeting,
           {C, "HELO x\r\n"},
           {S, "250 mx\r\n"},
           {C, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"}},
          {"after=MAIL unoffered @25"}},
      Row{"QUIT glued to the end of data where PIPELINING was not offered",
          after_ehlo(
              kEhloReplyNoPipe,
              {{C, "DATA\r\n"}, {S, "354 go\r\n"}, {C, "Subject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n"}}),
          {"after=end-of-data unoffered @47"}},
      Row{"only the first offence of a line is reported, and each line once",
          after_ehlo(kEhloReply, {{C, "NOOP\r\nRSET\r\nRSET\r\n"}}),
          {"after=NOOP terminator @26", "after=NOOP terminator @32"}});
  INFO(row.name);
  CHECK(feed_every_split(row.steps) == row.reports);
}

TEST_CASE("legitimate pipelined groups and lockstep dialogues report nothing",
          "[session][pipelining]") {
  const Row row = GENERATE_COPY(
      Row{"RFC 2920's example: MAIL RCPT RCPT DATA, then the body, then . and QUIT",
          after_ehlo(kEhloReply,
                     {{C, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nRCPT TO:<e@f>\r\nDATA\r\n"},
                      {S, "250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n"},
                      {C, "Subject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n"},
                      {S, "250 queued\r\n221 bye\r\n"}}),
          {}},
      Row{"swaks --pipe and Postfix: the group, the body, . alone, then QUIT",
          after_ehlo(kEhloReply, {{C, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"},
                                  {S, "250 ok\r\n250 ok\r\n354 go\r\n"},
                                  {C, "Subject: x\r\n\r\nhi\r\n.\r\n"},
                                  {S, "250 queued\r\n"},
                                  {C, "QUIT\r\n"},
                                  {S, "221 bye\r\n"}}),
          {}},
      Row{"smtplib: lockstep without PIPELINING",
          after_ehlo(kEhloReplyNoPipe, {{C, "MAIL FROM:<a@b>\r\n"},
                                        {S, "250 ok\r\n"},
                                        {C, "RCPT TO:<c@d>\r\n"},
                                        {S, "250 ok\r\n"},
                                        {C, "DATA\r\n"},
                                        {S, "354 go\r\n"},
                                        {C, "Subject: x\r\n\r\nhi\r\n.\r\n"},
                                        {S, "250 queued\r\n"},
                                        {C, "QUIT\r\n"}}),
          {}},
      Row{"RSET anywhere in a group",
          after_ehlo(kEhloReply,
                     {{C, "RSET\r\nMAIL FROM:<a@b>\r\nRSET\r\nMAIL FROM:<a@b>\r\nDATA\r\n"},
                      {S, "250 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n"}}),
          {}},
      Row{"AUTH PLAIN with an initial response may be followed (RFC 4954)",
          after_ehlo(kEhloReply, {{C, "AUTH PLAIN AGEAYg==\r\nMAIL FROM:<a@b>\r\n"},
                                  {S, "235 ok\r\n250 ok\r\n"}}),
          {}},
      Row{"BDAT chunks, the LAST one included, pipelined with the group (RFC 3030)",
          after_ehlo(kEhloReply, {{C,
                                   "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 5\r\nNOOP\r"
                                   "BDAT 3 LAST\r\nxyzQUIT\r\n"},
                                  {S, "250 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n221 bye\r\n"}}),
          {}},
      Row{"input after STARTTLS is the STARTTLS injection check's, never reported here",
          after_ehlo(kEhloReplyNoPipe, {{C, "STARTTLS\r\nRSET\r\n"}, {S, "454 no TLS\r\n"}}),
          {}},
      Row{"a rejected DATA, then lockstep",
          after_ehlo(kEhloReply, {{C, "DATA\r\n"}, {S, "554 no recipients\r\n"}, {C, "QUIT\r\n"}}),
          {}},
      Row{"a client waiting for the whole multi-line greeting",
          {{S, "220-mx.example.org\r\n220 ESMTP\r\n"}, kEhlo, kEhloReply, {C, "QUIT\r\n"}},
          {}});
  INFO(row.name);
  CHECK(feed_every_split(row.steps).empty());
}

TEST_CASE("the greeting is complete at the last line of a multi-line 220",
          "[session][pipelining]") {
  Recorder rec;
  const std::string greeting = "220-mx.example.org\r\n220 ESMTP\r\n";
  for (size_t end = 0; end <= greeting.size(); ++end) {
    Session s;
    s.feed(S, 0, bytes_of(std::string_view(greeting).substr(0, end)), rec);
    INFO("greeting bytes " << end);
    CHECK(s.greeted() == (end == greeting.size()));
  }
}

TEST_CASE("a new EHLO takes back the PIPELINING offer of the last one", "[session][pipelining]") {
  // The second EHLO's reply lacks PIPELINING: lockstep applies again.
  const std::vector<Step> steps = after_ehlo(
      kEhloReply, {{C, "EHLO again\r\n"}, kEhloReplyNoPipe, {C, "MAIL FROM:<a@b>\r\nRSET\r\n"}});
  CHECK(feed_every_split(steps) == std::vector<std::string>{"after=MAIL unoffered @49"});
}

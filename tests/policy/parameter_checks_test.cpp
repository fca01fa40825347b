#include "policy/parameter_checks.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

using namespace sg;
using policy::CheckAction;
using policy::Checks;
using policy::ParameterChecks;

namespace {

std::vector<std::string> run_commands(const Checks& c, const std::vector<std::string>& lines) {
  ParameterChecks checks(c);
  std::vector<policy::CheckHit> hits;
  for (const std::string& l : lines) {
    const size_t sp = l.find_first_of(" \r");
    checks.on_command(smtp::parse_verb(l.substr(0, sp)), l, false, hits);
  }
  std::vector<std::string> out;
  for (const policy::CheckHit& h : hits)
    out.push_back(std::string(policy::info(h.event).name) + " " +
                  std::string(policy::to_string(h.action)) + " [" + h.subject + "] " + h.detail);
  return out;
}

}  // namespace

TEST_CASE("address checks on MAIL and RCPT", "[parameter_checks]") {
  struct Row {
    const char* name;
    Checks checks;
    std::vector<std::string> lines;
    std::vector<std::string> hits;
  };
  Checks special;
  special.special_chars = CheckAction::kMask;
  Checks sender_len;
  sender_len.sender_length = {CheckAction::kDropConnection, 10};
  Checks sender_pat;
  sender_pat.sender = {CheckAction::kReset, {"*@spam.example", "bounce-*@*"}};
  Checks relay;
  relay.relay = {CheckAction::kLog, {"example.org", "*.example.org"}};
  Checks size;
  size.message_size = {CheckAction::kReset, 1000};
  const Row row = GENERATE_COPY(
      Row{"pipe in a recipient",
          special,
          {"RCPT TO:<|/bin/sh@example.org>\r\n"},
          {"special_chars mask [|/bin/sh@example.org] RCPT at 9"}},
      Row{"backquote in the sender",
          special,
          {"MAIL FROM:<a`id`@example.net>\r\n"},
          {"special_chars mask [a`id`@example.net] MAIL at 12"}},
      Row{"clean addresses pass",
          special,
          {"MAIL FROM:<a@example.net>\r\n", "RCPT TO:<b@example.org>\r\n"},
          {}},
      Row{"long sender",
          sender_len,
          {"MAIL FROM:<abcdefgh@example.net>\r\n"},
          {"sender_length drop-connection [abcdefgh@example.net] 20 > 10"}},
      Row{"short sender", sender_len, {"MAIL FROM:<a@b.c>\r\n"}, {}},
      Row{"sender pattern, any case",
          sender_pat,
          {"mail from:<Joe@SPAM.example>\r\n"},
          {"sender_pattern reset [Joe@SPAM.example] matches *@spam.example"}},
      Row{"sender pattern with a prefix",
          sender_pat,
          {"MAIL FROM:<bounce-123@lists.example.net> SIZE=100\r\n"},
          {"sender_pattern reset [bounce-123@lists.example.net] matches bounce-*@*"}},
      Row{"relay: protected domain and subdomain pass, others log",
          relay,
          {"RCPT TO:<a@example.org>\r\n", "RCPT TO:<b@mx.example.org>\r\n",
           "RCPT TO:<c@example.net>\r\n", "RCPT TO:<postmaster>\r\n"},
          {"mail_relay log [c@example.net] domain example.net"}},
      Row{"declared SIZE over the limit",
          size,
          {"MAIL FROM:<a@example.net> SIZE=5000\r\n"},
          {"message_size reset [declared SIZE] 5000 > 1000"}},
      Row{"declared SIZE under the limit", size, {"MAIL FROM:<a@example.net> SIZE=999\r\n"}, {}});
  INFO(row.name);
  CHECK(run_commands(row.checks, row.lines) == row.hits);
}

TEST_CASE("only masking checks hold MAIL and RCPT lines whole", "[parameter_checks]") {
  Checks log_only;
  log_only.special_chars = CheckAction::kLog;
  log_only.recipients = {CheckAction::kReset, 5};
  CHECK_FALSE(ParameterChecks(log_only).needs_whole_command("MAIL FR"));
  Checks mask;
  mask.special_chars = CheckAction::kMask;
  const ParameterChecks m(mask);
  CHECK(m.needs_whole_command("MA"));
  CHECK(m.needs_whole_command("rcpt TO:<x"));
  CHECK_FALSE(m.needs_whole_command("NOOP"));
  CHECK_FALSE(m.needs_whole_command("EHLO "));
  Checks length;
  length.command_line = {CheckAction::kMask, 100};
  CHECK(ParameterChecks(length).needs_whole_command("NOOP"));
}

TEST_CASE("a message larger than its declared SIZE is logged at its end", "[parameter_checks]") {
  Checks c;
  c.message_size = {CheckAction::kReset, 1000};
  ParameterChecks checks(c);
  std::vector<policy::CheckHit> hits;
  const std::string mail = "MAIL FROM:<a@example.net> SIZE=10\r\n";
  checks.on_command(smtp::Verb::kMail, mail, false, hits);
  const std::string body = "Subject: x\r\n\r\nmore than ten bytes\r\n.\r\n";
  checks.on_message_bytes({reinterpret_cast<const uint8_t*>(body.data()), body.size()}, false,
                          hits);
  CHECK(hits.empty());
  checks.on_message_end(hits);
  REQUIRE(hits.size() == 1);
  CHECK(hits[0].action == CheckAction::kLog);
  CHECK(hits[0].detail == "actual " + std::to_string(body.size()) + " > declared 10");
  CHECK(checks.message_bytes() == 0);  // the next message counts from zero
}

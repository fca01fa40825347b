#include "policy/parameter_checks.hpp"

#include <algorithm>

namespace sg::policy {
namespace {

int rank(CheckAction a) {
  switch (a) {
    case CheckAction::kOff:
      return 0;
    case CheckAction::kLog:
      return 1;
    case CheckAction::kMask:
      return 2;
    case CheckAction::kReset:
      return 3;
    case CheckAction::kDropConnection:
      return 4;
  }
  return 0;
}

std::string over(uint64_t value, uint64_t max) {
  return std::to_string(value) + " > " + std::to_string(max);
}

bool on(const Limit& l) {
  return l.action != CheckAction::kOff;
}

}  // namespace

CheckAction strongest(const std::vector<CheckHit>& hits) {
  CheckAction a = CheckAction::kOff;
  for (const CheckHit& h : hits)
    if (rank(h.action) > rank(a)) a = h.action;
  return a;
}

ParameterChecks::ParameterChecks(const Checks& checks) : checks_(checks) {}

bool ParameterChecks::address_checks() const {
  return checks_.special_chars != CheckAction::kOff || on(checks_.sender_length) ||
         checks_.sender.action != CheckAction::kOff || checks_.relay.action != CheckAction::kOff ||
         on(checks_.recipients) || on(checks_.message_size);
}

bool ParameterChecks::needs_whole_command(std::string_view partial) const {
  if (on(checks_.command_line)) return true;
  if (!address_checks()) return false;
  // MAIL and RCPT lines are checked whole; another verb can be decided from its first word.
  size_t end = 0;
  while (end < partial.size() && partial[end] != ' ' && partial[end] != ':' &&
         partial[end] != '\r' && partial[end] != '\n')
    ++end;
  const std::string_view word = partial.substr(0, end);
  const bool terminated = end < partial.size();
  for (smtp::Verb v : {smtp::Verb::kMail, smtp::Verb::kRcpt}) {
    if (terminated ? smtp::parse_verb(word) == v : smtp::verb_starts_with(v, word)) return true;
  }
  return false;
}

void ParameterChecks::check_limit(const Limit& l, Event e, uint64_t value, std::string_view subject,
                                  std::vector<CheckHit>& hits) const {
  if (!on(l) || value <= l.max) return;
  hits.push_back(CheckHit{e, l.action, std::string(subject), over(value, l.max)});
}

void ParameterChecks::on_command(smtp::Verb verb, std::string_view line, bool cut,
                                 std::vector<CheckHit>& hits) {
  if (on(checks_.command_line) && (cut || line.size() > checks_.command_line.max)) {
    hits.push_back(CheckHit{Event::kCommandLineLength, checks_.command_line.action,
                            std::string(smtp::to_string(verb)),
                            cut ? "over " + std::to_string(checks_.command_line.max)
                                : over(line.size(), checks_.command_line.max)});
  }
  switch (verb) {
    case smtp::Verb::kMail:
      recipients_ = 0;
      declared_size_ = 0;
      break;
    case smtp::Verb::kRset:
    case smtp::Verb::kHelo:
    case smtp::Verb::kEhlo:
      recipients_ = 0;
      declared_size_ = 0;
      return;
    case smtp::Verb::kRcpt:
      ++recipients_;
      check_limit(checks_.recipients, Event::kRecipients, recipients_, "RCPT", hits);
      break;
    default:
      return;
  }
  if (!cut) check_address_command(verb, line, hits);
}

void ParameterChecks::on_reply(smtp::Verb answers, uint16_t code, bool last, std::string_view line,
                               bool cut, std::vector<CheckHit>& hits) {
  if (on(checks_.reply_line) && (cut || line.size() > checks_.reply_line.max)) {
    hits.push_back(CheckHit{Event::kReplyLineLength, checks_.reply_line.action,
                            std::to_string(code),
                            cut ? "over " + std::to_string(checks_.reply_line.max)
                                : over(line.size(), checks_.reply_line.max)});
  }
  if (last && answers == smtp::Verb::kRcpt && code >= 500 && code < 600) {
    ++invalid_recipients_;
    check_limit(checks_.invalid_recipients, Event::kInvalidRecipients, invalid_recipients_, "RCPT",
                hits);
  }
}

void ParameterChecks::on_message_bytes(std::span<const uint8_t> bytes,
                                       std::vector<CheckHit>& hits) {
  message_bytes_ += bytes.size();
  if (!size_reported_ && on(checks_.message_size) && message_bytes_ > checks_.message_size.max) {
    size_reported_ = true;
    // Reported when the count crosses the limit, whatever the chunk that crossed it.
    hits.push_back(CheckHit{Event::kMessageSize, checks_.message_size.action, "message",
                            "over " + std::to_string(checks_.message_size.max)});
  }
}

void ParameterChecks::on_message_end(std::vector<CheckHit>& hits) {
  // SIZE= is a promise: a message larger than it declared is logged (ASA 108006).
  if (declared_size_ > 0 && message_bytes_ > declared_size_ && on(checks_.message_size))
    hits.push_back(CheckHit{Event::kMessageSize, CheckAction::kLog, "declared SIZE",
                            "actual " + std::to_string(message_bytes_) + " > declared " +
                                std::to_string(declared_size_)});
  message_bytes_ = 0;
  size_reported_ = false;
  recipients_ = 0;
  declared_size_ = 0;
}

void ParameterChecks::check_address_command(smtp::Verb, std::string_view, std::vector<CheckHit>&) {}

}  // namespace sg::policy

#include "policy/parameter_checks.hpp"

#include <algorithm>

#include "smtp/mail_params.hpp"

namespace sg::policy {
namespace {

int rank(CheckAction a) {
  switch (a) {
    case CheckAction::kOff:
      return 0;
    case CheckAction::kLog:
      return 1;
    case CheckAction::kMask:
    case CheckAction::kSanitize:  // both keep the bytes' count; they never meet on one line
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

bool ParameterChecks::masks_addresses() const {
  const CheckAction m = CheckAction::kMask;
  return checks_.special_chars == m || checks_.sender_length.action == m ||
         checks_.sender.action == m || checks_.relay.action == m ||
         checks_.recipients.action == m || checks_.message_size.action == m;
}

bool ParameterChecks::address_checks() const {
  return checks_.special_chars != CheckAction::kOff || on(checks_.sender_length) ||
         checks_.sender.action != CheckAction::kOff || checks_.relay.action != CheckAction::kOff ||
         on(checks_.recipients) || on(checks_.message_size);
}

bool ParameterChecks::needs_whole_command(std::string_view partial) const {
  // Only a mask needs the line whole: a reset or a dropped connection ends it before its line
  // ending reaches the server, however much of it left already, and a log changes nothing.
  if (checks_.command_line.action == CheckAction::kMask) return true;
  if (!masks_addresses()) return false;
  // MAIL and RCPT lines are checked whole; another verb can be decided from its first word.
  // The verb as the session reads it; a ':' ends it here too ("MAIL:" is held as MAIL would
  // be: holding more than needed costs a little latency, never a check).
  const smtp::CommandToken verb = smtp::command_verb(partial);
  const size_t colon = verb.text.find(':');
  const std::string_view word = verb.text.substr(0, colon);
  const bool terminated = verb.terminated || colon != std::string_view::npos;
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
      start_transaction();
      break;
    case smtp::Verb::kRset:
    case smtp::Verb::kHelo:
    case smtp::Verb::kEhlo:
      start_transaction();
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

bool ParameterChecks::body_checks() const {
  return checks_.smuggling != CheckAction::kOff || on(checks_.header_line) ||
         on(checks_.to_fields) || on(checks_.body_line) || on(checks_.mime_filename) ||
         checks_.mime_filetype.action != CheckAction::kOff ||
         checks_.mime_encoding.action != CheckAction::kOff;
}

void ParameterChecks::on_message_bytes(std::span<const uint8_t> bytes, bool chunked,
                                       std::vector<CheckHit>& hits) {
  message_bytes_ += bytes.size();
  if (!size_reported_ && on(checks_.message_size) && message_bytes_ > checks_.message_size.max) {
    size_reported_ = true;
    // Reported when the count crosses the limit, whatever the chunk that crossed it.
    hits.push_back(CheckHit{Event::kMessageSize, checks_.message_size.action, "message",
                            "over " + std::to_string(checks_.message_size.max)});
  }
  if (!body_checks()) return;
  if (!message_) {
    smtp::BodyLimits limits;
    if (on(checks_.header_line)) limits.max_header_line = checks_.header_line.max;
    if (on(checks_.body_line)) limits.max_body_line = checks_.body_line.max;
    limits.dot_terminated = !chunked;
    // Only what some check reads: smuggling alone needs neither headers nor MIME parts.
    limits.mime = on(checks_.mime_filename) || checks_.mime_filetype.action != CheckAction::kOff ||
                  checks_.mime_encoding.action != CheckAction::kOff;
    limits.headers =
        limits.mime || on(checks_.header_line) || on(checks_.body_line) || on(checks_.to_fields);
    message_ = std::make_unique<Message>(limits);
  }
  std::vector<smtp::BodyEvent>& events = message_->events;
  events.clear();
  message_->scanner.feed(bytes, events);
  for (const smtp::BodyEvent& e : events) on_body_event(e, hits);
}

void ParameterChecks::on_body_event(const smtp::BodyEvent& e, std::vector<CheckHit>& hits) {
  using K = smtp::BodyEventKind;
  switch (e.kind) {
    case K::kHeaderLineLong:
      // Once per message: a flood of long lines is one finding, not thousands of log lines.
      if (!header_reported_)
        hits.push_back(CheckHit{Event::kHeaderLineLength, checks_.header_line.action, "header",
                                "over " + std::to_string(checks_.header_line.max)});
      header_reported_ = true;
      break;
    case K::kBodyLineLong:
      if (!body_reported_)
        hits.push_back(CheckHit{Event::kBodyLineLength, checks_.body_line.action, "body",
                                "over " + std::to_string(checks_.body_line.max)});
      body_reported_ = true;
      break;
    case K::kToField:
      if (!to_reported_ && on(checks_.to_fields) && e.value > checks_.to_fields.max) {
        to_reported_ = true;
        hits.push_back(CheckHit{Event::kToFields, checks_.to_fields.action, "To",
                                over(e.value, checks_.to_fields.max)});
      }
      break;
    case K::kMimeFilename:
      check_limit(checks_.mime_filename, Event::kMimeFilename, e.value, e.text, hits);
      if (checks_.mime_filetype.action != CheckAction::kOff) {
        for (const std::string& p : checks_.mime_filetype.patterns) {
          if (!smtp::match_pattern(p, e.text)) continue;
          hits.push_back(
              CheckHit{Event::kMimeFiletype, checks_.mime_filetype.action, e.text, "matches " + p});
          break;
        }
      }
      break;
    case K::kMimeEncoding:
      if (checks_.mime_encoding.action != CheckAction::kOff) {
        for (const std::string& p : checks_.mime_encoding.patterns) {
          if (!smtp::match_pattern(p, e.text)) continue;
          hits.push_back(
              CheckHit{Event::kMimeEncoding, checks_.mime_encoding.action, e.text, "matches " + p});
          break;
        }
      }
      break;
    case K::kBareCr:
    case K::kBareLf:
    case K::kNul:
    case K::kDotLine:
      // One finding per message: the first stray byte is the evidence, and with reset or
      // drop-connection nothing after it is forwarded anyway.
      if (checks_.smuggling != CheckAction::kOff && !smuggling_reported_) {
        smuggling_reported_ = true;
        std::string detail = "at message byte " + std::to_string(e.offset);
        if (!e.text.empty()) detail += " " + e.text;
        hits.push_back(CheckHit{Event::kSmuggling, checks_.smuggling,
                                std::string(smtp::to_string(e.kind)), std::move(detail)});
      }
      break;
    default:
      break;
  }
}

void ParameterChecks::on_message_end(std::vector<CheckHit>& hits) {
  if (message_) {
    std::vector<smtp::BodyEvent>& events = message_->events;
    events.clear();
    message_->scanner.finish(events);
    for (const smtp::BodyEvent& e : events) on_body_event(e, hits);
    message_.reset();
  }
  // SIZE= is a promise: a message larger than it declared is logged (ASA 108006).
  if (declared_size_ > 0 && message_bytes_ > declared_size_ && on(checks_.message_size))
    hits.push_back(CheckHit{Event::kMessageSize, CheckAction::kLog, "declared SIZE",
                            "actual " + std::to_string(message_bytes_) + " > declared " +
                                std::to_string(declared_size_)});
  start_transaction();
}

void ParameterChecks::start_transaction() {
  // A message cut short (BDAT without LAST, then RSET) is forgotten with its transaction.
  message_.reset();
  message_bytes_ = 0;
  size_reported_ = false;
  header_reported_ = body_reported_ = to_reported_ = smuggling_reported_ = false;
  recipients_ = 0;
  declared_size_ = 0;
}

void ParameterChecks::check_address_command(smtp::Verb verb, std::string_view line,
                                            std::vector<CheckHit>& hits) {
  if (!address_checks()) return;
  const smtp::MailParams m = smtp::parse_mail_params(line);
  const std::string_view word = verb == smtp::Verb::kMail ? "MAIL" : "RCPT";
  if (m.special_chars && checks_.special_chars != CheckAction::kOff) {
    hits.push_back(CheckHit{Event::kSpecialChars, checks_.special_chars, std::string(m.address),
                            std::string(word) + " at " + std::to_string(m.special_index)});
  }
  if (verb == smtp::Verb::kMail) {
    declared_size_ = m.declared_size.value_or(0);
    check_limit(checks_.sender_length, Event::kSenderLength, m.address.size(), m.address, hits);
    if (checks_.sender.action != CheckAction::kOff) {
      for (const std::string& p : checks_.sender.patterns) {
        if (!smtp::match_pattern(p, m.address)) continue;
        hits.push_back(CheckHit{Event::kSenderPattern, checks_.sender.action,
                                std::string(m.address), "matches " + p});
        break;
      }
    }
    // A SIZE= over the limit: the message would be refused at its end anyway; say so now.
    if (on(checks_.message_size) && declared_size_ > checks_.message_size.max)
      hits.push_back(CheckHit{Event::kMessageSize, checks_.message_size.action, "declared SIZE",
                              over(declared_size_, checks_.message_size.max)});
  } else if (checks_.relay.action != CheckAction::kOff && m.status == smtp::MailParamStatus::kOk) {
    // Mail relay: a recipient outside every protected domain. A recipient with no domain
    // ("<postmaster>") is local by definition (RFC 5321 4.5.1).
    if (!m.domain.empty()) {
      bool local = false;
      for (const std::string& p : checks_.relay.patterns)
        local = local || smtp::match_pattern(p, m.domain);
      if (!local)
        hits.push_back(CheckHit{Event::kMailRelay, checks_.relay.action, std::string(m.address),
                                "domain " + std::string(m.domain)});
    }
  }
}

}  // namespace sg::policy

#pragma once
// ASA's ESMTP parameter checks over one connection: line lengths, addresses, recipients,
// refused recipients, message size and the message's headers and MIME parts. Pure: fed the
// session's commands, replies and message bytes, it reports every check that fires; the
// inspector turns the strongest action into a rewrite, a reset or a dropped connection.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "policy/events.hpp"
#include "policy/profile.hpp"
#include "smtp/body_scanner.hpp"
#include "smtp/vocabulary.hpp"

namespace sg::policy {

struct CheckHit {
  Event event = Event::kCount;
  CheckAction action = CheckAction::kLog;
  std::string subject;  // what fired: an address, a domain, a file name (as sent)
  std::string detail;   // the measured value against the limit, e.g. "601 > 512"
};

// The strongest action among `hits` (drop-connection > reset > mask > log); kOff when empty.
CheckAction strongest(const std::vector<CheckHit>& hits);

class ParameterChecks {
 public:
  explicit ParameterChecks(const Checks& checks);

  // Whether a command starting with `partial` (not complete yet) must be held until it is:
  // some check needs the whole line to decide what its bytes become.
  bool needs_whole_command(std::string_view partial) const;

  // A complete command line (`cut`: longer than the session's line cap, `line` is its first
  // piece). Only commands the profile forwards are checked.
  void on_command(smtp::Verb verb, std::string_view line, bool cut, std::vector<CheckHit>& hits);
  // A complete reply line; `answers` is the command it answers.
  void on_reply(smtp::Verb answers, uint16_t code, bool last, std::string_view line, bool cut,
                std::vector<CheckHit>& hits);
  // Message bytes (DATA body or BDAT chunk: `chunked`), in order.
  void on_message_bytes(std::span<const uint8_t> bytes, bool chunked, std::vector<CheckHit>& hits);
  void on_message_end(std::vector<CheckHit>& hits);

  uint64_t message_bytes() const { return message_bytes_; }
  uint32_t recipients() const { return recipients_; }
  uint32_t invalid_recipients() const { return invalid_recipients_; }
  // Whether a message's body scanner exists (allocated with its first byte).
  bool reading_message() const { return message_ != nullptr; }

 private:
  void check_limit(const Limit& l, Event e, uint64_t value, std::string_view subject,
                   std::vector<CheckHit>& hits) const;
  void check_address_command(smtp::Verb verb, std::string_view line, std::vector<CheckHit>& hits);
  bool address_checks() const;
  bool masks_addresses() const;  // an address check masks: MAIL/RCPT lines are held whole
  bool body_checks() const;
  void start_transaction();  // some check reads the message's headers, lines or parts
  void on_body_event(const smtp::BodyEvent& e, std::vector<CheckHit>& hits);

  // Wide fields first: every tracked connection carries these.
  const Checks& checks_;
  uint64_t declared_size_ = 0;  // SIZE= of the current MAIL FROM, 0 when none
  uint64_t message_bytes_ = 0;
  // The message being read, for the checks that look inside it; created with its first byte.
  struct Message {
    explicit Message(const smtp::BodyLimits& limits) : scanner(limits) {}
    smtp::BodyScanner scanner;
    std::vector<smtp::BodyEvent> events;  // scratch
  };
  std::unique_ptr<Message> message_;
  uint32_t recipients_ = 0;          // RCPT commands since MAIL
  uint32_t invalid_recipients_ = 0;  // 5xx replies to RCPT in this session
  bool size_reported_ = false;       // the message-size check fired for this message already
  bool header_reported_ = false, body_reported_ = false, to_reported_ = false;
  bool smuggling_reported_ = false;
};

}  // namespace sg::policy

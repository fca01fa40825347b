#pragma once
// What the server has been told so far in one session, for the decision log: the HELO/EHLO name
// and the sender of the transaction under way, as forwarded (a masked or removed command tells
// the server nothing), each cut at Decision::kMaxSubject bytes. The recipients so far are the
// parameter checks' count. Allocated by the inspector at the first such command only: an idle
// flow pays one pointer for it.
#include <algorithm>
#include <string>
#include <string_view>

#include "core/decision.hpp"
#include "smtp/mail_params.hpp"
#include "smtp/vocabulary.hpp"
#include "util/ascii.hpp"

namespace sg::core {

struct SessionContext {
  std::string helo;
  std::string mail_from;

  // Whether a forwarded command with this verb changes the context.
  static bool concerns(smtp::Verb v) {
    return v == smtp::Verb::kHelo || v == smtp::Verb::kEhlo || v == smtp::Verb::kMail ||
           v == smtp::Verb::kRset;
  }

  // A forwarded command line (CRLF optional).
  void on_forwarded(smtp::Verb v, std::string_view line) {
    switch (v) {
      case smtp::Verb::kHelo:
      case smtp::Verb::kEhlo:
        // A new greeting starts the session over (RFC 5321 4.1.4): no transaction.
        helo = capped(argument(line));
        mail_from.clear();
        break;
      case smtp::Verb::kMail: {
        const smtp::MailParams m = smtp::parse_mail_params(line);
        mail_from = m.status == smtp::MailParamStatus::kOk ? capped(m.address) : std::string();
        break;
      }
      case smtp::Verb::kRset:
        mail_from.clear();
        break;
      default:
        break;
    }
  }

 private:
  // What follows the verb, without the blanks around it and the line ending.
  static std::string_view argument(std::string_view line) {
    const smtp::CommandToken verb = smtp::command_verb(line);
    std::string_view rest = line.substr(std::min(line.size(), verb.end()));
    while (!rest.empty() && is_ascii_space(rest.front())) rest.remove_prefix(1);
    while (!rest.empty() && is_ascii_space(rest.back())) rest.remove_suffix(1);
    return rest;
  }
  static std::string capped(std::string_view s) {
    return std::string(s.substr(0, Decision::kMaxSubject));
  }
};

}  // namespace sg::core

#include "policy/profile.hpp"

#include <initializer_list>

namespace sg::policy {
namespace {

using smtp::EhloKeyword;
using smtp::Verb;

void set(Profile& p, std::initializer_list<Verb> verbs, CommandAction a) {
  for (Verb v : verbs) p.verbs[static_cast<size_t>(v)] = a;
}
void set(Profile& p, std::initializer_list<EhloKeyword> keywords, KeywordAction a) {
  for (EhloKeyword k : keywords) p.keywords[static_cast<size_t>(k)] = a;
}
void set_all(Profile& p, CommandAction a) {
  p.verbs.fill(a);
  p.unknown_verb = a;
}

// Smuggling in the Cisco profiles: neither PIX nor ASA documents a check, but without one the
// gateway reads a body up to CRLF.CRLF while a lenient server ends it at a bare-LF "." line and
// reads the rest as commands (an exception: the connection is reset). Sanitize keeps both on
// the same stream with no visible change to mail as RFC 5322 writes it: same length, only
// stray CR, LF and NUL become spaces.
void sanitize_smuggling(Profile& p) {
  p.checks.smuggling = CheckAction::kSanitize;
}

// The seven commands RFC 821 section 4.5.1 requires of every server: all a PIX lets through.
constexpr std::initializer_list<Verb> kRfc821Minimum = {
    Verb::kHelo, Verb::kMail, Verb::kRcpt, Verb::kData, Verb::kRset, Verb::kNoop, Verb::kQuit};

Profile make_pix_legacy() {
  Profile p;
  p.name = "pix-legacy";
  p.description = "PIX 4.x Mailguard: banner all asterisks, 7 commands, others become NOOP";
  p.banner = BannerAction::kMaskAll;
  set_all(p, CommandAction::kNoop);
  set(p, kRfc821Minimum, CommandAction::kAllow);
  // EHLO is not among the seven: it becomes NOOP, the client falls back to HELO.
  sanitize_smuggling(p);
  return p;
}

Profile make_pix_mailguard() {
  Profile p;
  p.name = "pix-mailguard";
  p.description = "PIX 5.1+ Mailguard: banner asterisks but 2 and 0, 7 commands, others X'd";
  p.banner = BannerAction::kMask;
  set_all(p, CommandAction::kMask);
  set(p, kRfc821Minimum, CommandAction::kAllow);
  sanitize_smuggling(p);
  return p;
}

Profile make_asa_default() {
  Profile p;
  p.name = "asa-default";
  p.description = "ASA _default_esmtp_map: mask-banner, no allow-tls, ESMTP verbs, others X'd";
  p.banner = BannerAction::kMask;
  set_all(p, CommandAction::kMask);
  set(p, kRfc821Minimum, CommandAction::kAllow);
  set(p,
      {Verb::kEhlo, Verb::kAuth, Verb::kEtrn, Verb::kHelp, Verb::kSaml, Verb::kSend, Verb::kSoml,
       Verb::kVrfy},
      CommandAction::kAllow);
  // ehlo-reply-parameter others: everything outside this list is masked.
  p.keywords.fill(KeywordAction::kMask);
  p.unknown_keyword = KeywordAction::kMask;
  set(p,
      {EhloKeyword::k8bitmime, EhloKeyword::kAuth, EhloKeyword::kBinarymime,
       EhloKeyword::kCheckpoint, EhloKeyword::kDsn, EhloKeyword::kEnhancedstatuscodes,
       EhloKeyword::kEtrn, EhloKeyword::kPipelining, EhloKeyword::kSize, EhloKeyword::kVrfy},
      KeywordAction::kAllow);
  // The match criteria of _default_esmtp_map (ASA 8.0+ configuration guide), each with `log`.
  Checks& c = p.checks;
  c.command_line = {CheckAction::kDropConnection, 512};   // match cmd line length gt 512
  c.recipients = {CheckAction::kDropConnection, 100};     // match cmd RCPT count gt 100
  c.body_line = {CheckAction::kLog, 998};                 // match body line length gt 998
  c.header_line = {CheckAction::kDropConnection, 998};    // match header line length gt 998
  c.sender_length = {CheckAction::kDropConnection, 320};  // match sender-address length gt 320
  c.mime_filename = {CheckAction::kDropConnection, 255};  // match MIME filename length gt 255
  sanitize_smuggling(p);
  return p;
}

Profile make_modern() {
  Profile p;
  p.name = "modern";
  p.description =
      "default: mail keeps flowing (STARTTLS, AUTH, 8BITMIME, PIPELINING, CHUNKING), "
      "dangerous verbs and keywords blocked";
  p.banner = BannerAction::kPass;
  set_all(p, CommandAction::kAllow);
  set(p, {Verb::kTurn, Verb::kAtrn, Verb::kXexch50, Verb::kXlink2state, Verb::kXexps, Verb::kExpn},
      CommandAction::kMask);
  set(p,
      {EhloKeyword::kTurn, EhloKeyword::kAtrn, EhloKeyword::kXexch50, EhloKeyword::kXlink2state,
       EhloKeyword::kXexps},
      KeywordAction::kMask);
  // Limits log; they never drop mail a server would take (RFC 5321 4.5.3.1 sizes; 100
  // recipients is what a server must accept, not a maximum).
  Checks& c = p.checks;
  c.command_line = {CheckAction::kLog, 512};
  c.reply_line = {CheckAction::kLog, 512};
  c.recipients = {CheckAction::kLog, 100};
  c.header_line = {CheckAction::kLog, 998};
  c.body_line = {CheckAction::kLog, 998};
  c.sender_length = {CheckAction::kLog, 320};
  c.mime_filename = {CheckAction::kLog, 255};
  c.special_chars = CheckAction::kLog;
  // Unlike the limits, smuggling is an attack on the server behind the gateway, not a sender's
  // habit: the connection is reset before the stray end of data reaches it.
  c.smuggling = CheckAction::kReset;
  c.starttls_injection = CheckAction::kReset;
  // Dialogue order logs only: clients that talk early or pipeline out of order exist among
  // legitimate senders too (old appliances, scripts); the log tells the operator who they are
  // before they choose reset. The Cisco profiles leave both off: neither PIX Mailguard nor ASA
  // `inspect esmtp` documents a check of either (ASA's policy-map has no such match criterion).
  c.early_talker = CheckAction::kLog;
  c.pipelining = CheckAction::kLog;
  return p;
}

}  // namespace

std::string_view to_string(CommandAction a) {
  switch (a) {
    case CommandAction::kAllow:
      return "allow";
    case CommandAction::kLog:
      return "log";
    case CommandAction::kMask:
      return "mask";
    case CommandAction::kNoop:
      return "noop";
    case CommandAction::kAnswer:
      return "answer";
    case CommandAction::kReset:
      return "reset";
    case CommandAction::kDrop:
      return "drop-connection";
  }
  return "?";
}

std::string_view to_string(CheckAction a) {
  switch (a) {
    case CheckAction::kOff:
      return "off";
    case CheckAction::kLog:
      return "log";
    case CheckAction::kMask:
      return "mask";
    case CheckAction::kReset:
      return "reset";
    case CheckAction::kDropConnection:
      return "drop-connection";
    case CheckAction::kSanitize:
      return "sanitize";
  }
  return "?";
}

std::string_view to_string(KeywordAction a) {
  switch (a) {
    case KeywordAction::kAllow:
      return "allow";
    case KeywordAction::kMask:
      return "mask";
    case KeywordAction::kStrip:
      return "strip";
  }
  return "?";
}

std::string_view to_string(BannerAction a) {
  switch (a) {
    case BannerAction::kPass:
      return "pass";
    case BannerAction::kMask:
      return "mask";
    case BannerAction::kMaskAll:
      return "mask-all";
    case BannerAction::kReplace:
      return "replace";
  }
  return "?";
}

std::shared_ptr<const Profile> builtin_profile(std::string_view name) {
  if (name == "pix-legacy") return std::make_shared<const Profile>(make_pix_legacy());
  if (name == "pix-mailguard") return std::make_shared<const Profile>(make_pix_mailguard());
  if (name == "asa-default") return std::make_shared<const Profile>(make_asa_default());
  if (name == "modern") return std::make_shared<const Profile>(make_modern());
  return nullptr;
}

std::vector<std::string_view> builtin_profile_names() {
  return {"modern", "pix-mailguard", "pix-legacy", "asa-default"};
}

}  // namespace sg::policy

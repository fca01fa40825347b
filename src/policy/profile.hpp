#pragma once
// What a policy says, as an immutable value. Built-in profiles reproduce Cisco's inspection
// (pix-legacy, pix-mailguard, asa-default) or protect without breaking mail (modern).
#include <array>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "smtp/vocabulary.hpp"

namespace sg::policy {

enum class BannerAction : uint8_t {
  kPass,     // untouched (clients look for "ESMTP" in it)
  kMask,     // PIX 5.1+: every character but '2', '0', CR, LF and the separator becomes '*'
  kMaskAll,  // PIX 4.x: every character of the text after "220 " becomes '*'
  kReplace,  // the whole greeting becomes "220 " + banner_text (one line; the length changes)
};

enum class CommandAction : uint8_t {
  kAllow,   // forwarded untouched
  kLog,     // forwarded untouched, and the decision is logged
  kMask,    // verb and arguments become 'X' (same length): the server answers 500
  kNoop,    // PIX 4.x: the line becomes "NOOP" padded with spaces: the server answers 250
  kAnswer,  // removed from the stream; the gateway replies `answer_reply` in the server's place
  kReset,   // the connection is reset both ways (RST to client and server)
  kDrop,    // drop-connection: the command never reaches the server, and every later packet of
            // the connection is dropped silently (no RST: both ends time out, as on an ASA)
};

enum class KeywordAction : uint8_t {
  kAllow,  // forwarded untouched
  kMask,   // the keyword becomes X's ending in 'A' (STARTTLS -> XXXXXXXA), same length
  kStrip,  // the whole line is removed from the EHLO reply (the reply stays well-formed)
};

// What a parameter check does when a limit is exceeded or a pattern matches (ASA `parameters`
// and `match` criteria of `policy-map type inspect esmtp`). Which of them make sense depends on
// where the check looks: a command line can be masked, a message body cannot (see Checks).
enum class CheckAction : uint8_t {
  kOff,             // the check is not made
  kLog,             // logged and counted, the bytes pass
  kMask,            // command checks only: the command line is X'd, the server answers 500
  kReset,           // RST to both ends
  kDropConnection,  // every later packet dropped silently
  kSanitize,        // check.smuggling only: every stray CR, stray LF and NUL of the message
                    // becomes a space (same length); the message goes on (smtp/stray_bytes)
};

// A numeric limit: exceeded when the measured value is greater than `max`.
struct Limit {
  CheckAction action = CheckAction::kOff;
  uint64_t max = 0;
  bool operator==(const Limit&) const = default;
};

// A list of patterns and what to do when one matches.
struct PatternCheck {
  CheckAction action = CheckAction::kOff;
  // Case-insensitive. For addresses and domains: "*" matches any run of characters, "?" one.
  std::vector<std::string> patterns;
  bool operator==(const PatternCheck&) const = default;
};

// ASA's ESMTP parameter checks. Where a check looks decides which actions it allows:
// command checks (on MAIL/RCPT/any command line) allow every action; reply, header and body
// checks allow log, reset and drop-connection (the bytes are the server's or the message's).
struct Checks {
  Limit command_line;  // bytes of a command line, CRLF included (ASA: cmd line length)
  Limit reply_line;    // bytes of a reply line, CRLF included (ASA: cmd RESP line length)
  CheckAction special_chars = CheckAction::kOff;  // | ` NUL or a control byte in a MAIL/RCPT
                                                  // address (ASA 108002/108003)
  Limit sender_length;         // characters of the MAIL FROM address (ASA: sender-address length)
  PatternCheck sender;         // MAIL FROM addresses that match (ASA: sender-address regex)
  PatternCheck relay;          // RCPT domains NOT matching any pattern (ASA: mail-relay domain)
  Limit recipients;            // RCPT commands in one transaction (ASA: ecode ... rcpt count)
  Limit invalid_recipients;    // 5xx replies to RCPT in one session (ASA: invalid-recipients)
  Limit header_line;           // bytes of a header line, CRLF included (ASA: header line length)
  Limit to_fields;             // To: header fields in one message (ASA: header to-fields count)
  Limit body_line;             // bytes of a body line, CRLF included (ASA: body line length)
  Limit message_size;          // bytes of a message (DATA body or BDAT chunks), or a larger
                               // SIZE= declared in MAIL FROM (ASA: message size / 108006)
  Limit mime_filename;         // characters of a MIME attachment's file name (ASA: mime
                               // filename length)
  PatternCheck mime_filetype;  // attachment file names matching (e.g. "*.exe") (ASA: mime
                               // filetype)
  PatternCheck mime_encoding;  // Content-Transfer-Encoding values matching (ASA: mime
                               // encoding)
  // SMTP smuggling (CVE-2023-51764/51765/51766): a bare CR or LF, a NUL, or a "." line ended
  // or introduced by anything but CRLF, anywhere in a message (DATA body or BDAT chunks).
  // Actions log, reset, drop-connection and sanitize.
  CheckAction smuggling = CheckAction::kOff;
  // STARTTLS injection (CVE-2011-0411 class, "NO STARTTLS"): client bytes after STARTTLS before
  // the server's 220, server bytes after that 220 before the client's first TLS record, or client
  // bytes after the 220 that do not start a TLS record. Log, reset or drop-connection.
  CheckAction starttls_injection = CheckAction::kOff;
  // Early talker (postscreen's "pregreet"): a client byte before the server's greeting ended
  // (the last line of a multi-line 220). Decided at the first such byte. Log, reset or
  // drop-connection; reset and drop-connection keep the bytes from the server.
  CheckAction early_talker = CheckAction::kOff;
  // Pipelining order (RFC 2920 section 3.1, RFC 4954): client input before the reply to a
  // command that must end a pipelined group (EHLO, DATA, VRFY, EXPN, TURN, ATRN, QUIT, NOOP,
  // AUTH but PLAIN/EXTERNAL with an initial response), or before any pending reply when the
  // server did not offer PIPELINING. A message sent before DATA's 354 is such input. Once per
  // connection, at its first byte. Log, reset or drop-connection.
  CheckAction pipelining = CheckAction::kOff;
  bool operator==(const Checks&) const = default;
};

// A command rule's rate limit: the first `per_second` matches in a second pass as `allow`, the
// rest get the rule's action. 0: every match gets the action.
struct RateLimit {
  uint32_t per_second = 0;
  bool operator==(const RateLimit&) const = default;
};

struct Profile {
  std::string name;
  std::string description;
  BannerAction banner = BannerAction::kPass;
  std::array<CommandAction, smtp::kVerbCount> verbs{};  // action per known verb
  CommandAction unknown_verb = CommandAction::kAllow;   // action for any other verb
  std::array<KeywordAction, smtp::kEhloKeywordCount> keywords{};
  KeywordAction unknown_keyword = KeywordAction::kAllow;
  // What the gateway tells a client whose command it answered (kAnswer), without CRLF; a verb
  // may have its own (verb_replies, empty = this one).
  std::string answer_reply = "550 5.7.1 Command blocked by policy";
  std::array<std::string, smtp::kVerbCount + 1> verb_replies{};  // last: unknown verbs
  std::array<RateLimit, smtp::kVerbCount + 1> verb_rates{};      // last: unknown verbs
  std::string banner_text;  // kReplace: the greeting's text after "220 ", without CRLF
  Checks checks;
  size_t max_command_line = 512;  // RFC 5321 4.5.3.1.4, including CRLF
  size_t max_reply_line = 512;    // RFC 5321 4.5.3.1.5
  size_t max_text_line = 1000;    // RFC 5321 4.5.3.1.6 (DATA body)

  CommandAction verb_action(smtp::Verb v) const {
    return v == smtp::Verb::kUnknown ? unknown_verb : verbs[static_cast<size_t>(v)];
  }
  const std::string& reply_for(smtp::Verb v) const {
    const std::string& r = verb_replies[static_cast<size_t>(v)];
    return r.empty() ? answer_reply : r;
  }
  RateLimit rate_for(smtp::Verb v) const { return verb_rates[static_cast<size_t>(v)]; }
  KeywordAction keyword_action(smtp::EhloKeyword k) const {
    return k == smtp::EhloKeyword::kUnknown ? unknown_keyword : keywords[static_cast<size_t>(k)];
  }
};

// The names configuration files and logs use ("allow", "drop-connection", ...).
std::string_view to_string(CommandAction a);
std::string_view to_string(CheckAction a);
std::string_view to_string(KeywordAction a);
std::string_view to_string(BannerAction a);

// The built-in profiles by name; nullptr for an unknown name.
std::shared_ptr<const Profile> builtin_profile(std::string_view name);
std::vector<std::string_view> builtin_profile_names();

}  // namespace sg::policy

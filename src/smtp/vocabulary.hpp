#pragma once
// SMTP verbs and EHLO keywords, declared once. Parsers, policy, profiles and logs use these.
#include <cstdint>
#include <optional>
#include <string_view>

namespace sg::smtp {

// X(enum name, wire text, comment)
#define SG_VERBS(X)                                                           \
  X(kHelo, "HELO", "RFC 5321 greeting")                                       \
  X(kEhlo, "EHLO", "RFC 5321 extended greeting")                              \
  X(kMail, "MAIL", "starts a transaction")                                    \
  X(kRcpt, "RCPT", "adds a recipient")                                        \
  X(kData, "DATA", "message follows after 354")                               \
  X(kBdat, "BDAT", "RFC 3030 chunk of a byte count")                          \
  X(kRset, "RSET", "aborts the transaction")                                  \
  X(kNoop, "NOOP", "does nothing")                                            \
  X(kQuit, "QUIT", "closes the session")                                      \
  X(kVrfy, "VRFY", "verifies an address (address harvesting)")                \
  X(kExpn, "EXPN", "expands a list (address harvesting)")                     \
  X(kHelp, "HELP", "help text")                                               \
  X(kStarttls, "STARTTLS", "RFC 3207: TLS follows after 220")                 \
  X(kAuth, "AUTH", "RFC 4954 authentication exchange")                        \
  X(kEtrn, "ETRN", "RFC 1985 remote queue start")                             \
  X(kTurn, "TURN", "role reversal without authentication (RFC 821)")          \
  X(kAtrn, "ATRN", "RFC 2645 authenticated TURN")                             \
  X(kSaml, "SAML", "send and mail (obsolete)")                                \
  X(kSend, "SEND", "send to terminal (obsolete)")                             \
  X(kSoml, "SOML", "send or mail (obsolete)")                                 \
  X(kXexch50, "XEXCH50", "Exchange 2000 binary blob (heap overflow history)") \
  X(kXlink2state, "X-LINK2STATE", "Exchange routing state (CVE-2005-0560)")   \
  X(kXexps, "X-EXPS", "Exchange extended authentication")

enum class Verb : uint8_t {
#define SG_X(name, text, comment) name,
  SG_VERBS(SG_X)
#undef SG_X
      kUnknown,  // anything else: policy decides through its default action
};
inline constexpr size_t kVerbCount = static_cast<size_t>(Verb::kUnknown);

// X(enum name, wire text, comment)
#define SG_EHLO_KEYWORDS(X)                                  \
  X(kStarttls, "STARTTLS", "RFC 3207")                       \
  X(kAuth, "AUTH", "RFC 4954")                               \
  X(kPipelining, "PIPELINING", "RFC 2920")                   \
  X(kSize, "SIZE", "RFC 1870")                               \
  X(k8bitmime, "8BITMIME", "RFC 6152")                       \
  X(kBinarymime, "BINARYMIME", "RFC 3030")                   \
  X(kChunking, "CHUNKING", "RFC 3030 (BDAT)")                \
  X(kDsn, "DSN", "RFC 3461")                                 \
  X(kEnhancedstatuscodes, "ENHANCEDSTATUSCODES", "RFC 2034") \
  X(kSmtputf8, "SMTPUTF8", "RFC 6531")                       \
  X(kEtrn, "ETRN", "RFC 1985")                               \
  X(kVrfy, "VRFY", "RFC 5321")                               \
  X(kCheckpoint, "CHECKPOINT", "RFC 1845")                   \
  X(kHelp, "HELP", "RFC 5321")                               \
  X(kTurn, "TURN", "obsolete role reversal")                 \
  X(kAtrn, "ATRN", "RFC 2645")                               \
  X(kXexch50, "XEXCH50", "Exchange 2000")                    \
  X(kXlink2state, "X-LINK2STATE", "Exchange")                \
  X(kXexps, "X-EXPS", "Exchange")

enum class EhloKeyword : uint8_t {
#define SG_X(name, text, comment) name,
  SG_EHLO_KEYWORDS(SG_X)
#undef SG_X
      kUnknown,
};
inline constexpr size_t kEhloKeywordCount = static_cast<size_t>(EhloKeyword::kUnknown);

std::string_view to_string(Verb v);
std::string_view to_string(EhloKeyword k);
// Case-insensitive lookup of a complete token.
Verb parse_verb(std::string_view token);
EhloKeyword parse_ehlo_keyword(std::string_view token);
// True when `prefix` (case-insensitive) is a proper or equal prefix of the verb's text.
bool verb_starts_with(Verb v, std::string_view prefix);
bool keyword_starts_with(EhloKeyword k, std::string_view prefix);

// How a command line splits into words: the one tokeniser of every rule that reads a verb or
// an argument (policy, checks, pipelining, the session's DATA/BDAT/AUTH/STARTTLS transitions).
// Servers split on any white space: Postfix (smtpd_token: ISSPACE) and Sendmail (isspace) skip
// blanks before the verb and end it at SP, HT, VT or FF; Exim ends a verb at isspace too. CR
// and LF end the line, so they end a word as well. The gateway must split at least wherever one
// of them does, or `" VRFY x"` and `"EXPN\vroot"` would pass as unknown verbs.
bool is_command_blank(char c);

struct CommandToken {
  size_t start = 0;         // offset of the word's first byte in the line
  std::string_view text;    // the word (empty: only blanks, or nothing, from `from` on)
  bool terminated = false;  // a blank or line ending follows it: the word is complete
  size_t end() const { return start + text.size(); }
};
// The word at or after `from`, blanks before it skipped.
CommandToken command_token(std::string_view line, size_t from = 0);
// The verb of a command line: its first word.
inline CommandToken command_verb(std::string_view line) {
  return command_token(line, 0);
}

}  // namespace sg::smtp

#pragma once
// The argument of a MAIL FROM: / RCPT TO: command line (RFC 5321 4.1.2), parsed the tolerant way
// real servers do, for the address checks of the policy (ASA sender-address length and pattern,
// mail-relay domain, special characters, declared SIZE).
//
// Pure and allocation-free: every view in the result points into the line the caller passed, so
// the result lives no longer than that line. Never throws; garbage gets a status, and every field
// parsed before the garbage is still set (so a pipe in an unterminated path is still reported).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "smtp/vocabulary.hpp"

namespace sg::smtp {

// X(enum name, name in logs) /* meaning */
#define SG_MAIL_PARAM_STATUSES(X)                                                                 \
  X(kOk, "ok")                                /* the line parsed */                               \
  X(kNotMailOrRcpt, "not_mail_or_rcpt")       /* no "MAIL FROM:" / "RCPT TO:" at the start */     \
  X(kMissingPath, "missing_path")             /* nothing after the colon */                       \
  X(kUnterminatedPath, "unterminated_path")   /* '<' without its '>' */                           \
  X(kUnterminatedQuote, "unterminated_quote") /* a quoted local part without its closing quote */ \
  X(kBadBrackets, "bad_brackets")             /* '<' or '>' where none may be */                  \
  X(kBadSourceRoute, "bad_source_route")      /* a route not of the form "@a,@b:" */              \
  X(kJunkAfterPath, "junk_after_path")        /* text glued to the closing '>' */                 \
  X(kBadParameter, "bad_parameter")           /* an ESMTP parameter not keyword[=value] */        \
  X(kBadSize, "bad_size") /* SIZE= not 1-20 digits, above 2^64-1, or given twice */

enum class MailParamStatus : uint8_t {
#define SG_X(name, text) name,
  SG_MAIL_PARAM_STATUSES(SG_X)
#undef SG_X
};
std::string_view to_string(MailParamStatus s);

struct MailParams {
  MailParamStatus status = MailParamStatus::kNotMailOrRcpt;
  Verb verb = Verb::kUnknown;  // kMail or kRcpt
  // The mailbox as sent: local@domain, a quoted local part kept with its quotes and escapes;
  // without brackets and without a source route. Empty for the null path "<>".
  std::string_view address;
  std::string_view local_part;    // before the last '@' outside quotes (the whole address if none)
  std::string_view domain;        // after that '@'; empty when there is none ("<postmaster>")
  std::string_view source_route;  // "@a,@b" of "<@a,@b:user@host>", without the ':'
  std::string_view parameters;    // the ESMTP parameters after the path, as sent
  std::optional<uint64_t> declared_size;  // SIZE= (RFC 1870), whatever the verb
  std::string_view body;                  // BODY= value (7BIT, 8BITMIME, BINARYMIME)
  bool smtputf8 = false;                  // SMTPUTF8 parameter (RFC 6531)
  bool brackets = true;    // the path was in angle brackets (Postfix accepts it without)
  bool null_path = false;  // "<>"
  // ASA's "special character" check: '|', '`', NUL or any control byte (0x00-0x1f, 0x7f)
  // anywhere in the path (source route and quoted local part included, brackets excluded).
  bool special_chars = false;
  size_t special_index = 0;  // offset of the first one in the line passed to parse_mail_params
};

// Parses a complete command line ("MAIL FROM:<a@b> SIZE=10\r\n"; the line ending is optional).
// Accepted beyond RFC 5321: any case, spaces or tabs around the colon, no angle brackets
// (the path then ends at the first space), runs of spaces between parameters.
MailParams parse_mail_params(std::string_view line);

// Case-insensitive (ASCII) glob: '*' matches any run of characters, '?' exactly one; everything
// else matches itself. Iterative with one backtrack point: O(pattern x text) at worst, never
// exponential, whatever the number of stars.
bool match_pattern(std::string_view pattern, std::string_view text);

}  // namespace sg::smtp

#pragma once
// What one probe session sent and received, step by step: the evidence every finding quotes.
// A transcript also has a readable ASCII form ("S: 220 ...", "C: EHLO ...") that the report
// prints and the unit tests are written in; format_transcript and parse_transcript are inverses.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/expected.hpp"

namespace sg::probe {

// X(enum name, name in JSON and in the text form, comment)
#define SG_PROBE_STEPS(X)                                                                     \
  X(kBanner, "banner", "the greeting, read before anything is sent")                          \
  X(kEhlo, "ehlo", "EHLO: which extensions the path lets through")                            \
  X(kHelo, "helo", "HELO, when EHLO was refused or answered like NOOP")                       \
  X(kUnknownVerb, "unknown_verb", "'goodmorning' (KB 320027): 500 direct, OK via PIX 4.x")    \
  X(kNoop, "noop", "NOOP: the reference reply of an accepted command that does nothing")      \
  X(kDeepVerb, "deep_verb", "--deep: a verb smtpguard's modern profile masks, no argument")   \
  X(kAuth, "auth", "--auth-check: AUTH with a mechanism and no credentials")                  \
  X(kAuthCancel, "auth_cancel", "'*': cancels the AUTH exchange after 334 (RFC 4954)")        \
  X(kMail, "mail", "--mail-from / --rcpt-to: MAIL FROM of a transaction that ends in RSET")   \
  X(kRcpt, "rcpt", "--rcpt-to: RCPT TO")                                                      \
  X(kStarttls, "starttls", "STARTTLS, when offered or masked the way ASA masks it")           \
  X(kTlsHandshake, "tls_handshake", "the TLS handshake after 220 (no reply: see TlsInfo)")    \
  X(kEhloTls, "ehlo_tls", "EHLO again inside TLS (RFC 3207: forget what was offered before)") \
  X(kRset, "rset", "RSET: ends the transaction, if any")                                      \
  X(kQuit, "quit", "QUIT")

enum class Step : uint8_t {
#define SG_X(name, text, comment) name,
  SG_PROBE_STEPS(SG_X)
#undef SG_X
};
std::string_view to_string(Step s);
std::optional<Step> parse_step(std::string_view name);

// One complete SMTP reply.
struct Reply {
  int code = 0;                    // from the first line; 0 when it does not start with 3 digits
  std::vector<std::string> lines;  // as received, without CR LF
  bool truncated = false;          // a line or the line count exceeded the parser's caps
  // The text after "NNN " / "NNN-" of every line, joined with a space.
  std::string text() const;
  bool positive() const { return code >= 200 && code < 400; }
  int klass() const { return code / 100; }
};

// How a step ended.
enum class StepStatus : uint8_t {
  kOk,       // sent (if anything) and a complete reply read
  kTimeout,  // nothing complete before the step's deadline
  kClosed,   // the connection ended during the step
  kError,    // a local or TLS error; `error` says which
};
std::string_view to_string(StepStatus s);
std::optional<StepStatus> parse_step_status(std::string_view name);

struct Exchange {
  Step step = Step::kBanner;
  std::string sent;            // the command line without CR LF; empty for the banner and TLS
  std::optional<Reply> reply;  // absent when the step did not end kOk
  StepStatus status = StepStatus::kOk;
  std::string error;  // for a status other than kOk: what happened
  uint32_t elapsed_ms = 0;
};

struct TlsInfo {
  bool ok = false;
  std::string protocol;      // "TLSv1.3"
  std::string cipher;        // "TLS_AES_256_GCM_SHA384"
  std::string peer_subject;  // the certificate's subject, one line
  std::string verify;        // "ok" or why the certificate chain did not verify (not required)
  std::string error;         // why the handshake failed
};

struct Transcript {
  std::string target;   // "host:port" as asked
  std::string address;  // what it was connected to: "198.18.2.1:25", "[2001:db8::1]:25"
  std::string failure;  // non-empty: nothing to classify (connection failed, no greeting)
  std::vector<Exchange> exchanges;
  std::optional<TlsInfo> tls;  // present when a handshake was attempted
  // Bytes the server sent after its 220 to STARTTLS and before the handshake (they belong to
  // nobody: a STARTTLS response injection if anything).
  std::string after_starttls;

  const Exchange* find(Step s) const;  // the first exchange of that step
  const Reply* reply(Step s) const;    // its reply, if it has one
  const Exchange* last() const { return exchanges.empty() ? nullptr : &exchanges.back(); }
};

// The readable form: "S: " received line, "C: " sent line, "T: ok|failed TEXT" the TLS
// handshake, "!: STATUS STEP TEXT" a step that did not end kOk, "#" comments. Steps are named
// by the commands ("goodmorning" is kUnknownVerb, the first EHLO after TLS is kEhloTls).
std::string format_transcript(const Transcript& t, std::string_view prefix = "");
Expected<Transcript, std::string> parse_transcript(std::string_view text);

// The step a command line belongs to (by its verb), given what came before.
Step step_of_command(std::string_view line, bool after_tls);

// The probe's own unknown verb, the one KB 320027 tells admins to type.
inline constexpr std::string_view kUnknownVerb = "goodmorning";

}  // namespace sg::probe

#pragma once
// The SMTP dialogue as a pure state machine over both byte streams.
//
// Contract (the same for both directions): `feed` consumes complete lines only - or everything,
// in phases that are not line-framed for us (DATA body, BDAT chunk, TLS) - and returns how many
// bytes it consumed. The caller keeps what was not consumed (a partial line, or client bytes that
// cannot be classified until the server has answered) and offers it again with more bytes.
// Commands and replies are paired through a queue of pending commands (PIPELINING, RFC 2920):
// a reply's meaning comes from the command it answers, never from guessing.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "smtp/vocabulary.hpp"

namespace sg::smtp {

enum class Dir : uint8_t { kClientToServer = 0, kServerToClient = 1 };
inline constexpr Dir opposite(Dir d) {
  return d == Dir::kClientToServer ? Dir::kServerToClient : Dir::kClientToServer;
}

// What the next unconsumed bytes of a direction are.
enum class LineKind : uint8_t {
  kCommand,       // a client command line
  kAuthResponse,  // a client line answering a 334 challenge (base64, never a command)
  kDataBody,      // DATA body bytes up to and including CRLF.CRLF
  kBdatChunk,     // the counted bytes of a BDAT chunk
  kAwaitReply,    // client bytes sent before the reply that says what they are (after DATA,
                  // AUTH, STARTTLS): not consumed until that reply arrives
  kGreeting,      // a line of the server's greeting
  kEhloReply,     // a line of the reply to EHLO (line 0 is the domain, the others keywords)
  kReply,         // a line of any other reply
  kPassthrough,   // TLS started, session closed or inspection gave up: bytes are not parsed
};
std::string_view to_string(LineKind k);

struct CommandLine {
  uint64_t pos = 0;       // stream offset of the first byte
  std::string_view line;  // the whole line including its line ending
  std::string_view verb;  // the first word as sent (command_verb: blanks before it skipped)
  Verb verb_id = Verb::kUnknown;
  LineKind kind = LineKind::kCommand;  // kCommand or kAuthResponse
  bool cut = false;                    // longer than the cap: this piece ends without a line ending
  bool continuation = false;           // continues a line that was cut (verb is empty)
};

struct ReplyLine {
  uint64_t pos = 0;
  std::string_view line;             // the whole line including its line ending
  uint16_t code = 0;                 // 0 when the line does not start with three digits
  bool last = true;                  // separator is not '-'
  LineKind kind = LineKind::kReply;  // kGreeting, kEhloReply or kReply
  uint16_t index = 0;                // line number within the reply
  Verb answers = Verb::kUnknown;     // the command this reply answers (kUnknown for the greeting)
  bool cut = false;                  // longer than the cap: this piece ends without a line ending
  bool continuation = false;         // continues a line that was cut
};

// Anomalies are named events, not errors: the session carries on with a documented fallback.
#define SG_SMTP_ANOMALIES(X)                                                                \
  X(kOverlongLine, "overlong_line")         /* line longer than the cap: cut into pieces */ \
  X(kMalformedReply, "malformed_reply")     /* reply line without a 3-digit code */         \
  X(kUnsolicitedReply, "unsolicited_reply") /* a reply with no command pending */           \
  X(kExcessivePending, "excessive_pending") /* more pipelined commands than tracked */      \
  X(kDataAfterQuit, "data_after_quit")      /* client bytes after QUIT */                   \
  /* a BDAT line whose chunk size is not unambiguous (no size, not all digits, overflow, */ \
  /* a word after it other than LAST): the chunk the server reads is unknown */             \
  X(kUnreadableBdat, "unreadable_bdat")                                                     \
  /* a DATA body line "." begun or ended by a bare CR or LF: an end of data for lenient */  \
  /* servers that the gateway, reading CRLF.CRLF only, does not see */                      \
  X(kLooseEndOfData, "loose_end_of_data")

enum class Anomaly : uint8_t {
#define SG_X(name, text) name,
  SG_SMTP_ANOMALIES(SG_X)
#undef SG_X
};
std::string_view to_string(Anomaly a);

// Client input that arrived while the client had to wait for a reply (RFC 2920 section 3.1: a
// command after a group terminator, or any pipelining where PIPELINING was not offered). Only
// the arrival is reported, at the first byte of the offending input; the bytes are parsed as
// usual.
struct PipelinedInput {
  uint64_t pos = 0;             // client stream offset of the first byte that came too early
  Verb after = Verb::kUnknown;  // the command whose reply the client should have waited for
  bool after_body_end = false;  // ... or the end of a DATA body
  bool terminator = false;      // `after` must end a group (else: PIPELINING was not offered)
};

// What becomes of a command line once the sink has seen it.
enum class CommandFate : uint8_t {
  kForwarded,    // it reaches the server, which answers it
  kAnswered,     // removed from the stream: the gateway answers it in the server's place
  kNeutralised,  // its verb reaches the server X'd or as NOOP: the server answers it (500, 250)
                 // but no DATA, BDAT, AUTH or STARTTLS phase follows, whatever the verb was
};

// The verbs whose line moves the client's next bytes out of command mode (a DATA body, a BDAT
// chunk, an AUTH response, TLS): a gateway that let such a line's verb pass while its end was
// still unknown could no longer neutralise it if the line is cut (see FlowInspector).
bool opens_phase(Verb v);

class SessionSink {
 public:
  virtual ~SessionSink() = default;
  // The fate of a continuation piece is that of the line's first piece.
  virtual CommandFate on_command(const CommandLine& c) = 0;
  // The reply to a command the gateway answers belongs at server stream offset `pos`: after the
  // replies to every command before it, before the replies to every command after it.
  virtual void on_gateway_reply(uint64_t /*pos*/, Verb /*answers*/) {}
  virtual void on_reply(const ReplyLine& r) = 0;
  virtual void on_body_end(uint64_t /*pos*/) {}  // CRLF.CRLF of a DATA body consumed
  // Bytes of a message as they are consumed: a DATA body (its CRLF.CRLF included) or BDAT
  // chunks. `on_message_end` follows the last of them (end of data, or the BDAT LAST chunk).
  // `chunked`: BDAT (a CRLF.CRLF inside is data), else a DATA body.
  virtual void on_message_bytes(uint64_t /*pos*/, std::span<const uint8_t> /*bytes*/,
                                bool /*chunked*/) {}
  virtual void on_message_end(uint64_t /*pos*/) {}
  virtual void on_tls_start() {}  // 220 to STARTTLS: inspection stops
  virtual void on_anomaly(Dir /*dir*/, Anomaly /*a*/) {}
  virtual void on_pipelined(const PipelinedInput& /*p*/) {}
};

struct SessionLimits {
  size_t max_command_line = 512;  // longer lines are consumed in pieces of this size
  size_t max_reply_line = 512;
  // RFC 4954 section 4: an AUTH command line (its initial response included: XOAUTH2 and
  // GSSAPI tokens run to kilobytes) and each line answering a 334 may be 12288 octets.
  size_t max_auth_line = 12288;
};

class Session {
 public:
  explicit Session(SessionLimits limits = {});

  // Offers the unconsumed bytes of `dir`, starting at stream offset `pos`. Returns the number of
  // bytes consumed from the front.
  size_t feed(Dir dir, uint64_t pos, std::span<const uint8_t> bytes, SessionSink& sink);

  LineKind next_kind(Dir dir) const;
  // For kEhloReply/kReply/kGreeting: the index the next reply line will have.
  uint16_t next_reply_index() const { return reply_index_; }
  // Stops parsing both directions (TLS, desync, reset): every later byte is passthrough.
  void stop() { stopped_ = true; }
  bool stopped() const { return stopped_; }
  bool in_tls() const { return tls_; }
  // STARTTLS was sent and its reply has not come: the client may send nothing now (RFC 3207).
  bool awaiting_starttls() const {
    return awaiting_starttls_ && client_ == ClientPhase::kAwaitReply;
  }
  // The greeting's final line has been consumed (a client byte before it talked early).
  bool greeted() const { return greeted_; }
  // A profile that masks or strips the PIPELINING keyword hides the offer from the client.
  void withdraw_pipelining() { pipelining_offered_ = false; }
  // The cap on the line in progress of `dir` (for the client: max_auth_line for an AUTH command
  // or response, once its verb is known, else max_command_line).
  size_t line_cap(Dir dir) const;

 private:
  // Commands awaiting a reply, oldest first, as a ring (PIPELINING). The end of a DATA body gets
  // a reply of its own: it is queued as DATA with `body_end` set.
  struct Pending {
    Verb verb = Verb::kUnknown;
    bool body_end = false;
    bool answered = false;    // the gateway answers it: the server never saw it
    bool ends_group = false;  // the client must wait for its reply (RFC 2920 section 3.1)
  };
  static constexpr size_t kRing = 128;
  // The ring keeps a Pending in one byte (every connection carries the ring): the verb in the
  // low five bits, the three flags above it.
  static_assert(kVerbCount + 1 <= 32, "a verb fits in five bits");
  static uint8_t pack(const Pending& p) {
    return static_cast<uint8_t>(static_cast<uint8_t>(p.verb) | (p.body_end ? 0x20 : 0) |
                                (p.answered ? 0x40 : 0) | (p.ends_group ? 0x80 : 0));
  }
  static Pending unpack(uint8_t b) {
    return {static_cast<Verb>(b & 0x1f), (b & 0x20) != 0, (b & 0x40) != 0, (b & 0x80) != 0};
  }
  // The i-th command awaiting a reply, oldest first (i < pending_count_).
  Pending pending_at(size_t i) const { return unpack(pending_[(pending_head_ + i) % kRing]); }

  size_t feed_client(uint64_t pos, std::span<const uint8_t> bytes, SessionSink& sink);
  size_t feed_server(uint64_t pos, std::span<const uint8_t> bytes, SessionSink& sink);
  size_t feed_body(std::span<const uint8_t> bytes, uint64_t pos, SessionSink& sink);
  void on_final_reply(uint16_t code, SessionSink& sink);
  void push_pending(Pending p, SessionSink& sink);
  // Gives every gateway-answered command at the head of the queue its reply, at server_pos_.
  void answer_head(SessionSink& sink);
  std::optional<Pending> head() const {
    if (pending_count_ == 0) return std::nullopt;
    return pending_at(0);
  }
  // Reports client input at `pos` that arrives while a reply is still owed that the client had
  // to wait for (once per position).
  void check_pipelining(uint64_t pos, SessionSink& sink);

  enum class ClientPhase : uint8_t {
    kCommand,       // reading command lines
    kAwaitReply,    // DATA / AUTH / STARTTLS sent: wait for the reply
    kAuthResponse,  // one line answering a 334
    kBody,          // inside a DATA body
    kBdat,          // inside a BDAT chunk of bdat_left_ bytes
  };

  // Wide fields first, then the bytes: every connection carries a Session.
  SessionLimits limits_;
  size_t client_cap_;  // the cap of the client line in progress
  ClientPhase client_ = ClientPhase::kCommand;
  bool greeted_ = false;  // the greeting's final line has been seen
  bool tls_ = false;
  bool awaiting_starttls_ = false;
  bool stopped_ = false;
  bool overlong_client_ = false;  // the current client line was cut: the next piece continues it
  bool overlong_server_ = false;
  // End-of-data recogniser of a DATA body: what the bytes so far end with. The end is CRLF "."
  // CRLF only; a "." line that a bare CR or LF begins or ends is an end only for lenient
  // servers (Postfix before smtpd_forbid_bare_newline, Sendmail, others with bare CR) and is
  // reported (kLooseEndOfData), never taken.
  enum class BodyState : uint8_t {
    kMid,         // inside a line
    kCr,          // a CR whose next byte has not come yet
    kLineStart,   // after CRLF (where the body starts too)
    kLooseStart,  // after a bare LF or a bare CR: a line start for lenient servers only
    kDot,         // CRLF "."
    kDotCr,       // CRLF "." CR
    kLooseDot,    // a loose line start, then "."
  };
  BodyState body_state_ = BodyState::kLineStart;
  bool bdat_last_ = false;
  // Pipelining bookkeeping: whether the last EHLO reply offered PIPELINING (cleared by every
  // HELO/EHLO), and the client offset already checked for input that came too early.
  bool pipelining_offered_ = false;
  uint16_t reply_index_ = 0;
  uint8_t pending_head_ = 0;   // the ring's oldest entry (pending_)
  uint8_t pending_count_ = 0;  // up to kRing
  uint64_t bdat_left_ = 0;
  uint64_t server_pos_ = 0;  // server stream offset after the last consumed byte
  uint64_t pipelining_checked_ = UINT64_MAX;
  std::array<uint8_t, kRing> pending_{};  // Pending entries, packed (pack, unpack)
};

}  // namespace sg::smtp

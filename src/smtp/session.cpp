#include "smtp/session.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "util/ascii.hpp"

namespace sg::smtp {
namespace {

std::string_view as_text(std::span<const uint8_t> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// BDAT SP chunk-size [SP LAST] (RFC 3030), words split as servers split them (Postfix and Exim
// on any white space). False when the line does not say one chunk size unambiguously: no size,
// a size that is not all digits or does not fit, or any word after it but one LAST. Servers
// refuse such a line or read it their own way; which chunk follows is then unknown.
bool parse_bdat(std::string_view line, uint64_t& size, bool& last) {
  const CommandToken verb = command_verb(line);
  const CommandToken count = command_token(line, verb.end());
  if (count.text.empty()) return false;
  for (char c : count.text)
    if (!is_digit(c)) return false;  // no sign, no "0x": from_chars alone would stop early
  const char* end = count.text.data() + count.text.size();
  auto [ptr, ec] = std::from_chars(count.text.data(), end, size);
  if (ec != std::errc() || ptr != end) return false;  // overflow
  const CommandToken word = command_token(line, count.end());
  last = false;
  if (word.text.empty()) return true;
  if (!iequals(word.text, "LAST")) return false;
  last = true;
  return command_token(line, word.end()).text.empty();
}

// Whether the client must wait for the reply to this command before it sends another: it can
// only be the last command of a pipelined group.
// - RFC 2920 section 3.1: EHLO, DATA, VRFY, EXPN, TURN, QUIT and NOOP ("NOOP ... so it can be
//   used as a synchronization point"). ATRN (RFC 2645) reverses the roles as TURN does.
// - RFC 4954 section 4: AUTH, except with an initial response for a mechanism that completes in
//   one round trip without a security layer (PLAIN, EXTERNAL). A line answering a 334 is the
//   same exchange: the client waits for the next challenge or the outcome.
// - RFC 3207 makes STARTTLS a group terminator too, but input after it is the STARTTLS
//   injection check's business (FlowInspector): it is never reported here.
// - RFC 3030: BDAT chunks, BDAT LAST included, may be pipelined; nothing after them is reported
//   while PIPELINING was offered. RSET, MAIL, RCPT, SEND, SOML, SAML may appear anywhere
//   (RFC 2920); other verbs, HELP, ETRN and unknown ones are not treated as terminators (a
//   false alarm on legitimate mail costs more than a missed one).
// The end of a DATA body is not a command: ".\r\nQUIT\r\n" is RFC 2920's own example.
bool ends_group(Verb v, std::string_view line) {
  switch (v) {
    case Verb::kEhlo:
    case Verb::kData:
    case Verb::kVrfy:
    case Verb::kExpn:
    case Verb::kTurn:
    case Verb::kAtrn:
    case Verb::kQuit:
    case Verb::kNoop:
      return true;
    case Verb::kAuth: {
      // AUTH SP mechanism [SP initial-response]
      const CommandToken mechanism = command_token(line, command_verb(line).end());
      const bool initial_response = !command_token(line, mechanism.end()).text.empty();
      return !(initial_response &&
               (iequals(mechanism.text, "PLAIN") || iequals(mechanism.text, "EXTERNAL")));
    }
    default:
      return false;
  }
}

}  // namespace

bool opens_phase(Verb v) {
  return v == Verb::kData || v == Verb::kBdat || v == Verb::kAuth || v == Verb::kStarttls;
}

std::string_view to_string(LineKind k) {
  switch (k) {
    case LineKind::kCommand:
      return "command";
    case LineKind::kAuthResponse:
      return "auth_response";
    case LineKind::kDataBody:
      return "data_body";
    case LineKind::kBdatChunk:
      return "bdat_chunk";
    case LineKind::kAwaitReply:
      return "await_reply";
    case LineKind::kGreeting:
      return "greeting";
    case LineKind::kEhloReply:
      return "ehlo_reply";
    case LineKind::kReply:
      return "reply";
    case LineKind::kPassthrough:
      return "passthrough";
  }
  return "?";
}

std::string_view to_string(Anomaly a) {
  switch (a) {
#define SG_X(name, text) \
  case Anomaly::name:    \
    return text;
    SG_SMTP_ANOMALIES(SG_X)
#undef SG_X
  }
  return "?";
}

Session::Session(SessionLimits limits) : limits_(limits), client_cap_(limits.max_command_line) {}

LineKind Session::next_kind(Dir dir) const {
  if (stopped_) return LineKind::kPassthrough;
  if (dir == Dir::kServerToClient) {
    if (!greeted_) return LineKind::kGreeting;
    const std::optional<Pending> h = head();
    return (h && h->verb == Verb::kEhlo) ? LineKind::kEhloReply : LineKind::kReply;
  }
  switch (client_) {
    case ClientPhase::kCommand:
      return LineKind::kCommand;
    case ClientPhase::kAwaitReply:
      return LineKind::kAwaitReply;
    case ClientPhase::kAuthResponse:
      return LineKind::kAuthResponse;
    case ClientPhase::kBody:
      return LineKind::kDataBody;
    case ClientPhase::kBdat:
      return LineKind::kBdatChunk;
  }
  return LineKind::kPassthrough;
}

size_t Session::line_cap(Dir dir) const {
  return dir == Dir::kClientToServer ? client_cap_ : limits_.max_reply_line;
}

size_t Session::feed(Dir dir, uint64_t pos, std::span<const uint8_t> bytes, SessionSink& sink) {
  size_t done = 0;
  // Each pass consumes one line or one phase's worth of bytes; a pass that consumes nothing
  // means the rest must wait for more bytes or for the other direction.
  while (done < bytes.size()) {
    if (stopped_) return bytes.size();
    auto rest = bytes.subspan(done);
    size_t n = dir == Dir::kClientToServer ? feed_client(pos + done, rest, sink)
                                           : feed_server(pos + done, rest, sink);
    if (n == 0) break;
    done += n;
  }
  return stopped_ ? bytes.size() : done;
}

void Session::push_pending(Pending p, SessionSink& sink) {
  if (pending_count_ == kRing) {
    sink.on_anomaly(Dir::kClientToServer, Anomaly::kExcessivePending);
    return;
  }
  pending_[(pending_head_ + pending_count_) % kRing] = pack(p);
  ++pending_count_;
}

size_t Session::feed_body(std::span<const uint8_t> bytes, uint64_t pos, SessionSink& sink) {
  // The state survives any split of the stream. A "." line that only a lenient server ends the
  // data at is reported where the bytes say so, and the body goes on: what such a server does
  // next is not the gateway's to guess (the sink decides; see BodyState).
  using S = BodyState;
  const auto* data = bytes.data();
  // Message bytes are handed on up to each report, so the sink sees them and the report in
  // stream order however the stream is cut.
  size_t handed = 0;
  auto loose_end = [&](size_t i) {
    sink.on_message_bytes(pos + handed, bytes.subspan(handed, i + 1 - handed), false);
    handed = i + 1;
    sink.on_anomaly(Dir::kClientToServer, Anomaly::kLooseEndOfData);
  };
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (body_state_ == S::kMid) {
      // Only CR or LF leaves kMid: the common case, a long run inside a line, is two memchr.
      const size_t n = bytes.size() - i;
      const void* cr = std::memchr(data + i, '\r', n);
      const size_t to_cr = cr ? static_cast<size_t>(static_cast<const uint8_t*>(cr) - data) - i : n;
      const void* lf = std::memchr(data + i, '\n', to_cr);
      if (!cr && !lf) break;
      i = lf ? static_cast<size_t>(static_cast<const uint8_t*>(lf) - data) : i + to_cr;
    }
    const uint8_t c = bytes[i];
    switch (body_state_) {
      case S::kMid:
      case S::kLineStart:
      case S::kLooseStart:
        if (c == '.' && body_state_ != S::kMid) {
          body_state_ = body_state_ == S::kLineStart ? S::kDot : S::kLooseDot;
        } else {
          body_state_ = c == '\r' ? S::kCr : (c == '\n' ? S::kLooseStart : S::kMid);
        }
        break;
      case S::kCr:
        // CR LF is a line end; a CR before anything else was a bare one.
        body_state_ = c == '\n'   ? S::kLineStart
                      : c == '\r' ? S::kCr
                      : c == '.'  ? S::kLooseDot
                                  : S::kMid;
        break;
      case S::kDot:
        if (c == '\n') {  // CRLF "." LF
          loose_end(i);
          body_state_ = S::kLooseStart;
        } else {
          body_state_ = c == '\r' ? S::kDotCr : S::kMid;  // else a dot-stuffed line
        }
        break;
      case S::kDotCr:
        if (c == '\n') {
          client_ = ClientPhase::kCommand;
          body_state_ = S::kLineStart;
          push_pending({Verb::kData, true}, sink);
          sink.on_message_bytes(pos + handed, bytes.subspan(handed, i + 1 - handed), false);
          sink.on_body_end(pos + i + 1);
          sink.on_message_end(pos + i + 1);
          return i + 1;
        }
        // CRLF "." CR and no LF: the CR was bare.
        loose_end(i);
        body_state_ = c == '\r' ? S::kCr : (c == '.' ? S::kLooseDot : S::kMid);
        break;
      case S::kLooseDot:
        if (c == '\r' || c == '\n') {
          // Begun loose, any line end ends it for a lenient server: no need to wait for an LF.
          loose_end(i);
          body_state_ = c == '\r' ? S::kCr : S::kLooseStart;
        } else {
          body_state_ = S::kMid;
        }
        break;
    }
  }
  if (handed < bytes.size()) sink.on_message_bytes(pos + handed, bytes.subspan(handed), false);
  return bytes.size();
}

void Session::check_pipelining(uint64_t pos, SessionSink& sink) {
  if (pos == pipelining_checked_) return;  // decided when its first byte arrived
  pipelining_checked_ = pos;
  std::optional<Pending> terminator;
  for (size_t i = 0; i < pending_count_; ++i) {
    const Pending p = pending_at(i);
    if (p.verb == Verb::kStarttls && !p.body_end) return;  // after STARTTLS: not ours
    if (!terminator && p.ends_group) terminator = p;
  }
  if (terminator) {
    sink.on_pipelined({pos, terminator->verb, false, true});
  } else if (pending_count_ > 0 && !pipelining_offered_) {
    // Without PIPELINING offered, RFC 5321 lockstep: every reply is waited for (the Postfix
    // 3.9 smtpd_forbid_unauth_pipelining case), the one to the end of a DATA body included.
    const Pending h = pending_at(0);
    sink.on_pipelined({pos, h.verb, h.body_end, false});
  }
}

size_t Session::feed_client(uint64_t pos, std::span<const uint8_t> bytes, SessionSink& sink) {
  // A new command (or input held for a reply) starts here: did the client wait as it had to?
  const bool line_start = client_ == ClientPhase::kCommand || client_ == ClientPhase::kAwaitReply;
  if (line_start && !overlong_client_ && !bytes.empty()) check_pipelining(pos, sink);
  switch (client_) {
    case ClientPhase::kAwaitReply:
      return 0;
    case ClientPhase::kBody:
      return feed_body(bytes, pos, sink);
    case ClientPhase::kBdat: {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(bdat_left_, bytes.size()));
      bdat_left_ -= n;
      sink.on_message_bytes(pos, bytes.first(n), true);
      if (bdat_left_ == 0) {
        client_ = ClientPhase::kCommand;
        if (bdat_last_) sink.on_message_end(pos + n);
      }
      return n;
    }
    case ClientPhase::kCommand:
    case ClientPhase::kAuthResponse:
      break;
  }

  const std::string_view text = as_text(bytes);
  const size_t lf = text.find('\n');
  CommandLine c;
  c.pos = pos;
  c.kind = client_ == ClientPhase::kAuthResponse ? LineKind::kAuthResponse : LineKind::kCommand;
  if (!overlong_client_) {  // a new line: its cap (the pieces of a cut one keep it)
    const CommandToken verb = command_verb(text);
    const bool auth = c.kind == LineKind::kAuthResponse ||
                      (verb.terminated && parse_verb(verb.text) == Verb::kAuth);
    client_cap_ =
        auth ? std::max(limits_.max_command_line, limits_.max_auth_line) : limits_.max_command_line;
  }
  const size_t cap = client_cap_;
  c.continuation = overlong_client_;
  if (lf == std::string_view::npos || lf + 1 > cap) {
    if (text.size() < cap) return 0;  // a partial line: wait for more
    c.line = text.substr(0, cap);
    c.cut = true;
  } else {
    c.line = text.substr(0, lf + 1);
  }
  if (c.cut && !overlong_client_) sink.on_anomaly(Dir::kClientToServer, Anomaly::kOverlongLine);
  const bool continuation = overlong_client_;
  overlong_client_ = c.cut;
  if (!continuation) {
    c.verb = command_verb(c.line).text;
    if (c.kind == LineKind::kCommand) c.verb_id = parse_verb(c.verb);
  }
  const CommandFate fate = sink.on_command(c);
  if (continuation) {
    // The line was accounted for by its first piece. An AUTH response's last piece completes
    // it: the client now waits for the next challenge or the outcome, and its next line is a
    // command again only once that reply says so.
    if (c.kind == LineKind::kAuthResponse && !c.cut) client_ = ClientPhase::kAwaitReply;
    return c.line.size();
  }

  if (fate == CommandFate::kAnswered && c.kind == LineKind::kCommand) {
    // The server never sees it, so it changes no phase: the client waits for the gateway's
    // reply (a refusal) before it sends a body, an AUTH response or a TLS hello.
    push_pending({c.verb_id, false, true, ends_group(c.verb_id, c.line)}, sink);
    answer_head(sink);
    return c.line.size();
  }

  if (c.kind == LineKind::kAuthResponse) {
    push_pending({Verb::kAuth, false, false, true}, sink);
    if (!c.cut) client_ = ClientPhase::kAwaitReply;
    return c.line.size();
  }
  // A neutralised line reaches the server as an unknown command or NOOP: it is paired like any
  // command (the client still had to wait for the reply to the verb it sent), but as what the
  // server sees, and it changes no phase. An overlong line the sink let through (only a verb
  // that opens no phase, see opens_phase) is answered once, usually 500: no phase either.
  const bool neutralised = fate == CommandFate::kNeutralised;
  push_pending({neutralised ? Verb::kUnknown : c.verb_id, false, false,
                !c.cut && ends_group(c.verb_id, c.line)},
               sink);
  if (neutralised) return c.line.size();
  if (c.verb_id == Verb::kEhlo || c.verb_id == Verb::kHelo) pipelining_offered_ = false;
  if (c.cut) return c.line.size();
  switch (c.verb_id) {
    case Verb::kStarttls:
      awaiting_starttls_ = true;
      client_ = ClientPhase::kAwaitReply;
      break;
    case Verb::kData:
    case Verb::kAuth:
      client_ = ClientPhase::kAwaitReply;
      break;
    case Verb::kBdat: {
      uint64_t size = 0;
      if (!parse_bdat(c.line, size, bdat_last_)) {
        // Read as a command line; whether the server does is the sink's question.
        sink.on_anomaly(Dir::kClientToServer, Anomaly::kUnreadableBdat);
      } else if (size > 0) {
        bdat_left_ = size;
        client_ = ClientPhase::kBdat;
      } else if (bdat_last_) {
        sink.on_message_end(c.pos + c.line.size());  // "BDAT 0 LAST"
      }
      break;
    }
    default:
      break;
  }
  return c.line.size();
}

size_t Session::feed_server(uint64_t pos, std::span<const uint8_t> bytes, SessionSink& sink) {
  const std::string_view text = as_text(bytes);
  const size_t lf = text.find('\n');
  const size_t cap = limits_.max_reply_line;
  ReplyLine r;
  r.pos = pos;
  r.continuation = overlong_server_;
  if (lf == std::string_view::npos || lf + 1 > cap) {
    if (text.size() < cap) return 0;
    r.line = text.substr(0, cap);
    r.cut = true;
  } else {
    r.line = text.substr(0, lf + 1);
  }
  if (r.cut && !overlong_server_) sink.on_anomaly(Dir::kServerToClient, Anomaly::kOverlongLine);
  overlong_server_ = r.cut;

  r.kind = next_kind(Dir::kServerToClient);
  r.index = reply_index_;
  if (const std::optional<Pending> h = head(); h && greeted_) r.answers = h->verb;
  if (!r.continuation) {
    const std::string_view l = r.line;
    const bool digits = l.size() >= 3 && is_digit(l[0]) && is_digit(l[1]) && is_digit(l[2]);
    if (digits) {
      r.code = static_cast<uint16_t>((l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0'));
      r.last = !(l.size() > 3 && l[3] == '-');
    } else {
      sink.on_anomaly(Dir::kServerToClient, Anomaly::kMalformedReply);
      r.last = true;  // a line we cannot read ends the reply: never wait on it
    }
  } else {
    r.last = false;
  }
  if (r.kind == LineKind::kEhloReply && r.index > 0 && r.code == 250 && !r.continuation &&
      parse_ehlo_keyword(command_token(r.line, 4).text) == EhloKeyword::kPipelining)
    pipelining_offered_ = true;
  sink.on_reply(r);
  server_pos_ = pos + r.line.size();
  if (r.cut) return r.line.size();
  if (!r.last) {
    ++reply_index_;
    return r.line.size();
  }
  reply_index_ = 0;
  if (!greeted_) {
    greeted_ = true;
  } else {
    on_final_reply(r.code, sink);
  }
  answer_head(sink);
  return r.line.size();
}

void Session::answer_head(SessionSink& sink) {
  // Only at a reply boundary: after the greeting, between replies.
  if (!greeted_ || reply_index_ != 0 || overlong_server_ || stopped_) return;
  while (pending_count_ > 0 && pending_at(0).answered) {
    const Verb v = pending_at(0).verb;
    pending_head_ = static_cast<uint8_t>((pending_head_ + 1) % kRing);
    --pending_count_;
    sink.on_gateway_reply(server_pos_, v);
  }
}

void Session::on_final_reply(uint16_t code, SessionSink& sink) {
  if (pending_count_ == 0) {
    sink.on_anomaly(Dir::kServerToClient, Anomaly::kUnsolicitedReply);
    return;
  }
  const Pending p = pending_at(0);
  pending_head_ = static_cast<uint8_t>((pending_head_ + 1) % kRing);
  --pending_count_;
  if (p.body_end) return;
  const bool waiting = client_ == ClientPhase::kAwaitReply;
  switch (p.verb) {
    case Verb::kData:
      if (waiting) {
        client_ = code == 354 ? ClientPhase::kBody : ClientPhase::kCommand;
        body_state_ = BodyState::kLineStart;
      }
      break;
    case Verb::kAuth:
      if (waiting) client_ = code == 334 ? ClientPhase::kAuthResponse : ClientPhase::kCommand;
      break;
    case Verb::kStarttls:
      awaiting_starttls_ = false;
      if (waiting) {
        if (code == 220) {
          tls_ = true;
          stopped_ = true;
          sink.on_tls_start();
        } else {
          client_ = ClientPhase::kCommand;
        }
      }
      break;
    default:
      break;
  }
}

}  // namespace sg::smtp

#include "core/flow_inspector.hpp"

#include <algorithm>

namespace sg::core {
namespace {

// A line-length check must see a line longer than its limit as such: the session's cap (where
// it cuts a line into pieces) is raised above the limit.
smtp::SessionLimits limits_of(const policy::Profile& p) {
  smtp::SessionLimits l;
  l.max_command_line = p.max_command_line;
  l.max_reply_line = p.max_reply_line;
  const policy::Checks& c = p.checks;
  if (c.command_line.action != policy::CheckAction::kOff)
    l.max_command_line = std::max<size_t>(l.max_command_line, c.command_line.max + 1);
  if (c.reply_line.action != policy::CheckAction::kOff)
    l.max_reply_line = std::max<size_t>(l.max_reply_line, c.reply_line.max + 1);
  return l;
}

// Whether a partial command line may still be one whose verb opens a phase (smtp::opens_phase).
// Such a line is held until it ends or is cut at the cap: a cut one is X'd whole (on_line), and
// that is only possible while none of it has left. Holding costs at most one line cap of bytes.
bool may_open_phase(std::string_view partial) {
  const smtp::CommandToken verb = smtp::command_verb(partial);
  if (verb.terminated) return smtp::opens_phase(smtp::parse_verb(verb.text));
  for (smtp::Verb v :
       {smtp::Verb::kData, smtp::Verb::kBdat, smtp::Verb::kAuth, smtp::Verb::kStarttls})
    if (smtp::verb_starts_with(v, verb.text)) return true;
  return false;
}

// Whether the server reads the verb of a command line (and the blank that ends it) as it was
// sent: bytes before `released` went out with `before`, the others get `after`.
bool verb_intact(std::string_view line, const policy::LineRewrite& before, size_t released,
                 const policy::LineRewrite& after) {
  if (policy::deletes(after)) return false;
  const smtp::CommandToken verb = smtp::command_verb(line);
  const size_t end = std::min(line.size(), verb.end() + 1);
  for (size_t i = 0; i < end; ++i)
    if (policy::rewrite_byte(i < released ? before : after, i, line[i]) != line[i]) return false;
  return true;
}

std::string_view as_text(std::span<const uint8_t> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

const policy::ExceptionPolicy kDefaultExceptions{};

bool strips_any(const policy::Profile& p) {
  if (p.unknown_keyword == policy::KeywordAction::kStrip) return true;
  return std::find(p.keywords.begin(), p.keywords.end(), policy::KeywordAction::kStrip) !=
         p.keywords.end();
}

}  // namespace

std::string_view first_token(std::string_view line, size_t from) {
  return smtp::command_token(line, from).text.substr(0, Decision::kMaxSubject);
}

FlowInspector::FlowInspector(const policy::Profile& profile, Counters& counters,
                             tcp::BlockPool* pool, const policy::ExceptionPolicy* exceptions)
    : profile_(profile),
      counters_(counters),
      exceptions_(exceptions ? *exceptions : kDefaultExceptions),
      session_(limits_of(profile)),
      checks_(profile.checks),
      strips_(strips_any(profile)),
      sanitizes_(profile.checks.smuggling == policy::CheckAction::kSanitize),
      rate_limited_(VerbRates::limits_any(profile)) {
  for (Stream& s : streams_) s.seen.set_pool(pool);
}

uint64_t FlowInspector::on_ack(Dir dir, uint64_t acked_rewritten) {
  Stream& s = at(dir);
  const uint64_t acked = s.edits.prune(acked_rewritten);
  s.seen.release_before(acked);
  return acked;
}

bool FlowInspector::matches_seen(Dir dir, uint64_t pos, std::span<const uint8_t> bytes) const {
  const Stream& s = at(dir);
  if (session_.stopped()) return true;  // TLS or given up: nothing is inspected any more
  const uint64_t from = std::max(pos, s.edits.acked_original());
  const uint64_t end = std::min<uint64_t>(pos + bytes.size(), s.frontier);
  if (from >= end) return true;
  if (from < s.seen.begin() || end > s.seen.end()) return false;
  return s.seen.equals(from, as_text(bytes.subspan(static_cast<size_t>(from - pos),
                                                   static_cast<size_t>(end - from))));
}

void FlowInspector::on_data(Dir dir, std::span<const uint8_t> bytes) {
  Stream& s = at(dir);
  const uint64_t pos = s.frontier;
  s.frontier += bytes.size();
  if (dir == Dir::kClientToServer && !bytes.empty() && !session_.greeted() && !session_.stopped() &&
      !early_talker_seen_) {
    // Postscreen's "pregreet": the client did not wait for the greeting's last line.
    early_talker_seen_ = true;
    order_check(profile_.checks.early_talker, policy::Event::kEarlyTalker, "greeting",
                "client bytes before the server's greeting ended");
  }
  if (session_.stopped()) {
    s.seen.reset(s.frontier);
  } else {
    s.seen.append(as_text(bytes));  // for comparison with retransmissions (first copy wins)
  }
  if (s.pending.empty()) {
    // The common case: whole lines or body bytes straight from the segment, no copy.
    const size_t used = session_.feed(dir, pos, bytes, *this);
    s.pending.assign(as_text(bytes.subspan(used)));
  } else {
    s.pending.append(as_text(bytes));
    refeed(dir);
  }
  // A reply may have changed what the other direction's waiting bytes are (354, 334, 220), and
  // those may in turn complete commands that change replies: repeat until nothing moves.
  for (int round = 0; round < 4; ++round) {
    const Dir other = smtp::opposite(dir);
    if (!refeed(other) && !refeed(dir)) break;
  }
  limit_pending(dir);
  decide_partial(Dir::kClientToServer);
  decide_partial(Dir::kServerToClient);
  if (tls_.awaiting_hello()) {
    if (auto broken = tls_.on_bytes(dir, pos, bytes, at(Dir::kServerToClient).frontier))
      starttls_injection(dir, std::move(*broken));
  }
  // A command in the STARTTLS segment (or any client byte before its reply) is decided at
  // once: RFC 3207 lets the client send nothing until the reply, and waiting for the 220 would
  // hold the injected bytes for nothing.
  if (dir == Dir::kClientToServer && session_.awaiting_starttls() && !at(dir).pending.empty() &&
      tls_.off())
    starttls_injection(dir, "client bytes after STARTTLS before its reply");
}

void FlowInspector::starttls_injection(Dir dir, std::string detail) {
  tls_.end();
  if (profile_.checks.starttls_injection == policy::CheckAction::kOff) return;
  std::vector<policy::CheckHit> hits;
  hits.push_back(policy::CheckHit{policy::Event::kStarttlsInjection,
                                  profile_.checks.starttls_injection, "STARTTLS",
                                  std::move(detail)});
  apply_check_hits(dir, hits);
}

bool FlowInspector::refeed(Dir dir) {
  Stream& s = at(dir);
  if (s.pending.empty()) return false;
  const auto* data = reinterpret_cast<const uint8_t*>(s.pending.data());
  const size_t used = session_.feed(dir, pending_pos(s), {data, s.pending.size()}, *this);
  s.pending.erase(0, used);
  if (s.pending.empty() && s.pending.capacity() > kPendingInline) std::string().swap(s.pending);
  return used > 0;
}

policy::LineRewrite FlowInspector::settle_ehlo_line(policy::LineRewrite rewrite, uint64_t line_pos,
                                                    std::string_view bytes) {
  Stream& s = at(Dir::kServerToClient);
  const bool has_sep = bytes.size() >= 4;
  const bool continues = has_sep && bytes[3] == '-';
  if (policy::deletes(rewrite)) {
    if (continues) return rewrite;  // whether the held separator turns ' ' is still open
    if (s.open_sep != kNoSep) {
      // The reply's last line goes: the last kept line becomes the final one.
      s.edits.replace_byte(s.open_sep, ' ');
      s.open_sep = kNoSep;
      return rewrite;
    }
    // The kept line before it already left with '-': removing this line would leave the
    // client waiting for a final line. It stays.
    counters_.add(Counter::edit_strip_kept);
    return {};
  }
  s.open_sep = kNoSep;  // a kept line follows: the earlier '-' stays
  // Only a profile that strips needs to hold a separator; "250-domain" (line 0) is never
  // stripped itself but may become the final line.
  if (continues && strips_) s.open_sep = line_pos + 3;
  return rewrite;
}

void FlowInspector::decide_partial(Dir dir) {
  Stream& s = at(dir);
  const uint64_t line_pos = pending_pos(s);
  if (s.pending.empty() || session_.stopped()) {
    s.recorded_until = std::max(s.recorded_until, s.frontier);
    if (session_.stopped()) s.open_sep = kNoSep;
    return;
  }
  if (s.recorded_until >= s.frontier) return;
  if (!s.line_override) s.line_start = line_pos;
  policy::LineRewrite rewrite;
  if (s.line_override) {
    rewrite = *s.line_override;
  } else {
    const smtp::LineKind kind = session_.next_kind(dir);
    if (kind == smtp::LineKind::kCommand &&
        (checks_.needs_whole_command(s.pending) || may_open_phase(s.pending)))
      return;
    const auto decided =
        first_decision(dir, kind, session_.next_reply_index(), line_pos, s.pending, false);
    if (!decided) return;  // hold: the next bytes decide
    rewrite = *decided;
    // Remember it: a byte released now must get the same output when the line completes.
    s.line_override = rewrite;
  }
  record(dir, rewrite, s.line_start, line_pos, s.pending);
}

void FlowInspector::force_decide(Dir dir) {
  Stream& s = at(dir);
  // A held EHLO separator goes out as it is; the reply's end then stays (edit_strip_kept).
  s.open_sep = kNoSep;
  if (dir == Dir::kClientToServer && settle_stray()) {
    // The byte after the message's last CR did not come in time: the CR leaves as a space (and
    // an LF arriving later then is bare too). Stalling is no proof of innocence.
    counters_.add(Counter::hold_timeouts);
    decide(policy::Event::kLineNeutralised, "sanitize", dir, "CR");
  }
  if (s.recorded_until >= s.frontier) return;
  const uint64_t line_pos = pending_pos(s);
  if (!s.line_override) {
    s.line_start = line_pos;
    s.line_override = policy::neutralise(session_.next_kind(dir));
  }
  record(dir, *s.line_override, s.line_start, line_pos, s.pending);
  counters_.add(Counter::hold_timeouts);
  decide(policy::Event::kLineNeutralised, "mask", dir, first_token(s.pending));
}

void FlowInspector::request_reset() {
  reset_requested_ = true;
}

void FlowInspector::request_drop() {
  reset_requested_ = true;
  drop_requested_ = true;
}

policy::ExceptionAction FlowInspector::raise(policy::Exception e, Dir dir, std::string detail) {
  static_assert(policy::kExceptionCount <= 16, "exceptions_logged_ has a bit per exception");
  const policy::ExceptionAction action = exceptions_.of(e);
  counters_.add(exception_counter(e));
  const auto bit = static_cast<uint16_t>(1u << static_cast<unsigned>(e));
  if (!(exceptions_logged_ & bit)) {
    exceptions_logged_ |= bit;
    decide(policy::exception_event(e), policy::to_string(action), dir, policy::info(e).key,
           std::move(detail));
    reports().decisions.back().ends_connection =
        action == policy::ExceptionAction::kReject || action == policy::ExceptionAction::kDropFlow;
  }
  switch (action) {
    case policy::ExceptionAction::kReject:
      request_reset();
      break;
    case policy::ExceptionAction::kDropFlow:
      request_drop();
      break;
    case policy::ExceptionAction::kPass:
      session_.stop();
      break;
    case policy::ExceptionAction::kDropPacket:
      break;
  }
  return action;
}

void FlowInspector::decide(policy::Event e, std::string_view action, Dir dir,
                           std::string_view subject, std::string detail) {
  Decision d;
  d.event = e;
  d.action = action;
  d.dir = dir;
  d.subject.assign(subject.substr(0, Decision::kMaxSubject));
  d.detail = std::move(detail);
  fill_context(d);
  reports().decisions.push_back(std::move(d));
}

void FlowInspector::note_edit(Decision& d, const policy::LineRewrite& rewrite,
                              std::string_view line) const {
  if (rewrite.kind == policy::RewriteKind::kNone) return;
  const std::string_view shown = line.substr(0, Decision::kMaxEditText);
  d.edited = true;
  d.before.assign(shown);
  d.after.clear();
  if (rewrite.reason == policy::RewriteReason::kBannerReplaced)
    d.after = "220 " + profile_.banner_text + "\r\n";  // inserted in front of the line
  if (!policy::deletes(rewrite)) {
    for (size_t i = 0; i < shown.size(); ++i) d.after += policy::rewrite_byte(rewrite, i, shown[i]);
  }
}

void FlowInspector::fill_context(Decision& d) const {
  if (context_) {
    d.helo = context_->helo;
    d.mail_from = context_->mail_from;
  }
  d.rcpt_count = checks_.recipients();
}

std::optional<policy::LineRewrite> FlowInspector::first_decision(Dir dir, smtp::LineKind kind,
                                                                 uint16_t reply_index,
                                                                 uint64_t line_pos,
                                                                 std::string_view bytes,
                                                                 bool complete) {
  if (kind == smtp::LineKind::kCommand && rate_limited_ && !complete) {
    // A rate-limited verb is decided per command: wait for the whole verb.
    if (!smtp::command_verb(bytes).terminated) return std::nullopt;
  }
  const policy::LineVerdict v = policy::decide_line(profile_, kind, reply_index, bytes, complete);
  if (!v.decided) return std::nullopt;
  policy::LineRewrite rewrite = v.rewrite;
  if (kind == smtp::LineKind::kCommand && rewrite.reason != policy::RewriteReason::kNone &&
      rates_.within(v.verb, profile_.rate_for(v.verb), now_))
    rewrite = {};  // under the verb's rate limit: allowed
  if (kind == smtp::LineKind::kEhloReply) rewrite = settle_ehlo_line(rewrite, line_pos, bytes);
  if (rewrite.reason == policy::RewriteReason::kBannerReplaced && reply_index == 0) {
    const std::string banner = "220 " + profile_.banner_text + "\r\n";
    if (at(dir).edits.insert(line_pos, banner)) {
      counters_.add(Counter::edit_bytes_inserted, banner.size());
    } else {
      request_reset();
    }
  }
  if (rewrite.reason == policy::RewriteReason::kReset) {
    counters_.add(Counter::edit_command_reset);
    decide(policy::Event::kCommandReset, "reset", dir, first_token(bytes));
    reports().decisions.back().ends_connection = true;
    request_reset();
  } else if (rewrite.reason == policy::RewriteReason::kDropped) {
    counters_.add(Counter::edit_command_dropped);
    decide(policy::Event::kCommandDropped, "drop-connection", dir, first_token(bytes));
    reports().decisions.back().ends_connection = true;
    request_drop();
  }
  return rewrite;
}

void FlowInspector::record(Dir dir, const policy::LineRewrite& rewrite, uint64_t line_pos,
                           uint64_t pos, std::string_view bytes) {
  Stream& s = at(dir);
  const uint64_t end = pos + bytes.size();
  if (end <= s.recorded_until) return;
  const uint64_t from = std::max(pos, s.recorded_until);
  if (policy::deletes(rewrite)) {
    if (s.edits.remove(from, end - from)) {
      counters_.add(Counter::edit_bytes_removed, end - from);
    } else {
      request_reset();  // cannot happen with edits recorded in order; never pass it unedited
    }
  } else if (rewrite.kind != policy::RewriteKind::kNone) {
    for (uint64_t p = from; p < end; ++p) {
      const char original = bytes[p - pos];
      const char out = policy::rewrite_byte(rewrite, p - line_pos, original);
      if (out != original) {
        if (!s.edits.replace_byte(p, out)) request_reset();
        counters_.add(Counter::edit_bytes);
      }
    }
  }
  s.recorded_until = end;
}

void FlowInspector::count(const policy::LineRewrite& r, std::string_view line,
                          smtp::LineKind kind) {
  using policy::Event;
  using policy::RewriteReason;
  const Dir dir = kind == smtp::LineKind::kCommand ? Dir::kClientToServer : Dir::kServerToClient;
  const std::string_view verb = first_token(line);
  switch (r.reason) {
    case RewriteReason::kBanner:
      counters_.add(Counter::edit_banner_masked);
      decide(Event::kBannerMasked, policy::to_string(profile_.banner), dir, "greeting");
      break;
    case RewriteReason::kBannerReplaced:
      counters_.add(Counter::edit_banner_masked);
      decide(Event::kBannerReplaced, "replace", dir, "greeting");
      break;
    case RewriteReason::kCommand:
      counters_.add(Counter::edit_command_masked);
      if (r.kind == policy::RewriteKind::kNoop) {
        decide(Event::kCommandNoop, "noop", dir, verb);
      } else {
        decide(Event::kCommandMasked, "mask", dir, verb);
      }
      break;
    case RewriteReason::kKeyword:
      counters_.add(Counter::edit_keyword_masked);
      decide(Event::kKeywordMasked, "mask", dir, first_token(line, 4));
      break;
    case RewriteReason::kStripped:
      counters_.add(Counter::edit_keyword_stripped);
      decide(Event::kKeywordStripped, "strip", dir, first_token(line, 4));
      break;
    case RewriteReason::kAnswered:
      counters_.add(Counter::edit_command_answered);
      decide(Event::kCommandAnswered, "answer", dir, verb);
      break;
    case RewriteReason::kReset:    // counted and logged when decided: nothing more of the
    case RewriteReason::kDropped:  // connection may be fed after that
      break;
    case RewriteReason::kLogged:
      counters_.add(Counter::commands_logged);
      decide(Event::kCommandLogged, "log", dir, verb);
      break;
    case RewriteReason::kChecked:  // the check logged and counted itself
    case RewriteReason::kNeutralised:
    case RewriteReason::kNone:
      break;
  }
}

policy::LineRewrite FlowInspector::check_line(Dir dir, const policy::LineRewrite& rewrite,
                                              bool released, std::string_view line, bool cut,
                                              const smtp::ReplyLine* reply) {
  // Empty unless a check fires: no allocation on the common path.
  std::vector<policy::CheckHit> hits;
  if (dir == Dir::kClientToServer) {
    // A command the profile removes or masks never reaches the server as itself: not checked.
    const bool forwarded = rewrite.reason == policy::RewriteReason::kNone ||
                           rewrite.reason == policy::RewriteReason::kLogged;
    if (!forwarded) return rewrite;
    const smtp::Verb verb = smtp::parse_verb(smtp::command_verb(line).text);
    checks_.on_command(verb, line, cut, hits);
    if (!cut && SessionContext::concerns(verb)) {
      if (!context_) context_ = std::make_unique<SessionContext>();
      context_->on_forwarded(verb, line);
    }
  } else if (reply) {
    checks_.on_reply(reply->answers, reply->code, reply->last, line, cut, hits);
  }
  if (hits.empty()) return rewrite;
  const policy::CheckAction action = policy::strongest(hits);
  apply_check_hits(dir, hits);
  switch (action) {
    case policy::CheckAction::kMask:
      // A line already partly released cannot be masked any more; needs_whole_command keeps
      // that from happening to the commands checks look at.
      if (dir == Dir::kClientToServer && !released)
        return {policy::RewriteKind::kMaskX, policy::RewriteReason::kChecked, 0, 0};
      break;
    case policy::CheckAction::kReset:
    case policy::CheckAction::kDropConnection:
      // The connection ends before this line's end reaches the peer; removing the line keeps
      // even its first bytes from leaving with this packet.
      if (!released) return {policy::RewriteKind::kDelete, policy::RewriteReason::kChecked, 0, 0};
      break;
    case policy::CheckAction::kOff:
    case policy::CheckAction::kLog:
    case policy::CheckAction::kSanitize:  // message bytes only (on_message_bytes)
      break;
  }
  return rewrite;
}

void FlowInspector::apply_check_hits(Dir dir, std::vector<policy::CheckHit>& hits) {
  for (policy::CheckHit& h : hits) {
    counters_.add(Counter::checks_fired);
    const bool reset = h.action == policy::CheckAction::kReset;
    const bool drop = h.action == policy::CheckAction::kDropConnection;
    if (reset) request_reset();
    if (drop) request_drop();
    decide(h.event, policy::to_string(h.action), dir, h.subject, std::move(h.detail));
    reports().decisions.back().ends_connection = reset || drop;
  }
  hits.clear();
}

policy::LineRewrite FlowInspector::on_line(Dir dir, smtp::LineKind kind, uint16_t reply_index,
                                           uint64_t pos, std::string_view line, bool cut,
                                           bool continuation, const smtp::ReplyLine* reply,
                                           bool* verb_changed) {
  Stream& s = at(dir);
  // A line partly released before it completed keeps the rewrite it was released with.
  policy::LineRewrite rewrite;
  const bool released = s.line_override.has_value();
  if (released) {
    rewrite = *s.line_override;
  } else {
    rewrite = *first_decision(dir, kind, reply_index, pos, line, true);
  }
  if (!continuation) {
    const policy::LineRewrite released_with = rewrite;
    const size_t decided = reports_ ? reports_->decisions.size() : 0;
    if (kind == smtp::LineKind::kCommand || reply)
      rewrite = check_line(dir, rewrite, released, line, cut, reply);
    count(rewrite, line, kind);
    if (kind == smtp::LineKind::kCommand && cut) rewrite = neutralise_overlong(dir, rewrite, line);
    if (reports_ && reports_->decisions.size() > decided && watched_ &&
        watched_->load(std::memory_order_relaxed))
      note_edit(reports_->decisions.back(), rewrite, line);
    if (verb_changed) {
      const size_t sent = s.recorded_until > pos ? static_cast<size_t>(s.recorded_until - pos) : 0;
      *verb_changed = !verb_intact(line, released_with, sent, rewrite);
    }
    s.line_start = pos;
  }
  record(dir, rewrite, s.line_start, pos, line);
  // A cut line's remaining pieces get the first piece's rewrite; any other line ends here.
  if (cut) {
    s.line_override = rewrite;
  } else {
    s.line_override.reset();
  }
  return rewrite;
}

policy::LineRewrite FlowInspector::neutralise_overlong(Dir dir, const policy::LineRewrite& rewrite,
                                                       std::string_view line) {
  // A command line cut at the cap: what the server makes of it is unknown (Postfix reads 2048
  // bytes, and "DATA" with 600 blanks after it is DATA to it), so no byte of it reaches the
  // server as sent. X'd to its line ending (this piece and the rest, see line_override), it is
  // an unknown command to every server: answered 500, no phase. A line the profile or a check
  // already removes, masks or turns into NOOP keeps that, and so does a connection that ends.
  if (policy::deletes(rewrite) || rewrite.kind == policy::RewriteKind::kNoop ||
      (rewrite.kind == policy::RewriteKind::kMaskX && rewrite.from == 0) || reset_requested_)
    return rewrite;
  // A line whose verb opens a phase (DATA, BDAT, AUTH, STARTTLS) was held whole until here: it
  // is X'd from its first byte. Any other line's first piece may have left already (how much
  // depends on how the segments cut it, and the output must not): it is X'd from the cap on.
  // What the server reads as the line's start is then the verb the gateway saw, which opens
  // no phase, and whatever a server with a longer limit might read as a second line is X's.
  size_t from = may_open_phase(line) ? 0 : line.size();
  if (rewrite.kind == policy::RewriteKind::kMaskX) from = std::min<size_t>(from, rewrite.from);
  decide(policy::Event::kLineNeutralised, "mask", dir, first_token(line),
         "command line longer than " + std::to_string(line.size()) + " bytes");
  return {policy::RewriteKind::kMaskX, policy::RewriteReason::kNeutralised,
          static_cast<uint16_t>(from), 0};
}

void FlowInspector::limit_pending(Dir dir) {
  Stream& s = at(dir);
  const size_t cap = pending_cap(dir);
  if (s.pending.size() <= cap || session_.stopped()) return;
  const policy::ExceptionAction action =
      raise(policy::Exception::kPendingBuffer, dir,
            std::to_string(s.pending.size()) + " bytes wait, over " + std::to_string(cap));
  if (action == policy::ExceptionAction::kPass) {
    refeed(dir);  // inspection stopped: they pass as they are
    return;
  }
  // drop-packet: the packet's bytes are in the stream already and no packet can be singled out
  // here, so the connection ends as with reject.
  if (action == policy::ExceptionAction::kDropPacket) request_reset();
  // The connection ends (nothing of it is fed or forwarded after a reset): the bytes beyond the
  // cap are not kept. They count as never received, so the stream stays consistent.
  const size_t excess = s.pending.size() - cap;
  s.pending.resize(cap);
  s.frontier -= excess;
}

}  // namespace sg::core

#include "core/flow_inspector.hpp"

#include <algorithm>

namespace sg::core {
namespace {

smtp::SessionLimits limits_of(const policy::Profile& p) {
  smtp::SessionLimits l;
  l.max_command_line = p.max_command_line;
  l.max_reply_line = p.max_reply_line;
  return l;
}

std::string_view as_text(std::span<const uint8_t> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

bool strips_any(const policy::Profile& p) {
  if (p.unknown_keyword == policy::KeywordAction::kStrip) return true;
  return std::find(p.keywords.begin(), p.keywords.end(), policy::KeywordAction::kStrip) !=
         p.keywords.end();
}

}  // namespace

FlowInspector::FlowInspector(const policy::Profile& profile, Counters& counters)
    : profile_(profile),
      counters_(counters),
      session_(limits_of(profile)),
      strips_(strips_any(profile)) {}

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
  decide_partial(Dir::kClientToServer);
  decide_partial(Dir::kServerToClient);
}

bool FlowInspector::refeed(Dir dir) {
  Stream& s = at(dir);
  if (s.pending.empty()) return false;
  const auto* data = reinterpret_cast<const uint8_t*>(s.pending.data());
  const size_t used = session_.feed(dir, pending_pos(s), {data, s.pending.size()}, *this);
  s.pending.erase(0, used);
  return used > 0;
}

policy::LineRewrite FlowInspector::settle_ehlo_line(policy::LineRewrite rewrite, uint64_t line_pos,
                                                    std::string_view bytes) {
  Stream& s = at(Dir::kServerToClient);
  const bool has_sep = bytes.size() >= 4;
  const bool continues = has_sep && bytes[3] == '-';
  if (policy::deletes(rewrite)) {
    if (continues) return rewrite;  // whether the held separator turns ' ' is still open
    if (s.open_sep) {
      // The reply's last line goes: the last kept line becomes the final one.
      s.edits.replace_byte(*s.open_sep, ' ');
      s.open_sep.reset();
      return rewrite;
    }
    // The kept line before it already left with '-': removing this line would leave the
    // client waiting for a final line. It stays.
    counters_.add(Counter::edit_strip_kept);
    return {};
  }
  s.open_sep.reset();  // a kept line follows: the earlier '-' stays
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
    if (session_.stopped()) s.open_sep.reset();
    return;
  }
  if (s.recorded_until >= s.frontier) return;
  if (!s.line_override) s.line_start = line_pos;
  policy::LineRewrite rewrite;
  if (s.line_override) {
    rewrite = *s.line_override;
  } else {
    const smtp::LineKind kind = session_.next_kind(dir);
    const policy::LineVerdict v =
        policy::decide_line(profile_, kind, session_.next_reply_index(), s.pending, false);
    if (!v.decided) return;  // hold: the next bytes decide
    rewrite = v.rewrite;
    if (kind == smtp::LineKind::kEhloReply)
      rewrite = settle_ehlo_line(rewrite, line_pos, s.pending);
    if (rewrite.reason == policy::RewriteReason::kReset) request_reset();
    // Remember it: a byte released now must get the same output when the line completes.
    s.line_override = rewrite;
  }
  record(dir, rewrite, s.line_start, line_pos, s.pending);
}

void FlowInspector::force_decide(Dir dir) {
  Stream& s = at(dir);
  // A held EHLO separator goes out as it is; the reply's end then stays (edit_strip_kept).
  s.open_sep.reset();
  if (s.recorded_until >= s.frontier) return;
  const uint64_t line_pos = pending_pos(s);
  if (!s.line_override) {
    s.line_start = line_pos;
    s.line_override = policy::neutralise(session_.next_kind(dir));
  }
  record(dir, *s.line_override, s.line_start, line_pos, s.pending);
  counters_.add(Counter::hold_timeouts);
}

void FlowInspector::request_reset() {
  reset_requested_ = true;
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

void FlowInspector::count(const policy::LineRewrite& r) {
  switch (r.reason) {
    case policy::RewriteReason::kBanner:
      counters_.add(Counter::edit_banner_masked);
      break;
    case policy::RewriteReason::kCommand:
      counters_.add(Counter::edit_command_masked);
      break;
    case policy::RewriteReason::kKeyword:
      counters_.add(Counter::edit_keyword_masked);
      break;
    case policy::RewriteReason::kStripped:
      counters_.add(Counter::edit_keyword_stripped);
      break;
    case policy::RewriteReason::kAnswered:
      counters_.add(Counter::edit_command_answered);
      break;
    case policy::RewriteReason::kReset:
      counters_.add(Counter::edit_command_reset);
      break;
    case policy::RewriteReason::kDropped:
      counters_.add(Counter::edit_command_dropped);
      break;
    case policy::RewriteReason::kNeutralised:
    case policy::RewriteReason::kNone:
      break;
  }
}

policy::LineRewrite FlowInspector::on_line(Dir dir, smtp::LineKind kind, uint16_t reply_index,
                                           uint64_t pos, std::string_view line, bool cut,
                                           bool continuation) {
  Stream& s = at(dir);
  // A line partly released before it completed keeps the rewrite it was released with.
  policy::LineRewrite rewrite;
  if (s.line_override) {
    rewrite = *s.line_override;
  } else {
    rewrite = policy::decide_line(profile_, kind, reply_index, line, true).rewrite;
    if (kind == smtp::LineKind::kEhloReply) rewrite = settle_ehlo_line(rewrite, pos, line);
    if (rewrite.reason == policy::RewriteReason::kReset) request_reset();
  }
  if (!continuation) {
    count(rewrite);
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

smtp::CommandFate FlowInspector::on_command(const smtp::CommandLine& c) {
  counters_.add(Counter::smtp_commands);
  const policy::LineRewrite r =
      on_line(Dir::kClientToServer, c.kind, 0, c.pos, c.line, c.cut, c.continuation);
  return r.reason == policy::RewriteReason::kAnswered ? smtp::CommandFate::kAnswered
                                                      : smtp::CommandFate::kForwarded;
}

void FlowInspector::on_gateway_reply(uint64_t pos, smtp::Verb) {
  Stream& s = at(Dir::kServerToClient);
  const std::string reply = profile_.answer_reply + "\r\n";
  // The reply must go in before any server byte after `pos` has left; otherwise it cannot be
  // placed in order and the connection is reset rather than left to read replies out of order.
  if (pos < decided_until(Dir::kServerToClient) || !s.edits.insert(pos, reply)) {
    request_reset();
    return;
  }
  counters_.add(Counter::edit_bytes_inserted, reply.size());
  gateway_replies_.push_back(pos);
}

void FlowInspector::on_reply(const smtp::ReplyLine& r) {
  counters_.add(Counter::smtp_replies);
  on_line(Dir::kServerToClient, r.kind, r.index, r.pos, r.line, r.cut, r.continuation);
}

void FlowInspector::on_tls_start() {
  counters_.add(Counter::starttls);
  for (Stream& s : streams_) s.line_override.reset();
}

void FlowInspector::on_anomaly(Dir, smtp::Anomaly a) {
  if (a == smtp::Anomaly::kOverlongLine) counters_.add(Counter::smtp_overlong_lines);
}

}  // namespace sg::core

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

}  // namespace

FlowInspector::FlowInspector(const policy::Profile& profile, Counters& counters)
    : profile_(profile), counters_(counters), session_(limits_of(profile)) {}

void FlowInspector::on_data(Dir dir, std::span<const uint8_t> bytes) {
  Stream& s = at(dir);
  const uint64_t pos = s.frontier;
  s.frontier += bytes.size();
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
    const Dir other = dir == Dir::kClientToServer ? Dir::kServerToClient : Dir::kClientToServer;
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

void FlowInspector::decide_partial(Dir dir) {
  Stream& s = at(dir);
  const uint64_t line_pos = pending_pos(s);
  if (s.pending.empty() || session_.stopped()) {
    s.decided_until = std::max(s.decided_until, s.frontier);
    return;
  }
  if (s.decided_until >= s.frontier) return;
  if (!s.line_override) s.line_start = line_pos;
  policy::LineRewrite rewrite;
  if (s.line_override) {
    rewrite = *s.line_override;
  } else {
    const policy::LineVerdict v = policy::decide_line(
        profile_, session_.next_kind(dir), session_.next_reply_index(), s.pending, false);
    if (!v.decided) return;  // hold: the next bytes decide
    rewrite = v.rewrite;
    // Remember it: a byte released now must get the same output when the line completes.
    s.line_override = rewrite;
  }
  record(dir, rewrite, s.line_start, line_pos, s.pending);
}

void FlowInspector::force_decide(Dir dir) {
  Stream& s = at(dir);
  if (s.decided_until >= s.frontier) return;
  const uint64_t line_pos = pending_pos(s);
  if (!s.line_override) {
    s.line_start = line_pos;
    s.line_override = policy::neutralise(session_.next_kind(dir));
  }
  record(dir, *s.line_override, s.line_start, line_pos, s.pending);
  counters_.add(Counter::hold_timeouts);
}

void FlowInspector::record(Dir dir, const policy::LineRewrite& rewrite, uint64_t line_pos,
                           uint64_t pos, std::string_view bytes) {
  Stream& s = at(dir);
  const uint64_t end = pos + bytes.size();
  if (end <= s.decided_until) return;
  if (rewrite.kind != policy::RewriteKind::kNone) {
    for (uint64_t p = std::max(pos, s.decided_until); p < end; ++p) {
      const char original = bytes[p - pos];
      const char out = policy::rewrite_byte(rewrite, p - line_pos, original);
      if (out != original) {
        s.edits.replace_byte(p, out);
        counters_.add(Counter::edit_bytes);
      }
    }
  }
  s.decided_until = end;
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
    case policy::RewriteReason::kNeutralised:
    case policy::RewriteReason::kNone:
      break;
  }
}

void FlowInspector::on_line(Dir dir, smtp::LineKind kind, uint16_t reply_index, uint64_t pos,
                            std::string_view line, bool cut, bool continuation) {
  Stream& s = at(dir);
  // A line partly released before it completed keeps the rewrite it was released with.
  const policy::LineRewrite rewrite =
      s.line_override ? *s.line_override
                      : policy::decide_line(profile_, kind, reply_index, line, true).rewrite;
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
}

void FlowInspector::on_command(const smtp::CommandLine& c) {
  counters_.add(Counter::smtp_commands);
  on_line(Dir::kClientToServer, c.kind, 0, c.pos, c.line, c.cut, c.continuation);
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

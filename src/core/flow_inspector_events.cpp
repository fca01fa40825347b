// What the SMTP session reports to the inspector (smtp::SessionSink): commands, replies, the
// gateway's own answers, message bytes, STARTTLS, dialogue order and anomalies.
#include "core/flow_inspector.hpp"

namespace sg::core {

smtp::CommandFate FlowInspector::on_command(const smtp::CommandLine& c) {
  counters_.add(Counter::smtp_commands);
  // Only a BDAT chunk can continue a message whose last byte was a CR: after any other command
  // (RSET, QUIT, NOOP between chunks) that CR has no next byte to wait for.
  if (c.verb_id != smtp::Verb::kBdat) settle_stray();
  bool verb_changed = false;
  const policy::LineRewrite r = on_line(Dir::kClientToServer, c.kind, 0, c.pos, c.line, c.cut,
                                        c.continuation, nullptr, &verb_changed);
  if (r.reason == policy::RewriteReason::kAnswered) return smtp::CommandFate::kAnswered;
  // Removed otherwise, the connection ends with it (reset, drop-connection): what follows is
  // never forwarded, however it is read.
  if (policy::deletes(r)) return smtp::CommandFate::kForwarded;
  // X'd or NOOP'd: the server never acts on the verb sent, so the session must not either (a
  // masked BDAT's chunk is commands to the server).
  if (c.kind == smtp::LineKind::kCommand && !c.continuation && verb_changed)
    return smtp::CommandFate::kNeutralised;
  return smtp::CommandFate::kForwarded;
}

void FlowInspector::on_gateway_reply(uint64_t pos, smtp::Verb answers) {
  Stream& s = at(Dir::kServerToClient);
  const std::string reply = profile_.reply_for(answers) + "\r\n";
  // The reply must go in before any server byte after `pos` has left; otherwise it cannot be
  // placed in order and the connection is reset rather than left to read replies out of order.
  if (pos < decided_until(Dir::kServerToClient) || !s.edits.insert(pos, reply)) {
    request_reset();
    return;
  }
  counters_.add(Counter::edit_bytes_inserted, reply.size());
  reports().gateway_replies.push_back(pos);
}

void FlowInspector::on_reply(const smtp::ReplyLine& r) {
  counters_.add(Counter::smtp_replies);
  if (r.answers == smtp::Verb::kStarttls && r.last && r.code == 220)
    tls_.on_ready_reply(r.pos + r.line.size());
  const policy::LineRewrite rw =
      on_line(Dir::kServerToClient, r.kind, r.index, r.pos, r.line, r.cut, r.continuation, &r);
  // The client sees PIPELINING only if it leaves the gateway as itself.
  if (r.kind == smtp::LineKind::kEhloReply && r.index > 0 && !r.continuation &&
      (rw.reason == policy::RewriteReason::kKeyword ||
       rw.reason == policy::RewriteReason::kStripped) &&
      smtp::parse_ehlo_keyword(first_token(r.line, 4)) == smtp::EhloKeyword::kPipelining)
    session_.withdraw_pipelining();
}

void FlowInspector::on_message_bytes(uint64_t pos, std::span<const uint8_t> bytes, bool chunked) {
  std::vector<policy::CheckHit> hits;
  checks_.on_message_bytes(bytes, chunked, hits);
  apply_check_hits(Dir::kClientToServer, hits);
  if (sanitizes_) sanitize(stray_.feed(pos, bytes));
}

void FlowInspector::on_message_end(uint64_t) {
  std::vector<policy::CheckHit> hits;
  checks_.on_message_end(hits);
  apply_check_hits(Dir::kClientToServer, hits);
  settle_stray();  // a BDAT LAST chunk ending in CR
}

bool FlowInspector::settle_stray() {
  const auto settled = stray_.settle();
  if (!settled) return false;
  sanitize(*settled);
  return true;
}

void FlowInspector::sanitize(std::span<const uint64_t> offsets) {
  Stream& s = at(Dir::kClientToServer);
  for (const uint64_t pos : offsets) {
    if (!s.edits.replace_byte(pos, ' ')) {
      request_reset();  // cannot happen (message bytes carry no other edit); never pass it
      break;
    }
    counters_.add(Counter::edit_bytes);
  }
}

void FlowInspector::on_tls_start() {
  counters_.add(Counter::starttls);
  decide(policy::Event::kStarttls, "allow", Dir::kServerToClient, "STARTTLS");
  const bool reported = tls_.start(at(Dir::kClientToServer).frontier);
  if (!reported && !at(Dir::kClientToServer).pending.empty()) {
    starttls_injection(Dir::kClientToServer, "client bytes after STARTTLS before the 220");
  }
  for (Stream& s : streams_) s.line_override.reset();
}

void FlowInspector::on_pipelined(const smtp::PipelinedInput& p) {
  if (pipelining_seen_) return;
  pipelining_seen_ = true;
  const std::string_view after = p.after_body_end ? "end-of-data" : smtp::to_string(p.after);
  std::string detail = p.terminator ? "input before the reply to "
                                    : "PIPELINING not offered: input before the reply to ";
  detail += after;
  order_check(profile_.checks.pipelining, policy::Event::kPipelining, after, std::move(detail));
}

void FlowInspector::order_check(policy::CheckAction action, policy::Event e,
                                std::string_view subject, std::string detail) {
  if (action == policy::CheckAction::kOff) return;
  // Mask is refused by the configuration (the check looks at no single line); as log if set.
  if (action == policy::CheckAction::kMask) action = policy::CheckAction::kLog;
  std::vector<policy::CheckHit> hits;
  hits.push_back(policy::CheckHit{e, action, std::string(subject), std::move(detail)});
  apply_check_hits(Dir::kClientToServer, hits);
}

void FlowInspector::on_anomaly(Dir dir, smtp::Anomaly a) {
  switch (a) {
    case smtp::Anomaly::kOverlongLine:
      counters_.add(Counter::smtp_overlong_lines);
      break;
    case smtp::Anomaly::kExcessivePending:
      // The session drops the command from its queue: every later reply would be paired with
      // the wrong command.
      raise(policy::Exception::kPendingOverflow, dir, "more than 128 commands await replies");
      break;
    case smtp::Anomaly::kUnreadableBdat:
      // The server refuses the line or reads a chunk size of its own: the bytes after it are a
      // chunk or commands, and the gateway cannot know which.
      raise(policy::Exception::kUnclassifiable, dir, "BDAT without one readable chunk size");
      break;
    case smtp::Anomaly::kLooseEndOfData:
      // Unless check.smuggling deals with it (sanitize makes the bare CR or LF a space, reset
      // and drop-connection end the connection), a lenient server ends the message here and
      // reads what follows as commands, which the gateway reads as body.
      if (profile_.checks.smuggling == policy::CheckAction::kOff ||
          profile_.checks.smuggling == policy::CheckAction::kLog)
        raise(policy::Exception::kUnclassifiable, dir,
              "a '.' line ended or begun by a bare CR or LF");
      break;
    case smtp::Anomaly::kMalformedReply:
    case smtp::Anomaly::kUnsolicitedReply:
    case smtp::Anomaly::kDataAfterQuit:
      break;
  }
}

}  // namespace sg::core

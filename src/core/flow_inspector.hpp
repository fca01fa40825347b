#pragma once
// Inspection of one connection's two byte streams: feeds the SMTP session, asks the policy about
// every line (complete or partial), records the resulting edits, and says up to where each
// direction's output is final ("decided"). Pure: no packets, no time.
//
// Stream offsets count payload bytes from the first byte after the SYN (ISN + 1).
#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/counters.hpp"
#include "core/decision.hpp"
#include "core/session_context.hpp"
#include "core/stray_sanitizer.hpp"
#include "core/tls_watch.hpp"
#include "core/verb_rates.hpp"
#include "policy/exceptions.hpp"
#include "policy/line_policy.hpp"
#include "policy/parameter_checks.hpp"
#include "rewrite/edit_list.hpp"
#include "smtp/session.hpp"
#include "smtp/stray_bytes.hpp"
#include "tcp/retained_bytes.hpp"
#include "util/time.hpp"

namespace sg::core {

using smtp::Dir;

// The first word of a line at or after `from` (a verb, a keyword), for logs: split as the
// session splits command lines (smtp::command_token).
std::string_view first_token(std::string_view line, size_t from = 0);

class FlowInspector : private smtp::SessionSink {
 public:
  // `pool`: where the retained bytes' blocks come from (the worker's; nullptr: plain allocation).
  // `exceptions`: what to do when the stream cannot be followed (null: the defaults).
  FlowInspector(const policy::Profile& profile, Counters& counters, tcp::BlockPool* pool = nullptr,
                const policy::ExceptionPolicy* exceptions = nullptr);

  // New bytes of `dir`, in order, starting at frontier(dir).
  void on_data(Dir dir, std::span<const uint8_t> bytes);
  // Forces a decision on every undecided byte of `dir` (hold timeout or hold limit): the partial
  // line in progress is neutralised, and so is the rest of that line when it arrives.
  void force_decide(Dir dir);
  // The receiver of `dir` acknowledged every REWRITTEN byte before `acked_rewritten`. Returns the
  // original offset below which `dir`'s bytes are no longer rendered (retransmissions are
  // trimmed to start there).
  uint64_t on_ack(Dir dir, uint64_t acked_rewritten);

  // Whether the bytes of `dir` at stream offset `pos` agree with what was inspected there, as
  // far as they overlap it (a retransmission). Bytes the receiver acknowledged are not checked
  // (it discards them). False also when the bytes to compare are no longer kept (more than
  // kSeenCap unacknowledged): what cannot be checked is not forwarded.
  bool matches_seen(Dir dir, uint64_t pos, std::span<const uint8_t> bytes) const;
  // Inspected bytes kept per direction until acknowledged, at most.
  static constexpr size_t kSeenCap = 8u << 20;
  // Memory the retained bytes of both directions take (whole blocks).
  size_t retained_bytes_held() const {
    return streams_[0].seen.bytes_held() + streams_[1].seen.bytes_held();
  }
  // Lets go of every retained byte of both directions (the worker's byte budget is full): a
  // later retransmission of them cannot be checked and is dropped (see retained_from).
  // Returns the memory freed.
  size_t release_retained() {
    const size_t before = retained_bytes_held();
    for (Stream& s : streams_) s.seen.release_before(s.seen.end());
    return before - retained_bytes_held();
  }
  // The first offset of `dir` still retained for comparison.
  uint64_t retained_from(Dir dir) const { return at(dir).seen.begin(); }

  // Rewrites `payload` (original bytes of `dir` at stream offset `pos`) in place when no edit
  // touching it changes a length. True when it changed.
  bool apply(Dir dir, uint64_t pos, std::span<uint8_t> payload) const {
    return at(dir).edits.apply_in_place(pos, payload);
  }

  uint64_t frontier(Dir dir) const { return at(dir).frontier; }
  // Every byte of `dir` before this offset has its final output.
  uint64_t decided_until(Dir dir) const {
    const Stream& s = at(dir);
    uint64_t until = std::min(s.open_sep, s.recorded_until);  // kNoSep: no separator held
    // check.smuggling = sanitize: a message's last CR so far waits for the byte after it.
    if (dir == Dir::kClientToServer && stray_.undecided())
      until = std::min(until, *stray_.undecided());
    return until;
  }
  // A policy decision (or a failure to edit safely) asks for the connection to end: reset both
  // ways, or - drop_requested() - dropped silently (drop-connection). Either way nothing more is
  // forwarded.
  bool reset_requested() const { return reset_requested_; }
  bool drop_requested() const { return drop_requested_; }
  // Asks for it from outside too (a packet that cannot be forwarded mapped, a client that never
  // acknowledges the gateway's answer).
  void request_reset();
  void request_drop();
  // An exception (policy/exceptions.hpp) in `dir`: counted every time, logged once per
  // connection and exception, and its action taken - reject: request_reset(); drop-flow:
  // request_drop(); pass: inspection of the connection stops (edits made so far keep being
  // mapped). Returns the action; drop-packet is the caller's to carry out (it only means
  // something for an exception raised about one packet).
  policy::ExceptionAction raise(policy::Exception e, Dir dir, std::string detail = {});
  // While `*watched` is set (someone watches the decisions), a decision that changes a line
  // carries the line before and after (Decision::before/after). Null: never.
  void watch_edits(const std::atomic<bool>* watched) { watched_ = watched; }
  // The time of the bytes fed next (for per-verb rate limits).
  void set_now(Timestamp now) { now_ = now; }
  // Decisions made since the last call, to be logged (addresses not filled in).
  std::vector<Decision> take_decisions() {
    if (!reports_) return {};
    std::vector<Decision> taken = std::exchange(reports_->decisions, {});
    if (reports_->gateway_replies.empty()) reports_.reset();
    return taken;
  }
  // The session's SMTP context (helo, sender, recipients) into a decision about it.
  void fill_context(Decision& d) const;
  // Server stream offsets where the gateway inserted a reply since the last call.
  std::vector<uint64_t> take_gateway_replies() {
    if (!reports_) return {};
    std::vector<uint64_t> taken = std::exchange(reports_->gateway_replies, {});
    if (reports_->decisions.empty()) reports_.reset();
    return taken;
  }
  smtp::LineKind next_kind(Dir dir) const { return session_.next_kind(dir); }
  // Inspection is over (TLS started and the client's first TLS record seen): nothing more will
  // ever be rewritten or checked.
  bool finished() const { return session_.stopped() && !tls_.awaiting_hello(); }
  size_t pending_bytes(Dir dir) const { return at(dir).pending.size(); }
  // The heap the unconsumed bytes take (what a byte budget must count).
  size_t pending_memory(Dir dir) const {
    const std::string& p = at(dir).pending;
    return p.capacity() > kPendingInline ? p.capacity() : 0;
  }
  // A pending buffer emptied with more than this reserved gives its memory back.
  static constexpr size_t kPendingInline = 4096;
  // Bytes of a direction that wait unconsumed, at most: a partial line (up to the line cap) or
  // client bytes sent before the reply that says what they are (after DATA before the 354,
  // after AUTH or STARTTLS). A client must wait for those replies (RFC 2920 section 3.1), so
  // the slack only serves clients that do not, while the server's reply is kept from arriving
  // (its window, a loss); 64 KiB is a whole unscaled TCP window of them. Beyond it the
  // connection is an exception (kPendingBuffer), not unbounded memory.
  static constexpr size_t kPendingSlack = 64u << 10;
  size_t pending_cap(Dir dir) const { return kPendingSlack + session_.line_cap(dir); }
  const rewrite::EditList& edits(Dir dir) const { return at(dir).edits; }

  // The parts allocated on first need, and whether each exists yet: an idle connection (a
  // greeting, no command) has none of them.
  struct OccasionalParts {
    bool tls_watch = false;     // a STARTTLS 220 was seen
    bool sanitizer = false;     // check.smuggling = sanitize met a message byte
    bool rate_windows = false;  // a command was counted against a rate limit
    bool context = false;       // a HELO, EHLO or MAIL was forwarded
    bool reports = false;       // decisions or gateway replies not yet taken
    bool message = false;       // the checks are reading a message
    bool any() const {
      return tls_watch || sanitizer || rate_windows || context || reports || message;
    }
  };
  OccasionalParts occasional_parts() const {
    return {tls_.allocated(),    stray_.allocated(),  rates_.allocated(),
            context_ != nullptr, reports_ != nullptr, checks_.reading_message()};
  }

 private:
  static constexpr uint64_t kNoSep = UINT64_MAX;
  struct Stream {
    uint64_t frontier = 0;        // offset after the last byte received in order
    uint64_t recorded_until = 0;  // bytes before this have their edits recorded
    std::string pending;          // received but not consumed by the session; ends at frontier
    // A rewrite imposed on the line in progress: the rest of a line cut at the cap, or of one
    // that was neutralised. Cleared when a line ends.
    std::optional<policy::LineRewrite> line_override;
    uint64_t line_start = 0;  // offset of the line in progress (rewrites are position-wise)
    // EHLO reply: the '-' of the last kept line, whose output is ' ' if every line after it is
    // stripped. Not released until a later line settles it. kNoSep: none held.
    uint64_t open_sep = kNoSep;
    rewrite::EditList edits;            // edits not yet acknowledged by the receiver
    tcp::RetainedBytes seen{kSeenCap};  // inspected bytes, until acknowledged
  };

  Stream& at(Dir d) { return streams_[static_cast<size_t>(d)]; }
  const Stream& at(Dir d) const { return streams_[static_cast<size_t>(d)]; }
  uint64_t pending_pos(const Stream& s) const { return s.frontier - s.pending.size(); }

  // Offers `dir`'s pending bytes to the session again; true when it consumed any.
  bool refeed(Dir dir);
  // Decides the partial line left in `dir`'s pending bytes, if it can be decided yet.
  void decide_partial(Dir dir);
  // The first decision on an EHLO reply line starting at `line_pos`: settles the separator held
  // for an earlier line and may keep a line the policy would strip (see edit_strip_kept).
  policy::LineRewrite settle_ehlo_line(policy::LineRewrite rewrite, uint64_t line_pos,
                                       std::string_view bytes);
  // Records the edits of `rewrite` for the line starting at `line_pos`, over the original
  // `bytes` at `pos`, skipping what is already decided.
  void record(Dir dir, const policy::LineRewrite& rewrite, uint64_t line_pos, uint64_t pos,
              std::string_view bytes);
  // The line `line` before and after `rewrite` into `d`, when someone watches and the rewrite
  // changes it.
  void note_edit(Decision& d, const policy::LineRewrite& rewrite, std::string_view line) const;
  // Counts a line's rewrite and logs it as a decision.
  void count(const policy::LineRewrite& r, std::string_view line, smtp::LineKind kind);
  void decide(policy::Event e, std::string_view action, Dir dir, std::string_view subject,
              std::string detail = {});
  // The rewrite of a line, decided from its first bytes (`complete` false) or all of them:
  // the profile's verdict, rate limits, the EHLO separator rule, and the banner replacement.
  // Nullopt while undecided.
  std::optional<policy::LineRewrite> first_decision(Dir dir, smtp::LineKind kind,
                                                    uint16_t reply_index, uint64_t line_pos,
                                                    std::string_view bytes, bool complete);
  // What the parameter checks say about a complete line: may strengthen `rewrite` (when no byte
  // of the line has been released yet), end the connection, and log.
  policy::LineRewrite check_line(Dir dir, const policy::LineRewrite& rewrite, bool released,
                                 std::string_view line, bool cut, const smtp::ReplyLine* reply);
  // A complete line (or a piece of one cut at the cap) consumed by the session.
  // `verb_changed` (commands): set on a line's first piece to whether the server reads a verb
  // other than the one sent (X'd, NOOP, removed).
  policy::LineRewrite on_line(Dir dir, smtp::LineKind kind, uint16_t reply_index, uint64_t pos,
                              std::string_view line, bool cut, bool continuation,
                              const smtp::ReplyLine* reply = nullptr, bool* verb_changed = nullptr);
  // The rewrite of the first piece of a command line cut at the cap: X'd whole, logged.
  policy::LineRewrite neutralise_overlong(Dir dir, const policy::LineRewrite& rewrite,
                                          std::string_view line);
  // Raises kPendingBuffer when `dir`'s waiting bytes exceed pending_cap.
  void limit_pending(Dir dir);

  // SessionSink (flow_inspector_events.cpp)
  smtp::CommandFate on_command(const smtp::CommandLine& c) override;
  void on_gateway_reply(uint64_t pos, smtp::Verb answers) override;
  void on_reply(const smtp::ReplyLine& r) override;
  void on_tls_start() override;
  void on_message_bytes(uint64_t pos, std::span<const uint8_t> bytes, bool chunked) override;
  void on_message_end(uint64_t pos) override;
  void on_anomaly(Dir dir, smtp::Anomaly a) override;
  void on_pipelined(const smtp::PipelinedInput& p) override;

  // Members are ordered wide to narrow: a tracked connection carries one inspector, so its
  // padding is paid per flow. What only some connections need (STARTTLS, rate limits, the
  // sanitizer's state, the session context, a message's body scanner) is allocated when first
  // needed; an idle connection pays a pointer for each.

  // What the connection is judged by.
  const policy::Profile& profile_;
  Counters& counters_;
  const policy::ExceptionPolicy& exceptions_;

  // The dialogue and its two streams.
  smtp::Session session_;
  std::array<Stream, 2> streams_{};
  Timestamp now_{};  // the time of the bytes being fed
  VerbRates rates_;  // per-verb rate windows

  // What it asks of the pipeline, until taken: allocated with the first report, freed when
  // everything was taken.
  struct Reports {
    std::vector<Decision> decisions;
    std::vector<uint64_t> gateway_replies;
  };
  std::unique_ptr<Reports> reports_;
  Reports& reports() {
    if (!reports_) reports_ = std::make_unique<Reports>();
    return *reports_;
  }
  const std::atomic<bool>* watched_ = nullptr;
  std::unique_ptr<SessionContext> context_;  // from the first HELO, EHLO or MAIL forwarded

  // Parameter checks on complete lines and message bytes.
  policy::ParameterChecks checks_;
  // The hits of the checks of one line or message piece: counted, logged, acted on.
  void apply_check_hits(Dir dir, std::vector<policy::CheckHit>& hits);

  // check.smuggling = sanitize: the message's stray CR, LF and NUL bytes, to become spaces.
  StraySanitizer stray_;
  // Turns `offsets` of the client stream into spaces (the one edit primitive).
  void sanitize(std::span<const uint64_t> offsets);
  // The message's held CR is stray: no next byte in time, or the message is over.
  bool settle_stray();

  // STARTTLS: the 220 was seen; until the client's first TLS record nothing else may pass.
  TlsWatch tls_;
  void starttls_injection(Dir dir, std::string detail);

  uint16_t exceptions_logged_ = 0;  // bit per policy::Exception: logged once per connection
  const bool strips_;               // the profile strips EHLO lines: separators may need holding
  const bool sanitizes_;            // check.smuggling = sanitize
  const bool rate_limited_;         // the profile limits some verb's rate
  bool reset_requested_ = false;
  bool drop_requested_ = false;

  // Dialogue order (check.early-talker, check.pipelining): each reported once per connection,
  // decided before the offending bytes are fed, so a reset or drop keeps them from the server.
  bool early_talker_seen_ = false;
  bool pipelining_seen_ = false;
  void order_check(policy::CheckAction action, policy::Event e, std::string_view subject,
                   std::string detail);
};

}  // namespace sg::core

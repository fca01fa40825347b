// fuzz_session: the SMTP engine fed a dialogue in chunks, both directions.
//
// Input: one byte choosing the variant profile (fuzz_support.hpp: 4 + byte % 4), then a
// dialogue (records C/S/F/A/T, fuzz_support.hpp).
//
// 1. smtp::Session alone, through a sink that records every event, driven the way the
//    inspector drives it (unconsumed bytes offered again with the next ones, the other
//    direction re-offered after each feed). Checked: every consumed byte belongs to exactly one
//    line or message-bytes event, in order; lines are views of the offered bytes; a complete line
//    ends with its only LF, a cut one is as long as the cap and has none; and the same dialogue
//    fed one byte at a time gives the same events.
// 2. core::FlowInspector - the real engine: session, policy, checks, edits - with each built-in
//    profile and the chosen variant, records applied as the pipeline would (nothing is fed after
//    a reset or drop is requested). After every record, for each direction:
//    - decided_until <= frontier, and it never goes back;
//    - the output of decided bytes never changes: the rendering of what was decided before is
//      the tail of the rendering now (it starts at the acknowledged point);
//    - rendering is compositional (render [a,m) + render [m,b) == render [a,b), any cut m: a
//      retransmission cut differently gets the same bytes) and has to_rewritten(b) -
//      to_rewritten(a) bytes; undecided bytes render too;
//    - apply_in_place agrees with render while no edit changed a length;
//    - the bytes just fed match what was seen (matches_seen), and a changed byte does not;
//    - after force_decide every byte of the direction is decided.
//    'A' records acknowledge: value < 0x8000 is a fraction (value / 0x7fff) of the decided
//    output, as a receiver would; value >= 0x8000 acknowledges (value - 0x8000) rewritten bytes
//    whatever was sent, as a hostile ack can (then only crash-freedom is checked for it).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/counters.hpp"
#include "core/flow_inspector.hpp"
#include "fuzz/fuzz_support.hpp"
#include "smtp/session.hpp"

using namespace sg;
using fuzz::Record;
using smtp::Dir;

namespace {

constexpr size_t idx(Dir d) {
  return static_cast<size_t>(d);
}

// ---- 1. the session alone -------------------------------------------------------------------

class Recorder : public smtp::SessionSink {
 public:
  explicit Recorder(const smtp::Session& s) : session_(s) {}

  std::vector<std::string> log;
  bool stopped = false;  // TLS: later bytes are not accounted for

  // The bytes offered by the feed in progress.
  void offer(Dir d, uint64_t pos, std::span<const uint8_t> bytes) {
    dir_ = d;
    pos_ = pos;
    bytes_ = bytes;
  }
  uint64_t next(Dir d) const { return next_[idx(d)]; }

  smtp::CommandFate on_command(const smtp::CommandLine& c) override {
    check_line(Dir::kClientToServer, c.pos, c.line, c.cut);
    if (!c.continuation) {
      // The verb is the line's first word, leading blanks skipped (smtp::command_verb).
      const smtp::CommandToken verb = smtp::command_verb(c.line);
      SG_FUZZ_CHECK(c.verb.data() == c.line.data() + verb.start && c.verb == verb.text,
                    fuzz::escaped(c.line));
    } else {
      SG_FUZZ_CHECK(c.verb.empty(), fuzz::escaped(c.line));
    }
    log.push_back("C " + std::to_string(c.pos) + " " + std::string(smtp::to_string(c.kind)) + " " +
                  std::string(smtp::to_string(c.verb_id)) + (c.cut ? " cut" : "") +
                  (c.continuation ? " cont" : "") + " " + fuzz::escaped(c.line));
    // Answered (the gateway replies) for two verbs, so that path of the session runs too. A
    // function of the line only: the byte-by-byte feed must make the same choice.
    const bool answer = c.kind == smtp::LineKind::kCommand && !c.continuation &&
                        (c.verb_id == smtp::Verb::kVrfy || c.verb_id == smtp::Verb::kExpn);
    return answer ? smtp::CommandFate::kAnswered : smtp::CommandFate::kForwarded;
  }
  void on_gateway_reply(uint64_t pos, smtp::Verb answers) override {
    SG_FUZZ_CHECK(pos <= next_[1], std::to_string(pos) + " > " + std::to_string(next_[1]));
    log.push_back("G " + std::to_string(pos) + " " + std::string(smtp::to_string(answers)));
  }
  void on_reply(const smtp::ReplyLine& r) override {
    check_line(Dir::kServerToClient, r.pos, r.line, r.cut);
    log.push_back("S " + std::to_string(r.pos) + " " + std::string(smtp::to_string(r.kind)) + " " +
                  std::to_string(r.code) + (r.last ? " last" : "") + " #" +
                  std::to_string(r.index) + " " + std::string(smtp::to_string(r.answers)) +
                  (r.cut ? " cut" : "") + (r.continuation ? " cont" : "") + " " +
                  fuzz::escaped(r.line));
  }
  void on_body_end(uint64_t pos) override {
    SG_FUZZ_CHECK(pos == next_[0], std::to_string(pos) + " != " + std::to_string(next_[0]));
    log.push_back("E " + std::to_string(pos));
  }
  void on_message_bytes(uint64_t pos, std::span<const uint8_t> bytes, bool chunked) override {
    SG_FUZZ_CHECK(dir_ == Dir::kClientToServer, "message bytes while feeding the server");
    within_offer(pos, fuzz::text_of(bytes));
    SG_FUZZ_CHECK(pos == next_[0], std::to_string(pos) + " != " + std::to_string(next_[0]));
    next_[0] += bytes.size();
    // Adjacent pieces are one event: the byte-by-byte feed cuts them differently.
    const std::string head = chunked ? "M bdat " : "M data ";
    if (!log.empty() && log.back().rfind(head, 0) == 0) {
      const size_t space = log.back().find(' ', head.size());
      const uint64_t end = std::stoull(log.back().substr(head.size(), space - head.size()));
      if (end == pos) {
        log.back() = head + std::to_string(pos + bytes.size()) + log.back().substr(space) +
                     fuzz::escaped(fuzz::text_of(bytes), SIZE_MAX);
        return;
      }
    }
    log.push_back(head + std::to_string(pos + bytes.size()) + " " +
                  fuzz::escaped(fuzz::text_of(bytes), SIZE_MAX));
  }
  void on_message_end(uint64_t pos) override {
    SG_FUZZ_CHECK(pos == next_[0], std::to_string(pos) + " != " + std::to_string(next_[0]));
    log.push_back("END " + std::to_string(pos));
  }
  void on_tls_start() override {
    stopped = true;
    log.push_back("TLS");
  }
  void on_anomaly(Dir d, smtp::Anomaly a) override {
    log.push_back("! " + std::to_string(idx(d)) + " " + std::string(smtp::to_string(a)));
  }

 private:
  void within_offer(uint64_t pos, std::string_view piece) const {
    const auto* base = reinterpret_cast<const char*>(bytes_.data());
    SG_FUZZ_CHECK(piece.data() >= base && piece.data() + piece.size() <= base + bytes_.size(),
                  "a line or piece that is not a view of the offered bytes");
    SG_FUZZ_CHECK(pos == pos_ + static_cast<uint64_t>(piece.data() - base),
                  "event position " + std::to_string(pos) + " is not where its bytes are");
  }
  void check_line(Dir d, uint64_t pos, std::string_view line, bool cut) {
    SG_FUZZ_CHECK(dir_ == d, "a line of the other direction");
    within_offer(pos, line);
    SG_FUZZ_CHECK(pos == next_[idx(d)],
                  "line at " + std::to_string(pos) + ", expected " + std::to_string(next_[idx(d)]));
    SG_FUZZ_CHECK(!line.empty(), "empty line");
    if (cut) {
      SG_FUZZ_CHECK(line.size() == session_.line_cap(d) && line.find('\n') == line.npos,
                    "cut line: " + fuzz::escaped(line));
    } else {
      SG_FUZZ_CHECK(line.find('\n') == line.size() - 1, "line: " + fuzz::escaped(line));
      SG_FUZZ_CHECK(line.size() <= session_.line_cap(d), "line over the cap");
    }
    next_[idx(d)] += line.size();
  }

  const smtp::Session& session_;
  Dir dir_ = Dir::kClientToServer;
  uint64_t pos_ = 0;
  std::span<const uint8_t> bytes_;
  uint64_t next_[2] = {0, 0};
};

// Drives a Session as the inspector does; returns the event log.
class SessionDriver {
 public:
  SessionDriver() : rec_(session_) {}

  void data(Dir d, std::span<const uint8_t> bytes) {
    pending_[idx(d)].append(fuzz::text_of(bytes));
    frontier_[idx(d)] += bytes.size();
    offer(d);
    // A reply may unblock the other direction and back: until nothing moves (each round that
    // moves consumes a byte, so this ends).
    while (offer(smtp::opposite(d)) || offer(d)) {
    }
  }
  const std::vector<std::string>& log() const { return rec_.log; }

 private:
  bool offer(Dir d) {
    std::string& p = pending_[idx(d)];
    if (p.empty()) return false;
    const uint64_t pos = frontier_[idx(d)] - p.size();
    const auto bytes = fuzz::bytes_of(p);
    rec_.offer(d, pos, bytes);
    const bool was_stopped = session_.stopped();
    const size_t used = session_.feed(d, pos, bytes, rec_);
    SG_FUZZ_CHECK(used <= p.size(), "consumed more than offered");
    if (!was_stopped && !session_.stopped())
      SG_FUZZ_CHECK(rec_.next(d) == pos + used,
                    "consumed " + std::to_string(used) + " bytes at " + std::to_string(pos) +
                        " but events account up to " + std::to_string(rec_.next(d)));
    if (session_.stopped()) SG_FUZZ_CHECK(used == p.size(), "a stopped session holds bytes");
    p.erase(0, used);
    return used > 0;
  }

  smtp::Session session_;
  Recorder rec_;
  std::string pending_[2];
  uint64_t frontier_[2] = {0, 0};
};

void run_session(const std::vector<Record>& records) {
  SessionDriver whole, bytewise;
  for (const Record& r : records) {
    if (r.op != fuzz::Op::kData) continue;
    if (fuzz::strict() || r.dir == Dir::kClientToServer) {
      whole.data(r.dir, r.bytes);
    } else {
      // Known finding 3 (README): the lines of one server piece are all read before the client
      // bytes a reply among them unblocks. Without SG_FUZZ_STRICT the whole feed gives the
      // server's bytes line by line.
      size_t from = 0;
      for (size_t i = 0; i < r.bytes.size(); ++i) {
        if (r.bytes[i] != '\n') continue;
        whole.data(r.dir, r.bytes.subspan(from, i + 1 - from));
        from = i + 1;
      }
      if (from < r.bytes.size()) whole.data(r.dir, r.bytes.subspan(from));
    }
    for (size_t i = 0; i < r.bytes.size(); ++i) bytewise.data(r.dir, r.bytes.subspan(i, 1));
  }
  if (whole.log() != bytewise.log()) {
    std::string detail;
    const size_t n = std::max(whole.log().size(), bytewise.log().size());
    for (size_t i = 0; i < n; ++i) {
      const std::string a = i < whole.log().size() ? whole.log()[i] : "-";
      const std::string b = i < bytewise.log().size() ? bytewise.log()[i] : "-";
      detail += (a == b ? "   " : "!! ") + a + (a == b ? "" : "  |  " + b) + "\n";
    }
    fuzz::fail("session events fed whole == fed byte by byte", detail);
  }
}

// ---- 2. the inspector -----------------------------------------------------------------------

class InspectorRun {
 public:
  explicit InspectorRun(const policy::Profile& p) : in_(p, counters_) {}

  void run(const std::vector<Record>& records) {
    Timestamp now{};
    for (const Record& r : records) {
      if (in_.reset_requested()) break;  // the pipeline forwards and feeds nothing more
      const size_t d = idx(r.dir);
      switch (r.op) {
        case fuzz::Op::kData: {
          const uint64_t pos = in_.frontier(r.dir);
          original_[d].append(fuzz::text_of(r.bytes));
          in_.on_data(r.dir, r.bytes);
          SG_FUZZ_CHECK(in_.frontier(r.dir) == original_[d].size(), "frontier");
          check_seen(r.dir, pos, r.bytes);
          break;
        }
        case fuzz::Op::kForce:
          in_.force_decide(r.dir);
          SG_FUZZ_CHECK(in_.decided_until(r.dir) == in_.frontier(r.dir),
                        "force_decide left " + std::to_string(in_.decided_until(r.dir)) + " < " +
                            std::to_string(in_.frontier(r.dir)));
          break;
        case fuzz::Op::kAck:
          ack(r.dir, r.value);
          break;
        case fuzz::Op::kTime:
          now += milliseconds(r.value);
          in_.set_now(now);
          break;
      }
      check(Dir::kClientToServer);
      check(Dir::kServerToClient);
    }
    for (const core::Decision& x : in_.take_decisions()) {
      SG_FUZZ_CHECK(x.event < policy::Event::kCount, "decision without an event");
      SG_FUZZ_CHECK(!x.action.empty(), "decision without an action");
      SG_FUZZ_CHECK(x.subject.size() <= core::Decision::kMaxSubject, "subject too long");
    }
    for (uint64_t pos : in_.take_gateway_replies())
      SG_FUZZ_CHECK(pos <= in_.frontier(Dir::kServerToClient), "gateway reply beyond the stream");
  }

 private:
  std::span<const uint8_t> original(Dir d, uint64_t from, uint64_t to) const {
    return fuzz::bytes_of(std::string_view(original_[idx(d)]).substr(from, to - from));
  }
  std::string render(Dir d, uint64_t from, uint64_t to) const {
    std::vector<uint8_t> out;
    in_.edits(d).render(from, original(d, from, to), out);
    return {out.begin(), out.end()};
  }

  void ack(Dir d, uint16_t value) {
    const size_t i = idx(d);
    uint64_t acked = 0;
    if (value & 0x8000) {
      acked = value & 0x7fff;
      wild_[i] = true;
    } else {
      // A receiver acknowledges what it was sent: part of the decided output.
      const uint64_t lo = in_.edits(d).to_rewritten(in_.edits(d).acked_original());
      const uint64_t hi = in_.edits(d).to_rewritten(in_.decided_until(d));
      if (hi < lo) return;  // checked in check()
      acked = std::max(acked_rw_[i], lo + (hi - lo) * value / 0x7fff);
    }
    acked_rw_[i] = std::max(acked_rw_[i], acked);
    const uint64_t a = in_.on_ack(d, acked);
    SG_FUZZ_CHECK(a == in_.edits(d).acked_original(), "on_ack's result");
  }

  void check_seen(Dir d, uint64_t pos, std::span<const uint8_t> bytes) {
    if (wild_[idx(d)] || bytes.empty()) return;
    SG_FUZZ_CHECK(in_.matches_seen(d, pos, bytes), "the bytes just fed do not match what was seen");
    const uint64_t acked = in_.edits(d).acked_original();
    if (in_.next_kind(d) == smtp::LineKind::kPassthrough || pos + bytes.size() <= acked) return;
    // One byte changed, where it is still compared: a conflicting retransmission.
    std::vector<uint8_t> changed(bytes.begin(), bytes.end());
    const size_t k = static_cast<size_t>(std::max(pos, acked) - pos);
    changed[k] ^= 0x20;
    SG_FUZZ_CHECK(!in_.matches_seen(d, pos, changed), "a changed byte matches what was seen");
  }

  void check(Dir d) {
    const size_t i = idx(d);
    const uint64_t du = in_.decided_until(d);
    const uint64_t fr = in_.frontier(d);
    SG_FUZZ_CHECK(du <= fr, "decided_until " + std::to_string(du) + " > frontier " +
                                std::to_string(fr) + " dir " + std::to_string(i));
    SG_FUZZ_CHECK(du >= decided_[i], "decided_until went back from " + std::to_string(decided_[i]) +
                                         " to " + std::to_string(du) + " dir " + std::to_string(i));
    const rewrite::EditList& e = in_.edits(d);
    const uint64_t a = e.acked_original();  // nothing below it may be rendered any more
    if (a < fr) {
      // Undecided bytes render too (the pipeline never sends them; the edit list must cope).
      const std::string all = render(d, a, fr);
      if (!wild_[i])
        SG_FUZZ_CHECK(all.size() == e.to_rewritten(fr) - e.to_rewritten(a), "render length");
    }
    if (wild_[i] || a > du) {
      // A hostile ack may lie beyond what was sent (and an ack of a removed range covers it):
      // nothing decided is left to compare.
      snapshot_[i].clear();
      decided_[i] = du;
      return;
    }
    const std::string now = render(d, a, du);
    SG_FUZZ_CHECK(now.size() == e.to_rewritten(du) - e.to_rewritten(a),
                  "render length " + std::to_string(now.size()) + " != mapped length");
    // What was decided before renders as it did: the tail of the last snapshot.
    const uint64_t before = std::max(a, decided_[i]);
    const std::string old_part = render(d, a, before);
    const std::string& snap = snapshot_[i];
    SG_FUZZ_CHECK(old_part.size() <= snap.size() &&
                      snap.compare(snap.size() - old_part.size(), old_part.size(), old_part) == 0,
                  "decided output changed, dir " + std::to_string(i) +
                      "\nwas: " + fuzz::escaped(snap) + "\nnow: " + fuzz::escaped(old_part));
    // Compositional at the old decided point and at a point inside the decided range.
    const std::string new_part = render(d, before, du);
    SG_FUZZ_CHECK(old_part + new_part == now,
                  "render is not compositional at " + std::to_string(before));
    const uint64_t mid = a + (du - a) / 3;
    SG_FUZZ_CHECK(render(d, a, mid) + render(d, mid, du) == now,
                  "render is not compositional at " + std::to_string(mid));
    if (!e.ever_resized()) {
      std::vector<uint8_t> copy(original_[i].begin() + static_cast<ptrdiff_t>(a),
                                original_[i].begin() + static_cast<ptrdiff_t>(du));
      (void)e.apply_in_place(a, copy);
      SG_FUZZ_CHECK(std::string(copy.begin(), copy.end()) == now,
                    "apply_in_place disagrees with render");
    }
    snapshot_[i] = now;
    decided_[i] = du;
  }

  core::Counters counters_;
  core::FlowInspector in_;
  std::string original_[2];
  std::string snapshot_[2];  // rendering of [acked_original, decided) after the last record
  uint64_t decided_[2] = {0, 0};
  uint64_t acked_rw_[2] = {0, 0};
  bool wild_[2] = {false, false};
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  const size_t variant =
      fuzz::kBuiltinCount + in.u8() % (fuzz::kProfileCount - fuzz::kBuiltinCount);
  const std::vector<Record> records = fuzz::read_dialogue(in);
  run_session(records);
  for (size_t p = 0; p < fuzz::kBuiltinCount; ++p) InspectorRun(fuzz::profile(p)).run(records);
  InspectorRun(fuzz::profile(variant)).run(records);
  return 0;
}

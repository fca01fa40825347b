#pragma once
// A dialogue fed through one FlowInspector, whole or with every step cut at one point, and what
// each direction's receiver gets: the harness of the inspector's policy and dialogue-order
// tests. As the pipeline does, nothing of the piece after which the inspector asks to end the
// connection is forwarded (nor anything after it); the rest goes out as far as it is decided.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/flow_inspector.hpp"
#include "policy/profile.hpp"

namespace sg::test {

// The two directions as the dialogues write them: C (client to server) and S.
inline constexpr smtp::Dir C = smtp::Dir::kClientToServer;
inline constexpr smtp::Dir S = smtp::Dir::kServerToClient;

struct Step {
  smtp::Dir dir;
  std::string text;
};

struct DialogueOutcome {
  std::string out[2];               // what the server [0] and the client [1] receive
  std::vector<std::string> events;  // "name action subject detail"
  bool reset = false, drop = false;
  uint64_t checks_fired = 0;  // the counter
};

inline std::span<const uint8_t> span_of(const std::string& s, size_t from, size_t n) {
  return {reinterpret_cast<const uint8_t*>(s.data()) + from, n};
}

// Feeds `steps`, each cut once at `cut` (when inside it; SIZE_MAX: whole).
inline DialogueOutcome feed(const policy::Profile& p, const std::vector<Step>& steps, size_t cut) {
  core::Counters counters;
  core::FlowInspector in(p, counters);
  std::string original[2];
  uint64_t sent[2] = {0, 0};
  DialogueOutcome o;
  for (const Step& s : steps) {
    const size_t at = std::min(cut, s.text.size());
    for (auto [from, n] : {std::pair{size_t{0}, at}, std::pair{at, s.text.size() - at}}) {
      if (n == 0 || in.reset_requested()) continue;
      original[static_cast<int>(s.dir)] += s.text.substr(from, n);
      in.on_data(s.dir, span_of(s.text, from, n));
      if (in.reset_requested()) break;
      for (int d = 0; d < 2; ++d) sent[d] = in.decided_until(static_cast<smtp::Dir>(d));
    }
  }
  for (int d = 0; d < 2; ++d) {
    std::vector<uint8_t> out;
    in.edits(static_cast<smtp::Dir>(d)).render(0, span_of(original[d], 0, sent[d]), out);
    o.out[d].assign(out.begin(), out.end());
  }
  for (const core::Decision& d : in.take_decisions()) {
    std::string line =
        std::string(policy::info(d.event).name) + " " + std::string(d.action) + " " + d.subject;
    if (!d.detail.empty()) line += " " + d.detail;
    o.events.push_back(line);
  }
  o.reset = in.reset_requested();
  o.drop = in.drop_requested();
  o.checks_fired = counters.get(core::Counter::checks_fired);
  return o;
}

// The outcome fed whole, checked for a cut at every point of every step: the same decisions
// always, the same output unless the connection ends (then earlier pieces may have left), and
// `each` holds for every outcome.
inline DialogueOutcome feed_every_split(
    const policy::Profile& p, const std::vector<Step>& steps,
    const std::function<void(const DialogueOutcome&)>& each = {}) {
  const DialogueOutcome whole = feed(p, steps, SIZE_MAX);
  if (each) each(whole);
  size_t longest = 0;
  for (const Step& s : steps) longest = std::max(longest, s.text.size());
  for (size_t cut = 1; cut < longest; ++cut) {
    const DialogueOutcome o = feed(p, steps, cut);
    INFO("cut at " << cut);
    if (!whole.reset) {
      CHECK(o.out[0] == whole.out[0]);
      CHECK(o.out[1] == whole.out[1]);
    }
    CHECK(o.events == whole.events);
    CHECK(o.reset == whole.reset);
    CHECK(o.drop == whole.drop);
    if (each) each(o);
  }
  return whole;
}

}  // namespace sg::test

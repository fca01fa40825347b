#pragma once
// What a worker keeps per connection: the TCP-level flow (flow/flow.hpp) and, from the
// handshake on, its inspection, its profile and the gateway's unacknowledged answers.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/flow_inspector.hpp"
#include "core/owed_replies.hpp"
#include "flow/flow.hpp"
#include "policy/profile.hpp"

namespace sg::core {

struct InspectedFlow : flow::Flow {
  std::shared_ptr<const policy::Profile> profile;  // chosen at the handshake, kept to the end
  std::unique_ptr<FlowInspector> inspector;        // created with the handshake
  OwedReplies owed;                                // gateway bytes not yet acknowledged
  bool done_marked = false;                        // kernel bypass requested
  bool mapped_reported = false;                    // reported in Output::mapped_flows
  bool reset = false;                              // the gateway reset it: every packet is dropped
  bool urgent_logged = false;                      // urgent_cleared logged (once per flow)
  bool budget_logged = false;                      // memory_budget logged (once per flow)
  uint8_t reset_answers = 4;                       // RSTs left to answer stray packets with
  size_t pending_counted = 0;  // the inspector's unconsumed bytes, as counted in the budget

  // Its sequence numbers are mapped: an edit changed a length in either direction.
  bool mapped() const {
    return inspector && (inspector->edits(smtp::Dir::kClientToServer).ever_resized() ||
                         inspector->edits(smtp::Dir::kServerToClient).ever_resized());
  }
  const tcp::SenderState& sender(smtp::Dir d) const { return conn.sender(static_cast<size_t>(d)); }
};

}  // namespace sg::core

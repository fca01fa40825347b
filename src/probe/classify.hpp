#pragma once
// From transcripts to findings: pure, no I/O. The path transcript is what the probe saw through
// the network under test; the direct one (optional, --direct) is the same dialogue with the
// server without the device in between. Every finding quotes the lines it rests on.
#include <string>
#include <string_view>
#include <vector>

#include "probe/banner.hpp"
#include "probe/finding.hpp"
#include "probe/transcript.hpp"

namespace sg::probe {

struct Classification {
  std::vector<Finding> findings;
  std::vector<std::string> notes;  // observations that are not findings (TLS details, limits)
  bool inspection() const;         // any finding that is evidence of inspection
  const Finding* find(FindingKind k) const;
};

Classification classify(const Transcript& path, const Transcript* direct);

// --- leaves, exposed for the unit tests ------------------------------------------------------

// The reply quotes the command's verb as X's of the same length ("500 5.3.3 Unrecognized
// command 'XXXXXXXXXXX'"): the server received the command masked.
bool echoes_mask(std::string_view command, const Reply& reply);

}  // namespace sg::probe

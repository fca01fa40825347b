#include "probe/finding.hpp"

#include <array>

namespace sg::probe {
namespace {

template <class... S>
constexpr std::array<Symptom, sizeof...(S)> symptom_list(S... s) {
  return {s...};
}

// One array of symptoms per finding kind, named like the kind.
namespace symptoms_of {
using enum Symptom;
#define SG_X(name, id, inspection, title, symptoms, fix) \
  constexpr auto name = symptom_list symptoms;
SG_PROBE_FINDINGS(SG_X)
#undef SG_X
}  // namespace symptoms_of

const std::array kSymptoms{
#define SG_X(name, id, text, source) SymptomInfo{id, text, source},
    SG_PROBE_SYMPTOMS(SG_X)
#undef SG_X
};

const std::array kFindings{
#define SG_X(name, id, inspection, title, symptoms, fix) \
  FindingInfo{id, inspection, title, symptoms_of::name, fix},
    SG_PROBE_FINDINGS(SG_X)
#undef SG_X
};

}  // namespace

const SymptomInfo& info(Symptom s) {
  return kSymptoms[static_cast<size_t>(s)];
}

const FindingInfo& info(FindingKind k) {
  return kFindings[static_cast<size_t>(k)];
}

std::string_view to_string(Confidence c) {
  return c == Confidence::kCertain ? "certain" : "likely";
}

}  // namespace sg::probe

#include "smtp/vocabulary.hpp"

#include <array>

namespace sg::smtp {
namespace {

constexpr std::array<std::string_view, kVerbCount> kVerbText{{
#define SG_X(name, text, comment) text,
    SG_VERBS(SG_X)
#undef SG_X
}};
constexpr std::array<std::string_view, kEhloKeywordCount> kKeywordText{{
#define SG_X(name, text, comment) text,
    SG_EHLO_KEYWORDS(SG_X)
#undef SG_X
}};

char upper(char c) {
  return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (upper(a[i]) != b[i]) return false;
  return true;
}

bool istarts_with(std::string_view text, std::string_view prefix) {
  return prefix.size() <= text.size() && iequals(prefix, text.substr(0, prefix.size()));
}

}  // namespace

std::string_view to_string(Verb v) {
  return v == Verb::kUnknown ? "UNKNOWN" : kVerbText[static_cast<size_t>(v)];
}
std::string_view to_string(EhloKeyword k) {
  return k == EhloKeyword::kUnknown ? "UNKNOWN" : kKeywordText[static_cast<size_t>(k)];
}

Verb parse_verb(std::string_view token) {
  for (size_t i = 0; i < kVerbCount; ++i)
    if (iequals(token, kVerbText[i])) return static_cast<Verb>(i);
  return Verb::kUnknown;
}

EhloKeyword parse_ehlo_keyword(std::string_view token) {
  for (size_t i = 0; i < kEhloKeywordCount; ++i)
    if (iequals(token, kKeywordText[i])) return static_cast<EhloKeyword>(i);
  return EhloKeyword::kUnknown;
}

bool verb_starts_with(Verb v, std::string_view prefix) {
  return v != Verb::kUnknown && istarts_with(kVerbText[static_cast<size_t>(v)], prefix);
}
bool keyword_starts_with(EhloKeyword k, std::string_view prefix) {
  return k != EhloKeyword::kUnknown && istarts_with(kKeywordText[static_cast<size_t>(k)], prefix);
}

}  // namespace sg::smtp

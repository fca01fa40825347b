#include "smtp/vocabulary.hpp"

#include <algorithm>
#include <array>

#include "util/ascii.hpp"

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

bool is_command_blank(char c) {
  return is_ascii_space(c);
}

CommandToken command_token(std::string_view line, size_t from) {
  CommandToken t;
  size_t p = std::min(from, line.size());
  while (p < line.size() && is_command_blank(line[p])) ++p;
  size_t end = p;
  while (end < line.size() && !is_command_blank(line[end])) ++end;
  t.start = p;
  t.text = line.substr(p, end - p);
  t.terminated = end < line.size();
  return t;
}

}  // namespace sg::smtp

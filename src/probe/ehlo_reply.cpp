#include "probe/ehlo_reply.hpp"

#include "probe/reply_parser.hpp"
#include "util/ascii.hpp"

namespace sg::probe {
namespace {

// The text of a reply line after "NNN-" / "NNN ".
std::string_view line_text(std::string_view line) {
  if (reply_code(line) == 0) return line;
  return line.size() > 4 ? line.substr(4) : std::string_view{};
}

bool is_enhanced_status(std::string_view w) {
  // class "." subject "." detail, digits only (RFC 3463)
  int dots = 0;
  bool digit = false;
  for (char c : w) {
    if (c == '.') {
      if (!digit) return false;
      ++dots;
      digit = false;
    } else if (is_digit(c)) {
      digit = true;
    } else {
      return false;
    }
  }
  return dots == 2 && digit;
}

}  // namespace

bool is_masked_keyword(std::string_view token) {
  if (token.size() < 3) return false;
  for (size_t i = 0; i + 1 < token.size(); ++i)
    if (token[i] != 'X') return false;
  return token.back() == 'X' || token.back() == 'A';
}

bool looks_like_greeting(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  const std::string_view word = text.substr(0, text.find(' '));
  if (word.empty() || is_enhanced_status(word)) return false;
  const std::string w = to_upper(word);
  return w != "OK" && w != "OK.";
}

EhloOffer parse_ehlo(const Reply& r) {
  EhloOffer o;
  o.positive = r.klass() == 2;
  if (r.lines.empty()) return o;
  o.greeting = std::string(line_text(r.lines.front()));
  o.greets = o.positive && looks_like_greeting(o.greeting);
  if (!o.positive) return o;
  for (size_t i = 1; i < r.lines.size(); ++i) {
    std::string_view text = line_text(r.lines[i]);
    while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
    const size_t sp = text.find(' ');
    EhloLine l;
    l.keyword = to_upper(text.substr(0, sp));
    if (sp != std::string_view::npos) l.params = std::string(text.substr(sp + 1));
    l.raw = r.lines[i];
    l.masked = is_masked_keyword(l.keyword);
    o.lines.push_back(std::move(l));
  }
  return o;
}

const EhloLine* EhloOffer::find(std::string_view keyword) const {
  const std::string k = to_upper(keyword);
  for (const EhloLine& l : lines)
    if (!l.masked && l.keyword == k) return &l;
  return nullptr;
}

std::vector<const EhloLine*> EhloOffer::masked() const {
  std::vector<const EhloLine*> out;
  for (const EhloLine& l : lines)
    if (l.masked) out.push_back(&l);
  return out;
}

std::string auth_mechanism(const EhloOffer& offer) {
  const EhloLine* auth = offer.find("AUTH");
  if (!auth) return "PLAIN";
  std::string first;
  std::string_view p = auth->params;
  while (!p.empty()) {
    const size_t sp = p.find(' ');
    const std::string mech = to_upper(p.substr(0, sp));
    if (mech == "PLAIN" || mech == "LOGIN") return mech;
    if (first.empty()) first = mech;
    if (sp == std::string_view::npos) break;
    p.remove_prefix(sp + 1);
  }
  return first.empty() ? "PLAIN" : first;
}

}  // namespace sg::probe

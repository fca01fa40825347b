#include "smtp/mail_params.hpp"

#include <algorithm>
#include <limits>

#include "util/ascii.hpp"

namespace sg::smtp {
namespace {

// The bytes ASA's special-character check looks for.
bool is_special(char c) {
  const auto u = static_cast<unsigned char>(c);
  return c == '|' || c == '`' || u < 0x20 || u == 0x7f;
}

// Blanks are SP, HTAB, VT and FF, as the session splits a command line (smtp::is_command_blank
// without the line ends): a check must find the path where the server does.
size_t skip_wsp(std::string_view s, size_t p) {
  while (p < s.size() && is_sp_htab_vt_ff(s[p])) ++p;
  return p;
}

// Records the first special character of `path` (a view into `line`).
void find_specials(std::string_view line, std::string_view path, MailParams& r) {
  for (size_t i = 0; i < path.size(); ++i) {
    if (is_special(path[i])) {
      r.special_chars = true;
      r.special_index = static_cast<size_t>(path.data() - line.data()) + i;
      return;
    }
  }
}

// "MAIL" WSP+ "FROM" WSP* ":" or "RCPT" WSP+ "TO" WSP* ":". Returns the offset after the colon,
// or npos.
size_t parse_verb_prefix(std::string_view line, Verb& verb) {
  size_t p = skip_wsp(line, 0);  // servers skip blanks before the verb (smtp::command_verb)
  const size_t start = p;
  while (p < line.size() && !is_sp_htab_vt_ff(line[p]) && line[p] != ':') ++p;
  const std::string_view word = line.substr(start, p - start);
  std::string_view keyword;
  if (iequals(word, "MAIL")) {
    verb = Verb::kMail;
    keyword = "FROM";
  } else if (iequals(word, "RCPT")) {
    verb = Verb::kRcpt;
    keyword = "TO";
  } else {
    return std::string_view::npos;
  }
  const size_t k = skip_wsp(line, p);
  if (k == p || !iequals(line.substr(k, keyword.size()), keyword)) return std::string_view::npos;
  const size_t c = skip_wsp(line, k + keyword.size());
  if (c >= line.size() || line[c] != ':') return std::string_view::npos;
  return c + 1;
}

// "@a,@b" (RFC 5321 A-d-l): every element an '@' and a non-empty domain.
bool valid_route(std::string_view route) {
  size_t start = 0;
  while (start <= route.size()) {
    size_t end = route.find(',', start);
    if (end == std::string_view::npos) end = route.size();
    const std::string_view element = route.substr(start, end - start);
    if (element.size() < 2 || element[0] != '@') return false;
    if (element.substr(1).find_first_of("@:<>") != std::string_view::npos) return false;
    start = end + 1;
  }
  return true;
}

// Splits the path inside the brackets into route, local part and domain.
MailParamStatus parse_path(std::string_view path, MailParams& r) {
  if (path.empty()) {
    r.null_path = true;
    return MailParamStatus::kOk;
  }
  std::string_view mailbox = path;
  if (path[0] == '@') {
    const size_t colon = path.find(':');
    if (colon == std::string_view::npos) return MailParamStatus::kBadSourceRoute;
    r.source_route = path.substr(0, colon);
    mailbox = path.substr(colon + 1);
    if (!valid_route(r.source_route) || mailbox.empty()) return MailParamStatus::kBadSourceRoute;
  }
  // The last '@' outside quotes separates the domain (a quoted local part may hold '@').
  bool quoted = false;
  size_t at = std::string_view::npos;
  for (size_t i = 0; i < mailbox.size(); ++i) {
    const char c = mailbox[i];
    if (quoted && c == '\\') {
      ++i;  // quoted-pair: the next character is literal
    } else if (c == '"') {
      quoted = !quoted;
    } else if (!quoted && c == '@') {
      at = i;
    } else if (!quoted && (c == '<' || c == '>')) {
      return MailParamStatus::kBadBrackets;
    }
  }
  r.address = mailbox;
  if (quoted) return MailParamStatus::kUnterminatedQuote;
  if (at == std::string_view::npos) {
    r.local_part = mailbox;
  } else {
    r.local_part = mailbox.substr(0, at);
    r.domain = mailbox.substr(at + 1);
  }
  return MailParamStatus::kOk;
}

// SIZE= value: 1 to 20 digits that fit in 64 bits.
bool parse_size(std::string_view v, uint64_t& out) {
  if (v.empty() || v.size() > 20) return false;
  uint64_t n = 0;
  for (const char c : v) {
    if (!is_digit(c)) return false;
    const auto d = static_cast<uint64_t>(c - '0');
    if (n > (std::numeric_limits<uint64_t>::max() - d) / 10) return false;
    n = n * 10 + d;
  }
  out = n;
  return true;
}

// esmtp-param = keyword ["=" value]; keyword = alnum *(alnum / "-"); value printable, no SP.
MailParamStatus parse_parameters(std::string_view params, MailParams& r) {
  size_t p = 0;
  while (p < params.size()) {
    size_t end = p;
    while (end < params.size() && !is_sp_htab_vt_ff(params[end])) ++end;
    const std::string_view param = params.substr(p, end - p);
    p = skip_wsp(params, end);
    const size_t eq = param.find('=');
    const std::string_view keyword = param.substr(0, eq);
    if (keyword.empty() || !is_alnum(keyword[0])) return MailParamStatus::kBadParameter;
    for (const char c : keyword)
      if (!is_alnum(c) && c != '-') return MailParamStatus::kBadParameter;
    std::string_view value;
    if (eq != std::string_view::npos) {
      value = param.substr(eq + 1);
      if (value.empty()) return MailParamStatus::kBadParameter;
      for (const char c : value)
        if (static_cast<unsigned char>(c) < 0x21 || c == 0x7f)
          return MailParamStatus::kBadParameter;
    }
    if (iequals(keyword, "SIZE")) {
      uint64_t size = 0;
      if (r.declared_size || !parse_size(value, size)) return MailParamStatus::kBadSize;
      r.declared_size = size;
    } else if (iequals(keyword, "BODY")) {
      r.body = value;
    } else if (iequals(keyword, "SMTPUTF8")) {
      r.smtputf8 = true;
    }
  }
  return MailParamStatus::kOk;
}

// The position of the first `end` outside a quoted string from `from` on (a backslash in quotes
// escapes the next byte), or a position at or past the end. `quoted` says whether the scan ended
// inside quotes.
size_t find_unquoted(std::string_view text, size_t from, char end, bool& quoted) {
  size_t q = from;
  for (; q < text.size(); ++q) {
    const char c = text[q];
    if (quoted && c == '\\') {
      ++q;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (!quoted && c == end) {
      break;
    }
  }
  return q;
}

}  // namespace

std::string_view to_string(MailParamStatus s) {
  switch (s) {
#define SG_X(name, text)      \
  case MailParamStatus::name: \
    return text;
    SG_MAIL_PARAM_STATUSES(SG_X)
#undef SG_X
  }
  return "?";
}

MailParams parse_mail_params(std::string_view line) {
  MailParams r;
  std::string_view text = line;
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);

  size_t p = parse_verb_prefix(text, r.verb);
  if (p == std::string_view::npos) {
    r.verb = Verb::kUnknown;
    r.status = MailParamStatus::kNotMailOrRcpt;
    return r;
  }
  p = skip_wsp(text, p);
  if (p == text.size()) {
    r.status = MailParamStatus::kMissingPath;
    return r;
  }

  // Delimit the path: up to the '>' outside quotes, or (without brackets) up to a space.
  std::string_view path;
  size_t after = 0;
  bool quoted = false;
  if (text[p] == '<') {
    const size_t q = find_unquoted(text, p + 1, '>', quoted);
    if (q >= text.size()) {
      // Unterminated: the special-character check still covers everything that was sent.
      find_specials(line, text.substr(p + 1), r);
      r.status = quoted ? MailParamStatus::kUnterminatedQuote : MailParamStatus::kUnterminatedPath;
      return r;
    }
    path = text.substr(p + 1, q - p - 1);
    after = q + 1;
  } else {
    r.brackets = false;
    const size_t q = std::min(find_unquoted(text, p, ' ', quoted), text.size());
    path = text.substr(p, q - p);
    after = q;
  }
  find_specials(line, path, r);
  r.status = parse_path(path, r);
  if (r.status != MailParamStatus::kOk) return r;

  std::string_view rest = text.substr(after);
  if (!rest.empty() && !is_sp_htab_vt_ff(rest[0])) {
    r.status = MailParamStatus::kJunkAfterPath;
    return r;
  }
  rest.remove_prefix(skip_wsp(rest, 0));
  while (!rest.empty() && is_sp_htab_vt_ff(rest.back())) rest.remove_suffix(1);
  r.parameters = rest;
  r.status = parse_parameters(rest, r);
  return r;
}

bool match_pattern(std::string_view pattern, std::string_view text) {
  // Greedy matching that remembers only the last '*': when a later literal fails, the last star
  // absorbs one more character and matching resumes after it. Earlier stars never need to
  // backtrack, because the last star can absorb anything they could have.
  size_t pi = 0, ti = 0;
  size_t star = std::string_view::npos, mark = 0;
  while (ti < text.size()) {
    if (pi < pattern.size() && pattern[pi] == '*') {
      star = pi++;
      mark = ti;
    } else if (pi < pattern.size() &&
               (pattern[pi] == '?' || to_lower(pattern[pi]) == to_lower(text[ti]))) {
      ++pi;
      ++ti;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      ti = ++mark;
    } else {
      return false;
    }
  }
  while (pi < pattern.size() && pattern[pi] == '*') ++pi;
  return pi == pattern.size();
}

}  // namespace sg::smtp

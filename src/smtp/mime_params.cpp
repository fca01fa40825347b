#include "smtp/mime_params.hpp"

#include <cstdint>

#include "util/ascii.hpp"

namespace sg::smtp::mime {
namespace {

constexpr size_t npos = std::string_view::npos;

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_sp_htab_cr_lf(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_sp_htab_cr_lf(s.back())) s.remove_suffix(1);
  return s;
}

enum class Charset : uint8_t { kBytes, kLatin1, kUnknown };

// "" (RFC 2231 allows it empty), UTF-8 and ASCII pass as bytes; Latin-1 is converted.
Charset classify(std::string_view name) {
  const size_t star = name.find('*');  // RFC 2231 5: charset*language
  if (star != npos) name = name.substr(0, star);
  if (name.empty() || iequals(name, "utf-8") || iequals(name, "utf8") ||
      iequals(name, "us-ascii") || iequals(name, "ascii"))
    return Charset::kBytes;
  if (iequals(name, "iso-8859-1") || iequals(name, "latin1") || iequals(name, "iso_8859-1") ||
      iequals(name, "windows-1252") || iequals(name, "cp1252"))
    return Charset::kLatin1;
  return Charset::kUnknown;
}

void append_converted(std::string_view bytes, Charset cs, std::string& out) {
  if (cs != Charset::kLatin1) {
    out.append(bytes);
    return;
  }
  for (const char ch : bytes) {
    const auto u = static_cast<unsigned char>(ch);
    if (u < 0x80) {
      out.push_back(ch);
    } else {
      out.push_back(static_cast<char>(0xC0 | (u >> 6)));
      out.push_back(static_cast<char>(0x80 | (u & 0x3F)));
    }
  }
}

bool percent_decode(std::string_view s, std::string& out) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    const int hi = i + 1 < s.size() ? hex_digit_value(s[i + 1]) : -1;
    const int lo = i + 2 < s.size() ? hex_digit_value(s[i + 2]) : -1;
    if (hi < 0 || lo < 0) return false;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

bool base64_decode(std::string_view s, std::string& out) {
  uint32_t acc = 0;
  int bits = 0;
  size_t i = 0;
  for (; i < s.size() && s[i] != '='; ++i) {
    const char c = s[i];
    int v;
    if (c >= 'A' && c <= 'Z') {
      v = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      v = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      v = c - '0' + 52;
    } else if (c == '+') {
      v = 62;
    } else if (c == '/') {
      v = 63;
    } else {
      return false;
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  for (; i < s.size(); ++i)
    if (s[i] != '=') return false;
  return true;
}

bool q_decode(std::string_view s, std::string& out) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_') {
      out.push_back(' ');
    } else if (s[i] == '=') {
      const int hi = i + 1 < s.size() ? hex_digit_value(s[i + 1]) : -1;
      const int lo = i + 2 < s.size() ? hex_digit_value(s[i + 2]) : -1;
      if (hi < 0 || lo < 0) return false;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return true;
}

// One encoded word starting at text[i] ("=?"). On success: its end in `end`, decoded in `out`.
bool decode_word(std::string_view text, size_t i, size_t& end, std::string& out) {
  const size_t q1 = text.find('?', i + 2);
  if (q1 == npos || q1 + 2 >= text.size() || text[q1 + 2] != '?') return false;
  const size_t close = text.find("?=", q1 + 3);
  if (close == npos) return false;
  const Charset cs = classify(text.substr(i + 2, q1 - i - 2));
  if (cs == Charset::kUnknown) return false;
  const std::string_view payload = text.substr(q1 + 3, close - q1 - 3);
  std::string bytes;
  const char enc = to_lower(text[q1 + 1]);
  const bool ok =
      enc == 'b' ? base64_decode(payload, bytes) : enc == 'q' && q_decode(payload, bytes);
  if (!ok) return false;
  append_converted(bytes, cs, out);
  end = close + 2;
  return true;
}

struct Param {
  std::string_view base;  // the name before any '*'
  int section = -1;       // N of name*N / name*N*, -1 when not a continuation
  bool extended = false;  // trailing '*': the value is %-encoded (RFC 2231)
  bool quoted = false;
  std::string_view value;  // without the quotes; quoted-pairs still escaped
};

std::string unquote(const Param& p) {
  std::string s;
  s.reserve(p.value.size());
  for (size_t i = 0; i < p.value.size(); ++i) {
    if (p.quoted && p.value[i] == '\\' && i + 1 < p.value.size()) ++i;
    s.push_back(p.value[i]);
  }
  return s;
}

void split_name(std::string_view name, Param& p) {
  const size_t star = name.find('*');
  p.base = name.substr(0, star);
  if (star == npos) return;
  // "*" alone: extended; "*N": section N; "*N*": extended section N.
  std::string_view rest = name.substr(star + 1);
  if (rest.empty() || rest.back() == '*') {
    p.extended = true;
    if (!rest.empty()) rest.remove_suffix(1);
  }
  if (rest.empty()) return;
  int n = 0;
  for (const char c : rest) {
    if (!is_digit(c) || n > 100000) {
      p.base = {};  // not a parameter name we understand: matches nothing
      return;
    }
    n = n * 10 + (c - '0');
  }
  p.section = n;
}

// Reads `name=value` pairs after the leading token; a pair without '=' is skipped.
class ParamReader {
 public:
  explicit ParamReader(std::string_view v) : v_(v), pos_(v.find(';')) {}
  bool next(Param& p) {
    while (pos_ < v_.size()) {
      ++pos_;  // past the ';'
      const size_t eq = v_.find_first_of("=;", pos_);
      if (eq == npos || v_[eq] == ';') {
        pos_ = eq;
        continue;
      }
      p = Param{};
      split_name(trim(v_.substr(pos_, eq - pos_)), p);
      size_t q = eq + 1;
      while (q < v_.size() && is_sp_htab_cr_lf(v_[q])) ++q;
      if (q < v_.size() && v_[q] == '"') {
        size_t e = q + 1;
        while (e < v_.size() && v_[e] != '"') e += v_[e] == '\\' ? 2 : 1;
        e = e < v_.size() ? e : v_.size();
        p.quoted = true;
        p.value = v_.substr(q + 1, e - q - 1);
        pos_ = v_.find(';', e);
      } else {
        pos_ = v_.find(';', q);
        p.value = trim(v_.substr(q, pos_ == npos ? npos : pos_ - q));
      }
      return true;
    }
    return false;
  }

 private:
  std::string_view v_;
  size_t pos_;
};

// Joins name*0, name*1, ... (RFC 2231 3). The charset of segment 0 applies to every encoded
// segment; plain segments are literal.
void join_segments(std::string_view value, std::string_view name, std::vector<std::string>& out) {
  std::string bytes, raw;
  Charset cs = Charset::kBytes;
  bool decodable = true;
  size_t n = 0;
  for (; n < kMaxSegments; ++n) {
    ParamReader reader(value);
    Param p;
    bool found = false;
    while (reader.next(p)) {
      if (p.section == static_cast<int>(n) && iequals(p.base, name)) {
        found = true;
        break;
      }
    }
    if (!found) break;
    std::string text = unquote(p);
    raw += text;
    if (!p.extended) {
      bytes += text;
      continue;
    }
    std::string_view encoded = text;
    if (n == 0) {
      const size_t a = encoded.find('\'');
      const size_t b = a == npos ? npos : encoded.find('\'', a + 1);
      if (b == npos) {
        decodable = false;
        continue;
      }
      cs = classify(encoded.substr(0, a));
      encoded = encoded.substr(b + 1);
    }
    if (!percent_decode(encoded, bytes)) decodable = false;
  }
  if (n == 0) return;
  if (!decodable || cs == Charset::kUnknown) {
    out.push_back(std::move(raw));
    return;
  }
  std::string s;
  append_converted(bytes, cs, s);
  out.push_back(std::move(s));
}

}  // namespace

std::string_view leading_token(std::string_view value) {
  value = trim(value);
  const size_t end = value.find_first_of("; \t(");
  return value.substr(0, end);
}

bool decode_rfc2231(std::string_view extended, std::string& out) {
  const size_t a = extended.find('\'');
  const size_t b = a == npos ? npos : extended.find('\'', a + 1);
  if (b == npos) return false;
  const Charset cs = classify(extended.substr(0, a));
  if (cs == Charset::kUnknown) return false;
  std::string bytes;
  if (!percent_decode(extended.substr(b + 1), bytes)) return false;
  append_converted(bytes, cs, out);
  return true;
}

std::string decode_rfc2047(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool after_word = false;  // only white space since the last decoded word
  size_t word_end = 0;      // out.size() right after that word
  for (size_t i = 0; i < text.size();) {
    size_t end = 0;
    std::string decoded;
    if (text.compare(i, 2, "=?") == 0 && decode_word(text, i, end, decoded)) {
      if (after_word) out.resize(word_end);  // RFC 2047 6.2: drop the space between words
      out += decoded;
      word_end = out.size();
      after_word = true;
      i = end;
      continue;
    }
    if (!is_sp_htab_cr_lf(text[i])) after_word = false;
    out.push_back(text[i++]);
  }
  return out;
}

void param_values(std::string_view value, std::string_view name, std::vector<std::string>& out) {
  Param p;
  for (ParamReader r(value); r.next(p);) {
    if (p.section >= 0 || !p.extended || !iequals(p.base, name)) continue;
    std::string text = unquote(p), decoded;
    out.push_back(decode_rfc2231(text, decoded) ? std::move(decoded) : std::move(text));
  }
  join_segments(value, name, out);
  for (ParamReader r(value); r.next(p);) {
    if (p.section >= 0 || p.extended || !iequals(p.base, name)) continue;
    out.push_back(decode_rfc2047(unquote(p)));
  }
}

std::string plain_param(std::string_view value, std::string_view name) {
  Param p;
  for (ParamReader r(value); r.next(p);)
    if (p.section < 0 && !p.extended && iequals(p.base, name)) return unquote(p);
  return {};
}

size_t count_chars(std::string_view utf8) {
  size_t n = 0;
  for (const char c : utf8)
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  return n;
}

}  // namespace sg::smtp::mime

#include "config/config_file.hpp"
#include "util/ascii.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>

namespace sg::config {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_sp_or_htab(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_sp_or_htab(s.back())) s.remove_suffix(1);
  return s;
}

bool name_char(char c, bool key) {
  return is_alnum(c) || c == '.' || c == '-' || c == '_' || (key && c == '*');
}

bool valid_name(std::string_view name, bool key) {
  return !name.empty() &&
         std::all_of(name.begin(), name.end(), [key](char c) { return name_char(c, key); });
}

// Edits from one to the other without case: insertions, deletions, substitutions and swaps of
// two neighbours ("prot" is one edit from "port"). Names are short: a full table is fine.
size_t edit_distance(std::string_view a, std::string_view b) {
  const size_t w = b.size() + 1;
  std::vector<size_t> d((a.size() + 1) * w);
  for (size_t i = 0; i <= a.size(); ++i) d[i * w] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t cost = to_lower(a[i - 1]) == to_lower(b[j - 1]) ? 0 : 1;
      size_t best =
          std::min({d[(i - 1) * w + j] + 1, d[i * w + j - 1] + 1, d[(i - 1) * w + j - 1] + cost});
      if (i > 1 && j > 1 && to_lower(a[i - 1]) == to_lower(b[j - 2]) &&
          to_lower(a[i - 2]) == to_lower(b[j - 1]))
        best = std::min(best, d[(i - 2) * w + j - 2] + 1);
      d[i * w + j] = best;
    }
  }
  return d[a.size() * w + b.size()];
}

ConfigError line_error(const std::string& path, size_t line, std::string subject,
                       std::string problem, std::string allowed = {}) {
  return ConfigError{path, line, std::move(subject), {std::move(problem), std::move(allowed)}};
}

}  // namespace

std::string BadValue::text() const {
  return allowed.empty() ? problem : problem + " (allowed: " + allowed + ")";
}

std::string ConfigError::text() const {
  std::string out;
  if (!file.empty()) {
    out = file;
    if (line != 0) out += ":" + std::to_string(line);
    out += ": ";
  }
  if (!subject.empty()) out += subject + ": ";
  return out + what.text();
}

std::string ConfigEntry::full_name() const {
  return section.empty() ? key : section + "." + key;
}

std::string quoted(std::string_view text) {
  return "'" + std::string(text) + "'";
}

std::string got(std::string_view value) {
  std::string shown;
  for (char c : value) {
    if (is_printable(c)) {
      shown += c;
    } else {
      const auto u = static_cast<unsigned char>(c);
      static constexpr char kHex[] = "0123456789abcdef";
      shown += "\\x";
      shown += kHex[u >> 4];
      shown += kHex[u & 0xf];
    }
  }
  return "got " + quoted(shown);
}

std::string closest_name(std::string_view word, const std::vector<std::string>& candidates) {
  // A third of the word, at least one and at most three edits: "queus" finds "queues", "x"
  // finds nothing.
  const size_t limit = std::clamp<size_t>(word.size() / 3, 1, 3);
  std::string best;
  size_t best_distance = limit + 1;
  for (const std::string& c : candidates) {
    const size_t d = edit_distance(word, c);
    if (d < best_distance) {
      best = c;
      best_distance = d;
    }
  }
  return best;
}

Expected<ConfigFile, ConfigError> parse_config_text(std::string path, std::string_view text) {
  ConfigFile file;
  file.path = std::move(path);
  if (text.size() > kMaxConfigBytes) {
    return unexpected(line_error(file.path, 0, "",
                                 "the file has " + std::to_string(text.size()) + " bytes",
                                 "at most " + std::to_string(kMaxConfigBytes)));
  }
  std::string section;
  // Lower-case "section\nkey" and section names -> line, for the checks against repeats.
  std::map<std::string, size_t> seen;
  std::map<std::string, size_t> seen_sections;
  size_t line_no = 0;
  // Each round consumes one line and at least its newline, or ends.
  for (size_t pos = 0; pos < text.size();) {
    ++line_no;
    const size_t newline = text.find('\n', pos);
    std::string_view raw = text.substr(
        pos, newline == std::string_view::npos ? std::string_view::npos : newline - pos);
    pos = newline == std::string_view::npos ? text.size() : newline + 1;
    if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);
    for (char c : raw) {
      const auto u = static_cast<unsigned char>(c);
      if ((u < 0x20 && c != '\t') || u == 0x7f) {
        return unexpected(line_error(file.path, line_no, "", "a control character in the line",
                                     "printable text and tabs"));
      }
    }
    const std::string_view line = trim(raw);
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;

    if (line.front() == '[') {
      const std::string_view name =
          line.back() == ']' ? trim(line.substr(1, line.size() - 2)) : std::string_view();
      if (line.back() != ']' || !valid_name(name, false) || name.front() == '.' ||
          name.back() == '.') {
        return unexpected(line_error(file.path, line_no, "", "bad section header " + quoted(line),
                                     "[NAME] with letters, digits, '.', '-', '_'"));
      }
      std::string id;
      for (char c : name) id += to_lower(c);
      const auto [first, fresh] = seen_sections.emplace(std::move(id), line_no);
      if (!fresh) {
        return unexpected(
            line_error(file.path, line_no, "section [" + std::string(name) + "]",
                       "given twice (first on line " + std::to_string(first->second) + ")"));
      }
      section = std::string(name);
      file.sections.push_back({section, line_no});
      continue;
    }

    const size_t eq = line.find('=');
    const std::string_view key = eq == std::string_view::npos ? line : trim(line.substr(0, eq));
    if (eq == std::string_view::npos || !valid_name(key, true)) {
      return unexpected(line_error(file.path, line_no, "",
                                   "expected 'key = value', '[section]' or a comment, " + got(line),
                                   "keys of letters, digits, '.', '-', '_', '*'"));
    }
    ConfigEntry entry{section, std::string(key), std::string(trim(line.substr(eq + 1))), line_no};
    std::string id = section + "\n";
    for (char c : key) id += to_lower(c);
    const auto [first, fresh] = seen.emplace(std::move(id), line_no);
    if (!fresh) {
      return unexpected(
          line_error(file.path, line_no, "option " + quoted(entry.full_name()),
                     "given twice (first on line " + std::to_string(first->second) + ")"));
    }
    file.entries.push_back(std::move(entry));
  }
  return file;
}

Expected<ConfigFile, ConfigError> read_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    return unexpected(line_error(path, 0, "", std::string("cannot read: ") + std::strerror(err)));
  }
  // One byte more than the limit is enough to know it is too long.
  std::string text(kMaxConfigBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) {
    const int err = errno;
    return unexpected(line_error(path, 0, "", std::string("cannot read: ") + std::strerror(err)));
  }
  text.resize(static_cast<size_t>(in.gcount()));
  return parse_config_text(path, text);
}

}  // namespace sg::config

#pragma once
// The configuration file: INI syntax as Boost.Program_options reads it (`key = value`, sections
// `[policy.mx2]` whose keys are `policy.mx2.key`), read by a scanner of our own because every
// error must name its line, and Boost's parse_config_file knows none. Pure: the text goes in,
// entries with their line numbers come out; only read_config_file touches the file system.
//
// Syntax, line by line (leading and trailing blanks do not count):
//   empty, or starting with '#' or ';'  a comment. There are no comments after a value: a value
//                                       is everything after the first '=', so that reply texts
//                                       and patterns may hold '#'.
//   [NAME]                              starts section NAME (letters, digits, '.', '-', '_')
//   KEY = VALUE                         KEY: letters, digits, '.', '-', '_', '*'
// A key given twice in one section (compared without case) is an error, and so is a section
// given twice.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "util/expected.hpp"

namespace sg::config {

// What is wrong with a value, and what would have been right; the caller adds where it was.
struct BadValue {
  std::string problem;  // e.g. "got '0'", "unknown SMTP verb 'FROB'"
  std::string allowed;  // e.g. "a number 1-65535"; empty when the problem says it all
  // "PROBLEM (allowed: ALLOWED)"
  std::string text() const;
};

// A bad value (or a bad line) with its place: a line of a file, or a command-line option.
struct ConfigError {
  std::string file;     // empty: the command line
  size_t line = 0;      // 0: the file as a whole (or the command line)
  std::string subject;  // "option 'port'", "section [policy.mx]", "--port"; may be empty
  BadValue what;
  bool from_command_line() const { return file.empty(); }
  // "FILE:LINE: SUBJECT: PROBLEM (allowed: ...)" or "--option: PROBLEM (allowed: ...)".
  std::string text() const;
};

struct ConfigEntry {
  std::string section;  // "" before the first section header
  std::string key;      // as written
  std::string value;    // blanks around it removed; may be empty
  size_t line = 0;
  // "key" at the top level, "section.key" in a section: the name Boost would give it.
  std::string full_name() const;
};

struct ConfigSection {
  std::string name;
  size_t line = 0;  // of its header
};

struct ConfigFile {
  std::string path;                     // as given; errors name it
  std::vector<ConfigEntry> entries;     // in file order
  std::vector<ConfigSection> sections;  // in file order
};

// The longest configuration file read: far beyond any real one, small enough to never matter.
inline constexpr size_t kMaxConfigBytes = 1 << 20;

// Scans `text` as the contents of `path`.
Expected<ConfigFile, ConfigError> parse_config_text(std::string path, std::string_view text);
// Reads and scans a file. A file that does not exist is an error naming it.
Expected<ConfigFile, ConfigError> read_config_file(const std::string& path);

// The candidate closest to `word` when it is close enough to be a typo ("" when none is):
// for "did you mean" hints.
std::string closest_name(std::string_view word, const std::vector<std::string>& candidates);
// "got 'VALUE'" with anything unprintable shown as \xNN.
std::string got(std::string_view value);
// "'text'"
std::string quoted(std::string_view text);

}  // namespace sg::config

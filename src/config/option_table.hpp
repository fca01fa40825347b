#pragma once
// smtpguardd's options, declared once (option_specs): the command line, the configuration file's
// top level, --help and the reload all read this table. The values are validated in options.cpp.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sg::config {

enum class OptionKind : uint8_t {
  kValue,   // --name VALUE
  kList,    // --name VALUE, may be repeated; the values add up
  kSwitch,  // --name; in the file `name = true|false`
};

// One option, declared once for the command line, the file, --help and the reload.
struct OptionSpec {
  const char* name;
  OptionKind kind;
  const char* value_name;
  std::string help;
  bool command_line_only = false;
  // Options that set the same thing (--syslog, --no-syslog): whichever of them the command line
  // gives, the file's are not read. Null: the option alone.
  const char* group = nullptr;
  const char* group_name() const { return group ? group : name; }
};

// Every option, in --help order.
const std::vector<OptionSpec>& option_specs();
// The option called `name` (without "--"); null when there is none.
const OptionSpec* find_spec(std::string_view name);
// "modern, pix, asa, ...": the built-in profiles, for help and errors.
std::string profile_list();

}  // namespace sg::config

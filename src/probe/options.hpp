#pragma once
// smtpguard-probe's command line. Parsing is pure (no printing, no exit): main prints the text
// and exits with the code, 2 for any bad input.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "probe/sequence.hpp"
#include "util/expected.hpp"

namespace sg::probe {

struct Target {
  std::string host;  // a name, an IPv4 address or an IPv6 address (without brackets)
  uint16_t port = 25;
};

// "mx.example.org", "mx.example.org:2525", "198.18.2.1:25", "2001:db8::1", "[2001:db8::1]:25".
// A bare IPv6 address (two colons or more) has no port; give one with brackets.
Expected<Target, std::string> parse_target(std::string_view text, uint16_t default_port);

struct Options {
  Target target;
  std::optional<Target> direct;
  SequenceOptions sequence;
  bool helo_name_given = false;  // else main picks the host's name
  bool json = false;
  bool transcripts = true;
};

struct CommandLine {
  std::optional<Options> options;  // absent: print `text`, exit with `exit_code`
  int exit_code = 0;
  std::string text;
};

CommandLine parse_command_line(int argc, const char* const argv[]);

std::string_view probe_version();

}  // namespace sg::probe

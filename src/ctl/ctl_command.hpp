#pragma once
// smtpguardctl's command line and the meaning of the daemon's answer, without I/O, so that both
// are unit-tested; smtpguardctl.cpp only connects and prints.
//
//   smtpguardctl [--socket PATH] [--timeout S] status | stats [--json] | prometheus | reload
//                | flows | rules show|install|remove | help
//                | watch [--client PREFIX] [--server PREFIX] [--port N] [--queue N]
//
// `watch` streams: after the daemon's answer every record it sends is printed as it comes, until
// the daemon stops (exit 0) or smtpguardctl is interrupted.
//
// Exit codes: 0 the daemon did it; 1 the daemon answered with an error, or the answer did not
// come (timeout, connection closed, not the protocol); 2 the daemon cannot be reached (no
// socket, nobody listening, permission denied); 64 bad command line.
#include <optional>
#include <string>

#include "control/control_protocol.hpp"
#include "util/expected.hpp"
#include "util/time.hpp"

namespace sg::ctl {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUnreachable = 2;
inline constexpr int kExitUsage = 64;  // EX_USAGE

struct CtlRequest {
  std::string socket{control::kDefaultSocket};
  std::string request;  // the protocol line, e.g. "stats json"
  Duration timeout = seconds(10);
  bool stream = false;  // watch: the answer is followed by a stream (control::request_stream)
};

// Either a request to send, or an exit code with the text to print (help on stdout with 0,
// errors on stderr with kExitUsage).
struct CtlCommandLine {
  std::optional<CtlRequest> request;
  int exit_code = kExitOk;
  std::string text;
};

CtlCommandLine parse_ctl_command_line(int argc, const char* const argv[]);

// What to print and how to exit for the outcome of a request.
struct CtlOutcome {
  int exit_code = kExitOk;
  std::string out;  // stdout: the reply's body, ending in a newline
  std::string err;  // stderr: "smtpguardctl: ..." lines
};

CtlOutcome interpret(const Expected<control::Reply, control::ClientFailure>& result,
                     const std::string& socket);

}  // namespace sg::ctl

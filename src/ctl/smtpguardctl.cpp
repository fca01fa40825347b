// smtpguardctl: sends one command to a running smtpguardd over its control socket and prints
// the answer (see ctl/ctl_command.hpp for the commands and exit codes, and
// control/control_protocol.hpp for the protocol).
#include <signal.h>

#include <cstdio>
#include <exception>
#include <string_view>

#include "control/control_protocol.hpp"
#include "ctl/ctl_command.hpp"

int main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);
  try {
    sg::ctl::CtlCommandLine cl = sg::ctl::parse_ctl_command_line(argc, argv);
    if (!cl.request) {
      std::fputs(cl.text.c_str(), cl.exit_code == sg::ctl::kExitOk ? stdout : stderr);
      return cl.exit_code;
    }
    const sg::ctl::CtlRequest& r = *cl.request;
    if (r.stream) {
      // watch: the answer ("watching ...") first, then each record as it arrives.
      auto sink = [](std::string_view bytes) {
        return std::fwrite(bytes.data(), 1, bytes.size(), stdout) == bytes.size() &&
               std::fflush(stdout) == 0;
      };
      auto result = sg::control::request_stream(r.socket, r.request, r.timeout, sink);
      // The answer's body went to the sink before the stream: only errors are left to print.
      sg::ctl::CtlOutcome o = sg::ctl::interpret(result, r.socket);
      std::fputs(o.err.c_str(), stderr);
      return o.exit_code;
    }
    sg::ctl::CtlOutcome o =
        sg::ctl::interpret(sg::control::request(r.socket, r.request, r.timeout), r.socket);
    std::fwrite(o.out.data(), 1, o.out.size(), stdout);
    std::fflush(stdout);
    std::fputs(o.err.c_str(), stderr);
    return o.exit_code;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "smtpguardctl: %s\n", e.what());
    return sg::ctl::kExitFailed;
  }
}

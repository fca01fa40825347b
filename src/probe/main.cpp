// smtpguard-probe: finds SMTP inspection between this host and a mail server and says what it
// breaks. Top-down: parse the command line, run the dialogue through the path (and with the
// server directly, with --direct), classify, print, exit 0 / 1 / 2.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <string>

#include "probe/classify.hpp"
#include "probe/options.hpp"
#include "probe/report.hpp"
#include "probe/sequence.hpp"

namespace {

// The host's own name when it is a domain name, else a name that can never be anybody's.
std::string default_helo_name() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) == 0) {
    const std::string n(name);
    if (n.find('.') != std::string::npos && n.find_first_of(" <>") == std::string::npos) return n;
  }
  return "smtpguard-probe.invalid";
}

int run(int argc, char** argv) {
  using namespace sg::probe;
  const CommandLine cl = parse_command_line(argc, argv);
  if (!cl.options) {
    std::fputs(cl.text.c_str(), cl.exit_code == 0 ? stdout : stderr);
    return cl.exit_code;
  }
  Options o = *cl.options;
  if (!o.helo_name_given) o.sequence.helo_name = default_helo_name();

  ProbeResult r;
  r.version = std::string(probe_version());
  r.path = run_sequence(o.target.host, o.target.port, o.sequence);
  if (o.direct) r.direct = run_sequence(o.direct->host, o.direct->port, o.sequence);
  r.classification = classify(r.path, r.direct ? &*r.direct : nullptr);

  const int code = exit_code(r);
  if (o.json) {
    std::fputs(render_json(r).c_str(), stdout);
  } else {
    TextOptions t;
    t.transcripts = o.transcripts;
    std::fputs(render_text(r, t).c_str(), stdout);
  }
  if (code == 2) std::fprintf(stderr, "smtpguard-probe: %s\n", probe_error(r).c_str());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  // A peer that resets while the TLS layer writes must not kill the probe.
  signal(SIGPIPE, SIG_IGN);
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "smtpguard-probe: %s\n", e.what());
    return 2;
  }
}

#include "ctl/ctl_command.hpp"

#include <boost/program_options.hpp>

#include <charconv>
#include <sstream>
#include <string_view>
#include <vector>

#include "util/version.hpp"

namespace sg::ctl {
namespace po = boost::program_options;
namespace {

constexpr std::string_view kCommands =
    "Commands:\n"
    "  status                      version, uptime, profile, workers and their flows, totals\n"
    "  stats [--json]              every counter (text: name = value; or one JSON object)\n"
    "  prometheus                  the counters in Prometheus text format\n"
    "  reload                      reload the configuration\n"
    "  flows                       the tracked flows with their state and sequence deltas\n"
    "  rules show|install|remove   the nftables rules: print, install or remove them\n"
    "  watch [--client PREFIX] [--server PREFIX] [--port N] [--queue N]\n"
    "                              a live stream of the decisions on matching connections,\n"
    "                              with each changed line before (-) and after (+); the first\n"
    "                              step when troubleshooting (Ctrl-C ends it)\n"
    "  help                        the commands the running daemon answers\n";

std::string usage(const po::options_description& desc) {
  std::ostringstream out;
  out << "Usage: smtpguardctl [options] COMMAND [ARGUMENT]\n"
      << "Talks to a running smtpguardd over its control socket.\n\n"
      << kCommands << "\n"
      << desc << "\n"
      << "Exit codes: 0 done, 1 the daemon refused or did not answer, 2 the daemon cannot be\n"
      << "reached (not running, or no permission on the socket), 64 bad command line.\n";
  return out.str();
}

CtlCommandLine usage_error(const std::string& why) {
  CtlCommandLine r;
  r.exit_code = kExitUsage;
  r.text = "smtpguardctl: " + why + "\nTry 'smtpguardctl --help'.\n";
  return r;
}

}  // namespace

CtlCommandLine parse_ctl_command_line(int argc, const char* const argv[]) {
  po::options_description desc("Options");
  desc.add_options()(
      "socket,s", po::value<std::string>()->value_name("PATH"),
      ("the daemon's control socket (default " + std::string(control::kDefaultSocket) + ")")
          .c_str())("json", po::bool_switch(), "stats: print JSON")(
      "client", po::value<std::string>()->value_name("PREFIX"),
      "watch: connections from this client address or prefix (198.18.1.0/24, 2001:db8::/32)")(
      "server", po::value<std::string>()->value_name("PREFIX"),
      "watch: connections to this server address or prefix")(
      "port", po::value<std::string>()->value_name("N"),
      "watch: connections with this client or server port")(
      "queue", po::value<std::string>()->value_name("N"),
      "watch: records the daemon keeps waiting for this watcher, 16 to 65536 (default 1024); "
      "beyond it they are dropped and counted")(
      "timeout", po::value<std::string>()->value_name("S"),
      "seconds to wait for the answer, 1 to 3600 (default 10)")(
      "version", "print the version and exit")("help,h", "print this help and exit");
  po::options_description hidden;
  hidden.add_options()("words", po::value<std::vector<std::string>>());
  po::options_description all;
  all.add(desc).add(hidden);
  po::positional_options_description positional;
  positional.add("words", -1);

  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    return usage_error(e.what());
  }
  CtlCommandLine result;
  if (vm.count("help")) {
    result.text = usage(desc);
    return result;
  }
  if (vm.count("version")) {
    result.text = "smtpguardctl " + std::string(kVersion) + "\n";
    return result;
  }

  CtlRequest req;
  if (vm.count("socket")) {
    req.socket = vm["socket"].as<std::string>();
    if (req.socket.empty()) return usage_error("--socket: empty path");
  }
  if (vm.count("timeout")) {
    const std::string t = vm["timeout"].as<std::string>();
    unsigned s = 0;
    auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), s);
    if (t.empty() || ec != std::errc() || end != t.data() + t.size() || s < 1 || s > 3600)
      return usage_error("--timeout: expected seconds from 1 to 3600, got '" + t + "'");
    req.timeout = seconds(s);
  }
  const bool json = vm["json"].as<bool>();
  const std::vector<std::string> words =
      vm.count("words") ? vm["words"].as<std::vector<std::string>>() : std::vector<std::string>{};
  if (words.empty()) return usage_error("no command given");

  const std::string& cmd = words[0];
  auto no_argument = [&]() { return words.size() == 1; };
  if (json && cmd != control::kStats) return usage_error("--json goes with stats only");
  const char* const watch_options[] = {"client", "server", "port", "queue"};
  for (const char* o : watch_options) {
    if (vm.count(o) && cmd != control::kWatch)
      return usage_error("--" + std::string(o) + " goes with watch only");
  }
  if (cmd == control::kStats) {
    if (words.size() > 2 || (words.size() == 2 && words[1] != control::kJson))
      return usage_error("stats takes no argument but --json");
    req.request = json || words.size() == 2 ? "stats json" : "stats";
  } else if (cmd == control::kRules) {
    if (words.size() != 2 ||
        (words[1] != control::kRulesShow && words[1] != control::kRulesInstall &&
         words[1] != control::kRulesRemove))
      return usage_error("rules takes one of show, install, remove");
    req.request = cmd + " " + words[1];
  } else if (cmd == control::kStatus || cmd == control::kPrometheus || cmd == control::kReload ||
             cmd == control::kFlows || cmd == control::kHelp) {
    if (!no_argument()) return usage_error(cmd + " takes no argument");
    req.request = cmd;
  } else if (cmd == control::kWatch) {
    if (!no_argument()) return usage_error("watch takes no argument but its options");
    req.request = cmd;
    for (const char* o : watch_options) {
      if (!vm.count(o)) continue;
      const std::string v = vm[o].as<std::string>();
      const bool number = std::string_view(o) == "port" || std::string_view(o) == "queue";
      bool ok = !v.empty();
      for (char ch : v) {
        const bool allowed =
            number ? (ch >= '0' && ch <= '9')
                   : ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
                      (ch >= 'A' && ch <= 'F') || ch == '.' || ch == ':' || ch == '/');
        ok = ok && allowed;
      }
      if (!ok)
        return usage_error("--" + std::string(o) + ": expected " +
                           (number ? "a number" : "an address or prefix") + ", got '" + v + "'");
      req.request += " " + std::string(o) + "=" + v;
    }
    req.stream = true;
  } else {
    return usage_error("unknown command '" + cmd + "'");
  }
  result.request = std::move(req);
  return result;
}

CtlOutcome interpret(const Expected<control::Reply, control::ClientFailure>& result,
                     const std::string& socket) {
  CtlOutcome o;
  if (result) {
    const control::Reply& reply = *result;
    if (reply.ok) {
      o.out = reply.body;
      if (!o.out.empty() && o.out.back() != '\n') o.out += '\n';
    } else {
      o.exit_code = kExitFailed;
      o.err = "smtpguardctl: the daemon refused: " + reply.body + "\n";
    }
    return o;
  }
  const control::ClientFailure& f = result.error();
  const std::string start_hint =
      "start it with 'systemctl start smtpguardd', or run 'smtpguardd "
      "--control-socket " +
      socket + " ...'; --socket PATH names another socket";
  switch (f.kind) {
    case control::ClientError::kNoSocket:
      o.exit_code = kExitUnreachable;
      o.err = "smtpguardctl: no control socket at " + socket + ": smtpguardd is not running\n" +
              "smtpguardctl: " + start_hint + "\n";
      break;
    case control::ClientError::kRefused:
      o.exit_code = kExitUnreachable;
      o.err = "smtpguardctl: nothing answers on " + socket +
              ": smtpguardd is not running (the socket file is stale)\n" +
              "smtpguardctl: " + start_hint + "\n";
      break;
    case control::ClientError::kPermission:
      o.exit_code = kExitUnreachable;
      o.err = "smtpguardctl: " + f.message +
              "\nsmtpguardctl: run as root or as a member of the socket's group\n";
      break;
    case control::ClientError::kTimeout:
    case control::ClientError::kClosed:
    case control::ClientError::kProtocol:
    case control::ClientError::kOther:
      o.exit_code = kExitFailed;
      o.err = "smtpguardctl: " + f.message + "\n";
      break;
  }
  return o;
}

}  // namespace sg::ctl

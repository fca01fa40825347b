#include "config/option_table.hpp"

#include <boost/program_options.hpp>

#include <algorithm>
#include <sstream>

#include "config/options.hpp"
#include "config/profile_setting.hpp"
#include "policy/exceptions.hpp"
#include "policy/profile.hpp"
#include "util/version.hpp"

namespace sg::config {
namespace po = boost::program_options;
namespace {

// --exception-policy and one --exception-policy-NAME per exception (policy/exceptions.hpp),
// after --memory-budget.
std::vector<OptionSpec> with_exception_options(std::vector<OptionSpec> specs) {
  std::vector<OptionSpec> added{
      {"exception-policy", OptionKind::kValue, "ACTION",
       "what to do when a connection cannot be followed (every exception below): reject (RST "
       "both ways), drop-flow, or pass (explicit fail-open: no longer inspected); default: each "
       "exception's own"}};
  for (const policy::ExceptionInfo& e : policy::kExceptionInfo) {
    added.push_back({nullptr, OptionKind::kValue, "ACTION",
                     std::string(e.meaning) + ": reject, drop-flow, " +
                         (e.packet_level ? "drop-packet, " : "") + "pass (default " +
                         std::string(policy::to_string(e.default_action)) + ")"});
  }
  static std::vector<std::string> names;  // the specs point into these
  if (names.empty())
    for (const policy::ExceptionInfo& e : policy::kExceptionInfo)
      names.push_back("exception-policy-" + std::string(e.key));
  for (size_t i = 0; i < names.size(); ++i) added[i + 1].name = names[i].c_str();
  auto at = std::find_if(specs.begin(), specs.end(), [](const OptionSpec& o) {
    return std::string_view(o.name) == "memory-budget";
  });
  specs.insert(at == specs.end() ? at : at + 1, added.begin(), added.end());
  return specs;
}

}  // namespace

std::string profile_list() {
  std::string out;
  for (std::string_view name : policy::builtin_profile_names())
    out += (out.empty() ? "" : ", ") + std::string(name);
  return out;
}

const std::vector<OptionSpec>& option_specs() {
  static const std::vector<OptionSpec> kSpecs = with_exception_options({
      {"config", OptionKind::kValue, "PATH",
       "configuration file (default " + std::string(kDefaultConfigPath) +
           "; a missing default file is no error); the command line overrides it",
       true},
      {"check-config", OptionKind::kSwitch, "",
       "validate the command line and the configuration file, print the policies and exit: 0 "
       "valid, 1 not",
       true},
      {"queues", OptionKind::kValue, "auto|N|A-B",
       "NFQUEUE number(s), one worker thread each; auto: queues 0..K-1 for the K CPUs the "
       "process may run on (its affinity mask), at most 64 (default auto). The rules balance "
       "a range by a hash of the addresses: both directions of a connection reach one worker"},
      {"worker-cpus", OptionKind::kValue, "LIST",
       "pin worker i to the i-th CPU of LIST, e.g. 0-3,6 (from the start again when there are "
       "more workers than CPUs); every CPU in the affinity mask (default: empty, no pinning)"},
      {"profile", OptionKind::kValue, "NAME",
       "policy profile: " + profile_list() + " (default modern)"},
      {"install-rules", OptionKind::kSwitch, "",
       "install the nftables rules on start, remove on exit"},
      {"hooks", OptionKind::kValue, "LIST",
       "with --install-rules: forward,input,output (default forward)"},
      {"port", OptionKind::kValue, "PORT", "SMTP port (default 25)"},
      {"fail-open", OptionKind::kSwitch, "",
       "accept instead of drop when a queue is full or (with --install-rules) no daemon listens"},
      {"queue-maxlen", OptionKind::kValue, "N",
       "packets each kernel queue may hold (default 4096)"},
      {"max-flows", OptionKind::kValue, "N", "connections tracked per worker (default 65536)"},
      {"hold-timeout-ms", OptionKind::kValue, "MS",
       "longest a partial line is held before it is neutralised (default 2000)"},
      {"memory-budget", OptionKind::kValue, "MIB",
       "MiB of retained bytes and held packets, all workers together, split evenly; 0: no "
       "limit (default 512)"},
      {"done-mark", OptionKind::kValue, "BIT",
       "packet/conntrack mark bit for flows that bypass inspection (default 0x100000)"},
      {"inject-mark", OptionKind::kValue, "MARK",
       "mark of the packets the daemon sends itself (answers, resets), which the queue rules let "
       "pass; non-zero, no bit in common with --done-mark (default 0x200000)"},
      {"mapped-mark", OptionKind::kValue, "BIT",
       "conntrack mark bit for connections whose sequence numbers the daemon maps: the rules "
       "queue them without bypass and a restarted daemon resets them; not a bit of --done-mark "
       "or --inject-mark (default 0x400000; 0: off)"},
      {"strip-keyword", OptionKind::kList, "LIST",
       "EHLO keywords whose line is removed from the EHLO reply, comma-separated (e.g. "
       "AUTH,CHUNKING); may be repeated"},
      {"answer-verb", OptionKind::kList, "LIST",
       "verbs the gateway removes and answers itself with --answer-reply, comma-separated (e.g. "
       "VRFY,EXPN); may be repeated"},
      {"reset-verb", OptionKind::kList, "LIST",
       "verbs that reset the connection both ways, comma-separated; may be repeated"},
      {"answer-reply", OptionKind::kValue, "TEXT",
       "the reply to answered commands, without CRLF: 4xy or 5xy, a space, printable ASCII, at "
       "most 510 characters (default from the profile: '550 5.7.1 Command blocked by policy')"},
      {"stats-interval", OptionKind::kValue, "S",
       "print counters to stderr every S seconds (default 0: off)"},
      {"no-conntrack-tuning", OptionKind::kSwitch, "",
       "leave conntrack alone: by default the conntrack entry of each connection whose lengths "
       "the daemon changes is made liberal (no TCP window checks), because conntrack judges the "
       "endpoints' acks against the stream before the rewrite and would mark them invalid"},
      {"control-socket", OptionKind::kValue, "PATH",
       "Unix socket on which smtpguardctl talks to the daemon, or none (default " +
           std::string(kDefaultControlSocket) + ")"},
      {"prometheus-file", OptionKind::kValue, "PATH",
       "write the counters to this file for node_exporter's textfile collector (default: none)"},
      {"prometheus-listen", OptionKind::kValue, "ADDR:PORT",
       "serve the counters over HTTP at /metrics, e.g. 127.0.0.1:9125 or [::1]:9125 (default: "
       "none)"},
      {"log-rate", OptionKind::kValue, "N",
       "at most N decision log lines per second, the rest only counted (default " +
           std::to_string(kDefaultLogRate) + "; 0: no limit)"},
      {"event-json", OptionKind::kValue, "PATH",
       "also write every decision log line as a JSON object (eve.json-like, one a line) to this "
       "file, reopened on SIGHUP (logrotate), or - for standard output (default: none)"},
      {"syslog", OptionKind::kSwitch, "", "log decisions to syslog, facility mail (the default)",
       false, "syslog"},
      {"no-syslog", OptionKind::kSwitch, "", "do not log decisions to syslog", false, "syslog"},
      {"verbose", OptionKind::kSwitch, "", "log more"},
      {"version", OptionKind::kSwitch, "", "print the version and exit", true},
      {"help", OptionKind::kSwitch, "", "print this help and exit", true},
  });
  return kSpecs;
}

const OptionSpec* find_spec(std::string_view name) {
  for (const OptionSpec& s : option_specs())
    if (name == s.name) return &s;
  return nullptr;
}

namespace {

po::options_description description() {
  po::options_description desc("Options");
  for (const OptionSpec& s : option_specs()) {
    po::value_semantic* semantic = nullptr;
    switch (s.kind) {
      case OptionKind::kValue:
        semantic = po::value<std::string>()->value_name(s.value_name);
        break;
      case OptionKind::kList:
        semantic = po::value<std::vector<std::string>>()->value_name(s.value_name);
        break;
      case OptionKind::kSwitch:
        semantic = po::bool_switch();
        break;
    }
    desc.add(boost::shared_ptr<po::option_description>(
        new po::option_description(s.name, semantic, s.help.c_str())));
  }
  return desc;
}

std::string usage(const po::options_description& desc) {
  std::ostringstream out;
  out << "Usage: smtpguardd [options]\n"
      << "SMTP inspection firewall: inspects and rewrites SMTP diverted into NFQUEUE.\n\n"
      << desc << "\n"
      << "Configuration file (--config): one 'key = value' per line; lines starting with '#' or "
         "';'\n"
         "are comments (a value runs to the end of its line). Before the first section, any "
         "option\n"
         "above but config, check-config, help and version, by its long name; switches take "
         "true or\n"
         "false, lists are comma-separated; an option on the command line wins over the file.\n"
         "  [policy]          overrides for the default policy: connections no rule matches\n"
         "  [policy.NAME]     a rule; rules are tried in file order, the first match wins:\n"
         "    match-server = PREFIX[, PREFIX...]   server addresses (198.18.2.0/24, "
         "2001:db8:2::/64)\n"
         "    match-client = PREFIX[, PREFIX...]   client addresses\n"
         "    match-port = PORT                    server port\n"
         "    profile = NAME    the built-in profile it starts from (default: the top-level one)\n"
         "Override keys, in both kinds of section:\n"
      << profile_setting_help()
      << "\nSignals: SIGINT/SIGTERM stop (queues drained, rules removed), SIGUSR1 prints "
         "counters,\n"
         "SIGHUP reloads the configuration file (with the same command line on top): new\n"
         "connections get the new policies, connections under way keep theirs; an invalid file\n"
         "leaves the running configuration in force; options other than the profile, the\n"
         "overrides, the policy sections and stats-interval need a restart.\n"
         "Exit codes: 0 clean stop, 1 startup failure or bad configuration file, 2 bad command "
         "line.\n";
  return out.str();
}

}  // namespace

std::string version_text() {
  return "smtpguardd " + std::string(kVersion) + "\n";
}

std::vector<std::string> file_option_names() {
  std::vector<std::string> out;
  for (const OptionSpec& s : option_specs())
    if (!s.command_line_only) out.emplace_back(s.name);
  return out;
}

CommandLine parse_command_line(int argc, const char* const argv[]) {
  const po::options_description desc = description();
  CommandLine result;
  po::variables_map vm;
  po::parsed_options parsed(&desc);
  try {
    // No positional arguments: a stray word is an error, not silently ignored.
    po::positional_options_description none;
    parsed = po::command_line_parser(argc, argv).options(desc).positional(none).run();
    po::store(parsed, vm);
    po::notify(vm);
  } catch (const po::error& e) {
    result.exit_code = 2;
    result.text = std::string("smtpguardd: ") + e.what() + "\nTry 'smtpguardd --help'.\n";
    return result;
  }
  if (vm["help"].as<bool>()) {
    result.text = usage(desc);
    return result;
  }
  if (vm["version"].as<bool>()) {
    result.text = version_text();
    return result;
  }
  Arguments a;
  for (const po::option& o : parsed.options) {
    if (o.string_key == "config") {
      a.config_path = o.value.front();
      a.config_given = true;
    } else if (o.string_key == "check-config") {
      a.check_config = true;
    } else {
      a.given.emplace_back(o.string_key, o.value.empty() ? "true" : o.value.front());
    }
  }
  result.arguments = std::move(a);
  return result;
}

}  // namespace sg::config

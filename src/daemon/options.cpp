#include "daemon/options.hpp"

#include <unistd.h>

#include <boost/program_options.hpp>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "daemon/profile_setting.hpp"

#ifndef SMTPGUARD_VERSION
#define SMTPGUARD_VERSION "0.1.0"
#endif

namespace sg::daemon {
namespace po = boost::program_options;
namespace {

enum class Kind : uint8_t {
  kValue,   // --name VALUE
  kList,    // --name VALUE, may be repeated; the values add up
  kSwitch,  // --name; in the file `name = true|false`
};

// One option, declared once for the command line, the file, --help and the reload.
struct OptionSpec {
  const char* name;
  Kind kind;
  const char* value_name;
  std::string help;
  bool command_line_only = false;
  // Options that set the same thing (--syslog, --no-syslog): whichever of them the command line
  // gives, the file's are not read. Null: the option alone.
  const char* group = nullptr;
  const char* group_name() const { return group ? group : name; }
};

std::string profile_list() {
  std::string out;
  for (std::string_view name : policy::builtin_profile_names())
    out += (out.empty() ? "" : ", ") + std::string(name);
  return out;
}

// --exception-policy and one --exception-policy-NAME per exception (policy/exceptions.hpp),
// after --memory-budget.
std::vector<OptionSpec> with_exception_options(std::vector<OptionSpec> specs) {
  std::vector<OptionSpec> added{
      {"exception-policy", Kind::kValue, "ACTION",
       "what to do when a connection cannot be followed (every exception below): reject (RST "
       "both ways), drop-flow, or pass (explicit fail-open: no longer inspected); default: each "
       "exception's own"}};
  for (const policy::ExceptionInfo& e : policy::kExceptionInfo) {
    added.push_back({nullptr, Kind::kValue, "ACTION",
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

const std::vector<OptionSpec>& option_specs() {
  static const std::vector<OptionSpec> kSpecs = with_exception_options({
      {"config", Kind::kValue, "PATH",
       "configuration file (default " + std::string(kDefaultConfigPath) +
           "; a missing default file is no error); the command line overrides it",
       true},
      {"check-config", Kind::kSwitch, "",
       "validate the command line and the configuration file, print the policies and exit: 0 "
       "valid, 1 not",
       true},
      {"queues", Kind::kValue, "N|A-B", "NFQUEUE number(s), one worker thread each (default 0)"},
      {"profile", Kind::kValue, "NAME", "policy profile: " + profile_list() + " (default modern)"},
      {"install-rules", Kind::kSwitch, "", "install the nftables rules on start, remove on exit"},
      {"hooks", Kind::kValue, "LIST",
       "with --install-rules: forward,input,output (default forward)"},
      {"port", Kind::kValue, "PORT", "SMTP port (default 25)"},
      {"fail-open", Kind::kSwitch, "",
       "accept instead of drop when a queue is full or (with --install-rules) no daemon listens"},
      {"queue-maxlen", Kind::kValue, "N", "packets each kernel queue may hold (default 4096)"},
      {"max-flows", Kind::kValue, "N", "connections tracked per worker (default 65536)"},
      {"hold-timeout-ms", Kind::kValue, "MS",
       "longest a partial line is held before it is neutralised (default 2000)"},
      {"memory-budget", Kind::kValue, "MIB",
       "MiB of retained bytes and held packets, all workers together, split evenly; 0: no "
       "limit (default 512)"},
      {"done-mark", Kind::kValue, "BIT",
       "packet/conntrack mark bit for flows that bypass inspection (default 0x100000)"},
      {"inject-mark", Kind::kValue, "MARK",
       "mark of the packets the daemon sends itself (answers, resets), which the queue rules let "
       "pass; non-zero, no bit in common with --done-mark (default 0x200000)"},
      {"mapped-mark", Kind::kValue, "BIT",
       "conntrack mark bit for connections whose sequence numbers the daemon maps: the rules "
       "queue them without bypass and a restarted daemon resets them; not a bit of --done-mark "
       "or --inject-mark (default 0x400000; 0: off)"},
      {"strip-keyword", Kind::kList, "LIST",
       "EHLO keywords whose line is removed from the EHLO reply, comma-separated (e.g. "
       "AUTH,CHUNKING); may be repeated"},
      {"answer-verb", Kind::kList, "LIST",
       "verbs the gateway removes and answers itself with --answer-reply, comma-separated (e.g. "
       "VRFY,EXPN); may be repeated"},
      {"reset-verb", Kind::kList, "LIST",
       "verbs that reset the connection both ways, comma-separated; may be repeated"},
      {"answer-reply", Kind::kValue, "TEXT",
       "the reply to answered commands, without CRLF: 4xy or 5xy, a space, printable ASCII, at "
       "most 510 characters (default from the profile: '550 5.7.1 Command blocked by policy')"},
      {"stats-interval", Kind::kValue, "S",
       "print counters to stderr every S seconds (default 0: off)"},
      {"no-conntrack-tuning", Kind::kSwitch, "",
       "leave conntrack alone: by default the conntrack entry of each connection whose lengths "
       "the daemon changes is made liberal (no TCP window checks), because conntrack judges the "
       "endpoints' acks against the stream before the rewrite and would mark them invalid"},
      {"control-socket", Kind::kValue, "PATH",
       "Unix socket on which smtpguardctl talks to the daemon, or none (default " +
           std::string(kDefaultControlSocket) + ")"},
      {"prometheus-file", Kind::kValue, "PATH",
       "write the counters to this file for node_exporter's textfile collector (default: none)"},
      {"prometheus-listen", Kind::kValue, "ADDR:PORT",
       "serve the counters over HTTP at /metrics, e.g. 127.0.0.1:9125 or [::1]:9125 (default: "
       "none)"},
      {"log-rate", Kind::kValue, "N",
       "at most N decision log lines per second, the rest only counted (default " +
           std::to_string(kDefaultLogRate) + "; 0: no limit)"},
      {"syslog", Kind::kSwitch, "", "log decisions to syslog, facility mail (the default)", false,
       "syslog"},
      {"no-syslog", Kind::kSwitch, "", "do not log decisions to syslog", false, "syslog"},
      {"verbose", Kind::kSwitch, "", "log more"},
      {"version", Kind::kSwitch, "", "print the version and exit", true},
      {"help", Kind::kSwitch, "", "print this help and exit", true},
  });
  return kSpecs;
}

const OptionSpec* find_spec(std::string_view name) {
  for (const OptionSpec& s : option_specs())
    if (name == s.name) return &s;
  return nullptr;
}

po::options_description description() {
  po::options_description desc("Options");
  for (const OptionSpec& s : option_specs()) {
    po::value_semantic* semantic = nullptr;
    switch (s.kind) {
      case Kind::kValue:
        semantic = po::value<std::string>()->value_name(s.value_name);
        break;
      case Kind::kList:
        semantic = po::value<std::vector<std::string>>()->value_name(s.value_name);
        break;
      case Kind::kSwitch:
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

// A value and where it came from.
struct Given {
  std::string value;
  std::string file;  // empty: the command line
  size_t line = 0;
};

ConfigError error_at(const Given& g, std::string_view name, BadValue what) {
  if (g.file.empty()) return ConfigError{"", 0, "--" + std::string(name), std::move(what)};
  return ConfigError{g.file, g.line, "option " + quoted(name), std::move(what)};
}

// "--done-mark" or "'done-mark' (line 7)": another option, named in a message about this one.
std::string mention(const Given* g, std::string_view name) {
  if (!g || g->file.empty()) return "--" + std::string(name);
  return quoted(name) + " (line " + std::to_string(g->line) + ")";
}

// The values of each option, the command line's where it gives the option's group.
class Values {
 public:
  const Given* one(std::string_view name) const {
    auto it = values_.find(name);
    return it == values_.end() || it->second.empty() ? nullptr : &it->second.back();
  }
  const std::vector<Given>& all(std::string_view name) const {
    static const std::vector<Given> kNone;
    auto it = values_.find(name);
    return it == values_.end() ? kNone : it->second;
  }
  void add(std::string_view name, Given g) { values_[std::string(name)].push_back(std::move(g)); }

 private:
  std::map<std::string, std::vector<Given>, std::less<>> values_;
};

Expected<Values, ConfigError> gather(const Arguments& arguments, const ConfigFile* file) {
  Values values;
  std::set<std::string, std::less<>> groups_on_command_line;
  for (const auto& [name, value] : arguments.given) {
    const OptionSpec* spec = find_spec(name);
    if (spec) groups_on_command_line.insert(spec->group_name());
    values.add(name, Given{value, "", 0});
  }
  if (!file) return values;
  const std::vector<std::string> file_names = file_option_names();
  for (const ConfigEntry& e : file->entries) {
    if (!e.section.empty()) continue;
    const Given g{e.value, file->path, e.line};
    const OptionSpec* spec = find_spec(e.key);
    if (!spec) {
      std::string problem = "unknown option";
      if (std::string near = closest_name(e.key, file_names); !near.empty()) {
        problem += ", did you mean " + quoted(near) + "?";
      } else if (is_profile_setting(e.key)) {
        problem += " (policy settings go in a [policy] or [policy.NAME] section)";
      }
      return unexpected(error_at(g, e.key, {problem, {}}));
    }
    if (spec->command_line_only)
      return unexpected(error_at(g, e.key, {"only on the command line", {}}));
    if (groups_on_command_line.count(spec->group_name())) continue;  // the command line wins
    values.add(e.key, g);
  }
  return values;
}

}  // namespace

std::string version_text() {
  return std::string("smtpguardd ") + SMTPGUARD_VERSION + "\n";
}

policy::Profile apply_overrides(policy::Profile profile, const PolicyOverrides& o) {
  for (smtp::EhloKeyword k : o.strip_keywords)
    profile.keywords[static_cast<size_t>(k)] = policy::KeywordAction::kStrip;
  for (smtp::Verb v : o.answer_verbs)
    profile.verbs[static_cast<size_t>(v)] = policy::CommandAction::kAnswer;
  for (smtp::Verb v : o.reset_verbs)
    profile.verbs[static_cast<size_t>(v)] = policy::CommandAction::kReset;
  if (o.answer_reply) profile.answer_reply = *o.answer_reply;
  return profile;
}

std::string describe_overrides(const PolicyOverrides& o) {
  std::string out;
  auto add = [&](const char* option, const std::string& value) {
    if (value.empty()) return;
    if (!out.empty()) out += " ";
    out += std::string("--") + option + " " + value;
  };
  auto join = [](const auto& items) {
    std::string list;
    for (const auto& i : items) list += (list.empty() ? "" : ",") + std::string(smtp::to_string(i));
    return list;
  };
  add("strip-keyword", join(o.strip_keywords));
  add("answer-verb", join(o.answer_verbs));
  add("reset-verb", join(o.reset_verbs));
  if (o.answer_reply) add("answer-reply", quoted(*o.answer_reply));
  return out;
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

// --exception-policy sets every exception's action, --exception-policy-NAME one of them (it
// wins). drop-packet only where the exception is about one packet.
std::optional<ConfigError> exception_options(const Values& values, policy::ExceptionPolicy& out) {
  auto parse = [](const Given& g, std::string_view name,
                  bool packet_level) -> Expected<policy::ExceptionAction, ConfigError> {
    const std::string allowed =
        packet_level ? "reject, drop-flow, drop-packet, pass" : "reject, drop-flow, pass";
    const auto a = policy::parse_exception_action(g.value);
    if (!a) return unexpected(error_at(g, name, {"unknown action " + quoted(g.value), allowed}));
    if (*a == policy::ExceptionAction::kDropPacket && !packet_level)
      return unexpected(error_at(
          g, name,
          {"drop-packet is not possible here: the exception arises inside the byte stream, "
           "not about one packet",
           allowed}));
    return *a;
  };
  if (const Given* g = values.one("exception-policy")) {
    const auto a = parse(*g, "exception-policy", false);
    if (!a) return a.error();
    for (size_t i = 0; i < policy::kExceptionCount; ++i)
      out.set(static_cast<policy::Exception>(i), *a);
  }
  for (size_t i = 0; i < policy::kExceptionCount; ++i) {
    const policy::ExceptionInfo& e = policy::kExceptionInfo[i];
    const std::string name = "exception-policy-" + std::string(e.key);
    if (const Given* g = values.one(name)) {
      const auto a = parse(*g, name, e.packet_level);
      if (!a) return a.error();
      out.set(static_cast<policy::Exception>(i), *a);
    }
  }
  return std::nullopt;
}

Expected<Options, ConfigError> resolve_options(const Arguments& arguments, const ConfigFile* file) {
  auto gathered = gather(arguments, file);
  if (!gathered) return unexpected(gathered.error());
  const Values& values = *gathered;
  Options o;
  if (file) o.config_file = file->path;

  // Each option: nullopt when the value is good (and stored), the error otherwise.
  auto number = [&](const char* name, uint64_t min, uint64_t max,
                    auto& field) -> std::optional<ConfigError> {
    if (const Given* g = values.one(name)) {
      auto r = parse_number(g->value, min, max);
      if (!r) return error_at(*g, name, r.error());
      field = static_cast<std::remove_reference_t<decltype(field)>>(*r);
    }
    return std::nullopt;
  };
  auto parsed = [&](const char* name, auto parse, auto& field) -> std::optional<ConfigError> {
    if (const Given* g = values.one(name)) {
      auto r = parse(g->value);
      if (!r) return error_at(*g, name, r.error());
      field = *r;
    }
    return std::nullopt;
  };
  // A switch; `field` is set to `on` when the switch is true, to !on when false.
  auto flag = [&](const char* name, bool& field, bool on) -> std::optional<ConfigError> {
    if (const Given* g = values.one(name)) {
      auto r = parse_bool(g->value);
      if (!r) return error_at(*g, name, r.error());
      field = *r ? on : !on;
    }
    return std::nullopt;
  };

  for (auto check : {
           parsed("queues", parse_queue_range, o.queues),
           parsed("hooks", parse_hooks, o.hooks),
           number("port", 1, 65535, o.port),
           // The kernel takes any u32, but the socket buffer is sized from it (queue.cpp).
           number("queue-maxlen", 1, 1u << 20, o.queue_maxlen),
           number("max-flows", 1, 1u << 24, o.max_flows),
           // Below 10 ms a Nagle-delayed line end would be cut; above a minute a held segment
           // outlives the sender's retransmission timer many times over.
           number("hold-timeout-ms", 10, 60000, o.hold_timeout_ms),
           number("memory-budget", 0, 1u << 20, o.memory_budget_mib),
           parsed("done-mark", parse_done_mark, o.done_mark),
           parsed("inject-mark", parse_inject_mark, o.inject_mark),
           parsed("mapped-mark", parse_mapped_mark, o.mapped_mark),
           parsed(
               "answer-reply",
               [](std::string_view v) -> Expected<std::optional<std::string>, BadValue> {
                 auto r = parse_answer_reply(v);
                 if (!r) return unexpected(r.error());
                 return std::optional<std::string>(*r);
               },
               o.overrides.answer_reply),
           number("stats-interval", 0, 86400, o.stats_interval_s),
           parsed(
               "control-socket",
               [](std::string_view v) -> Expected<std::string, BadValue> {
                 if (v == "none") return std::string();
                 auto r = parse_absolute_path(v, kMaxSocketPath);
                 if (!r)
                   return unexpected(BadValue{r.error().problem, r.error().allowed + ", or none"});
                 return r;
               },
               o.control_socket),
           parsed(
               "prometheus-file", [](std::string_view v) { return parse_absolute_path(v, 4095); },
               o.prometheus_file),
           parsed("prometheus-listen", check_listen_address, o.prometheus_listen),
           number("log-rate", 0, 1000000, o.log_rate),
           flag("install-rules", o.install_rules, true),
           flag("fail-open", o.fail_open, true),
           flag("no-conntrack-tuning", o.conntrack_tuning, false),
           flag("syslog", o.syslog, true),
           flag("no-syslog", o.syslog, false),
           flag("verbose", o.verbose, true),
       }) {
    if (check) return unexpected(*check);
  }
  if (auto bad = exception_options(values, o.exceptions)) return unexpected(*bad);
  if (const Given* g = values.one("profile")) {
    if (!policy::builtin_profile(g->value)) {
      std::vector<std::string> names;
      for (std::string_view n : policy::builtin_profile_names()) names.emplace_back(n);
      std::string problem = "unknown profile " + quoted(g->value);
      if (std::string near = closest_name(g->value, names); !near.empty())
        problem += ", did you mean " + quoted(near) + "?";
      return unexpected(error_at(*g, "profile", {problem, profile_list()}));
    }
    o.profile = g->value;
  }
  // One switch of a pair per source: "--syslog --no-syslog" says nothing clear.
  if (const Given* on = values.one("syslog"), *off = values.one("no-syslog"); on && off) {
    return unexpected(
        error_at(*off, "no-syslog", {"contradicts " + mention(on, "syslog"), "one of the two"}));
  }
  // The rules test the two marks independently: a shared bit would let a finished flow's
  // packets pass as injected ones, or make the daemon's own packets count as finished.
  if (const uint32_t shared = o.inject_mark & o.done_mark; shared != 0) {
    const Given* inject = values.one("inject-mark");
    const Given* done = values.one("done-mark");
    const bool on_inject = inject != nullptr;
    const std::string problem =
        on_inject
            ? "the inject mark " + hex(o.inject_mark) + " and the done mark " + hex(o.done_mark) +
                  " (" + mention(done, "done-mark") + ") share bits " + hex(shared)
            : "the done mark " + hex(o.done_mark) + " and the inject mark " + hex(o.inject_mark) +
                  " (" + mention(inject, "inject-mark") + ") share bits " + hex(shared);
    return unexpected(error_at(on_inject ? *inject : *done, on_inject ? "inject-mark" : "done-mark",
                               {problem, "marks with no bit in common"}));
  }
  // The mapped bit must be told apart from both: a mapped flow must never pass as finished.
  if (const uint32_t shared = o.mapped_mark & (o.done_mark | o.inject_mark); shared != 0) {
    const Given* mapped = values.one("mapped-mark");
    const char* other = (shared & o.done_mark) ? "done-mark" : "inject-mark";
    const std::string problem = "the mapped mark " + hex(o.mapped_mark) + " shares bits " +
                                hex(shared) + " with the " + other;
    if (mapped) return unexpected(error_at(*mapped, "mapped-mark", {problem, "a bit of its own"}));
    const Given* g = values.one(other);
    if (!g) return unexpected(error_at(Given{}, "mapped-mark", {problem, "a bit of its own"}));
    return unexpected(error_at(*g, other, {problem + " (the default mapped mark)", "another bit"}));
  }

  for (const Given& g : values.all("strip-keyword")) {
    auto r = parse_keyword_list(g.value);
    if (!r) return unexpected(error_at(g, "strip-keyword", r.error()));
    for (smtp::EhloKeyword k : *r) {
      auto& list = o.overrides.strip_keywords;
      if (std::find(list.begin(), list.end(), k) != list.end()) {
        return unexpected(error_at(g, "strip-keyword",
                                   {std::string(smtp::to_string(k)) + " is named twice", {}}));
      }
      list.push_back(k);
    }
  }
  // A verb has one action: naming it twice, in one list or in both, is an error rather than a
  // silent choice of the last one.
  for (const char* option : {"answer-verb", "reset-verb"}) {
    for (const Given& g : values.all(option)) {
      auto r = parse_verb_list(g.value);
      if (!r) return unexpected(error_at(g, option, r.error()));
      for (smtp::Verb verb : *r) {
        auto& answer = o.overrides.answer_verbs;
        auto& reset = o.overrides.reset_verbs;
        const bool is_answer = std::string_view(option) == "answer-verb";
        auto& mine = is_answer ? answer : reset;
        const auto& other = is_answer ? reset : answer;
        const std::string name(smtp::to_string(verb));
        if (std::find(mine.begin(), mine.end(), verb) != mine.end())
          return unexpected(error_at(g, option, {name + " is named twice", {}}));
        if (std::find(other.begin(), other.end(), verb) != other.end()) {
          return unexpected(
              error_at(g, option, {name + " is named in both --answer-verb and --reset-verb", {}}));
        }
        mine.push_back(verb);
      }
    }
  }

  if (file) {
    auto policy = parse_policy_config(*file);
    if (!policy) return unexpected(policy.error());
    o.policy = std::move(*policy);
  }
  return o;
}

Expected<std::shared_ptr<const policy::PolicySet>, ConfigError> make_policies(const Options& o) {
  return build_policy_set(o.profile, o.policy, [&o](policy::Profile p) {
    return apply_overrides(std::move(p), o.overrides);
  });
}

Expected<Configuration, ConfigError> load_configuration(const Arguments& arguments) {
  std::optional<ConfigFile> file;
  // A missing default file is no file; any other problem with it (permissions, a directory) is
  // an error, as is a missing file the command line named.
  if (arguments.config_given || ::access(arguments.config_path.c_str(), F_OK) == 0) {
    auto read = read_config_file(arguments.config_path);
    if (!read) return unexpected(read.error());
    file = std::move(*read);
  }
  auto options = resolve_options(arguments, file ? &*file : nullptr);
  if (!options) return unexpected(options.error());
  auto policies = make_policies(*options);
  if (!policies) return unexpected(policies.error());
  return Configuration{std::move(*options), std::move(*policies)};
}

std::string error_message(const ConfigError& e) {
  if (e.from_command_line()) return "smtpguardd: " + e.text() + "\nTry 'smtpguardd --help'.\n";
  return e.text() + "\n";
}

int exit_code(const ConfigError& e, bool check_config) {
  return check_config || !e.from_command_line() ? 1 : 2;
}

std::string describe_configuration(const Options& o) {
  std::string out = o.config_file.empty() ? "configuration: command line only (no file)\n"
                                          : "configuration: " + o.config_file + "\n";
  return out + describe_policies(o.profile, o.policy, describe_overrides(o.overrides));
}

std::vector<std::string> restart_only_changes(const Options& a, const Options& b) {
  std::vector<std::string> out;
  auto note = [&out](const char* name, bool same) {
    if (!same) out.emplace_back(name);
  };
  note("queues", a.queues == b.queues);
  note("install-rules", a.install_rules == b.install_rules);
  note("hooks", a.hooks == b.hooks);
  note("port", a.port == b.port);
  note("fail-open", a.fail_open == b.fail_open);
  note("queue-maxlen", a.queue_maxlen == b.queue_maxlen);
  note("max-flows", a.max_flows == b.max_flows);
  note("hold-timeout-ms", a.hold_timeout_ms == b.hold_timeout_ms);
  note("memory-budget", a.memory_budget_mib == b.memory_budget_mib);
  note("exception-policy", a.exceptions == b.exceptions);
  note("done-mark", a.done_mark == b.done_mark);
  note("inject-mark", a.inject_mark == b.inject_mark);
  note("mapped-mark", a.mapped_mark == b.mapped_mark);
  note("no-conntrack-tuning", a.conntrack_tuning == b.conntrack_tuning);
  note("verbose", a.verbose == b.verbose);
  note("control-socket", a.control_socket == b.control_socket);
  note("prometheus-file", a.prometheus_file == b.prometheus_file);
  note("prometheus-listen", a.prometheus_listen == b.prometheus_listen);
  note("log-rate", a.log_rate == b.log_rate);
  note("syslog", a.syslog == b.syslog);
  return out;
}

void apply_reloadable(Options& running, const Options& loaded) {
  running.profile = loaded.profile;
  running.overrides = loaded.overrides;
  running.policy = loaded.policy;
  running.stats_interval_s = loaded.stats_interval_s;
  running.config_file = loaded.config_file;
}

}  // namespace sg::daemon

#include "config/options.hpp"

#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>

#include "config/option_table.hpp"
#include "config/profile_setting.hpp"

namespace sg::config {
namespace {

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
           parsed("queues", parse_queues, o.queues),
           parsed(
               "worker-cpus",
               [](std::string_view v) -> Expected<std::vector<uint16_t>, BadValue> {
                 if (trim_blanks(v).empty()) return std::vector<uint16_t>{};  // no pinning
                 return parse_cpu_list(v);
               },
               o.worker_cpus),
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
           parsed(
               "event-json",
               [](std::string_view v) -> Expected<std::string, BadValue> {
                 if (v == "-") return std::string(v);
                 auto r = parse_absolute_path(v, 4095);
                 if (!r) return unexpected(BadValue{r.error().problem, r.error().allowed + ", or -"});
                 return r;
               },
               o.event_json),
           flag("install-rules", o.install_rules, true),
           flag("fail-open", o.fail_open, true),
           flag("no-conntrack-tuning", o.conntrack_tuning, false),
           flag("syslog", o.syslog, true),
           flag("no-syslog", o.syslog, false),
           flag("verbose", o.verbose, true),
       }) {
    if (check) return unexpected(*check);
  }
  if (const Given* g = values.one("worker-cpus")) o.worker_cpus_origin = {g->file, g->line};
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
  note("worker-cpus", a.worker_cpus == b.worker_cpus);
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
  note("event-json", a.event_json == b.event_json);
  return out;
}

void apply_reloadable(Options& running, const Options& loaded) {
  running.profile = loaded.profile;
  running.overrides = loaded.overrides;
  running.policy = loaded.policy;
  running.stats_interval_s = loaded.stats_interval_s;
  running.config_file = loaded.config_file;
}

}  // namespace sg::config

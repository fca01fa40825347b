#pragma once
// smtpguardd's options: the command line (Boost.Program_options) over the configuration file's
// top level, plus the file's policy sections. Everything here is pure (no printing, no exit)
// except load_configuration, which reads the file; main prints and exits.
//
// The command line is kept as given (Arguments), so that a reload (SIGHUP) re-reads the file and
// puts the same command line on top of it again.
//
// The options themselves are declared once in option_table.hpp (which also reads the command
// line and writes --help); options.cpp validates the values and builds the policies.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config_file.hpp"
#include "config/hook.hpp"
#include "config/option_values.hpp"
#include "config/paths.hpp"
#include "config/policy_config.hpp"
#include "policy/exceptions.hpp"
#include "policy/policy_set.hpp"
#include "policy/profile.hpp"
#include "smtp/vocabulary.hpp"
#include "util/expected.hpp"

namespace sg::config {

inline constexpr uint32_t kDefaultLogRate = 20;

// Changes to the default policy from the top-level options --strip-keyword, --answer-verb,
// --reset-verb and --answer-reply. Every verb and keyword is named at most once across the lists.
struct PolicyOverrides {
  std::vector<smtp::EhloKeyword> strip_keywords;  // --strip-keyword: KeywordAction::kStrip
  std::vector<smtp::Verb> answer_verbs;           // --answer-verb: CommandAction::kAnswer
  std::vector<smtp::Verb> reset_verbs;            // --reset-verb: CommandAction::kReset
  std::optional<std::string> answer_reply;        // --answer-reply, without CRLF

  bool empty() const {
    return strip_keywords.empty() && answer_verbs.empty() && reset_verbs.empty() && !answer_reply;
  }
};

// Where an option's value came from: a line of a file, or the command line (file empty).
struct OptionOrigin {
  std::string file;
  size_t line = 0;
  bool operator==(const OptionOrigin&) const = default;
};

struct Options {
  // "auto" by default: one queue per CPU, resolved at start (config/worker_plan.hpp).
  QueueSpec queues;
  // --worker-cpus: worker i runs on the i-th CPU of the list (cycling); empty: no pinning.
  std::vector<uint16_t> worker_cpus;
  OptionOrigin worker_cpus_origin;  // checked against the affinity mask at start
  std::string profile = "modern";
  bool install_rules = false;
  std::vector<Hook> hooks{Hook::kForward};
  uint16_t port = 25;
  bool fail_open = false;
  uint32_t queue_maxlen = 4096;
  size_t max_flows = 65536;
  uint32_t hold_timeout_ms = 2000;
  // Retained bytes + held packets, MiB, all workers together (each gets an equal share); 0: none.
  uint32_t memory_budget_mib = 512;
  // What to do when a connection cannot be followed (policy/exceptions.hpp).
  policy::ExceptionPolicy exceptions;
  uint32_t done_mark = kDefaultDoneMark;
  uint32_t inject_mark = kDefaultInjectMark;
  uint32_t mapped_mark = kDefaultMappedMark;  // 0: off
  PolicyOverrides overrides;
  uint32_t stats_interval_s = 0;  // 0 = no periodic statistics
  // Make the conntrack entry of each connection the daemon starts mapping liberal (TCP window
  // checks off), so that `ct state invalid` rules do not drop its rewritten stream.
  bool conntrack_tuning = true;
  bool verbose = false;
  // The Unix socket smtpguardctl talks to (config/paths.hpp); empty: none.
  std::string control_socket{kDefaultControlSocket};
  std::string prometheus_file;    // node_exporter textfile-collector file; empty: none
  std::string prometheus_listen;  // "ADDR:PORT" for HTTP /metrics (check_listen_address); empty:
                                  // none
  uint32_t log_rate = kDefaultLogRate;  // decision log lines per second; 0: no limit
  bool syslog = true;                   // decision log lines to syslog (LOG_MAIL) as well
  std::string event_json;               // the decision log as JSON lines: a file, "-" (stdout)
                                        // or empty (none)

  std::string config_file;  // the file read; empty when there was none
  PolicyConfig policy;      // its [policy] and [policy.NAME] sections
};

// The command line as given, before validation.
struct Arguments {
  // Option name (without "--") and value ("true" for a switch), in command-line order.
  std::vector<std::pair<std::string, std::string>> given;
  std::string config_path{kDefaultConfigPath};
  bool config_given = false;  // --config: the file must exist
  bool check_config = false;
};

// The outcome of the command line: either arguments to go on with, or an exit code with the
// text to print (help and version on stdout with 0, errors on stderr with 2).
struct CommandLine {
  std::optional<Arguments> arguments;
  int exit_code = 0;
  std::string text;
};

CommandLine parse_command_line(int argc, const char* const argv[]);
// The options the configuration file may set at its top level (all but config, check-config,
// help, version).
std::vector<std::string> file_option_names();

// The options: each top-level option of `file` (null: none) unless the command line gives it,
// every value validated, and the file's policy sections.
Expected<Options, ConfigError> resolve_options(const Arguments& arguments, const ConfigFile* file);

// The policy set the options describe: the default profile with [policy] and the overrides,
// and one rule per [policy.NAME].
Expected<std::shared_ptr<const policy::PolicySet>, ConfigError> make_policies(const Options& o);

struct Configuration {
  Options options;
  std::shared_ptr<const policy::PolicySet> policies;
};
// Reads the file the arguments name (a missing default file counts as none, a missing --config
// file is an error), resolves the options and builds the policy set.
Expected<Configuration, ConfigError> load_configuration(const Arguments& arguments);

// How main reports a ConfigError: the text (with a newline) and the exit code. Errors on the
// command line exit 2 as before, errors in the file 1; --check-config exits 1 for either.
std::string error_message(const ConfigError& e);
int exit_code(const ConfigError& e, bool check_config);

// For --check-config: where the configuration came from and one entry per policy.
std::string describe_configuration(const Options& o);

// Options that differ between the running and the reloaded configuration and that only a
// restart can change (queues, hooks, marks, ...), by their option names.
std::vector<std::string> restart_only_changes(const Options& running, const Options& loaded);
// Takes over from `loaded` what a reload changes: the profile, the overrides, the policy
// sections, the statistics interval.
void apply_reloadable(Options& running, const Options& loaded);

// The profile with the overrides applied.
policy::Profile apply_overrides(policy::Profile profile, const PolicyOverrides& overrides);
// The overrides as command-line options, e.g. "--strip-keyword AUTH,CHUNKING --answer-verb VRFY";
// empty when there are none.
std::string describe_overrides(const PolicyOverrides& overrides);

std::string version_text();

}  // namespace sg::config

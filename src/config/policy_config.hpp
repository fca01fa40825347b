#pragma once
// The policy sections of the configuration file, turned into a policy::PolicySet.
//
//   [policy]          changes the default policy: the one for connections no rule matches. It
//                     starts from the top-level `profile`.
//   [policy.NAME]     one rule; rules are tried in file order and the first that matches wins.
//                     match-server / match-client (comma-separated prefixes), match-port, and
//                     `profile` (default: the top-level one) which it starts from; [policy]
//                     does not apply to it.
//
// Both take the same override keys (config/profile_setting.hpp). Parsing validates every value
// and keeps its line; building applies them to copies of the built-in profiles.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config_file.hpp"
#include "config/profile_setting.hpp"
#include "policy/policy_set.hpp"
#include "policy/profile.hpp"
#include "util/expected.hpp"

namespace sg::config {

// A [policy.NAME] section.
struct PolicySection {
  std::string name;
  size_t line = 0;                      // of the section header
  std::vector<policy::Subnet> servers;  // empty: any
  std::vector<policy::Subnet> clients;  // empty: any
  std::optional<uint16_t> server_port;
  std::string profile;  // empty: the top-level profile
  std::vector<ProfileSetting> settings;
};

struct PolicyConfig {
  std::string file;                      // where the sections came from, for errors
  std::vector<ProfileSetting> defaults;  // [policy]
  std::vector<PolicySection> rules;      // [policy.NAME], in file order
};

// The [policy] and [policy.*] sections of `file`; the rest of it is not looked at except for
// other sections, which are errors.
Expected<PolicyConfig, ConfigError> parse_policy_config(const ConfigFile& file);

// The policy set: the default policy is `default_profile` with [policy] applied and then
// `finish_default` (the command-line overrides); each rule is its profile with its settings.
// Fails when the settings of one section contradict each other (banner = replace without
// banner-text). `default_profile` and every rule's profile must be built-in names.
Expected<std::shared_ptr<const policy::PolicySet>, ConfigError> build_policy_set(
    std::string_view default_profile, const PolicyConfig& config,
    const std::function<policy::Profile(policy::Profile)>& finish_default);

// One line per policy, rules first, then the default: name, match, profile, overrides.
// `default_extra`: the command-line overrides as text, appended to the default's.
std::string describe_policies(std::string_view default_profile, const PolicyConfig& config,
                              std::string_view default_extra);

}  // namespace sg::config

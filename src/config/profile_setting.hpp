#pragma once
// The override keys of a policy section ([policy], [policy.NAME]): each changes one thing of a
// built-in profile (policy/profile.hpp). A key's value is validated when it is read; what it
// changes is kept as a function applied to a copy of the profile when the policy set is built.
//
//   banner = pass | mask | mask-all | replace
//   banner-text = TEXT                 the greeting with banner = replace (printable ASCII)
//   command.VERB = ACTION [REPLY]      VERB from smtp/vocabulary.hpp or * (every other verb);
//                                      ACTION allow|log|mask|noop|answer|reset|drop-connection;
//                                      answer may take its own reply (4xy/5xy text)
//   command-rate.VERB = N              the first N matches a second pass (allow), the rest get
//                                      the action
//   keyword.KEYWORD = allow | mask | strip     (EHLO reply keywords; * = every other one)
//   answer-reply = 4xy/5xy TEXT
//   max-command-line = N, max-reply-line = N   line lengths the parser frames (CRLF included)
//   check.NAME = N ACTION | ACTION | ACTION PATTERN[, PATTERN...] | off    (see kChecks)
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config_file.hpp"
#include "policy/profile.hpp"
#include "util/expected.hpp"

namespace sg::config {

struct ProfileSetting {
  std::string key;    // normalised: "command.VRFY", "keyword.*", "check.recipients"
  std::string value;  // normalised: "answer 550 5.7.1 No", "100 drop-connection"
  size_t line = 0;    // where it was read (0: not from a file)
  std::function<void(policy::Profile&)> apply;
};

// The longest banner-text: a greeting line is at most 512 octets with "220 " and CRLF.
inline constexpr size_t kMaxBannerText = 500;
// The most patterns one check takes.
inline constexpr size_t kMaxPatterns = 1000;

// One override key (without its section) and its value.
Expected<ProfileSetting, BadValue> parse_profile_setting(std::string_view key,
                                                         std::string_view value);
// True when `key` is an override key or begins like one ("command.", "check."): its errors are
// parse_profile_setting's, it is not an unknown option.
bool is_profile_setting(std::string_view key);
// A hint for a key that is not one: "did you mean 'command.VRFY'?" or "".
std::string profile_setting_hint(std::string_view key);

// The names configuration files use for the values of an action enum (CommandAction,
// CheckAction, KeywordAction, BannerAction): "allow, log, ...", and the reverse.
template <class Action>
std::string action_names();
template <class Action>
std::optional<Action> parse_action(std::string_view name);

// The names of the checks: "command-line-length", ... (the keys are "check." + name).
std::vector<std::string> check_names();

// The override keys with their values, one per line, for --help.
std::string profile_setting_help();

}  // namespace sg::config

#include "config/policy_config.hpp"

#include <algorithm>
#include <array>
#include <map>

#include "config/option_values.hpp"
#include "util/ascii.hpp"

namespace sg::config {
namespace {

constexpr std::string_view kDefaultSection = "policy";
constexpr std::string_view kRulePrefix = "policy.";
constexpr std::array<std::string_view, 4> kRuleKeys{"match-server", "match-client", "match-port",
                                                    "profile"};
// The most prefixes one match key takes.
constexpr size_t kMaxSubnets = 1024;

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

bool valid_rule_name(std::string_view name) {
  return !name.empty() && name != "default" && std::all_of(name.begin(), name.end(), [](char c) {
    return is_alnum(c) || c == '-' || c == '_';
  });
}

ConfigError entry_error(const ConfigFile& file, const ConfigEntry& e, BadValue what) {
  return ConfigError{file.path, e.line, "option " + quoted(e.full_name()), std::move(what)};
}

std::string profile_names() {
  std::string out;
  for (std::string_view name : policy::builtin_profile_names())
    out += (out.empty() ? "" : ", ") + std::string(name);
  return out;
}

Expected<std::vector<policy::Subnet>, BadValue> parse_subnets(std::string_view value) {
  const std::string allowed =
      "comma-separated IPv4 or IPv6 addresses or prefixes, e.g. 198.18.2.0/24, 2001:db8:2::/64";
  auto items = split_list(value, allowed);
  if (!items) return unexpected(items.error());
  if (items->size() > kMaxSubnets) {
    return unexpected(BadValue{std::to_string(items->size()) + " prefixes",
                               "at most " + std::to_string(kMaxSubnets)});
  }
  std::vector<policy::Subnet> out;
  for (std::string_view item : *items) {
    auto s = policy::parse_subnet(item);
    if (!s) return unexpected(BadValue{s.error(), allowed});
    out.push_back(*s);
  }
  return out;
}

// A key of [policy.NAME] that is not an override: what the rule matches and where it starts.
Expected<bool, BadValue> parse_rule_key(PolicySection& rule, const ConfigEntry& e) {
  if (e.key == "match-server" || e.key == "match-client") {
    auto subnets = parse_subnets(e.value);
    if (!subnets) return unexpected(subnets.error());
    (e.key == "match-server" ? rule.servers : rule.clients) = std::move(*subnets);
    return true;
  }
  if (e.key == "match-port") {
    auto port = parse_number(e.value, 1, 65535);
    if (!port) return unexpected(port.error());
    rule.server_port = static_cast<uint16_t>(*port);
    return true;
  }
  if (e.key == "profile") {
    if (!policy::builtin_profile(e.value)) {
      std::vector<std::string> names;
      for (std::string_view n : policy::builtin_profile_names()) names.emplace_back(n);
      std::string problem = "unknown profile " + quoted(e.value);
      if (std::string near = closest_name(e.value, names); !near.empty())
        problem += ", did you mean " + quoted(near) + "?";
      return unexpected(BadValue{problem, profile_names()});
    }
    rule.profile = e.value;
    return true;
  }
  return false;
}

BadValue unknown_key(std::string_view key, bool rule) {
  std::string problem = "unknown policy option " + quoted(key);
  std::vector<std::string> keys;
  if (rule)
    for (std::string_view k : kRuleKeys) keys.emplace_back(k);
  if (std::string near = closest_name(key, keys); !near.empty()) {
    problem += ", did you mean " + quoted(near) + "?";
  } else if (std::string hint = profile_setting_hint(key); !hint.empty()) {
    problem += ", " + hint;
  }
  return BadValue{problem, {}};
}

const ProfileSetting* find_setting(const std::vector<ProfileSetting>& settings,
                                   std::string_view key) {
  for (const ProfileSetting& s : settings)
    if (s.key == key) return &s;
  return nullptr;
}

// A built-in profile with the settings of one section applied, checked as a whole.
Expected<policy::Profile, ConfigError> build_profile(std::string_view base_name,
                                                     const std::vector<ProfileSetting>& settings,
                                                     const std::string& file, size_t line,
                                                     const std::string& section) {
  const std::shared_ptr<const policy::Profile> base = policy::builtin_profile(base_name);
  if (!base) {
    return unexpected(ConfigError{file,
                                  line,
                                  "section [" + section + "]",
                                  {"unknown profile " + quoted(base_name), profile_names()}});
  }
  policy::Profile p = *base;
  for (const ProfileSetting& s : settings) s.apply(p);
  const auto error_at = [&](const ProfileSetting* s, std::string problem, std::string allowed) {
    return ConfigError{file,
                       s ? s->line : line,
                       s ? "option " + quoted(section + "." + s->key) : "section [" + section + "]",
                       {std::move(problem), std::move(allowed)}};
  };
  const ProfileSetting* banner = find_setting(settings, "banner");
  const ProfileSetting* text = find_setting(settings, "banner-text");
  if (p.banner == policy::BannerAction::kReplace && p.banner_text.empty()) {
    return unexpected(error_at(banner, "'replace' needs the text of the new greeting",
                               "banner-text = TEXT in the same section"));
  }
  if (text && p.banner != policy::BannerAction::kReplace) {
    return unexpected(error_at(text, "banner-text is only used with banner = replace",
                               "banner = replace in the same section"));
  }
  return p;
}

std::string subnets_text(const std::vector<policy::Subnet>& subnets) {
  if (subnets.empty()) return "any";
  std::string out;
  for (const policy::Subnet& s : subnets) out += (out.empty() ? "" : ", ") + s.to_string();
  return out;
}

std::string settings_text(const std::vector<ProfileSetting>& settings, std::string_view extra) {
  if (settings.empty() && extra.empty()) return "; no overrides\n";
  std::string out = "\n";
  for (const ProfileSetting& s : settings) out += "    " + s.key + " = " + s.value + "\n";
  if (!extra.empty()) out += "    " + std::string(extra) + "\n";
  return out;
}

}  // namespace

Expected<PolicyConfig, ConfigError> parse_policy_config(const ConfigFile& file) {
  PolicyConfig out;
  out.file = file.path;
  std::map<std::string, size_t, std::less<>> rule_of_section;
  for (const ConfigSection& s : file.sections) {
    if (s.name == kDefaultSection) continue;
    const std::string subject = "section [" + s.name + "]";
    if (!starts_with(s.name, kRulePrefix)) {
      std::string problem = "unknown section";
      const std::string_view head = std::string_view(s.name).substr(0, kDefaultSection.size());
      if (head == kDefaultSection && s.name.size() > head.size() + 1 &&
          std::string_view("-_:").find(s.name[head.size()]) != std::string_view::npos) {
        problem += ", did you mean [policy." + s.name.substr(head.size() + 1) + "]?";
      } else if (closest_name(s.name, {std::string(kDefaultSection)}) == kDefaultSection) {
        problem += ", did you mean [policy]?";
      }
      return unexpected(ConfigError{file.path,
                                    s.line,
                                    subject,
                                    {problem,
                                     "[policy] and [policy.NAME]; top-level options "
                                     "come before the first section"}});
    }
    const std::string name = s.name.substr(kRulePrefix.size());
    if (!valid_rule_name(name)) {
      return unexpected(ConfigError{
          file.path,
          s.line,
          subject,
          {"bad policy name " + quoted(name), "letters, digits, '-', '_'; not 'default'"}});
    }
    rule_of_section.emplace(s.name, out.rules.size());
    out.rules.push_back(PolicySection{name, s.line, {}, {}, {}, {}, {}});
  }

  for (const ConfigEntry& e : file.entries) {
    if (e.section.empty()) continue;  // the top-level options: not ours
    const auto rule_it = rule_of_section.find(e.section);
    PolicySection* rule = rule_it == rule_of_section.end() ? nullptr : &out.rules[rule_it->second];
    if (rule) {
      auto taken = parse_rule_key(*rule, e);
      if (!taken) return unexpected(entry_error(file, e, taken.error()));
      if (*taken) continue;
    } else if (e.key == "profile") {
      return unexpected(entry_error(
          file, e,
          {"the default policy's profile is the top-level option 'profile'",
           "override keys; 'profile' before the first section, or in a [policy.NAME] rule"}));
    } else if (std::find(kRuleKeys.begin(), kRuleKeys.end(), e.key) != kRuleKeys.end()) {
      return unexpected(entry_error(
          file, e,
          {"[policy] is for every connection no rule matches: it matches nothing itself",
           "match keys in a [policy.NAME] section"}));
    }
    if (!is_profile_setting(e.key))
      return unexpected(entry_error(file, e, unknown_key(e.key, rule)));
    auto setting = parse_profile_setting(e.key, e.value);
    if (!setting) return unexpected(entry_error(file, e, setting.error()));
    setting->line = e.line;
    (rule ? rule->settings : out.defaults).push_back(std::move(*setting));
  }

  for (const PolicySection& r : out.rules) {
    if (r.servers.empty() && r.clients.empty() && !r.server_port) {
      return unexpected(ConfigError{file.path,
                                    r.line,
                                    "section [policy." + r.name + "]",
                                    {"a rule must match something",
                                     "match-server, match-client or match-port; settings "
                                     "for every other connection go in [policy]"}});
    }
  }
  return out;
}

Expected<std::shared_ptr<const policy::PolicySet>, ConfigError> build_policy_set(
    std::string_view default_profile, const PolicyConfig& config,
    const std::function<policy::Profile(policy::Profile)>& finish_default) {
  auto fallback =
      build_profile(default_profile, config.defaults, config.file, 0, std::string(kDefaultSection));
  if (!fallback) return unexpected(fallback.error());
  std::vector<policy::PolicyRule> rules;
  for (const PolicySection& r : config.rules) {
    auto profile = build_profile(r.profile.empty() ? default_profile : r.profile, r.settings,
                                 config.file, r.line, std::string(kRulePrefix) + r.name);
    if (!profile) return unexpected(profile.error());
    rules.push_back(policy::PolicyRule{r.name, r.servers, r.clients, r.server_port,
                                       std::make_shared<const policy::Profile>(*profile)});
  }
  auto fallback_profile = std::make_shared<const policy::Profile>(
      finish_default ? finish_default(std::move(*fallback)) : std::move(*fallback));
  return std::make_shared<const policy::PolicySet>(std::move(fallback_profile), std::move(rules));
}

std::string describe_policies(std::string_view default_profile, const PolicyConfig& config,
                              std::string_view default_extra) {
  std::string out;
  for (const PolicySection& r : config.rules) {
    out += "policy " + r.name + " (line " + std::to_string(r.line) + "): server " +
           subnets_text(r.servers) + "; client " + subnets_text(r.clients) + "; port " +
           (r.server_port ? std::to_string(*r.server_port) : std::string("any")) + "; profile " +
           (r.profile.empty() ? std::string(default_profile) : r.profile) +
           settings_text(r.settings, {});
  }
  out += "policy default: every other connection; profile " + std::string(default_profile) +
         settings_text(config.defaults, default_extra);
  return out;
}

}  // namespace sg::config

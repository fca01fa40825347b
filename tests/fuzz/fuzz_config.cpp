// fuzz_config: the configuration file, from text to policies, as smtpguardd loads it.
//
// Input: the text of a configuration file. It goes through the pure entry points:
// config::parse_config_text (the scanner), parse_policy_config + build_policy_set +
// describe_policies (the policy sections), and resolve_options + make_policies +
// describe_configuration (every option, as --check-config and a reload see them).
//
// Checked: nothing crashes or throws; an error names this file, a line of it (or 0 for the file
// as a whole) and a problem; every entry keeps the line it came from; a policy set that was
// built answers for any connection with a profile.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "config/config_file.hpp"
#include "config/options.hpp"
#include "config/policy_config.hpp"
#include "fuzz/fuzz_support.hpp"
#include "policy/policy_set.hpp"

using namespace sg;

namespace {

constexpr const char* kPath = "fuzz.conf";

void check_error(const config::ConfigError& e, size_t lines) {
  SG_FUZZ_CHECK(e.file == kPath, "error about another file: " + e.text());
  SG_FUZZ_CHECK(e.line <= lines, "error at line " + std::to_string(e.line) + " of " +
                                     std::to_string(lines) + ": " + e.text());
  SG_FUZZ_CHECK(!e.what.problem.empty(), "error without a problem: " + e.text());
  SG_FUZZ_CHECK(!e.text().empty() && !config::error_message(e).empty(), "empty error text");
}

void check_policies(const policy::PolicySet& set) {
  net::IpAddress a, b;
  a.bytes[15] = 1;
  SG_FUZZ_CHECK(set.select(a, b, 25) != nullptr, "no profile for a connection");
  SG_FUZZ_CHECK(set.fallback() != nullptr, "no default profile");
  for (const policy::PolicyRule& r : set.rules())
    SG_FUZZ_CHECK(r.profile != nullptr, "rule without a profile: " + r.name);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  size_t lines = 1;
  for (const char c : text) lines += c == '\n';

  const auto file = config::parse_config_text(kPath, text);
  if (!file) {
    check_error(file.error(), lines);
    return 0;
  }
  for (const config::ConfigEntry& e : file->entries)
    SG_FUZZ_CHECK(e.line >= 1 && e.line <= lines, "entry at line " + std::to_string(e.line));

  if (const auto config = config::parse_policy_config(*file); !config) {
    check_error(config.error(), lines);
  } else {
    const auto set = config::build_policy_set("modern", *config, nullptr);
    if (!set) {
      check_error(set.error(), lines);
    } else {
      check_policies(**set);
      (void)config::describe_policies("modern", *config, "");
    }
  }

  const config::Arguments arguments;
  const auto options = config::resolve_options(arguments, &*file);
  if (!options) {
    check_error(options.error(), lines);
    return 0;
  }
  const auto policies = config::make_policies(*options);
  if (!policies) {
    check_error(policies.error(), lines);
    return 0;
  }
  check_policies(**policies);
  (void)config::describe_configuration(*options);
  return 0;
}

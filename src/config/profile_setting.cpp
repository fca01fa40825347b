#include "config/profile_setting.hpp"

#include <algorithm>
#include <array>

#include "config/option_values.hpp"
#include "util/ascii.hpp"

namespace sg::config {
namespace {

using policy::BannerAction;
using policy::CheckAction;
using policy::CommandAction;
using policy::KeywordAction;
using policy::Profile;

// Where a check looks decides which actions make sense (policy/profile.hpp, Checks).
enum class CheckForm : uint8_t {
  kLimit,     // "N ACTION"
  kAction,    // "ACTION"
  kPatterns,  // "ACTION PATTERN, ..."
};

enum class PatternSyntax : uint8_t {
  kNone,
  kAddress,   // anything printable but blanks and ','
  kDomain,    // letters, digits, '.', '-', '_' and the wildcards
  kFilename,  // anything printable but blanks and ','
  kToken,     // letters, digits, '-', '_', '.' and the wildcards (a transfer encoding)
};

struct CheckSpec {
  std::string_view name;
  std::string_view what;  // what is measured or matched, for --help
  CheckForm form;
  bool mask;           // the check looks at command lines: the line can be masked
  uint64_t max_limit;  // kLimit: N is 1..max_limit
  PatternSyntax syntax;
  policy::Limit policy::Checks::*limit;
  CheckAction policy::Checks::*action;
  policy::PatternCheck policy::Checks::*patterns;
};

constexpr uint64_t kMaxLineLimit = 1 << 20;
constexpr uint64_t kMaxCount = 1000000;
constexpr uint64_t kMaxMessageSize = uint64_t{1} << 40;

constexpr CheckSpec limit_check(std::string_view name, std::string_view what, bool mask,
                                uint64_t max, policy::Limit policy::Checks::*field) {
  return {name, what, CheckForm::kLimit, mask, max, PatternSyntax::kNone, field, nullptr, nullptr};
}
constexpr CheckSpec action_check(std::string_view name, std::string_view what, bool mask,
                                 CheckAction policy::Checks::*field) {
  return {name, what, CheckForm::kAction, mask, 0, PatternSyntax::kNone, nullptr, field, nullptr};
}
constexpr CheckSpec pattern_check(std::string_view name, std::string_view what, bool mask,
                                  PatternSyntax syntax,
                                  policy::PatternCheck policy::Checks::*field) {
  return {name, what, CheckForm::kPatterns, mask, 0, syntax, nullptr, nullptr, field};
}

using C = policy::Checks;
constexpr std::array kChecks{
    limit_check("command-line-length", "bytes of a command line, CRLF included", true,
                kMaxLineLimit, &C::command_line),
    limit_check("reply-line-length", "bytes of a reply line, CRLF included", false, kMaxLineLimit,
                &C::reply_line),
    action_check("special-chars", "| ` NUL or a control byte in a MAIL/RCPT address", true,
                 &C::special_chars),
    limit_check("sender-length", "characters of the MAIL FROM address", true, kMaxLineLimit,
                &C::sender_length),
    pattern_check("sender", "MAIL FROM addresses matching a pattern", true, PatternSyntax::kAddress,
                  &C::sender),
    pattern_check("relay", "RCPT TO domains matching none of the patterns", true,
                  PatternSyntax::kDomain, &C::relay),
    limit_check("recipients", "RCPT commands in one transaction", true, kMaxCount, &C::recipients),
    limit_check("invalid-recipients", "RCPT refused with 5xx in one session", false, kMaxCount,
                &C::invalid_recipients),
    limit_check("header-line-length", "bytes of a header line, CRLF included", false, kMaxLineLimit,
                &C::header_line),
    limit_check("to-fields", "To: header fields in one message", false, kMaxCount, &C::to_fields),
    limit_check("body-line-length", "bytes of a body line, CRLF included", false, kMaxLineLimit,
                &C::body_line),
    limit_check("message-size", "bytes of a message, or a larger SIZE= in MAIL FROM", false,
                kMaxMessageSize, &C::message_size),
    limit_check("mime-filename-length", "characters of an attachment's file name", false,
                kMaxLineLimit, &C::mime_filename),
    pattern_check("mime-filetype", "attachment file names matching a pattern (*.exe)", false,
                  PatternSyntax::kFilename, &C::mime_filetype),
    pattern_check("mime-encoding", "Content-Transfer-Encoding values matching a pattern", false,
                  PatternSyntax::kToken, &C::mime_encoding),
    action_check("smuggling", "bare CR or LF, NUL, or a non-canonical end of data in a message",
                 false, &C::smuggling),
    action_check("starttls-injection", "plaintext around the STARTTLS handshake", false,
                 &C::starttls_injection),
    action_check("early-talker", "client bytes before the server's greeting ended", false,
                 &C::early_talker),
    action_check("pipelining", "client input before a reply it had to wait for (RFC 2920)", false,
                 &C::pipelining),
};

constexpr std::array<std::string_view, 5> kPlainKeys{"banner", "banner-text", "answer-reply",
                                                     "max-command-line", "max-reply-line"};
constexpr std::array<std::string_view, 4> kFamilies{"command", "command-rate", "keyword", "check"};

// The enums are small; their names come from policy::to_string, which says "?" past the end.
constexpr unsigned kMaxEnumValues = 64;

template <class Action>
std::vector<Action> all_actions() {
  std::vector<Action> out;
  for (unsigned i = 0; i < kMaxEnumValues; ++i) {
    const auto a = static_cast<Action>(i);
    if (policy::to_string(a) != "?") out.push_back(a);
  }
  return out;
}

std::pair<std::string_view, std::string_view> first_word(std::string_view text) {
  text = trim_blanks(text);
  const size_t blank = text.find_first_of(" \t");
  if (blank == std::string_view::npos) return {text, {}};
  return {text.substr(0, blank), trim_blanks(text.substr(blank))};
}

std::vector<std::string_view> words(std::string_view text) {
  std::vector<std::string_view> out;
  std::string_view rest = text;
  // Each round takes a word of at least one character.
  for (size_t i = 0; i < text.size(); ++i) {
    const auto [word, after] = first_word(rest);
    if (word.empty()) break;
    out.push_back(word);
    rest = after;
  }
  return out;
}

bool printable_ascii(std::string_view text) {
  return std::all_of(text.begin(), text.end(), is_printable);
}

bool pattern_ok(std::string_view p, PatternSyntax syntax) {
  if (p.empty() || p.size() > 320) return false;
  return std::all_of(p.begin(), p.end(), [syntax](char c) {
    const bool alnum = is_alnum(c);
    const bool wild = c == '*' || c == '?';
    switch (syntax) {
      case PatternSyntax::kDomain:
        return alnum || wild || c == '.' || c == '-' || c == '_';
      case PatternSyntax::kToken:
        return alnum || wild || c == '.' || c == '-' || c == '_';
      case PatternSyntax::kAddress:
      case PatternSyntax::kFilename:
      case PatternSyntax::kNone:
        break;
    }
    return is_vchar(c) && c != ',';
  });
}

std::string_view pattern_words(PatternSyntax syntax) {
  switch (syntax) {
    case PatternSyntax::kAddress:
      return "an address pattern";
    case PatternSyntax::kDomain:
      return "a domain pattern of letters, digits, '.', '-', '_'";
    case PatternSyntax::kFilename:
      return "a file name pattern";
    case PatternSyntax::kToken:
      return "an encoding pattern of letters, digits, '.', '-', '_'";
    case PatternSyntax::kNone:
      break;
  }
  return "a pattern";
}

// Only the smuggling check can sanitize: it is the one whose bytes have a same-length
// harmless form (a stray CR, LF or NUL becomes a space).
bool can_sanitize(const CheckSpec& c) {
  return c.action == &C::smuggling;
}

std::string check_action_names(bool mask, bool sanitize) {
  std::string out;
  for (CheckAction a : all_actions<CheckAction>()) {
    if (a == CheckAction::kMask && !mask) continue;
    if (a == CheckAction::kSanitize && !sanitize) continue;
    if (!out.empty()) out += ", ";
    out += policy::to_string(a);
  }
  return out;
}

std::string check_allowed(const CheckSpec& c) {
  const std::string actions = check_action_names(c.mask, can_sanitize(c));
  switch (c.form) {
    case CheckForm::kLimit:
      return "'N ACTION' with N 1-" + std::to_string(c.max_limit) +
             (c.limit == &C::message_size ? " (or with a suffix K, M, G)" : "") + " and ACTION " +
             actions + "; or 'off'";
    case CheckForm::kAction:
      return actions;
    case CheckForm::kPatterns:
      return "'ACTION PATTERN[, PATTERN...]' with ACTION " + actions + " and PATTERN " +
             std::string(pattern_words(c.syntax)) +
             " ('*' any run of characters, '?' one); or 'off'";
  }
  return {};
}

// The action of a check, or why it is not one.
Expected<CheckAction, BadValue> check_action(const CheckSpec& c, std::string_view word) {
  const auto a = parse_action<CheckAction>(word);
  if (!a) return unexpected(BadValue{"unknown action " + quoted(word), check_allowed(c)});
  if (*a == CheckAction::kMask && !c.mask) {
    return unexpected(
        BadValue{"'mask' only works on checks of command lines; here the bytes are "
                 "the server's or the message's",
                 check_allowed(c)});
  }
  if (*a == CheckAction::kSanitize && !can_sanitize(c)) {
    return unexpected(
        BadValue{"'sanitize' only works on check.smuggling (stray CR, LF and NUL "
                 "bytes become spaces)",
                 check_allowed(c)});
  }
  return *a;
}

// "123", or with message-size "50M" (binary multiples).
std::optional<uint64_t> limit_number(const CheckSpec& c, std::string_view text) {
  uint64_t scale = 1;
  if (c.limit == &C::message_size && !text.empty()) {
    const char unit = text.back();
    if (unit == 'K' || unit == 'k') scale = uint64_t{1} << 10;
    if (unit == 'M' || unit == 'm') scale = uint64_t{1} << 20;
    if (unit == 'G' || unit == 'g') scale = uint64_t{1} << 30;
    if (scale != 1) text.remove_suffix(1);
  }
  auto n = parse_number(text, 1, c.max_limit / scale);
  if (!n) return std::nullopt;
  return *n * scale;
}

Expected<ProfileSetting, BadValue> parse_check(std::string_view name, std::string_view value) {
  const auto spec = std::find_if(kChecks.begin(), kChecks.end(),
                                 [&](const CheckSpec& c) { return c.name == name; });
  if (spec == kChecks.end()) {
    std::vector<std::string> names;
    std::string all;
    for (const CheckSpec& c : kChecks) {
      names.emplace_back(c.name);
      all += (all.empty() ? "" : ", ") + std::string(c.name);
    }
    std::string problem = "unknown check " + quoted(name);
    if (std::string near = closest_name(name, names); !near.empty())
      problem += ", did you mean 'check." + near + "'?";
    return unexpected(BadValue{problem, all});
  }
  const CheckSpec c = *spec;
  ProfileSetting s;
  s.key = "check." + std::string(c.name);
  const std::vector<std::string_view> w = words(value);
  const BadValue bad{got(value), check_allowed(c)};
  if (w.empty()) return unexpected(bad);

  if (c.form == CheckForm::kAction) {
    if (w.size() != 1) return unexpected(bad);
    auto a = check_action(c, w[0]);
    if (!a) return unexpected(a.error());
    s.value = policy::to_string(*a);
    s.apply = [field = c.action, action = *a](Profile& p) { p.checks.*field = action; };
    return s;
  }

  if (w.size() == 1 && w[0] == "off") {
    s.value = "off";
    if (c.form == CheckForm::kLimit) {
      s.apply = [field = c.limit](Profile& p) { (p.checks.*field).action = CheckAction::kOff; };
    } else {
      s.apply = [field = c.patterns](Profile& p) { p.checks.*field = {}; };
    }
    return s;
  }

  if (c.form == CheckForm::kLimit) {
    if (w.size() != 2) return unexpected(bad);
    const std::optional<uint64_t> max = limit_number(c, w[0]);
    if (!max) return unexpected(BadValue{"bad limit " + quoted(w[0]), check_allowed(c)});
    auto a = check_action(c, w[1]);
    if (!a) return unexpected(a.error());
    s.value = std::to_string(*max) + " " + std::string(policy::to_string(*a));
    s.apply = [field = c.limit, limit = policy::Limit{*a, *max}](Profile& p) {
      p.checks.*field = limit;
    };
    return s;
  }

  const auto [action_word, list] = first_word(value);
  auto a = check_action(c, action_word);
  if (!a) return unexpected(a.error());
  policy::PatternCheck check{*a, {}};
  if (list.empty()) {
    if (*a != CheckAction::kOff) {
      return unexpected(
          BadValue{quoted(action_word) + " needs at least one pattern", check_allowed(c)});
    }
  } else {
    auto items = split_list(list, check_allowed(c));
    if (!items) return unexpected(items.error());
    if (items->size() > kMaxPatterns) {
      return unexpected(BadValue{std::to_string(items->size()) + " patterns",
                                 "at most " + std::to_string(kMaxPatterns)});
    }
    for (std::string_view p : *items) {
      if (!pattern_ok(p, c.syntax))
        return unexpected(BadValue{"bad pattern " + quoted(p), check_allowed(c)});
      check.patterns.emplace_back(p);
    }
  }
  s.value = std::string(policy::to_string(*a));
  for (size_t i = 0; i < check.patterns.size(); ++i)
    s.value += (i == 0 ? " " : ", ") + check.patterns[i];
  s.apply = [field = c.patterns, check](Profile& p) { p.checks.*field = check; };
  return s;
}

// "unknown SMTP verb 'VRFYY', did you mean 'VRFY'?"
template <class Item>
BadValue unknown_item(const char* what, std::string_view name, size_t count, std::string allowed) {
  std::vector<std::string> all;
  for (size_t i = 0; i < count; ++i) all.emplace_back(smtp::to_string(static_cast<Item>(i)));
  std::string problem = std::string("unknown ") + what + " " + quoted(name);
  if (std::string near = closest_name(name, all); !near.empty())
    problem += ", did you mean " + quoted(near) + "?";
  return BadValue{problem, std::move(allowed)};
}

// The index of a verb in Profile::verbs (kVerbCount: "*", every other verb).
Expected<size_t, BadValue> verb_index(std::string_view name) {
  if (name == "*") return smtp::kVerbCount;
  const smtp::Verb v = smtp::parse_verb(name);
  if (v != smtp::Verb::kUnknown) return static_cast<size_t>(v);
  return unexpected(unknown_item<smtp::Verb>("SMTP verb", name, smtp::kVerbCount,
                                             verb_names() + ", or * for every other verb"));
}

// The index of a keyword in Profile::keywords (kEhloKeywordCount: "*", every other keyword).
Expected<size_t, BadValue> keyword_index(std::string_view name) {
  if (name == "*") return smtp::kEhloKeywordCount;
  const smtp::EhloKeyword k = smtp::parse_ehlo_keyword(name);
  if (k != smtp::EhloKeyword::kUnknown) return static_cast<size_t>(k);
  return unexpected(
      unknown_item<smtp::EhloKeyword>("EHLO keyword", name, smtp::kEhloKeywordCount,
                                      keyword_names() + ", or * for every other one"));
}

std::string verb_key(std::string_view family, size_t index) {
  return std::string(family) + "." +
         (index == smtp::kVerbCount ? "*"
                                    : std::string(smtp::to_string(static_cast<smtp::Verb>(index))));
}

Expected<ProfileSetting, BadValue> parse_command(std::string_view verb, std::string_view value) {
  auto index = verb_index(verb);
  if (!index) return unexpected(index.error());
  const std::string allowed = "'ACTION [REPLY]' with ACTION " + action_names<CommandAction>() +
                              "; only answer takes a REPLY: 4xy or 5xy, a space and text";
  const auto [word, reply_text] = first_word(value);
  const auto action = parse_action<CommandAction>(word);
  if (!action) return unexpected(BadValue{got(value), allowed});
  std::string reply;
  if (!reply_text.empty()) {
    if (*action != CommandAction::kAnswer)
      return unexpected(BadValue{quoted(word) + " takes no reply text", allowed});
    auto r = parse_answer_reply(reply_text);
    if (!r) return unexpected(r.error());
    reply = *r;
  }
  if (*action == CommandAction::kAnswer && *index == static_cast<size_t>(smtp::Verb::kBdat)) {
    std::string others;
    for (CommandAction a : all_actions<CommandAction>()) {
      if (a == CommandAction::kAnswer) continue;
      others += (others.empty() ? "" : ", ") + std::string(policy::to_string(a));
    }
    return unexpected(
        BadValue{"BDAT cannot be answered: its chunk follows without waiting for a reply", others});
  }
  ProfileSetting s;
  s.key = verb_key("command", *index);
  s.value = std::string(policy::to_string(*action)) + (reply.empty() ? "" : " " + reply);
  s.apply = [i = *index, a = *action, reply](Profile& p) {
    if (i == smtp::kVerbCount) {
      p.unknown_verb = a;
    } else {
      p.verbs[i] = a;
    }
    p.verb_replies[i] = reply;  // empty: the policy's answer-reply
  };
  return s;
}

Expected<ProfileSetting, BadValue> parse_command_rate(std::string_view verb,
                                                      std::string_view value) {
  auto index = verb_index(verb);
  if (!index) return unexpected(index.error());
  auto n = parse_number(value, 1, 1000000);
  if (!n) return unexpected(BadValue{n.error().problem, n.error().allowed + " per second"});
  ProfileSetting s;
  s.key = verb_key("command-rate", *index);
  s.value = std::to_string(*n);
  s.apply = [i = *index, rate = static_cast<uint32_t>(*n)](Profile& p) {
    p.verb_rates[i].per_second = rate;
  };
  return s;
}

Expected<ProfileSetting, BadValue> parse_keyword(std::string_view keyword, std::string_view value) {
  auto found = keyword_index(keyword);
  if (!found) return unexpected(found.error());
  const size_t index = *found;
  const auto a = parse_action<KeywordAction>(value);
  if (!a) return unexpected(BadValue{got(value), action_names<KeywordAction>()});
  ProfileSetting s;
  s.key = "keyword." + (index == smtp::kEhloKeywordCount
                            ? std::string("*")
                            : std::string(smtp::to_string(static_cast<smtp::EhloKeyword>(index))));
  s.value = policy::to_string(*a);
  s.apply = [index, action = *a](Profile& p) {
    if (index == smtp::kEhloKeywordCount) {
      p.unknown_keyword = action;
    } else {
      p.keywords[index] = action;
    }
  };
  return s;
}

}  // namespace

template <class Action>
std::string action_names() {
  std::string out;
  for (Action a : all_actions<Action>()) {
    if (!out.empty()) out += ", ";
    out += policy::to_string(a);
  }
  return out;
}

template <class Action>
std::optional<Action> parse_action(std::string_view name) {
  for (Action a : all_actions<Action>())
    if (policy::to_string(a) == name) return a;
  return std::nullopt;
}

template std::string action_names<CommandAction>();
template std::string action_names<CheckAction>();
template std::string action_names<KeywordAction>();
template std::string action_names<BannerAction>();
template std::optional<CommandAction> parse_action(std::string_view);
template std::optional<CheckAction> parse_action(std::string_view);
template std::optional<KeywordAction> parse_action(std::string_view);
template std::optional<BannerAction> parse_action(std::string_view);

bool is_profile_setting(std::string_view key) {
  if (std::find(kPlainKeys.begin(), kPlainKeys.end(), key) != kPlainKeys.end()) return true;
  const size_t dot = key.find('.');
  return dot != std::string_view::npos &&
         std::find(kFamilies.begin(), kFamilies.end(), key.substr(0, dot)) != kFamilies.end();
}

std::string profile_setting_hint(std::string_view key) {
  std::vector<std::string> candidates;
  const size_t dot = key.find('.');
  if (dot == std::string_view::npos) {
    for (std::string_view k : kPlainKeys) candidates.emplace_back(k);
    for (std::string_view f : kFamilies) candidates.emplace_back(f);
    const std::string near = closest_name(key, candidates);
    if (near.empty()) return {};
    const bool family = std::find(kFamilies.begin(), kFamilies.end(), near) != kFamilies.end();
    return "did you mean " + quoted(family ? near + ".NAME" : near) + "?";
  }
  for (std::string_view f : kFamilies) candidates.emplace_back(f);
  const std::string near = closest_name(key.substr(0, dot), candidates);
  if (near.empty()) return {};
  const std::string_view rest = key.substr(dot + 1);
  return "did you mean " + quoted(near + "." + std::string(rest.empty() ? "NAME" : rest)) + "?";
}

Expected<ProfileSetting, BadValue> parse_profile_setting(std::string_view key,
                                                         std::string_view value) {
  const size_t dot = key.find('.');
  const std::string_view family = key.substr(0, dot);
  const std::string_view name = dot == std::string_view::npos ? "" : key.substr(dot + 1);
  if (family == "command" && !name.empty()) return parse_command(name, value);
  if (family == "command-rate" && !name.empty()) return parse_command_rate(name, value);
  if (family == "keyword" && !name.empty()) return parse_keyword(name, value);
  if (family == "check" && !name.empty()) return parse_check(name, value);

  ProfileSetting s;
  s.key = std::string(key);
  if (key == "banner") {
    const auto a = parse_action<BannerAction>(value);
    if (!a) return unexpected(BadValue{got(value), action_names<BannerAction>()});
    s.value = policy::to_string(*a);
    s.apply = [a = *a](Profile& p) { p.banner = a; };
    return s;
  }
  if (key == "banner-text") {
    if (value.empty() || value.size() > kMaxBannerText || !printable_ascii(value)) {
      return unexpected(BadValue{
          value.size() > kMaxBannerText ? "got " + std::to_string(value.size()) + " characters"
                                        : got(value),
          "printable ASCII text, 1-" + std::to_string(kMaxBannerText) + " characters"});
    }
    s.value = std::string(value);
    s.apply = [text = s.value](Profile& p) { p.banner_text = text; };
    return s;
  }
  if (key == "answer-reply") {
    auto r = parse_answer_reply(value);
    if (!r) return unexpected(r.error());
    s.value = *r;
    s.apply = [reply = *r](Profile& p) { p.answer_reply = reply; };
    return s;
  }
  if (key == "max-command-line" || key == "max-reply-line") {
    // Below RFC 5321's 512 a compliant peer's line would be cut.
    auto n = parse_number(value, 512, 65536);
    if (!n) return unexpected(n.error());
    s.value = std::to_string(*n);
    if (key == "max-command-line") {
      s.apply = [n = *n](Profile& p) { p.max_command_line = n; };
    } else {
      s.apply = [n = *n](Profile& p) { p.max_reply_line = n; };
    }
    return s;
  }
  std::string problem = "unknown policy option " + quoted(key);
  if (std::string hint = profile_setting_hint(key); !hint.empty()) problem += ", " + hint;
  return unexpected(BadValue{problem, {}});
}

std::vector<std::string> check_names() {
  std::vector<std::string> out;
  for (const CheckSpec& c : kChecks) out.emplace_back(c.name);
  return out;
}

std::string profile_setting_help() {
  std::string checks;
  std::string maskable;
  for (const CheckSpec& c : kChecks) {
    if (c.mask) maskable += (maskable.empty() ? "" : ", ") + std::string(c.name);
    const char* form = c.form == CheckForm::kLimit    ? " = N ACTION"
                       : c.form == CheckForm::kAction ? " = ACTION"
                                                      : " = ACTION PATTERN[, ...]";
    std::string line = "  check." + std::string(c.name) + form;
    line.resize(std::max<size_t>(line.size() + 1, 47), ' ');
    checks += line + std::string(c.what) + "\n";
  }
  return "  banner = " + action_names<BannerAction>() +
         "\n"
         "  banner-text = TEXT         with banner = replace: the greeting after '220 '\n"
         "  command.VERB = ACTION [REPLY]   VERB from the vocabulary or * (every other verb);\n"
         "                             ACTION " +
         action_names<CommandAction>() +
         "\n"
         "                             (answer may take its own REPLY: 4xy/5xy text)\n"
         "  command-rate.VERB = N      the first N matches per second are allowed\n"
         "  keyword.KEYWORD = " +
         action_names<KeywordAction>() +
         "   (EHLO reply keywords; * = every other one)\n"
         "  answer-reply = 4xy/5xy TEXT\n"
         "  max-command-line = N, max-reply-line = N   (512-65536, CRLF included)\n" +
         checks + "  check ACTION: " + action_names<CheckAction>() +
         "; 'off' alone turns a check off;\n"
         "  mask only for the checks that look at command lines:\n    " +
         maskable +
         "\n"
         "  sanitize only for check.smuggling (stray CR, LF, NUL become spaces)\n"
         "  patterns: '*' any run of characters, '?' one; message-size takes K, M, G\n";
}

}  // namespace sg::config

#include "daemon/options.hpp"

#include <boost/program_options.hpp>

#include <algorithm>
#include <charconv>
#include <optional>
#include <sstream>
#include <vector>

#include "policy/profile.hpp"

#ifndef SMTPGUARD_VERSION
#define SMTPGUARD_VERSION "0.1.0"
#endif

namespace sg::daemon {
namespace po = boost::program_options;
namespace {

std::string quoted(std::string_view s) {
  return "'" + std::string(s) + "'";
}

std::string profile_list() {
  std::string out;
  for (std::string_view name : policy::builtin_profile_names()) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

std::string hex(uint32_t v) {
  char buf[16];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v, 16);
  (void)ec;
  return "0x" + std::string(buf, end);
}

// The option's value as given, or nullopt when it was not on the command line.
std::optional<std::string> given(const po::variables_map& vm, const char* name) {
  if (!vm.count(name)) return std::nullopt;
  return vm[name].as<std::string>();
}

// Every value of an option that may be repeated, in command-line order.
std::vector<std::string> given_all(const po::variables_map& vm, const char* name) {
  if (!vm.count(name)) return {};
  return vm[name].as<std::vector<std::string>>();
}

// "0x..." hexadecimal or decimal, the whole text, 32 bits.
std::optional<uint32_t> parse_u32(std::string_view text) {
  std::string_view digits = text;
  int base = 10;
  if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) {
    digits.remove_prefix(2);
    base = 16;
  }
  uint32_t v = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v, base);
  if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size())
    return std::nullopt;
  return v;
}

// The items of a comma-separated list; nullopt when the list or any item is empty.
std::optional<std::vector<std::string_view>> split_list(std::string_view text) {
  std::vector<std::string_view> items;
  // Each round consumes at least one character and a comma, or ends.
  for (size_t pos = 0; pos <= text.size();) {
    const size_t comma = text.find(',', pos);
    const std::string_view item =
        text.substr(pos, comma == std::string_view::npos ? comma : comma - pos);
    if (item.empty()) return std::nullopt;
    items.push_back(item);
    if (comma == std::string_view::npos) return items;
    pos = comma + 1;
  }
  return std::nullopt;  // a trailing comma
}

template <class Item>
std::string join(const std::vector<Item>& items) {
  std::string out;
  for (const Item& i : items) {
    if (!out.empty()) out += ",";
    out += smtp::to_string(i);
  }
  return out;
}

std::string usage(const po::options_description& desc) {
  std::ostringstream out;
  out << "Usage: smtpguardd [options]\n"
      << "SMTP inspection firewall: inspects and rewrites SMTP diverted into NFQUEUE.\n\n"
      << desc << "\n"
      << "Signals: SIGINT/SIGTERM stop (queues drained, rules removed), SIGUSR1 prints counters.\n"
      << "Exit codes: 0 clean stop, 1 startup failure, 2 bad command line.\n";
  return out.str();
}

}  // namespace

std::string version_text() {
  return std::string("smtpguardd ") + SMTPGUARD_VERSION + "\n";
}

Expected<uint64_t, std::string> parse_number(std::string_view text, uint64_t min, uint64_t max) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v, 10);
  std::string range = std::to_string(min) + "-" + std::to_string(max);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size())
    return unexpected("expected a number " + range + ", got " + quoted(text));
  if (v < min || v > max)
    return unexpected("expected a number " + range + ", got " + std::string(text));
  return v;
}

Expected<QueueRange, std::string> parse_queue_range(std::string_view text) {
  const std::string allowed = "expected a queue number N or a range A-B (0-65535, at most " +
                              std::to_string(kMaxQueues) + " queues), got " + quoted(text);
  size_t dash = text.find('-');
  auto first = parse_number(text.substr(0, dash), 0, 65535);
  if (!first) return unexpected(allowed);
  auto last =
      dash == std::string_view::npos ? first : parse_number(text.substr(dash + 1), 0, 65535);
  if (!last) return unexpected(allowed);
  if (*last < *first) return unexpected(allowed + " (A must not exceed B)");
  QueueRange r{static_cast<uint16_t>(*first), static_cast<uint16_t>(*last)};
  if (r.count() > kMaxQueues) return unexpected(allowed);
  return r;
}

Expected<std::vector<nft::Hook>, std::string> parse_hooks(std::string_view text) {
  const std::string allowed =
      "expected a comma-separated list of forward, input, output, got " + quoted(text);
  std::vector<nft::Hook> hooks;
  size_t pos = 0;
  for (int i = 0; i < 8 && pos <= text.size(); ++i) {
    size_t comma = text.find(',', pos);
    std::string_view item = text.substr(pos, comma == std::string_view::npos ? comma : comma - pos);
    std::optional<nft::Hook> hook;
    for (nft::Hook h : {nft::Hook::kForward, nft::Hook::kInput, nft::Hook::kOutput})
      if (item == nft::hook_name(h)) hook = h;
    if (!hook) return unexpected(allowed);
    if (std::find(hooks.begin(), hooks.end(), *hook) != hooks.end())
      return unexpected(allowed + " (" + std::string(item) + " listed twice)");
    hooks.push_back(*hook);
    if (comma == std::string_view::npos) return hooks;
    pos = comma + 1;
  }
  return unexpected(allowed);
}

Expected<uint32_t, std::string> parse_done_mark(std::string_view text) {
  const std::string allowed = "expected a mark with exactly one bit set, e.g. " +
                              hex(kDefaultDoneMark) + ", got " + quoted(text);
  std::optional<uint32_t> v = parse_u32(text);
  if (!v || *v == 0 || (*v & (*v - 1)) != 0) return unexpected(allowed);
  return *v;
}

Expected<uint32_t, std::string> parse_inject_mark(std::string_view text) {
  std::optional<uint32_t> v = parse_u32(text);
  if (!v || *v == 0) {
    return unexpected("expected a non-zero 32-bit mark, e.g. " + hex(kDefaultInjectMark) +
                      ", got " + quoted(text));
  }
  return *v;
}

Expected<std::vector<smtp::EhloKeyword>, std::string> parse_keyword_list(std::string_view text) {
  auto items = split_list(text);
  if (!items) {
    return unexpected("expected a comma-separated list of EHLO keywords, e.g. AUTH,CHUNKING, got " +
                      quoted(text));
  }
  std::vector<smtp::EhloKeyword> out;
  for (std::string_view item : *items) {
    const smtp::EhloKeyword k = smtp::parse_ehlo_keyword(item);
    if (k == smtp::EhloKeyword::kUnknown) return unexpected("unknown EHLO keyword " + quoted(item));
    out.push_back(k);
  }
  return out;
}

Expected<std::vector<smtp::Verb>, std::string> parse_verb_list(std::string_view text) {
  auto items = split_list(text);
  if (!items) {
    return unexpected("expected a comma-separated list of SMTP verbs, e.g. VRFY,EXPN, got " +
                      quoted(text));
  }
  std::vector<smtp::Verb> out;
  for (std::string_view item : *items) {
    const smtp::Verb v = smtp::parse_verb(item);
    if (v == smtp::Verb::kUnknown) return unexpected("unknown SMTP verb " + quoted(item));
    out.push_back(v);
  }
  return out;
}

Expected<std::string, std::string> parse_answer_reply(std::string_view text) {
  const std::string allowed =
      "expected a reply code 4xy or 5xy, a space and printable ASCII text, at most " +
      std::to_string(kMaxAnswerReply) + " characters (no CRLF), e.g. '550 5.7.1 Command " +
      "blocked by policy'";
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (text.size() < 4 || (text[0] != '4' && text[0] != '5') || !digit(text[1]) || !digit(text[2]) ||
      text[3] != ' ') {
    return unexpected(allowed + ", got " + quoted(text));
  }
  if (text.size() > kMaxAnswerReply) {
    return unexpected(allowed + ", got " + std::to_string(text.size()) + " characters");
  }
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c > 0x7e) {
      return unexpected(allowed + ", got a byte 0x" + hex(c).substr(2) + " at position " +
                        std::to_string(i));
    }
  }
  return std::string(text);
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
  add("strip-keyword", join(o.strip_keywords));
  add("answer-verb", join(o.answer_verbs));
  add("reset-verb", join(o.reset_verbs));
  if (o.answer_reply) add("answer-reply", quoted(*o.answer_reply));
  return out;
}

CommandLine parse_command_line(int argc, const char* const argv[]) {
  Options o;
  po::options_description desc("Options");
  // Every value is taken as text and validated here, so that each error names the option and
  // says what it accepts.
  desc.add_options()("queues", po::value<std::string>()->value_name("N|A-B"),
                     "NFQUEUE number(s), one worker thread each (default 0)")(
      "profile", po::value<std::string>()->value_name("NAME"),
      ("policy profile: " + profile_list() + " (default modern)").c_str())(
      "install-rules", po::bool_switch(), "install the nftables rules on start, remove on exit")(
      "hooks", po::value<std::string>()->value_name("LIST"),
      "with --install-rules: forward,input,output (default forward)")(
      "port", po::value<std::string>()->value_name("PORT"), "SMTP port (default 25)")(
      "fail-open", po::bool_switch(),
      "accept instead of drop when a queue is full or (with --install-rules) no daemon listens")(
      "queue-maxlen", po::value<std::string>()->value_name("N"),
      "packets each kernel queue may hold (default 4096)")(
      "max-flows", po::value<std::string>()->value_name("N"),
      "connections tracked per worker (default 65536)")(
      "hold-timeout-ms", po::value<std::string>()->value_name("MS"),
      "longest a partial line is held before it is neutralised (default 2000)")(
      "done-mark", po::value<std::string>()->value_name("BIT"),
      "packet/conntrack mark bit for flows that bypass inspection (default 0x100000)")(
      "inject-mark", po::value<std::string>()->value_name("MARK"),
      "mark of the packets the daemon sends itself (answers, resets), which the queue rules "
      "let pass; non-zero, no bit in common with --done-mark (default 0x200000)")(
      "strip-keyword", po::value<std::vector<std::string>>()->value_name("LIST"),
      "EHLO keywords whose line is removed from the EHLO reply, comma-separated (e.g. "
      "AUTH,CHUNKING); may be repeated")(
      "answer-verb", po::value<std::vector<std::string>>()->value_name("LIST"),
      "verbs the gateway removes and answers itself with --answer-reply, comma-separated (e.g. "
      "VRFY,EXPN); may be repeated")(
      "reset-verb", po::value<std::vector<std::string>>()->value_name("LIST"),
      "verbs that reset the connection both ways, comma-separated; may be repeated")(
      "answer-reply", po::value<std::string>()->value_name("TEXT"),
      "the reply to answered commands, without CRLF: 4xy or 5xy, a space, printable ASCII, at "
      "most 510 characters (default from the profile: '550 5.7.1 Command blocked by policy')")(
      "stats-interval", po::value<std::string>()->value_name("S"),
      "print counters to stderr every S seconds (default 0: off)")(
      "no-conntrack-tuning", po::bool_switch(),
      "leave conntrack alone: by default the conntrack entry of each connection whose lengths "
      "the daemon changes is made liberal (no TCP window checks), because conntrack judges the "
      "endpoints' acks against the stream before the rewrite and would mark them invalid")(
      "verbose", po::bool_switch(), "log more")("version", "print the version and exit")(
      "help", "print this help and exit");

  CommandLine result;
  auto fail = [&](const std::string& option, const std::string& why) {
    result.options.reset();
    result.exit_code = 2;
    result.text = "smtpguardd: --" + option + ": " + why + "\nTry 'smtpguardd --help'.\n";
    return result;
  };

  po::variables_map vm;
  try {
    // No positional arguments: a stray word is an error, not silently ignored.
    po::positional_options_description none;
    po::store(po::command_line_parser(argc, argv).options(desc).positional(none).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    result.exit_code = 2;
    result.text = std::string("smtpguardd: ") + e.what() + "\nTry 'smtpguardd --help'.\n";
    return result;
  }
  if (vm.count("help")) {
    result.text = usage(desc);
    return result;
  }
  if (vm.count("version")) {
    result.text = version_text();
    return result;
  }

  if (auto v = given(vm, "queues")) {
    auto r = parse_queue_range(*v);
    if (!r) return fail("queues", r.error());
    o.queues = *r;
  }
  if (auto v = given(vm, "profile")) {
    if (!policy::builtin_profile(*v))
      return fail("profile", "expected one of " + profile_list() + ", got " + quoted(*v));
    o.profile = *v;
  }
  if (auto v = given(vm, "hooks")) {
    auto r = parse_hooks(*v);
    if (!r) return fail("hooks", r.error());
    o.hooks = *r;
  }
  if (auto v = given(vm, "port")) {
    auto r = parse_number(*v, 1, 65535);
    if (!r) return fail("port", r.error());
    o.port = static_cast<uint16_t>(*r);
  }
  if (auto v = given(vm, "queue-maxlen")) {
    // The kernel takes any u32, but the socket buffer is sized from it (queue.cpp).
    auto r = parse_number(*v, 1, 1u << 20);
    if (!r) return fail("queue-maxlen", r.error());
    o.queue_maxlen = static_cast<uint32_t>(*r);
  }
  if (auto v = given(vm, "max-flows")) {
    auto r = parse_number(*v, 1, 1u << 24);
    if (!r) return fail("max-flows", r.error());
    o.max_flows = static_cast<size_t>(*r);
  }
  if (auto v = given(vm, "hold-timeout-ms")) {
    // Below 10 ms a Nagle-delayed line end would be cut; above a minute a held segment outlives
    // the sender's retransmission timer many times over.
    auto r = parse_number(*v, 10, 60000);
    if (!r) return fail("hold-timeout-ms", r.error());
    o.hold_timeout_ms = static_cast<uint32_t>(*r);
  }
  if (auto v = given(vm, "done-mark")) {
    auto r = parse_done_mark(*v);
    if (!r) return fail("done-mark", r.error());
    o.done_mark = *r;
  }
  if (auto v = given(vm, "inject-mark")) {
    auto r = parse_inject_mark(*v);
    if (!r) return fail("inject-mark", r.error());
    o.inject_mark = *r;
  }
  // The rules test the two marks independently: a shared bit would let a finished flow's
  // packets pass as injected ones, or make the daemon's own packets count as finished.
  if (const uint32_t shared = o.inject_mark & o.done_mark; shared != 0) {
    return fail("inject-mark", "the inject mark " + hex(o.inject_mark) + " and the done mark " +
                                   hex(o.done_mark) + " (--done-mark) share bits " + hex(shared) +
                                   "; they must have no bit in common");
  }

  for (const std::string& v : given_all(vm, "strip-keyword")) {
    auto r = parse_keyword_list(v);
    if (!r) return fail("strip-keyword", r.error());
    for (smtp::EhloKeyword k : *r) {
      auto& list = o.overrides.strip_keywords;
      if (std::find(list.begin(), list.end(), k) != list.end())
        return fail("strip-keyword", std::string(smtp::to_string(k)) + " is named twice");
      list.push_back(k);
    }
  }
  // A verb has one action: naming it twice, in one list or in both, is an error rather than a
  // silent choice of the last one.
  for (const char* option : {"answer-verb", "reset-verb"}) {
    for (const std::string& v : given_all(vm, option)) {
      auto r = parse_verb_list(v);
      if (!r) return fail(option, r.error());
      for (smtp::Verb verb : *r) {
        auto& answer = o.overrides.answer_verbs;
        auto& reset = o.overrides.reset_verbs;
        const bool is_answer = std::string_view(option) == "answer-verb";
        auto& mine = is_answer ? answer : reset;
        const auto& other = is_answer ? reset : answer;
        const std::string name(smtp::to_string(verb));
        if (std::find(mine.begin(), mine.end(), verb) != mine.end())
          return fail(option, name + " is named twice");
        if (std::find(other.begin(), other.end(), verb) != other.end())
          return fail(option, name + " is named in both --answer-verb and --reset-verb");
        mine.push_back(verb);
      }
    }
  }
  if (auto v = given(vm, "answer-reply")) {
    auto r = parse_answer_reply(*v);
    if (!r) return fail("answer-reply", r.error());
    o.overrides.answer_reply = *r;
  }

  if (auto v = given(vm, "stats-interval")) {
    auto r = parse_number(*v, 0, 86400);
    if (!r) return fail("stats-interval", r.error());
    o.stats_interval_s = static_cast<uint32_t>(*r);
  }
  o.install_rules = vm["install-rules"].as<bool>();
  o.fail_open = vm["fail-open"].as<bool>();
  o.conntrack_tuning = !vm["no-conntrack-tuning"].as<bool>();
  o.verbose = vm["verbose"].as<bool>();
  result.options = std::move(o);
  return result;
}

}  // namespace sg::daemon

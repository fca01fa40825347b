#include "config/option_values.hpp"
#include "util/ascii.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <iterator>
#include <optional>

namespace sg::config {
namespace {

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

template <class Item>
std::string vocabulary(size_t count) {
  std::string out;
  for (size_t i = 0; i < count; ++i) {
    if (!out.empty()) out += ", ";
    out += smtp::to_string(static_cast<Item>(i));
  }
  return out;
}

template <class Item>
std::vector<std::string> vocabulary_list(size_t count) {
  std::vector<std::string> out;
  for (size_t i = 0; i < count; ++i) out.emplace_back(smtp::to_string(static_cast<Item>(i)));
  return out;
}

// "unknown SMTP verb 'VRFYY', did you mean 'VRFY'?"
BadValue unknown_name(const char* what, std::string_view item, const std::vector<std::string>& all,
                      std::string allowed) {
  std::string problem = std::string("unknown ") + what + " " + quoted(item);
  if (std::string near = closest_name(item, all); !near.empty())
    problem += ", did you mean " + quoted(near) + "?";
  return BadValue{std::move(problem), std::move(allowed)};
}

}  // namespace

std::string hex(uint32_t v) {
  char buf[16];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v, 16);
  (void)ec;
  return "0x" + std::string(buf, end);
}

std::string verb_names() {
  return vocabulary<smtp::Verb>(smtp::kVerbCount);
}

std::string keyword_names() {
  return vocabulary<smtp::EhloKeyword>(smtp::kEhloKeywordCount);
}

std::string_view trim_blanks(std::string_view s) {
  while (!s.empty() && is_sp_or_htab(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_sp_or_htab(s.back())) s.remove_suffix(1);
  return s;
}

Expected<std::vector<std::string_view>, BadValue> split_list(std::string_view text,
                                                             std::string_view allowed) {
  std::vector<std::string_view> items;
  // Each round consumes at least one character and a comma, or ends.
  for (size_t pos = 0; pos <= text.size();) {
    const size_t comma = text.find(',', pos);
    const std::string_view item =
        trim_blanks(text.substr(pos, comma == std::string_view::npos ? comma : comma - pos));
    if (item.empty()) break;
    items.push_back(item);
    if (comma == std::string_view::npos) return items;
    pos = comma + 1;
  }
  return unexpected(BadValue{got(text), std::string(allowed)});
}

Expected<uint64_t, BadValue> parse_number(std::string_view text, uint64_t min, uint64_t max) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v, 10);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || v < min || v > max) {
    return unexpected(
        BadValue{got(text), "a number " + std::to_string(min) + "-" + std::to_string(max)});
  }
  return v;
}

Expected<bool, BadValue> parse_bool(std::string_view text) {
  for (std::string_view yes : {"true", "yes", "on", "1"})
    if (text == yes) return true;
  for (std::string_view no : {"false", "no", "off", "0"})
    if (text == no) return false;
  return unexpected(BadValue{got(text), "true or false, also yes/no, on/off, 1/0"});
}

Expected<QueueRange, BadValue> parse_queue_range(std::string_view text) {
  const BadValue bad{got(text), "a queue number N or a range A-B with A <= B, 0-65535, at most " +
                                    std::to_string(kMaxQueues) + " queues"};
  size_t dash = text.find('-');
  auto first = parse_number(text.substr(0, dash), 0, 65535);
  if (!first) return unexpected(bad);
  auto last =
      dash == std::string_view::npos ? first : parse_number(text.substr(dash + 1), 0, 65535);
  if (!last || *last < *first) return unexpected(bad);
  QueueRange r{static_cast<uint16_t>(*first), static_cast<uint16_t>(*last)};
  if (r.count() > kMaxQueues) return unexpected(bad);
  return r;
}

Expected<QueueSpec, BadValue> parse_queues(std::string_view text) {
  if (text == "auto") return QueueSpec{};
  auto range = parse_queue_range(text);
  if (!range) {
    return unexpected(BadValue{range.error().problem, "auto, or " + range.error().allowed});
  }
  return QueueSpec{false, *range};
}

Expected<std::vector<uint16_t>, BadValue> parse_cpu_list(std::string_view text) {
  const std::string allowed = "a comma-separated list of CPU numbers and ranges A-B (A <= B), 0-" +
                              std::to_string(kMaxCpus - 1) + ", e.g. 0-3,6";
  auto items = split_list(text, allowed);
  if (!items) return unexpected(items.error());
  std::vector<uint16_t> cpus;
  for (std::string_view item : *items) {
    const size_t dash = item.find('-');
    auto first = parse_number(trim_blanks(item.substr(0, dash)), 0, kMaxCpus - 1);
    auto last = dash == std::string_view::npos
                    ? first
                    : parse_number(trim_blanks(item.substr(dash + 1)), 0, kMaxCpus - 1);
    if (!first || !last || *last < *first) return unexpected(BadValue{got(item), allowed});
    for (uint64_t cpu = *first; cpu <= *last; ++cpu) {
      if (std::find(cpus.begin(), cpus.end(), cpu) != cpus.end()) {
        return unexpected(
            BadValue{"CPU " + std::to_string(cpu) + " is listed twice", "each CPU once"});
      }
      cpus.push_back(static_cast<uint16_t>(cpu));
    }
  }
  return cpus;
}

std::string cpu_list_text(const std::vector<uint16_t>& cpus) {
  std::string out;
  for (size_t i = 0; i < cpus.size();) {
    size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    out += (out.empty() ? "" : ",") + std::to_string(cpus[i]);
    if (j > i) out += "-" + std::to_string(cpus[j]);
    i = j + 1;
  }
  return out;
}

Expected<std::vector<Hook>, BadValue> parse_hooks(std::string_view text) {
  const std::string allowed = "a comma-separated list of forward, input, output";
  std::vector<Hook> hooks;
  size_t pos = 0;
  for (int i = 0; i < 8 && pos <= text.size(); ++i) {
    size_t comma = text.find(',', pos);
    std::string_view item = text.substr(pos, comma == std::string_view::npos ? comma : comma - pos);
    std::optional<Hook> hook;
    for (Hook h : kHooks)
      if (item == hook_name(h)) hook = h;
    if (!hook) return unexpected(BadValue{got(text), allowed});
    if (std::find(hooks.begin(), hooks.end(), *hook) != hooks.end())
      return unexpected(BadValue{std::string(item) + " is listed twice", allowed});
    hooks.push_back(*hook);
    if (comma == std::string_view::npos) return hooks;
    pos = comma + 1;
  }
  return unexpected(BadValue{got(text), allowed});
}

Expected<uint32_t, BadValue> parse_done_mark(std::string_view text) {
  std::optional<uint32_t> v = parse_u32(text);
  if (!v || *v == 0 || (*v & (*v - 1)) != 0) {
    return unexpected(
        BadValue{got(text), "a mark with exactly one bit set, e.g. " + hex(kDefaultDoneMark)});
  }
  return *v;
}

Expected<uint32_t, BadValue> parse_inject_mark(std::string_view text) {
  std::optional<uint32_t> v = parse_u32(text);
  if (!v || *v == 0)
    return unexpected(
        BadValue{got(text), "a non-zero 32-bit mark, e.g. " + hex(kDefaultInjectMark)});
  return *v;
}

Expected<uint32_t, BadValue> parse_mapped_mark(std::string_view text) {
  std::optional<uint32_t> v = parse_u32(text);
  if (!v || (*v & (*v - 1)) != 0) {
    return unexpected(BadValue{got(text), "a mark with exactly one bit set, e.g. " +
                                              hex(kDefaultMappedMark) + ", or 0 (off)"});
  }
  return *v;
}

Expected<std::vector<smtp::EhloKeyword>, BadValue> parse_keyword_list(std::string_view text) {
  auto items = split_list(text, "a comma-separated list of EHLO keywords, e.g. AUTH,CHUNKING");
  if (!items) return unexpected(items.error());
  std::vector<smtp::EhloKeyword> out;
  for (std::string_view item : *items) {
    const smtp::EhloKeyword k = smtp::parse_ehlo_keyword(item);
    if (k == smtp::EhloKeyword::kUnknown) {
      return unexpected(unknown_name("EHLO keyword", item,
                                     vocabulary_list<smtp::EhloKeyword>(smtp::kEhloKeywordCount),
                                     keyword_names()));
    }
    out.push_back(k);
  }
  return out;
}

Expected<std::vector<smtp::Verb>, BadValue> parse_verb_list(std::string_view text) {
  auto items = split_list(text, "a comma-separated list of SMTP verbs, e.g. VRFY,EXPN");
  if (!items) return unexpected(items.error());
  std::vector<smtp::Verb> out;
  for (std::string_view item : *items) {
    const smtp::Verb v = smtp::parse_verb(item);
    if (v == smtp::Verb::kUnknown) {
      return unexpected(unknown_name("SMTP verb", item,
                                     vocabulary_list<smtp::Verb>(smtp::kVerbCount), verb_names()));
    }
    out.push_back(v);
  }
  return out;
}

Expected<std::string, BadValue> parse_answer_reply(std::string_view text) {
  const std::string allowed =
      "a reply code 4xy or 5xy, a space and printable ASCII text, at most " +
      std::to_string(kMaxAnswerReply) + " characters, e.g. '550 5.7.1 Command blocked by policy'";
  if (text.size() < 4 || (text[0] != '4' && text[0] != '5') || !is_digit(text[1]) ||
      !is_digit(text[2]) || text[3] != ' ') {
    return unexpected(BadValue{got(text), allowed});
  }
  if (text.size() > kMaxAnswerReply)
    return unexpected(BadValue{"got " + std::to_string(text.size()) + " characters", allowed});
  for (size_t i = 0; i < text.size(); ++i) {
    if (!is_printable(text[i])) {
      const auto c = static_cast<unsigned char>(text[i]);
      return unexpected(
          BadValue{"got a byte " + hex(c) + " at position " + std::to_string(i), allowed});
    }
  }
  return std::string(text);
}

Expected<std::string, BadValue> parse_absolute_path(std::string_view text, size_t max_len) {
  const bool printable = std::all_of(text.begin(), text.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u >= 0x20 && u != 0x7f;
  });
  if (text.empty() || text.front() != '/' || text.back() == '/' || !printable ||
      text.size() > max_len) {
    return unexpected(BadValue{
        got(text), "an absolute path to a file, at most " + std::to_string(max_len) + " bytes"});
  }
  return std::string(text);
}

Expected<std::string, BadValue> check_listen_address(std::string_view text) {
  const BadValue bad{got(text),
                     "ADDRESS:PORT with a numeric IPv4 address or an IPv6 address in brackets, "
                     "not the wildcard, and a port 1-65535, e.g. 127.0.0.1:9125 or [::1]:9125"};
  std::string address;
  std::string_view port;
  bool ipv6 = false;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find("]:");
    if (close == std::string_view::npos) return unexpected(bad);
    address = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
    ipv6 = true;
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return unexpected(bad);
    address = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
  }
  unsigned char bytes[16] = {};
  if (inet_pton(ipv6 ? AF_INET6 : AF_INET, address.c_str(), bytes) != 1) return unexpected(bad);
  // The wildcard would serve the counters to every network.
  if (std::all_of(std::begin(bytes), std::end(bytes), [](unsigned char b) { return b == 0; }))
    return unexpected(bad);
  if (!parse_number(port, 1, 65535)) return unexpected(bad);
  return std::string(text);
}

}  // namespace sg::config

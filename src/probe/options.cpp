#include "probe/options.hpp"

#include <algorithm>
#include <boost/program_options.hpp>
#include <charconv>
#include <cmath>
#include <sstream>

#include "util/ascii.hpp"
#include "util/version.hpp"

namespace sg::probe {
namespace po = boost::program_options;
namespace {

constexpr std::string_view kUsage =
    "Usage: smtpguard-probe [OPTIONS] HOST[:PORT]\n"
    "\n"
    "Finds SMTP inspection (Cisco PIX Mailguard, ASA inspect esmtp, smtpguard) between this\n"
    "host and a mail server, the way mail admins do by hand, and says what it breaks.\n"
    "It reads the banner, sends EHLO (HELO if refused), 'goodmorning', NOOP, STARTTLS when\n"
    "offered (and does the TLS handshake), RSET and QUIT. It never sends a message.\n"
    "\n"
    "HOST is a name, an IPv4 address or an IPv6 address ([2001:db8::1]:25 with a port).\n"
    "\n"
    "Exit status: 0 no inspection seen, 1 inspection found, 2 could not probe.\n"
    "\n";

bool valid_port(std::string_view s, uint16_t& out) {
  unsigned v = 0;
  if (s.empty() || s.size() > 5) return false;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v == 0 || v > 65535) return false;
  out = static_cast<uint16_t>(v);
  return true;
}

bool valid_host(std::string_view h) {
  if (h.empty() || h.size() > 253) return false;
  for (char c : h) {
    const bool ok = is_alnum(c) || c == '.' || c == '-' || c == '_' || c == ':' || c == '%';
    if (!ok) return false;
  }
  return true;
}

// Printable ASCII without spaces and without the characters that would end or bracket the
// argument of an SMTP command.
bool valid_token(std::string_view s, size_t max) {
  if (s.size() > max) return false;
  for (char c : s)
    if (!is_vchar(c) || c == '<' || c == '>') return false;
  return true;
}

std::string quoted(std::string_view s) {
  return "'" + std::string(s) + "'";
}

std::optional<std::string> given(const po::variables_map& vm, const char* name) {
  if (!vm.count(name)) return std::nullopt;
  return vm[name].as<std::string>();
}

}  // namespace

std::string_view probe_version() {
  return kVersion;
}

Expected<Target, std::string> parse_target(std::string_view text, uint16_t default_port) {
  Target t;
  t.port = default_port;
  std::string_view host = text;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return unexpected("missing ']' in " + quoted(text));
    host = text.substr(1, close - 1);
    const std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':' || !valid_port(rest.substr(1), t.port))
        return unexpected("bad port in " + quoted(text) + " (expected [ADDRESS]:1-65535)");
    }
  } else if (std::count(text.begin(), text.end(), ':') == 1) {
    const size_t colon = text.find(':');
    host = text.substr(0, colon);
    if (!valid_port(text.substr(colon + 1), t.port))
      return unexpected("bad port in " + quoted(text) + " (expected HOST:1-65535)");
  }
  if (!valid_host(host))
    return unexpected("bad host " + quoted(host) + " (expected a name or an IP address)");
  t.host = std::string(host);
  return t;
}

CommandLine parse_command_line(int argc, const char* const argv[]) {
  po::options_description desc("Options");
  desc.add_options()("port", po::value<std::string>()->value_name("PORT"),
                     "port when HOST names none (default 25)")(
      "timeout", po::value<std::string>()->value_name("S"),
      "seconds each step may take: connecting, each reply, the TLS handshake (default 10)")(
      "direct", po::value<std::string>()->value_name("HOST[:PORT]"),
      "the same server reached without the device in between (e.g. from inside, or another "
      "port): the same dialogue there tells exactly what the path changes")(
      "json", po::bool_switch(), "print the report as JSON (src/probe/report.schema.json)")(
      "auth-check", po::bool_switch(),
      "also send 'AUTH PLAIN' (or the offered mechanism) without credentials, then '*'")(
      "mail-from", po::value<std::string>()->value_name("ADDR"),
      "also send MAIL FROM:<ADDR> ('' for the null sender), RCPT TO with --rcpt-to, then RSET; "
      "never DATA")("rcpt-to", po::value<std::string>()->value_name("ADDR"),
                    "the RCPT TO address of that transaction")(
      "helo-name", po::value<std::string>()->value_name("NAME"),
      "the name to greet with (default: this host's name when it has a dot, else "
      "smtpguard-probe.invalid)")(
      "deep", po::bool_switch(),
      "also send XEXCH50 and X-LINK2STATE without arguments (Exchange verbs that inspecting "
      "devices block; not polite towards servers that are not yours)")("no-tls", po::bool_switch(),
                                                                       "never send STARTTLS")(
      "ipv4,4", po::bool_switch(), "connect over IPv4 only")("ipv6,6", po::bool_switch(),
                                                             "connect over IPv6 only")(
      "no-transcript", po::bool_switch(), "leave the dialogues out of the text report")(
      "version", "print the version and exit")("help", "print this help and exit");
  po::options_description hidden;
  hidden.add_options()("target", po::value<std::vector<std::string>>());
  po::options_description all;
  all.add(desc).add(hidden);
  po::positional_options_description positional;
  positional.add("target", -1);

  CommandLine result;
  auto fail = [&](const std::string& why) {
    result.options.reset();
    result.exit_code = 2;
    result.text = "smtpguard-probe: " + why + "\nTry 'smtpguard-probe --help'.\n";
    return result;
  };
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    return fail(e.what());
  }
  if (vm.count("help")) {
    std::ostringstream s;
    s << kUsage << desc;
    result.text = s.str();
    return result;
  }
  if (vm.count("version")) {
    result.text = "smtpguard-probe " + std::string(probe_version()) + "\n";
    return result;
  }

  Options o;
  uint16_t port = 25;
  if (auto v = given(vm, "port"))
    if (!valid_port(*v, port)) return fail("--port: expected 1-65535, got " + quoted(*v));
  const auto targets =
      vm.count("target") ? vm["target"].as<std::vector<std::string>>() : std::vector<std::string>{};
  if (targets.size() != 1)
    return fail(targets.empty() ? "which server? (HOST[:PORT])" : "one HOST[:PORT] only");
  auto target = parse_target(targets.front(), port);
  if (!target) return fail(target.error());
  o.target = *target;
  if (auto v = given(vm, "direct")) {
    auto d = parse_target(*v, port);
    if (!d) return fail("--direct: " + d.error());
    o.direct = *d;
  }
  if (auto v = given(vm, "timeout")) {
    double s = 0;
    const auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), s);
    if (ec != std::errc() || p != v->data() + v->size() || !(s >= 0.1 && s <= 600))
      return fail("--timeout: expected seconds between 0.1 and 600, got " + quoted(*v));
    o.sequence.step_timeout = std::chrono::milliseconds(std::lround(s * 1000));
  }
  if (auto v = given(vm, "helo-name")) {
    if (v->empty() || !valid_token(*v, 255))
      return fail("--helo-name: expected a host name without spaces, got " + quoted(*v));
    o.sequence.helo_name = *v;
    o.helo_name_given = true;
  }
  if (auto v = given(vm, "mail-from")) {
    if (!valid_token(*v, 320))
      return fail("--mail-from: expected an address without spaces or <>, got " + quoted(*v));
    o.sequence.mail_from = *v;
  }
  if (auto v = given(vm, "rcpt-to")) {
    if (v->empty() || !valid_token(*v, 320))
      return fail("--rcpt-to: expected an address without spaces or <>, got " + quoted(*v));
    o.sequence.rcpt_to = *v;
  }
  const bool v4 = vm["ipv4"].as<bool>(), v6 = vm["ipv6"].as<bool>();
  if (v4 && v6) return fail("-4 and -6 exclude each other");
  o.sequence.family = v4 ? Family::kIpv4 : v6 ? Family::kIpv6 : Family::kAny;
  o.sequence.auth_check = vm["auth-check"].as<bool>();
  o.sequence.deep = vm["deep"].as<bool>();
  o.sequence.starttls = !vm["no-tls"].as<bool>();
  o.json = vm["json"].as<bool>();
  o.transcripts = !vm["no-transcript"].as<bool>();
  result.options = o;
  return result;
}

}  // namespace sg::probe

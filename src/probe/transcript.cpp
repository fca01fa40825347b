#include "probe/transcript.hpp"

#include <array>

#include "probe/reply_parser.hpp"
#include "util/ascii.hpp"

namespace sg::probe {
namespace {

constexpr std::array kStepNames{
#define SG_X(name, text, comment) std::string_view(text),
    SG_PROBE_STEPS(SG_X)
#undef SG_X
};

constexpr std::array<std::string_view, 4> kStatusNames{"ok", "timeout", "closed", "error"};

std::string first_token_upper(std::string_view line) {
  std::string out;
  for (char c : line) {
    if (is_sp_or_htab(c)) break;
    out += to_upper(c);
  }
  return out;
}

// Bytes a terminal would not show as they are become \xNN: servers may send anything.
std::string printable(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (is_printable(static_cast<char>(c))) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

std::string_view trim_left(std::string_view s) {
  while (!s.empty() && is_sp_or_htab(s.front())) s.remove_prefix(1);
  return s;
}

std::pair<std::string_view, std::string_view> split_word(std::string_view s) {
  s = trim_left(s);
  const size_t sp = s.find(' ');
  if (sp == std::string_view::npos) return {s, {}};
  return {s.substr(0, sp), trim_left(s.substr(sp + 1))};
}

}  // namespace

std::string_view to_string(Step s) {
  return kStepNames[static_cast<size_t>(s)];
}

std::optional<Step> parse_step(std::string_view name) {
  for (size_t i = 0; i < kStepNames.size(); ++i)
    if (kStepNames[i] == name) return static_cast<Step>(i);
  return std::nullopt;
}

std::string_view to_string(StepStatus s) {
  return kStatusNames[static_cast<size_t>(s)];
}

std::optional<StepStatus> parse_step_status(std::string_view name) {
  for (size_t i = 0; i < kStatusNames.size(); ++i)
    if (kStatusNames[i] == name) return static_cast<StepStatus>(i);
  return std::nullopt;
}

std::string Reply::text() const {
  std::string out;
  for (const std::string& l : lines) {
    if (!out.empty()) out += ' ';
    if (reply_code(l) == 0)
      out += l;
    else if (l.size() > 3 && (l[3] == ' ' || l[3] == '-'))
      out += l.substr(4);
    else
      out += l.substr(3);  // "220****": a PIX leaves no separator
  }
  return out;
}

const Exchange* Transcript::find(Step s) const {
  for (const Exchange& e : exchanges)
    if (e.step == s) return &e;
  return nullptr;
}

const Reply* Transcript::reply(Step s) const {
  const Exchange* e = find(s);
  return e && e->reply ? &*e->reply : nullptr;
}

Step step_of_command(std::string_view line, bool after_tls) {
  const std::string verb = first_token_upper(line);
  if (verb == "EHLO") return after_tls ? Step::kEhloTls : Step::kEhlo;
  if (verb == "HELO") return Step::kHelo;
  if (verb == "NOOP") return Step::kNoop;
  if (verb == "RSET") return Step::kRset;
  if (verb == "QUIT") return Step::kQuit;
  if (verb == "STARTTLS") return Step::kStarttls;
  if (verb == "AUTH") return Step::kAuth;
  if (verb == "*") return Step::kAuthCancel;
  if (verb == "MAIL") return Step::kMail;
  if (verb == "RCPT") return Step::kRcpt;
  if (verb == "XEXCH50" || verb == "X-LINK2STATE") return Step::kDeepVerb;
  return Step::kUnknownVerb;
}

std::string format_transcript(const Transcript& t, std::string_view prefix) {
  std::string out;
  auto line = [&](std::string_view tag, std::string_view text) {
    out.append(prefix);
    out.append(tag);
    out += printable(text);
    out += '\n';
  };
  for (const Exchange& e : t.exchanges) {
    if (e.step == Step::kTlsHandshake) {
      if (e.status == StepStatus::kOk && t.tls && t.tls->ok)
        line("T: ", "ok " + t.tls->protocol + " " + t.tls->cipher);
      else
        line("T: ", "failed " + e.error);
      continue;
    }
    if (!e.sent.empty()) line("C: ", e.sent);
    if (e.reply)
      for (const std::string& l : e.reply->lines) line("S: ", l);
    if (e.status != StepStatus::kOk)
      line("!: ",
           std::string(to_string(e.status)) + " " + std::string(to_string(e.step)) + " " + e.error);
  }
  return out;
}

Expected<Transcript, std::string> parse_transcript(std::string_view text) {
  Transcript t;
  bool after_tls = false;
  // The exchange still waiting for (more of) its reply, if any.
  Exchange* open = nullptr;
  auto fail = [](size_t n, const std::string& why) {
    return unexpected("line " + std::to_string(n) + ": " + why);
  };
  size_t n = 0;
  while (!text.empty()) {
    ++n;
    const size_t lf = text.find('\n');
    std::string_view l = trim_left(text.substr(0, lf));
    text.remove_prefix(lf == std::string_view::npos ? text.size() : lf + 1);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    if (l.empty() || l.front() == '#') continue;
    if (l.size() < 3 || l[1] != ':' || l[2] != ' ') return fail(n, "expected 'S: ', 'C: ', ...");
    const char tag = l[0];
    const std::string_view body = l.substr(3);
    if (tag == 'S') {
      if (!open) {
        if (!t.exchanges.empty()) return fail(n, "a reply line nothing asked for");
        t.exchanges.push_back(Exchange{});  // the banner
        open = &t.exchanges.back();
      }
      if (!open->reply) open->reply = Reply{0, {}, false};
      if (open->reply->lines.empty()) open->reply->code = reply_code(body);
      open->reply->lines.emplace_back(body);
      if (!is_continuation(body)) open = nullptr;
    } else if (tag == 'C') {
      if (open) return fail(n, "a command before the previous reply ended");
      Exchange e;
      e.sent = std::string(body);
      e.step = step_of_command(body, after_tls);
      t.exchanges.push_back(std::move(e));
      open = &t.exchanges.back();
    } else if (tag == 'T') {
      if (open) return fail(n, "a TLS handshake before the previous reply ended");
      const auto [word, rest] = split_word(body);
      Exchange e;
      e.step = Step::kTlsHandshake;
      TlsInfo info;
      if (word == "ok") {
        info.ok = true;
        const auto [protocol, cipher] = split_word(rest);
        info.protocol = std::string(protocol);
        info.cipher = std::string(cipher);
        after_tls = true;
      } else if (word == "failed") {
        info.error = std::string(rest);
        e.status = StepStatus::kError;
        e.error = info.error;
      } else {
        return fail(n, "expected 'T: ok ...' or 'T: failed ...'");
      }
      t.tls = info;
      t.exchanges.push_back(std::move(e));
    } else if (tag == '!') {
      const auto [status_word, rest] = split_word(body);
      const auto [step_word, why] = split_word(rest);
      const auto status = parse_step_status(status_word);
      const auto step = parse_step(step_word);
      if (!status || *status == StepStatus::kOk || !step)
        return fail(n, "expected '!: timeout|closed|error STEP TEXT'");
      if (!open) {
        t.exchanges.push_back(Exchange{});
        t.exchanges.back().step = *step;
        open = &t.exchanges.back();
      }
      open->status = *status;
      open->error = std::string(why);
      open->reply.reset();
      open = nullptr;
    } else {
      return fail(n, std::string("unknown tag '") + tag + "'");
    }
  }
  if (open) return unexpected(std::string("the last reply is incomplete"));
  return t;
}

}  // namespace sg::probe

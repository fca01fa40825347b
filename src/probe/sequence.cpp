#include "probe/sequence.hpp"

#include "probe/ehlo_reply.hpp"
#include "probe/smtp_client.hpp"

namespace sg::probe {
namespace {

StepStatus status_of(const IoResult& r) {
  switch (r.status) {
    case IoStatus::kOk:
      return StepStatus::kOk;
    case IoStatus::kTimeout:
      return StepStatus::kTimeout;
    case IoStatus::kClosed:
      return StepStatus::kClosed;
    case IoStatus::kError:
      return StepStatus::kError;
  }
  return StepStatus::kError;
}

uint32_t millis_since(Clock::time_point t0) {
  return static_cast<uint32_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count());
}

// One session: every step appends one exchange and says whether the dialogue can go on.
class Dialogue {
 public:
  Dialogue(SmtpClient& c, Transcript& t, const SequenceOptions& o) : c_(c), t_(t), o_(o) {}

  bool read_banner() { return exchange(Step::kBanner, ""); }

  // Sends `command` (unless empty) and reads its reply.
  bool exchange(Step step, const std::string& command) {
    Exchange e;
    e.step = step;
    e.sent = command;
    const auto t0 = Clock::now();
    const Deadline deadline = t0 + o_.step_timeout;
    IoResult r = command.empty() ? io_ok() : c_.send_line(command, deadline);
    Reply reply;
    if (r.ok()) r = c_.read_reply(reply, deadline);
    e.elapsed_ms = millis_since(t0);
    e.status = status_of(r);
    if (r.ok()) {
      e.reply = std::move(reply);
    } else {
      e.error = r.status == IoStatus::kTimeout
                    ? "no complete reply within " + std::to_string(o_.step_timeout.count()) + " ms"
                    : r.error;
    }
    t_.exchanges.push_back(std::move(e));
    return r.ok();
  }

  const Reply& last_reply() const { return *t_.exchanges.back().reply; }

  // Bytes that came after the last reply: after 220 to STARTTLS they are nobody's.
  void keep_unread() { t_.after_starttls = c_.take_unread(); }

  bool handshake(const std::string& server_name) {
    Exchange e;
    e.step = Step::kTlsHandshake;
    const auto t0 = Clock::now();
    TlsInfo info;
    IoResult r = c_.start_tls(server_name, t0 + o_.step_timeout, info);
    e.elapsed_ms = millis_since(t0);
    e.status = status_of(r);
    e.error = r.error;
    t_.tls = info;
    t_.exchanges.push_back(std::move(e));
    return r.ok();
  }

 private:
  SmtpClient& c_;
  Transcript& t_;
  const SequenceOptions& o_;
};

bool starttls_worth_sending(const EhloOffer& offer) {
  if (offer.offers("STARTTLS")) return true;
  // XXXXXXXA is how Cisco ASA shows STARTTLS: send it anyway, as a client that remembers the
  // server would, to see what becomes of the command ("500 #5.5.1 command not recognized").
  for (const EhloLine* l : offer.masked())
    if (l->keyword == "XXXXXXXA") return true;
  return false;
}

// The ordered dialogue after the banner; returns when a step fails or after QUIT.
void converse(Dialogue& d, const std::string& host, const SequenceOptions& o) {
  if (!d.exchange(Step::kEhlo, "EHLO " + o.helo_name)) return;
  EhloOffer offer = parse_ehlo(d.last_reply());
  if (!offer.greets) {
    // Refused, or "250 2.0.0 Ok" (a NOOP's answer): greet the old way so the session is valid.
    if (!d.exchange(Step::kHelo, "HELO " + o.helo_name)) return;
  }
  if (!d.exchange(Step::kUnknownVerb, std::string(kUnknownVerb))) return;
  if (!d.exchange(Step::kNoop, "NOOP")) return;
  if (o.deep)
    for (std::string_view verb : kDeepVerbs)
      if (!d.exchange(Step::kDeepVerb, std::string(verb))) return;
  if (o.auth_check) {
    if (!d.exchange(Step::kAuth, "AUTH " + auth_mechanism(offer))) return;
    // 334: the server waits for credentials; "*" cancels (RFC 4954 4), answered 501.
    if (d.last_reply().code == 334 && !d.exchange(Step::kAuthCancel, "*")) return;
  }
  if (o.mail_from || o.rcpt_to) {
    const std::string from = o.mail_from.value_or("");
    if (!d.exchange(Step::kMail, "MAIL FROM:<" + from + ">")) return;
    const bool mail_ok = d.last_reply().klass() == 2;
    if (mail_ok && o.rcpt_to && !d.exchange(Step::kRcpt, "RCPT TO:<" + *o.rcpt_to + ">")) return;
    if (!d.exchange(Step::kRset, "RSET")) return;
  }
  if (o.starttls && offer.greets && starttls_worth_sending(offer)) {
    if (!d.exchange(Step::kStarttls, "STARTTLS")) return;
    if (d.last_reply().code == 220) {
      d.keep_unread();
      if (!d.handshake(host)) return;
      if (!d.exchange(Step::kEhloTls, "EHLO " + o.helo_name)) return;
    }
  }
  if (!d.exchange(Step::kRset, "RSET")) return;
  d.exchange(Step::kQuit, "QUIT");
}

}  // namespace

std::string host_port_text(const std::string& host, uint16_t port) {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Transcript run_sequence(const std::string& host, uint16_t port, const SequenceOptions& o) {
  Transcript t;
  t.target = host_port_text(host, port);
  auto client = SmtpClient::connect(host, port, o.family, o.step_timeout);
  if (!client) {
    t.failure = "cannot connect to " + t.target + ": " + client.error();
    return t;
  }
  t.address = client->address();
  Dialogue d(*client, t, o);
  if (!d.read_banner()) {
    const Exchange& e = t.exchanges.back();
    t.failure = "no greeting from " + t.address + ": " + e.error;
    return t;
  }
  const int klass = d.last_reply().klass();
  if (klass == 4 || klass == 5) {
    // 554 "no SMTP service here", 421 "try later": nothing past the greeting to probe. Any
    // other greeting goes on: a masked one may have lost its code.
    t.failure = "the server at " + t.address + " refused the session: " +
                (d.last_reply().lines.empty() ? std::string() : d.last_reply().lines.front());
    d.exchange(Step::kQuit, "QUIT");
    client->close();
    return t;
  }
  converse(d, host, o);
  client->close();
  return t;
}

}  // namespace sg::probe

// What became of the commands the probe sent: accepted, masked, refused, or answered by the
// device in the server's place.
#include <algorithm>

#include "probe/classifier.hpp"
#include "probe/reply_parser.hpp"
#include "util/ascii.hpp"

namespace sg::probe {
namespace {

std::string first_word(std::string_view line) {
  return std::string(line.substr(0, line.find(' ')));
}

}  // namespace

void Classifier::unknown_verb() {
  const Exchange* e = p_.find(Step::kUnknownVerb);
  if (!e || !e->reply || e->reply->klass() != 2) return;
  const Reply* noop = p_.reply(Step::kNoop);
  const Reply* direct = direct_reply(Step::kUnknownVerb);
  const bool like_noop = noop && noop->text() == e->reply->text();
  const bool direct_refused = direct && direct->klass() == 5;
  Finding& f = add(FindingKind::kUnknownCommandOk,
                   like_noop || direct_refused ? Confidence::kCertain : Confidence::kLikely,
                   std::string("'") + std::string(kUnknownVerb) + "' was accepted (" +
                       e->reply->lines.front() + ")" +
                       (like_noop ? ", with exactly the reply NOOP gets" : "") +
                       (direct_refused ? "; the server itself refuses it" : "") +
                       ": the device turned the unknown command into something harmless.");
  cite(f, *e);
  if (direct_refused) f.evidence.push_back("direct S: " + direct->lines.front());
  cover(*e);
}

// Replies that quote the command as X's (Exchange, ASA's own text do that).
void Classifier::commands_masked() {
  for (const Exchange& e : p_.exchanges) {
    if (e.sent.empty() || !e.reply || !echoes_mask(e.sent, *e.reply)) continue;
    if (e.step == Step::kDeepVerb || e.step == Step::kAuth || e.step == Step::kStarttls)
      continue;  // their own findings below
    Finding* f = get(FindingKind::kCommandMasked);
    if (!f)
      f = &add(FindingKind::kCommandMasked, Confidence::kCertain,
               "The server's reply quotes the command as X's of the same length: it received "
               "the command masked.");
    cite(*f, e);
    cover(e);
  }
}

void Classifier::deep_verbs() {
  const Reply* noop = p_.reply(Step::kNoop);
  std::vector<std::string> invisible;
  for (const Exchange& e : p_.exchanges) {
    if (e.step != Step::kDeepVerb || !e.reply) continue;
    const std::string verb = first_word(e.sent);
    const Exchange* d = d_ ? nth(*d_, Step::kDeepVerb, index_of_step(p_, e)) : nullptr;
    std::string why;
    Confidence c = Confidence::kCertain;
    if (echoes_mask(e.sent, *e.reply)) {
      why = verb + " reached the server as X's";
    } else if (e.reply->klass() == 2) {
      const bool like_noop = noop && noop->text() == e.reply->text();
      why = verb + " was accepted" + (like_noop ? " with exactly NOOP's reply" : "");
      if (!like_noop) c = Confidence::kLikely;
    } else if (d && d->reply && d->reply->code != e.reply->code) {
      why = verb + " is answered " + std::to_string(e.reply->code) + " through the path, " +
            std::to_string(d->reply->code) + " by the server itself";
    } else {
      invisible.push_back(verb);
      continue;
    }
    Finding* f = get(FindingKind::kExchangeVerbsBlocked);
    if (!f)
      f = &add(FindingKind::kExchangeVerbsBlocked, c, why + ".");
    else
      f->detail += " " + why + ".";
    cite(*f, e);
    if (d) cite(*f, *d, "direct ");
    cover(e);
  }
  if (!invisible.empty())
    out_.notes.push_back(
        "--deep: " + join(invisible, " and ") +
        " got the reply the server gives any unknown command. A gateway that masks them "
        "(smtpguard's modern profile does) is not visible against a server that does not "
        "implement them: the server answers the masked command the same way.");
}

void Classifier::auth() {
  const Exchange* e = p_.find(Step::kAuth);
  if (!e || !e->reply) return;
  const Reply& r = *e->reply;
  const Exchange* ehlo = p_.find(Step::kEhlo);
  const bool offered = ehlo && ehlo->reply && parse_ehlo(*ehlo->reply).offers("AUTH");
  const Reply* direct = direct_reply(Step::kAuth);
  const Reply* noop = p_.reply(Step::kNoop);
  if (r.code == 334) {
    if (!offered)
      hidden_.emplace("AUTH", Hidden{Confidence::kCertain,
                                     "the server answers AUTH with 334, yet the EHLO reply "
                                     "through the path does not offer it",
                                     {"C: " + e->sent, "S: " + r.lines.front()}});
    return;
  }
  std::string why;
  if (r.klass() == 2) {
    why = "AUTH was answered like a NOOP";
    if (noop && noop->text() == r.text()) why += " (exactly NOOP's reply)";
  } else if (echoes_mask(e->sent, r)) {
    why = "AUTH reached the server as X's";
  } else if (direct && direct->code == 334) {
    why = "AUTH is refused through the path and accepted (334) by the server itself";
  } else {
    return;
  }
  Finding& f = add(FindingKind::kAuthBlocked, Confidence::kCertain, why + ".");
  cite(f, *e);
  if (direct) f.evidence.push_back("direct S: " + direct->lines.front());
  cover(*e);
}

void Classifier::starttls() {
  const Exchange* e = p_.find(Step::kStarttls);
  if (e && e->reply && e->reply->klass() != 2) {
    const Reply* direct = direct_reply(Step::kStarttls);
    const bool echoed = echoes_mask(e->sent, *e->reply);
    const bool direct_ok = direct && direct->code == 220;
    Finding& f = add(FindingKind::kStarttlsRefused,
                     echoed || direct_ok ? Confidence::kCertain : Confidence::kLikely,
                     std::string("STARTTLS was answered \"") + e->reply->lines.front() + "\"" +
                         (echoed ? ": the server received it masked" : "") +
                         (direct_ok ? "; the server itself answers 220" : "") + ".");
    cite(f, *e);
    if (direct) f.evidence.push_back("direct S: " + direct->lines.front());
    cover(*e);
  }
  const Exchange* hs = p_.find(Step::kTlsHandshake);
  if (hs && hs->status != StepStatus::kOk) {
    const bool direct_ok = d_ && d_->tls && d_->tls->ok;
    Finding& f = add(
        FindingKind::kTlsFailed, direct_ok ? Confidence::kCertain : Confidence::kLikely,
        "The server accepted STARTTLS (220) but the handshake failed: " + hs->error +
            (direct_ok ? ". Directly the handshake succeeds (" + d_->tls->protocol + ")." : "."));
    if (const Exchange* st = p_.find(Step::kStarttls)) cite(f, *st);
    f.evidence.push_back("T: failed " + hs->error);
    cover(*hs);
  }
}

void Classifier::transaction() {
  const Exchange* e = p_.find(Step::kRcpt);
  if (!e || !e->reply || e->reply->klass() != 5) return;
  const std::string text = to_upper(e->reply->text());
  if (text.find("RELAY") == std::string::npos && text.find("5.7.1") == std::string::npos) return;
  const bool auth_hidden = get(FindingKind::kAuthHidden) || get(FindingKind::kAuthBlocked) ||
                           get(FindingKind::kEhloRefused) || get(FindingKind::kEhloAnsweredOk);
  Finding& f = add(FindingKind::kRelayRefused, Confidence::kCertain,
                   std::string("The recipient was refused for relaying") +
                       (auth_hidden ? "; AUTH is not available through the path, so clients "
                                      "cannot authenticate to be allowed to relay."
                                    : "."));
  if (const Exchange* m = p_.find(Step::kMail)) cite(f, *m);
  cite(f, *e);
}

void Classifier::after_starttls() {
  if (p_.after_starttls.empty()) return;
  Finding& f = add(FindingKind::kPlaintextAfterStarttls, Confidence::kCertain,
                   std::to_string(p_.after_starttls.size()) +
                       " bytes arrived after the 220 to STARTTLS, before the handshake.");
  f.evidence.push_back("S: " + p_.after_starttls.substr(0, 200));
}

bool echoes_mask(std::string_view command, const Reply& reply) {
  const std::string verb = first_word(command);
  if (verb.empty() || verb.find_first_not_of('X') == std::string::npos) return false;
  for (const std::string& line : reply.lines) {
    // Runs of X that stand alone (quotes, spaces, punctuation around them).
    size_t i = 0;
    while ((i = line.find('X', i)) != std::string::npos) {
      size_t j = i;
      while (j < line.size() && line[j] == 'X') ++j;
      const auto is_word = [](char c) { return is_alnum(c) || c == '-'; };
      const bool alone =
          (i == 0 || !is_word(line[i - 1])) && (j == line.size() || !is_word(line[j]));
      if (alone && j - i == verb.size()) return true;
      i = j;
    }
  }
  return false;
}

}  // namespace sg::probe

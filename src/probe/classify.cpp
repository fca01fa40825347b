#include "probe/classify.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "probe/ehlo_reply.hpp"
#include "probe/reply_parser.hpp"
#include "smtp/vocabulary.hpp"
#include "util/ascii.hpp"

namespace sg::probe {
namespace {

std::string first_word(std::string_view line) {
  return std::string(line.substr(0, line.find(' ')));
}

std::string join(const std::vector<std::string>& words, std::string_view sep = ", ") {
  std::string out;
  for (const std::string& w : words) {
    if (!out.empty()) out += sep;
    out += w;
  }
  return out;
}

// The finding each hidden keyword leads to (the keywords that matter for mail flow).
std::optional<FindingKind> hidden_kind(std::string_view keyword) {
  if (keyword == "STARTTLS") return FindingKind::kStarttlsHidden;
  if (keyword == "AUTH") return FindingKind::kAuthHidden;
  if (keyword == "8BITMIME") return FindingKind::k8bitmimeHidden;
  if (keyword == "BINARYMIME") return FindingKind::kBinarymimeHidden;
  if (keyword == "CHUNKING") return FindingKind::kChunkingHidden;
  if (keyword == "PIPELINING") return FindingKind::kPipeliningHidden;
  if (keyword == "SMTPUTF8") return FindingKind::kSmtputf8Hidden;
  if (keyword == "X-LINK2STATE" || keyword == "XEXCH50" || keyword == "X-EXPS")
    return FindingKind::kExchangeVerbsBlocked;
  return std::nullopt;
}

// The n-th exchange of a step (0-based), so that repeated steps (RSET, deep verbs) line up.
const Exchange* nth(const Transcript& t, Step s, size_t n) {
  for (const Exchange& e : t.exchanges)
    if (e.step == s && n-- == 0) return &e;
  return nullptr;
}

size_t index_of_step(const Transcript& t, const Exchange& x) {
  size_t n = 0;
  for (const Exchange& e : t.exchanges) {
    if (&e == &x) return n;
    if (e.step == x.step) ++n;
  }
  return n;
}

// A keyword hidden on the way, how sure, and how it is known.
struct Hidden {
  Confidence confidence;
  std::string how;
  std::vector<std::string> lines;  // the path's lines that hide it ("S: 250-XXXXXXXA"), if any
};

class Classifier {
 public:
  Classifier(const Transcript& path, const Transcript* direct) : p_(path), d_(direct) {}

  Classification run() {
    if (!p_.failure.empty() && p_.exchanges.empty()) return std::move(out_);
    banner();
    ehlo();
    unknown_verb();
    commands_masked();
    deep_verbs();
    auth();
    starttls();
    hidden_keywords();
    transaction();
    after_starttls();
    compare_replies();
    session_end();
    notes();
    // The kinds are declared in reading order: banner, commands, EHLO, TLS, AUTH, extensions.
    std::stable_sort(out_.findings.begin(), out_.findings.end(),
                     [](const Finding& a, const Finding& b) { return a.kind < b.kind; });
    return std::move(out_);
  }

 private:
  Finding& add(FindingKind k, Confidence c, std::string detail) {
    out_.findings.push_back(Finding{k, c, std::move(detail), {}});
    return out_.findings.back();
  }
  Finding* get(FindingKind k) {
    for (Finding& f : out_.findings)
      if (f.kind == k) return &f;
    return nullptr;
  }

  // "C: EHLO x", "S: 250-..." (prefixed "direct " for the direct transcript).
  static void cite(Finding& f, const Exchange& e, std::string_view who = "") {
    const std::string pre(who);
    if (!e.sent.empty()) f.evidence.push_back(pre + "C: " + e.sent);
    if (e.reply)
      for (const std::string& l : e.reply->lines) f.evidence.push_back(pre + "S: " + l);
    if (e.status != StepStatus::kOk)
      f.evidence.push_back(pre + "!: " + std::string(to_string(e.status)) + " " + e.error);
  }
  void cover(const Exchange& e) { covered_.insert(&e); }

  const Reply* direct_reply(Step s) const { return d_ ? d_->reply(s) : nullptr; }

  void banner() {
    const Exchange* e = p_.find(Step::kBanner);
    if (!e || !e->reply || e->reply->lines.empty()) return;
    const std::vector<std::string>& lines = e->reply->lines;
    const BannerMask m = banner_mask(lines.front());
    const Reply* direct = direct_reply(Step::kBanner);
    if (m == BannerMask::kNone) {
      if (direct && direct->lines != lines)
        out_.notes.push_back("The banner differs from the server's own (\"" + lines.front() +
                             "\" / direct \"" + direct->lines.front() +
                             "\"), without a mask: a banner with a date or a server pool "
                             "differs too, so this alone is no finding.");
      return;
    }
    cover(*e);
    if (m == BannerMask::kCmap) {
      Finding& f = add(FindingKind::kBannerCmap, Confidence::kCertain,
                       "The greeting is the 'SMTP/cmap ... read' text early PIX Mailguard sends "
                       "in place of the server's banner.");
      cite(f, *e);
      return;
    }
    // With the server's own banner the mask can be checked character by character.
    bool exact51 = false, exact_all = false, has20 = false;
    if (direct && direct->lines.size() == lines.size()) {
      exact51 = exact_all = true;
      for (size_t i = 0; i < lines.size(); ++i) {
        exact51 = exact51 && same_mask(lines[i], mask_banner_line(direct->lines[i], false));
        exact_all = exact_all && same_mask(lines[i], mask_banner_line(direct->lines[i], true));
        has20 = has20 || direct->lines[i]
                                 .substr(std::min<size_t>(4, direct->lines[i].size()))
                                 .find_first_of("20") != std::string::npos;
      }
    }
    Finding* f = nullptr;
    if (m == BannerMask::kPix51 || (exact51 && !exact_all)) {
      f = &add(FindingKind::kBannerMasked, Confidence::kCertain,
               exact51 ? "The greeting is the server's own banner with every character but the "
                         "digits 2 and 0 turned into '*' (compared with the direct banner)."
                       : "Only '*', '2' and '0' follow the reply code: the pattern KB 320027 "
                         "tells admins to look for (PIX 5.1 and later, ASA mask-banner).");
    } else if (exact_all && has20) {
      f = &add(FindingKind::kBannerAsterisks, Confidence::kCertain,
               "Every character of the server's banner after the code became '*', the digits 2 "
               "and 0 included: PIX 4.x (5.1 and later keep 2 and 0).");
    } else {
      f = &add(FindingKind::kBannerAsterisks, Confidence::kLikely,
               "Only '*' follows the reply code: PIX 4.x masks the whole banner; PIX 5.1+ / ASA "
               "do the same to a banner that has no digit 2 or 0 (--direct tells them apart).");
    }
    cite(*f, *e);
    if (direct) f->evidence.push_back("direct S: " + direct->lines.front());
  }

  void ehlo() {
    const Exchange* e = p_.find(Step::kEhlo);
    if (!e || !e->reply) return;
    const EhloOffer offer = parse_ehlo(*e->reply);
    std::optional<EhloOffer> direct;
    if (const Reply* r = direct_reply(Step::kEhlo)) direct = parse_ehlo(*r);
    const bool direct_greets = direct && direct->greets;
    if (direct && !direct->greets && !offer.greets) {
      out_.notes.push_back(
          "The server itself does not answer EHLO with its extensions (direct: \"" +
          d_->reply(Step::kEhlo)->text() + "\"): no ESMTP to hide.");
      return;
    }
    const Exchange* helo = p_.find(Step::kHelo);
    const Reply* noop = p_.reply(Step::kNoop);
    if (!offer.positive) {
      if (!helo || !helo->reply || helo->reply->klass() != 2) return;
      Finding& f =
          add(FindingKind::kEhloRefused, direct_greets ? Confidence::kCertain : Confidence::kLikely,
              direct_greets ? "EHLO is refused through the path while the server answers "
                              "it directly with " +
                                  std::to_string(direct->lines.size()) + " extensions."
                            : "EHLO is refused and HELO accepted: Mailguard passes only "
                              "the seven RFC 821 commands (a server that really lacks "
                              "ESMTP is rare; --direct makes sure).");
      cite(f, *e);
      cite(f, *helo);
      cover(*e);
      if (direct_greets) {
        f.evidence.push_back("direct S: " + d_->reply(Step::kEhlo)->lines.front() + " (+" +
                             std::to_string(direct->lines.size()) + " lines)");
        hide_all(*direct, "never offered, EHLO is refused through the path");
      }
      return;
    }
    if (!offer.greets) {
      const bool like_noop = noop && noop->text() == e->reply->text();
      Finding& f = add(FindingKind::kEhloAnsweredOk,
                       like_noop || direct_greets ? Confidence::kCertain : Confidence::kLikely,
                       like_noop ? "EHLO got exactly the reply NOOP gets (\"" + e->reply->text() +
                                       "\"): the command reached the server as a NOOP."
                                 : "EHLO got a positive reply that does not greet (\"" +
                                       e->reply->text() + "\") and lists no extension.");
      cite(f, *e);
      cover(*e);
      if (direct_greets) hide_all(*direct, "never offered, EHLO is answered like a NOOP");
      return;
    }
    keywords(*e, offer, direct_greets ? &*direct : nullptr);
  }

  void hide_all(const EhloOffer& direct, const std::string& how) {
    for (const EhloLine& l : direct.lines)
      if (!l.masked) hidden_.emplace(l.keyword, Hidden{Confidence::kCertain, how, {}});
  }

  // A greeting EHLO reply: which keywords were masked or removed, and which ones they were.
  void keywords(const Exchange& e, const EhloOffer& offer, const EhloOffer* direct) {
    const std::vector<const EhloLine*> masked = offer.masked();
    std::vector<std::string> named;    // "XXXXXXXA = STARTTLS"
    std::vector<std::string> missing;  // offered directly, absent through the path
    if (direct) {
      // The direct keywords not offered in clear through the path, in the server's order.
      std::vector<std::string> unmatched;
      for (const EhloLine& l : direct->lines)
        if (!l.masked && !offer.offers(l.keyword)) unmatched.push_back(l.keyword);
      const bool aligned = direct->lines.size() == offer.lines.size();
      for (size_t i = 0; i < offer.lines.size(); ++i) {
        const EhloLine& l = offer.lines[i];
        if (!l.masked) continue;
        std::string who;
        if (aligned && direct->lines[i].keyword.size() == l.keyword.size()) {
          who = direct->lines[i].keyword;
        } else {
          for (const std::string& u : unmatched)
            if (u.size() == l.keyword.size()) {
              who = u;
              break;
            }
        }
        if (who.empty()) {
          named.push_back(l.keyword + " = ?");
          continue;
        }
        unmatched.erase(std::find(unmatched.begin(), unmatched.end(), who));
        named.push_back(l.keyword + " = " + who);
        hidden_.emplace(who,
                        Hidden{Confidence::kCertain, "masked as " + l.keyword, {"S: " + l.raw}});
      }
      for (const std::string& u : unmatched) {
        missing.push_back(u);
        hidden_.emplace(u, Hidden{Confidence::kCertain, "removed from the EHLO reply", {}});
      }
    } else {
      by_elimination(offer, masked, named);
    }
    if (!masked.empty()) {
      // The masks themselves are certain; which keyword each one hides may be inferred.
      Finding& f = add(FindingKind::kEhloKeywordMasked, Confidence::kCertain,
                       std::to_string(masked.size()) + " EHLO keyword" +
                           (masked.size() == 1 ? " is" : "s are") + " masked: " + join(named) +
                           (direct ? " (lined up with the server's own EHLO reply)." : "."));
      f.evidence.push_back("C: " + e.sent);
      for (const EhloLine* l : masked) f.evidence.push_back("S: " + l->raw);
      cover(e);
    }
    if (!missing.empty()) {
      Finding& f =
          add(FindingKind::kEhloKeywordMissing, Confidence::kCertain,
              "Offered by the server directly, absent through the path: " + join(missing) + ".");
      for (const EhloLine& l : direct->lines)
        if (std::find(missing.begin(), missing.end(), l.keyword) != missing.end())
          f.evidence.push_back("direct S: " + l.raw);
      cover(e);
    }
  }

  // Without the server's own reply: a masked keyword keeps its length, so the candidates are
  // the known keywords of that length that are not offered in clear.
  void by_elimination(const EhloOffer& offer, const std::vector<const EhloLine*>& masked,
                      std::vector<std::string>& named) {
    std::map<size_t, std::vector<const EhloLine*>> by_length;
    for (const EhloLine* l : masked) by_length[l->keyword.size()].push_back(l);
    for (const auto& [length, lines] : by_length) {
      std::vector<std::string> candidates;
      for (size_t i = 0; i < smtp::kEhloKeywordCount; ++i) {
        const std::string_view k = smtp::to_string(static_cast<smtp::EhloKeyword>(i));
        if (k.size() == length && !offer.offers(k)) candidates.emplace_back(k);
      }
      std::vector<std::string> cited;
      for (const EhloLine* l : lines) cited.push_back("S: " + l->raw);
      const std::string times = lines.size() == 1
                                    ? lines.front()->keyword
                                    : lines.front()->keyword + " x" + std::to_string(lines.size());
      if (!candidates.empty() && candidates.size() == lines.size()) {
        named.push_back(times + " = " + join(candidates, " ") + " (by elimination: the known " +
                        std::to_string(length) + "-letter keywords not offered in clear)");
        for (const std::string& c : candidates)
          hidden_.emplace(c,
                          Hidden{Confidence::kLikely,
                                 "masked (by elimination among keywords of that length)", cited});
        continue;
      }
      const bool starttls_like =
          length == 8 && std::any_of(lines.begin(), lines.end(),
                                     [](const EhloLine* l) { return l->keyword == "XXXXXXXA"; });
      if (starttls_like && !offer.offers("STARTTLS")) {
        hidden_.emplace("STARTTLS", Hidden{Confidence::kLikely,
                                           "XXXXXXXA is how Cisco ASA shows STARTTLS", cited});
      }
      named.push_back(
          times + " = one of " +
          (candidates.empty() ? std::string("no keyword smtpguard knows") : join(candidates, " ")) +
          (starttls_like ? " (Cisco ASA shows STARTTLS as XXXXXXXA)" : ""));
    }
  }

  void unknown_verb() {
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
  void commands_masked() {
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

  void deep_verbs() {
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

  void auth() {
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

  void starttls() {
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

  // One finding per kind of hidden keyword that matters for mail flow.
  void hidden_keywords() {
    for (const auto& [keyword, h] : hidden_) {
      const auto kind = hidden_kind(keyword);
      if (!kind) continue;
      Finding* f = get(*kind);
      const std::string text = keyword + ": " + h.how + ".";
      if (!f) {
        f = &add(*kind, h.confidence, text);
      } else {
        f->detail += " " + text;
        if (h.confidence == Confidence::kLikely) f->confidence = Confidence::kLikely;
      }
      for (const std::string& line : h.lines)
        if (std::find(f->evidence.begin(), f->evidence.end(), line) == f->evidence.end())
          f->evidence.push_back(line);
      if (d_)
        if (const Reply* r = d_->reply(Step::kEhlo))
          for (const EhloLine& l : parse_ehlo(*r).lines)
            if (l.keyword == keyword) f->evidence.push_back("direct S: " + l.raw);
      if (f->evidence.empty())  // hidden because EHLO itself is: that finding has the lines
        if (const Exchange* e = p_.find(Step::kEhlo)) cite(*f, *e);
    }
  }

  void transaction() {
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

  void after_starttls() {
    if (p_.after_starttls.empty()) return;
    Finding& f = add(FindingKind::kPlaintextAfterStarttls, Confidence::kCertain,
                     std::to_string(p_.after_starttls.size()) +
                         " bytes arrived after the 220 to STARTTLS, before the handshake.");
    f.evidence.push_back("S: " + p_.after_starttls.substr(0, 200));
  }

  // Replies of another class than the server's own, for steps no finding explains yet.
  void compare_replies() {
    if (!d_) return;
    for (const Exchange& e : p_.exchanges) {
      if (!e.reply || covered_.count(&e) || e.step == Step::kRcpt) continue;
      const Exchange* d = nth(*d_, e.step, index_of_step(p_, e));
      if (!d || !d->reply || d->reply->klass() == e.reply->klass()) continue;
      Finding* f = get(FindingKind::kReplyDiffers);
      if (!f)
        f = &add(FindingKind::kReplyDiffers, Confidence::kLikely,
                 "Replies of another class than the server gives directly:");
      f->detail += " " + std::string(to_string(e.step)) + " " + std::to_string(e.reply->code) +
                   " (direct " + std::to_string(d->reply->code) + ")";
      cite(*f, e);
      cite(*f, *d, "direct ");
    }
  }

  void session_end() {
    for (const Exchange& e : p_.exchanges) {
      if (e.status == StepStatus::kOk || e.step == Step::kQuit || e.step == Step::kTlsHandshake)
        continue;
      const Exchange* d = d_ ? nth(*d_, e.step, index_of_step(p_, e)) : nullptr;
      if (d && d->status == StepStatus::kOk) {
        Finding& f = add(FindingKind::kSessionDropped, Confidence::kCertain,
                         "At " + std::string(to_string(e.step)) +
                             " the connection through the "
                             "path ended (" +
                             e.error + "); the server's own session went on.");
        cite(f, e);
        cite(f, *d, "direct ");
      } else {
        Finding& f = add(FindingKind::kSessionIncomplete, Confidence::kCertain,
                         "At " + std::string(to_string(e.step)) + ": " +
                             std::string(to_string(e.status)) + " (" + e.error + ").");
        cite(f, e);
      }
      return;
    }
  }

  void notes() {
    if (p_.tls && p_.tls->ok)
      out_.notes.push_back(
          "TLS through the path: " + p_.tls->protocol + ", " + p_.tls->cipher +
          (p_.tls->peer_subject.empty() ? "" : ", certificate " + p_.tls->peer_subject) +
          " (chain: " + p_.tls->verify + "; not required by the probe).");
    if (out_.inspection()) {
      if (!d_)
        out_.notes.push_back(
            "Run with --direct HOST (the server reached without the device) "
            "to see exactly what the path hides.");
      return;
    }
    out_.notes.push_back(
        "No SMTP inspection visible. A gateway that passes the banner, EHLO, STARTTLS and AUTH "
        "and masks only verbs the server rejects anyway (smtpguard's modern profile: TURN ATRN "
        "XEXCH50 X-LINK2STATE X-EXPS EXPN) cannot be told apart from no gateway by a client" +
        std::string(d_ ? "." : "; --direct compares with the server's own dialogue."));
  }

  const Transcript& p_;
  const Transcript* d_;
  Classification out_;
  std::set<const Exchange*> covered_;
  std::map<std::string, Hidden> hidden_;
};

}  // namespace

bool Classification::inspection() const {
  return std::any_of(findings.begin(), findings.end(),
                     [](const Finding& f) { return info(f.kind).inspection; });
}

const Finding* Classification::find(FindingKind k) const {
  for (const Finding& f : findings)
    if (f.kind == k) return &f;
  return nullptr;
}

Classification classify(const Transcript& path, const Transcript* direct) {
  return Classifier(path, direct).run();
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

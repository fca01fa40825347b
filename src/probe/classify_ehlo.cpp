// The EHLO reply through the path: refused, answered like a NOOP, or greeting with keywords
// masked or removed; and one finding per hidden keyword that matters for mail flow.
#include <algorithm>
#include <map>
#include <optional>

#include "probe/classifier.hpp"
#include "smtp/vocabulary.hpp"

namespace sg::probe {
namespace {

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

}  // namespace

void Classifier::ehlo() {
  const Exchange* e = p_.find(Step::kEhlo);
  if (!e || !e->reply) return;
  const EhloOffer offer = parse_ehlo(*e->reply);
  std::optional<EhloOffer> direct;
  if (const Reply* r = direct_reply(Step::kEhlo)) direct = parse_ehlo(*r);
  const bool direct_greets = direct && direct->greets;
  if (direct && !direct->greets && !offer.greets) {
    out_.notes.push_back("The server itself does not answer EHLO with its extensions (direct: \"" +
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

void Classifier::hide_all(const EhloOffer& direct, const std::string& how) {
  for (const EhloLine& l : direct.lines)
    if (!l.masked) hidden_.emplace(l.keyword, Hidden{Confidence::kCertain, how, {}});
}

// A greeting EHLO reply: which keywords were masked or removed, and which ones they were.
void Classifier::keywords(const Exchange& e, const EhloOffer& offer, const EhloOffer* direct) {
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
      hidden_.emplace(who, Hidden{Confidence::kCertain, "masked as " + l.keyword, {"S: " + l.raw}});
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
void Classifier::by_elimination(const EhloOffer& offer, const std::vector<const EhloLine*>& masked,
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
        hidden_.emplace(c, Hidden{Confidence::kLikely,
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

// One finding per kind of hidden keyword that matters for mail flow.
void Classifier::hidden_keywords() {
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

}  // namespace sg::probe

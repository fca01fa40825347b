#include "probe/classify.hpp"

#include <algorithm>

#include "probe/classifier.hpp"

namespace sg::probe {

std::string join(const std::vector<std::string>& words, std::string_view sep) {
  std::string out;
  for (const std::string& w : words) {
    if (!out.empty()) out += sep;
    out += w;
  }
  return out;
}

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

Classification Classifier::run() {
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

Finding& Classifier::add(FindingKind k, Confidence c, std::string detail) {
  out_.findings.push_back(Finding{k, c, std::move(detail), {}});
  return out_.findings.back();
}

Finding* Classifier::get(FindingKind k) {
  for (Finding& f : out_.findings)
    if (f.kind == k) return &f;
  return nullptr;
}

void Classifier::cite(Finding& f, const Exchange& e, std::string_view who) {
  const std::string pre(who);
  if (!e.sent.empty()) f.evidence.push_back(pre + "C: " + e.sent);
  if (e.reply)
    for (const std::string& l : e.reply->lines) f.evidence.push_back(pre + "S: " + l);
  if (e.status != StepStatus::kOk)
    f.evidence.push_back(pre + "!: " + std::string(to_string(e.status)) + " " + e.error);
}

void Classifier::banner() {
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

// Replies of another class than the server's own, for steps no finding explains yet.
void Classifier::compare_replies() {
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

void Classifier::session_end() {
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

void Classifier::notes() {
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

}  // namespace sg::probe

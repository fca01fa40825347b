#pragma once
// The classifier behind classify(): one pass over the path transcript (and the direct one, when
// there is one), one method per question asked of them. Internal to the probe: classify.hpp is
// the interface. The methods live by concept: classify.cpp (the pass, evidence, the banner, the
// session as a whole), classify_ehlo.cpp (EHLO and the keywords hidden on the way),
// classify_commands.cpp (what became of the commands sent).
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "probe/classify.hpp"
#include "probe/ehlo_reply.hpp"

namespace sg::probe {

std::string join(const std::vector<std::string>& words, std::string_view sep = ", ");

// The n-th exchange of a step (0-based), so that repeated steps (RSET, deep verbs) line up.
const Exchange* nth(const Transcript& t, Step s, size_t n);
size_t index_of_step(const Transcript& t, const Exchange& x);

// A keyword hidden on the way, how sure, and how it is known.
struct Hidden {
  Confidence confidence;
  std::string how;
  std::vector<std::string> lines;  // the path's lines that hide it ("S: 250-XXXXXXXA"), if any
};

class Classifier {
 public:
  Classifier(const Transcript& path, const Transcript* direct) : p_(path), d_(direct) {}

  Classification run();

 private:
  // Findings and their evidence (classify.cpp).
  Finding& add(FindingKind k, Confidence c, std::string detail);
  Finding* get(FindingKind k);
  // "C: EHLO x", "S: 250-..." (prefixed "direct " for the direct transcript).
  static void cite(Finding& f, const Exchange& e, std::string_view who = "");
  void cover(const Exchange& e) { covered_.insert(&e); }

  const Reply* direct_reply(Step s) const { return d_ ? d_->reply(s) : nullptr; }

  // The banner and the session as a whole (classify.cpp).
  void banner();
  void compare_replies();
  void session_end();
  void notes();

  // EHLO and the keywords hidden on the way (classify_ehlo.cpp).
  void ehlo();
  void hide_all(const EhloOffer& direct, const std::string& how);
  void keywords(const Exchange& e, const EhloOffer& offer, const EhloOffer* direct);
  void by_elimination(const EhloOffer& offer, const std::vector<const EhloLine*>& masked,
                      std::vector<std::string>& named);
  void hidden_keywords();

  // What became of the commands sent (classify_commands.cpp).
  void unknown_verb();
  void commands_masked();
  void deep_verbs();
  void auth();
  void starttls();
  void transaction();
  void after_starttls();

  const Transcript& p_;
  const Transcript* d_;
  Classification out_;
  std::set<const Exchange*> covered_;
  std::map<std::string, Hidden> hidden_;
};

}  // namespace sg::probe

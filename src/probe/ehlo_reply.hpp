#pragma once
// What an EHLO reply offers, line by line, with the keywords a gateway masked recognised as
// such. Pure: used both to decide the next step (STARTTLS? which AUTH mechanism?) and to classify.
#include <string>
#include <string_view>
#include <vector>

#include "probe/transcript.hpp"

namespace sg::probe {

struct EhloLine {
  std::string keyword;  // the first token, upper-case ("STARTTLS", "XXXXXXXA")
  std::string params;   // what follows it ("PLAIN LOGIN")
  std::string raw;      // the whole line as received
  bool masked = false;  // the keyword is X's, or X's and a final A: a gateway's mask
};

struct EhloOffer {
  bool positive = false;  // a 2xx reply
  bool greets = false;    // its first line names the server, unlike the "250 2.0.0 Ok" of a NOOP
  std::string greeting;   // the first line's text
  std::vector<EhloLine> lines;  // every line after the first: one keyword each

  const EhloLine* find(std::string_view keyword) const;  // an unmasked line, case-insensitive
  bool offers(std::string_view keyword) const { return find(keyword) != nullptr; }
  std::vector<const EhloLine*> masked() const;
};

EhloOffer parse_ehlo(const Reply& r);

// "XXXXXXXA" (how Cisco ASA shows STARTTLS) or "XXXX": only X's, optionally ending in one A,
// at least three characters.
bool is_masked_keyword(std::string_view token);

// A greeting's first word is the server's name or address literal. "2.0.0" (an enhanced status
// code), "OK" or nothing is what a NOOP answers: PIX 4.x turns EHLO into NOOP.
bool looks_like_greeting(std::string_view text);

// The AUTH mechanism --auth-check names: PLAIN or LOGIN when offered (no credentials follow
// either way), else the first one offered, else PLAIN.
std::string auth_mechanism(const EhloOffer& offer);

}  // namespace sg::probe

#pragma once
// What a policy says, as an immutable value. Built-in profiles reproduce Cisco's inspection
// (pix-legacy, pix-mailguard, asa-default) or protect without breaking mail (modern).
#include <array>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "smtp/vocabulary.hpp"

namespace sg::policy {

enum class BannerAction : uint8_t {
  kPass,     // untouched (clients look for "ESMTP" in it)
  kMask,     // PIX 5.1+: every character but '2', '0', CR, LF and the separator becomes '*'
  kMaskAll,  // PIX 4.x: every character of the text after "220 " becomes '*'
};

enum class CommandAction : uint8_t {
  kAllow,  // forwarded untouched
  kMask,   // verb and arguments become 'X' (same length): the server answers 500
  kNoop,   // PIX 4.x: the line becomes "NOOP" padded with spaces: the server answers 250
  kAnswer,  // removed from the stream; the gateway replies `answer_reply` in the server's place
  kReset,   // the connection is reset both ways (RST to client and server)
};

enum class KeywordAction : uint8_t {
  kAllow,  // forwarded untouched
  kMask,   // the keyword becomes X's ending in 'A' (STARTTLS -> XXXXXXXA), same length
  kStrip,  // the whole line is removed from the EHLO reply (the reply stays well-formed)
};

struct Profile {
  std::string name;
  std::string description;
  BannerAction banner = BannerAction::kPass;
  std::array<CommandAction, smtp::kVerbCount> verbs{};  // action per known verb
  CommandAction unknown_verb = CommandAction::kAllow;   // action for any other verb
  std::array<KeywordAction, smtp::kEhloKeywordCount> keywords{};
  KeywordAction unknown_keyword = KeywordAction::kAllow;
  // What the gateway tells a client whose command it answered (kAnswer), without CRLF.
  std::string answer_reply = "550 5.7.1 Command blocked by policy";
  size_t max_command_line = 512;  // RFC 5321 4.5.3.1.4, including CRLF
  size_t max_reply_line = 512;    // RFC 5321 4.5.3.1.5
  size_t max_text_line = 1000;    // RFC 5321 4.5.3.1.6 (DATA body)

  CommandAction verb_action(smtp::Verb v) const {
    return v == smtp::Verb::kUnknown ? unknown_verb : verbs[static_cast<size_t>(v)];
  }
  KeywordAction keyword_action(smtp::EhloKeyword k) const {
    return k == smtp::EhloKeyword::kUnknown ? unknown_keyword : keywords[static_cast<size_t>(k)];
  }
};

// The built-in profiles by name; nullptr for an unknown name.
std::shared_ptr<const Profile> builtin_profile(std::string_view name);
std::vector<std::string_view> builtin_profile_names();

}  // namespace sg::policy

#include "policy/line_policy.hpp"

#include "util/ascii.hpp"

namespace sg::policy {
namespace {

using smtp::EhloKeyword;
using smtp::LineKind;
using smtp::Verb;

// The token starting at `start`, and whether a delimiter after it has been seen.
struct Token {
  std::string_view text;
  bool terminated = false;
};
Token token_at(std::string_view bytes, size_t start) {
  Token t;
  if (start > bytes.size()) return t;
  size_t end = start;
  while (end < bytes.size() && !is_sp_htab_cr_lf(bytes[end])) ++end;
  t.text = bytes.substr(start, end - start);
  t.terminated = end < bytes.size();
  return t;
}

LineRewrite rewrite_for(CommandAction a) {
  switch (a) {
    case CommandAction::kAllow:
      return {};
    case CommandAction::kLog:
      return {RewriteKind::kNone, RewriteReason::kLogged, 0, 0};
    case CommandAction::kMask:
      return {RewriteKind::kMaskX, RewriteReason::kCommand, 0, 0};
    case CommandAction::kNoop:
      return {RewriteKind::kNoop, RewriteReason::kCommand, 0, 0};
    case CommandAction::kAnswer:
      return {RewriteKind::kDelete, RewriteReason::kAnswered, 0, 0};
    case CommandAction::kReset:
      return {RewriteKind::kDelete, RewriteReason::kReset, 0, 0};
    case CommandAction::kDrop:
      return {RewriteKind::kDelete, RewriteReason::kDropped, 0, 0};
  }
  return {};
}

LineVerdict decide_command(const Profile& p, std::string_view bytes, bool complete) {
  LineVerdict v;
  // The verb as the server finds it: after any blanks (see smtp::command_token).
  const smtp::CommandToken verb = smtp::command_verb(bytes);
  if (verb.terminated || complete) {
    v.verb = smtp::parse_verb(verb.text);
    v.decided = true;
    v.rewrite = rewrite_for(p.verb_action(v.verb));
    // A BDAT chunk follows its command without waiting for a reply: removing the command alone
    // would hand the chunk to the server as commands. Such a command resets instead.
    if (v.verb == Verb::kBdat && v.rewrite.reason == RewriteReason::kAnswered)
      v.rewrite.reason = RewriteReason::kReset;
    return v;
  }
  // Unterminated: the verb may still become any known verb it is a prefix of, or an unknown one.
  const CommandAction unknown = p.unknown_verb;
  // A BDAT is never answered (it resets, see above): while the verb may still become BDAT, an
  // "answer" decided now could be the wrong one.
  if (unknown == CommandAction::kAnswer && smtp::verb_starts_with(Verb::kBdat, verb.text)) return v;
  for (size_t i = 0; i < smtp::kVerbCount; ++i) {
    const auto verb_id = static_cast<Verb>(i);
    if (smtp::verb_starts_with(verb_id, verb.text) && p.verb_action(verb_id) != unknown) return v;
  }
  v.decided = true;
  v.rewrite = rewrite_for(unknown);
  return v;
}

LineVerdict decide_ehlo_line(const Profile& p, uint16_t reply_index, std::string_view bytes,
                             bool complete) {
  LineVerdict v;
  v.decided = true;
  if (reply_index == 0) return v;  // "250-domain greets you": not a keyword
  // Only a positive reply lists keywords; the text of an error reply is left alone.
  if (bytes.size() < 3 && !complete) {
    v.decided = false;
  } else if (bytes.substr(0, 3) != "250") {
    return v;
  }
  const Token kw = token_at(bytes, 4);
  if (v.decided && (kw.terminated || complete)) {
    v.keyword = smtp::parse_ehlo_keyword(kw.text);
    if (kw.text.empty()) return v;
    switch (p.keyword_action(v.keyword)) {
      case KeywordAction::kAllow:
        break;
      case KeywordAction::kMask:
        v.rewrite = {RewriteKind::kKeywordMask, RewriteReason::kKeyword, 4,
                     static_cast<uint16_t>(4 + kw.text.size())};
        break;
      case KeywordAction::kStrip:
        v.rewrite = {RewriteKind::kDelete, RewriteReason::kStripped, 0, 0};
        break;
    }
    return v;
  }
  // The rewrite depends on the whole keyword: decide early only when nothing it may still
  // become is rewritten.
  v.decided = p.unknown_keyword == KeywordAction::kAllow;
  for (size_t i = 0; i < smtp::kEhloKeywordCount && v.decided; ++i) {
    const auto k = static_cast<EhloKeyword>(i);
    if (smtp::keyword_starts_with(k, kw.text) && p.keyword_action(k) != KeywordAction::kAllow)
      v.decided = false;
  }
  return v;
}

}  // namespace

char rewrite_byte(const LineRewrite& r, size_t index, char original) {
  if (original == '\r' || original == '\n') return original;
  switch (r.kind) {
    case RewriteKind::kNone:
      return original;
    case RewriteKind::kBannerMask:
      if (index < 4) return original;  // the code and the separator after it
      return (original == '2' || original == '0') ? original : '*';
    case RewriteKind::kBannerMaskAll:
      return index < 4 ? original : '*';
    case RewriteKind::kMaskX:
      return index < r.from ? original : 'X';
    case RewriteKind::kNoop:
      return index < 4 ? "NOOP"[index] : ' ';
    case RewriteKind::kKeywordMask:
      if (index < r.from || index >= r.to) return original;
      return index + 1 == r.to ? 'A' : 'X';
    case RewriteKind::kDelete:
      return original;  // callers remove the byte instead
  }
  return original;
}

LineVerdict decide_line(const Profile& p, LineKind kind, uint16_t reply_index,
                        std::string_view bytes, bool complete) {
  switch (kind) {
    case LineKind::kCommand:
      return decide_command(p, bytes, complete);
    case LineKind::kEhloReply:
      return decide_ehlo_line(p, reply_index, bytes, complete);
    case LineKind::kGreeting: {
      LineVerdict v;
      v.decided = true;
      if (p.banner == BannerAction::kMask)
        v.rewrite = {RewriteKind::kBannerMask, RewriteReason::kBanner, 0, 0};
      else if (p.banner == BannerAction::kMaskAll)
        v.rewrite = {RewriteKind::kBannerMaskAll, RewriteReason::kBanner, 0, 0};
      else if (p.banner == BannerAction::kReplace)
        v.rewrite = {RewriteKind::kDelete, RewriteReason::kBannerReplaced, 0, 0};
      return v;
    }
    case LineKind::kAwaitReply:
      return {};  // what these bytes are depends on a reply
    case LineKind::kAuthResponse:
    case LineKind::kDataBody:
    case LineKind::kBdatChunk:
    case LineKind::kReply:
    case LineKind::kPassthrough:
      break;
  }
  LineVerdict v;
  v.decided = true;
  return v;
}

LineRewrite neutralise(LineKind kind) {
  switch (kind) {
    case LineKind::kGreeting:
    case LineKind::kEhloReply:
    case LineKind::kReply:
      // Keep "250-" so the client still reads a well-formed reply.
      return {RewriteKind::kMaskX, RewriteReason::kNeutralised, 4, 0};
    default:
      return {RewriteKind::kMaskX, RewriteReason::kNeutralised, 0, 0};
  }
}

}  // namespace sg::policy

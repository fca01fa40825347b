#pragma once
// Per-line decisions: which bytes of an SMTP line the gateway rewrites, and how.
//
// Every rewrite is position-wise (the output byte depends on the input byte and its index in the
// line only), so a prefix of a line can be rewritten and released before the rest has arrived,
// and every transmission of a byte gets the same output whatever the segmentation.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "policy/profile.hpp"
#include "smtp/session.hpp"

namespace sg::policy {

enum class RewriteKind : uint8_t {
  kNone,           // bytes pass untouched
  kBannerMask,     // PIX 5.1+: '*' for all but '2', '0', CR, LF and the code with its separator
  kBannerMaskAll,  // PIX 4.x: '*' for all but CR, LF and the code with its separator
  kMaskX,          // 'X' for all but CR and LF from index `from` on
  kNoop,           // "NOOP" then spaces, CR and LF kept: the server answers 250
  kKeywordMask,    // [from, to) becomes X's ending in 'A' (STARTTLS -> XXXXXXXA)
  kDelete,         // every byte of the line is removed (the stream gets shorter)
};

// Why a rewrite happened: for counters and logs.
enum class RewriteReason : uint8_t {
  kNone,
  kBanner,          // greeting masked
  kCommand,         // command blocked by the profile
  kKeyword,         // EHLO keyword masked
  kNeutralised,     // a partial line whose decision did not come in time (hold timeout/limit)
  kAnswered,        // command removed; the gateway answers it in the server's place
  kReset,           // command removed; the connection is reset both ways
  kStripped,        // EHLO keyword line removed from the reply
  kDropped,         // command removed; every later packet of the connection is dropped
  kLogged,          // command forwarded untouched; the decision is logged
  kChecked,         // command masked by a parameter check (which logs its own decision)
  kBannerReplaced,  // greeting line removed; the configured banner is inserted instead
};

struct LineRewrite {
  RewriteKind kind = RewriteKind::kNone;
  RewriteReason reason = RewriteReason::kNone;
  uint16_t from = 0;
  uint16_t to = 0;
  bool operator==(const LineRewrite&) const = default;
};

// The output byte for `original` at `index` within its line. Not for kDelete, which removes
// every byte (see deletes()).
char rewrite_byte(const LineRewrite& r, size_t index, char original);
inline bool deletes(const LineRewrite& r) {
  return r.kind == RewriteKind::kDelete;
}

struct LineVerdict {
  bool decided = false;  // false: the bytes seen so far could still go either way: hold them
  LineRewrite rewrite;
  smtp::Verb verb = smtp::Verb::kUnknown;                   // for commands, when known
  smtp::EhloKeyword keyword = smtp::EhloKeyword::kUnknown;  // for EHLO reply lines, when known
};

// Decides a line of `kind` from its first bytes. `complete` says the line ended (or was cut at the
// cap): then the verdict is always decided. `reply_index` is the line's index within its reply.
LineVerdict decide_line(const Profile& p, smtp::LineKind kind, uint16_t reply_index,
                        std::string_view bytes, bool complete);

// The rewrite for a partial line whose decision did not come in time: nothing of it may reach
// the peer in a form that could still become a blocked command or an unmasked keyword.
LineRewrite neutralise(smtp::LineKind kind);

}  // namespace sg::policy

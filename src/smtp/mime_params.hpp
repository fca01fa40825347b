#pragma once
// MIME header field values, parsed the tolerant way mail clients read them: RFC 2045 5.1
// parameters (quoted or not), RFC 2231 extended and continued parameters (`name*=utf-8''...`,
// `name*0*=`, `name*1=`), and RFC 2047 encoded words inside plain values (`=?UTF-8?B?...?=`,
// forbidden there by the RFC but sent by common clients). The body scanner hands it one unfolded
// header field value at a time. Pure, no exceptions; it allocates only for the decoded values.
//
// Why decode at all: a file-type check on "*.exe" must see the name the recipient's client
// shows, and encoding or splitting a name is the cheapest way to hide it from a gateway.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace sg::smtp::mime {

// The value before the first ';' (or the first space or '('), trimmed: "multipart/mixed",
// "attachment", "base64".
std::string_view leading_token(std::string_view value);

// Appends every value of parameter `name` (case-insensitive) found in a Content-Type or
// Content-Disposition field value to `out`, decoded, in this order: each `name*=` value
// (RFC 2231 4), the `name*0`, `name*1`, ... segments joined (RFC 2231 3; segments from 0 up to the
// first missing number, at most kMaxSegments), then each plain `name=` value with its encoded
// words decoded. Known charsets: utf-8, us-ascii (kept as bytes) and iso-8859-1 / windows-1252
// (converted to UTF-8). A value that cannot be decoded (unknown charset, bad %-escape) is
// appended as sent, so a pattern still sees it.
void param_values(std::string_view value, std::string_view name, std::vector<std::string>& out);
inline constexpr size_t kMaxSegments = 64;

// The first plain `name=` value (quoted or not), unquoted but not decoded: for values that are
// tokens, not text (boundary). Empty when absent.
std::string plain_param(std::string_view value, std::string_view name);

// "charset'language'%xx..." (RFC 2231 4) into `out`. False when it is not of that form, an
// escape is bad or the charset is not one of the known ones.
bool decode_rfc2231(std::string_view extended, std::string& out);

// `text` with each decodable encoded word (=?charset?B|Q?...?=, RFC 2047) decoded and the
// white space between two adjacent encoded words removed. Undecodable words stay as sent.
std::string decode_rfc2047(std::string_view text);

// Characters of a UTF-8 string: bytes that are not continuation bytes (10xxxxxx).
size_t count_chars(std::string_view utf8);

}  // namespace sg::smtp::mime

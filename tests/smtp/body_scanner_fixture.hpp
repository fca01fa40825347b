#pragma once
// What the BodyScanner tests share: a scan with chosen cut points, events shown as readable
// strings, and a multipart message with nested parts and attachments.
#include <algorithm>
#include <catch2/catch.hpp>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "smtp/body_scanner.hpp"

namespace sg::smtp::body_test {

inline std::span<const uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// "kind@offset=value text"
inline std::string show(const BodyEvent& e) {
  std::string s = std::string(to_string(e.kind)) + "@" + std::to_string(e.offset) + "=" +
                  std::to_string(e.value);
  if (!e.text.empty()) s += " " + e.text;
  return s;
}

inline std::vector<std::string> show(const std::vector<BodyEvent>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(show(e));
  return out;
}

// Only the events of the given kinds, shown.
inline std::vector<std::string> only(const std::vector<BodyEvent>& events,
                                     std::initializer_list<BodyEventKind> kinds) {
  std::vector<std::string> out;
  for (const auto& e : events)
    if (std::find(kinds.begin(), kinds.end(), e.kind) != kinds.end()) out.push_back(show(e));
  return out;
}

struct Scan {
  std::vector<BodyEvent> events;
  size_t consumed = 0;
  uint64_t size = 0;
  uint32_t to_fields = 0;
  uint64_t longest_header = 0, longest_body = 0;
};

// Feeds `msg` cut at the given positions (ascending), then finishes.
inline Scan scan(std::string_view msg, const std::vector<size_t>& cuts = {},
                 BodyLimits limits = {}) {
  BodyScanner s(limits);
  Scan r;
  size_t from = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(msg.size());
  for (const size_t to : ends) {
    const size_t n = s.feed(bytes_of(msg.substr(from, to - from)), r.events);
    r.consumed += n;
    if (n < to - from) break;  // the DATA body ended: the rest is not message
    from = to;
  }
  s.finish(r.events);
  r.size = s.size();
  r.to_fields = s.to_fields();
  r.longest_header = s.longest_header_line();
  r.longest_body = s.longest_body_line();
  return r;
}

inline std::string at(std::string_view msg, std::string_view needle) {
  const size_t p = msg.find(needle);
  REQUIRE(p != std::string_view::npos);
  return std::to_string(p);
}

inline constexpr BodyLimits kBdat{
    .max_header_line = 0, .max_body_line = 0, .max_mime_depth = 8, .dot_terminated = false};

// A multipart/mixed message: a text part, a nested multipart/alternative, two attachments and a
// forwarded message with an attachment of its own.
inline const std::string kMultipart =
    "From: a@example.org\r\n"
    "To: b@example.org\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed;\r\n"
    "\tboundary=\"outer\"\r\n"
    "\r\n"
    "preamble\r\n"
    "--outer\r\n"
    "Content-Type: multipart/alternative; boundary=inner\r\n"
    "\r\n"
    "--inner\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "hello\r\n"
    "--inner\r\n"
    "Content-Type: text/html\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "<p>hello</p>\r\n"
    "--inner--\r\n"
    "--outer\r\n"
    "Content-Type: application/octet-stream; name=\"report.exe\"\r\n"
    "Content-Disposition: attachment;\r\n"
    " filename=\"report.exe\"\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n"
    "--outer\r\n"
    "Content-Type: application/pdf\r\n"
    "Content-Disposition: attachment; filename*=utf-8''r%C3%A9sum%C3%A9.pdf\r\n"
    "\r\n"
    "%PDF-1.4\r\n"
    "--outer\r\n"
    "Content-Type: message/rfc822\r\n"
    "\r\n"
    "Subject: forwarded\r\n"
    "To: x@example.org\r\n"
    "Content-Type: application/zip; name=inner.zip\r\n"
    "\r\n"
    "PK\r\n"
    "--outer--\r\n"
    "epilogue\r\n"
    ".\r\n";

}  // namespace sg::smtp::body_test

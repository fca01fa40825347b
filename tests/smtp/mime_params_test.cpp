// MIME header values: the leading token, parameters, RFC 2231 and RFC 2047 decoding on their own
// (the body scanner tests show them inside messages).
#include "smtp/mime_params.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

using namespace sg::smtp::mime;

TEST_CASE("leading token of a field value", "[mime_params][body_scanner]") {
  CHECK(leading_token(" multipart/mixed; boundary=x") == "multipart/mixed");
  CHECK(leading_token("base64") == "base64");
  CHECK(leading_token("\tbase64 (a comment)") == "base64");
  CHECK(leading_token("attachment;filename=a") == "attachment");
  CHECK(leading_token("") == "");
}

TEST_CASE("plain parameters: quoted, token, first one wins, not decoded",
          "[mime_params][body_scanner]") {
  CHECK(plain_param("multipart/mixed; boundary=\"a b\"", "boundary") == "a b");
  CHECK(plain_param("multipart/mixed; BOUNDARY=tok ; x=y", "boundary") == "tok");
  CHECK(plain_param("multipart/mixed; boundary=one; boundary=two", "boundary") == "one");
  CHECK(plain_param("multipart/mixed; boundary=\"=?utf-8?q?x?=\"", "boundary") == "=?utf-8?q?x?=");
  CHECK(plain_param("multipart/mixed; boundary*=utf-8''x", "boundary").empty());
  CHECK(plain_param("multipart/mixed", "boundary").empty());
  CHECK(plain_param("multipart/mixed; boundary=\"unterminated", "boundary") == "unterminated");
  CHECK(plain_param("a; boundary=\"x\\\"y\"", "boundary") == "x\"y");
}

namespace {

struct Decode2231 {
  const char* in;
  bool ok;
  const char* out;
};

}  // namespace

TEST_CASE("RFC 2231 extended values", "[mime_params][body_scanner]") {
  const auto v = GENERATE(values<Decode2231>({
      {"utf-8''a%20b.txt", true, "a b.txt"},
      {"UTF-8'en'%E2%82%AC.txt", true, "\xe2\x82\xac.txt"},
      {"''plain", true, "plain"},
      {"us-ascii''x", true, "x"},
      {"iso-8859-1''%E9", true, "\xc3\xa9"},
      {"windows-1252''%FC", true, "\xc3\xbc"},
      {"utf-8''%4", false, ""},
      {"utf-8''%zz", false, ""},
      {"x-mac-roman''a", false, ""},
      {"no quotes at all", false, ""},
      {"utf-8'only one", false, ""},
  }));
  INFO(v.in);
  std::string out;
  CHECK(decode_rfc2231(v.in, out) == v.ok);
  if (v.ok) CHECK(out == v.out);
}

namespace {

struct Decode2047 {
  const char* in;
  const char* out;
};

}  // namespace

TEST_CASE("RFC 2047 encoded words", "[mime_params][body_scanner]") {
  const auto v = GENERATE(values<Decode2047>({
      {"plain text", "plain text"},
      {"=?utf-8?B?ZXZpbC5leGU=?=", "evil.exe"},
      {"=?utf-8?b?ZXZpbC5leGU?=", "evil.exe"},  // padding left out
      {"=?UTF-8?Q?a_b=2Eexe?=", "a b.exe"},
      {"=?iso-8859-1?q?=E9?=", "\xc3\xa9"},
      {"=?utf-8*en?q?x?=", "x"},  // RFC 2231 language in an encoded word
      {"=?utf-8?q?a?= =?utf-8?q?b?=", "ab"},
      {"=?utf-8?q?a?=\t =?utf-8?q?b?=", "ab"},
      {"=?utf-8?q?a?= x =?utf-8?q?b?=", "a x b"},
      {"pre =?utf-8?q?a?= post", "pre a post"},
      {"=?utf-8?x?a?=", "=?utf-8?x?a?="},      // unknown encoding
      {"=?utf-8?B?!!!?=", "=?utf-8?B?!!!?="},  // not base64
      {"=?utf-8?Q?=G1?=", "=?utf-8?Q?=G1?="},  // bad escape
      {"=?utf-8?q?unterminated", "=?utf-8?q?unterminated"},
      {"=?koi8-r?q?a?=", "=?koi8-r?q?a?="},
      {"=?", "=?"},
      {"=?utf-8?", "=?utf-8?"},
  }));
  INFO(v.in);
  CHECK(decode_rfc2047(v.in) == v.out);
}

TEST_CASE("parameter values in the order extended, continued, plain",
          "[mime_params][body_scanner]") {
  std::vector<std::string> out;
  param_values(
      "attachment; filename=\"c.txt\"; filename*1=\"b.exe\"; filename*0*=utf-8''%61; "
      "filename*=utf-8''d.pdf",
      "filename", out);
  CHECK(out == std::vector<std::string>{"d.pdf", "ab.exe", "c.txt"});
  out.clear();
  // A gap ends the continuation; segments past it are ignored like clients do.
  param_values("attachment; filename*0=a; filename*2=c", "filename", out);
  CHECK(out == std::vector<std::string>{"a"});
  out.clear();
  param_values("attachment; filename*1=b", "filename", out);
  CHECK(out.empty());
  out.clear();
  // A name that is not filename*N: never matches.
  param_values("attachment; filename*x=a; filenames=b", "filename", out);
  CHECK(out.empty());
}

TEST_CASE("characters of a UTF-8 name", "[mime_params][body_scanner]") {
  CHECK(count_chars("") == 0);
  CHECK(count_chars("abc") == 3);
  CHECK(count_chars("r\xc3\xa9sum\xc3\xa9") == 6);
  CHECK(count_chars("\xe2\x82\xac") == 1);
  CHECK(count_chars("\xf0\x9f\x98\x80x") == 2);
}

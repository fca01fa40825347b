#include "probe/report.hpp"

#include <catch2/catch.hpp>

using namespace sg::probe;

namespace {

Transcript parse(const char* text) {
  auto t = parse_transcript(text);
  if (!t) FAIL("bad transcript: " << t.error());
  return *t;
}

ProbeResult result_of(Transcript path, const Transcript* direct = nullptr) {
  ProbeResult r;
  r.version = "0.1.0";
  r.path = std::move(path);
  r.path.target = r.path.address = "198.18.2.1:25";
  if (direct) r.direct = *direct;
  r.classification = classify(r.path, r.direct ? &*r.direct : nullptr);
  return r;
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

constexpr const char* kClean = R"(
  S: 220 mx.example.org ESMTP Postfix 2.0
  C: EHLO client.example.org
  S: 250 mx.example.org
  C: goodmorning
  S: 500 5.5.2 Error: command not recognized
  C: NOOP
  S: 250 2.0.0 Ok
  C: QUIT
  S: 221 2.0.0 Bye
)";

constexpr const char* kMasked = R"(
  S: 220 *****************************2*0
  C: EHLO client.example.org
  S: 500 5.5.2 Error: command not recognized
  C: HELO client.example.org
  S: 250 mx.example.org
  C: goodmorning
  S: 500 5.5.2 Error: command not recognized
  C: NOOP
  S: 250 2.0.0 Ok
  C: QUIT
  S: 221 2.0.0 Bye
)";

}  // namespace

TEST_CASE("exit status: 0 nothing seen, 1 inspection, 2 could not probe") {
  CHECK(exit_code(result_of(parse(kClean))) == 0);
  CHECK(exit_code(result_of(parse(kMasked))) == 1);

  Transcript refused;
  refused.target = "198.18.2.1:26";
  refused.failure = "cannot connect to 198.18.2.1:26: Connection refused";
  ProbeResult r = result_of(refused);
  CHECK(exit_code(r) == 2);
  CHECK(probe_error(r) == refused.failure);

  SECTION("a direct side that cannot be probed: 2, unless the path shows inspection anyway") {
    Transcript no_direct;
    no_direct.failure = "cannot connect to 198.18.2.1:2525: timed out";
    CHECK(exit_code(result_of(parse(kClean), &no_direct)) == 2);
    CHECK(probe_error(result_of(parse(kClean), &no_direct)) ==
          "direct: cannot connect to 198.18.2.1:2525: timed out");
    CHECK(exit_code(result_of(parse(kMasked), &no_direct)) == 1);
  }
  SECTION("a dialogue that ends early without evidence: 2") {
    const ProbeResult early = result_of(parse(R"(
      S: 220 mx.example.org ESMTP
      C: EHLO client.example.org
      !: timeout ehlo no complete reply within 2000 ms
    )"));
    CHECK(exit_code(early) == 2);
    CHECK(has(probe_error(early), "the dialogue ended early: At ehlo: timeout"));
  }
}

TEST_CASE("the text report: verdict, numbered findings with evidence, symptoms, fix, dialogue") {
  const std::string text = render_text(result_of(parse(kMasked)));
  CHECK(has(text, "smtpguard-probe 0.1.0\ntarget:  198.18.2.1:25\n"));
  CHECK(has(text, "RESULT: SMTP inspection found (2 findings, exit status 1)\n"));
  CHECK(has(text, "[1] Banner masked: asterisks except the digits 2 and 0"));
  CHECK(has(text, "    evidence:\n      S: 220 *****************************2*0\n"));
  CHECK(has(text,
            "    symptoms:\n      - You cannot receive Internet-based e-mail messages. "
            "[KB 320027]\n      - You cannot send or receive e-mail to or from specific "
            "domains. [KB\n        320027]\n"));
  CHECK(has(text, "    fix: Cisco ASA: 'policy-map type inspect esmtp MAP' > 'parameters' >"));
  CHECK(has(text, "[2] EHLO refused, HELO accepted"));
  CHECK(has(text, "Dialogue through the path (198.18.2.1:25):\n  S: 220 ****"));
  for (size_t start = 0, end; (end = text.find('\n', start)) != std::string::npos;
       start = end + 1) {
    const std::string line = text.substr(start, end - start);
    // Prose wraps at 78 columns; only quoted dialogue lines may be longer.
    if (line.find("S: ") == std::string::npos && line.find("C: ") == std::string::npos)
      CHECK(line.size() <= 78);
  }
  SECTION("--no-transcript leaves the dialogue out") {
    TextOptions o;
    o.transcripts = false;
    CHECK_FALSE(has(render_text(result_of(parse(kMasked)), o), "Dialogue through the path"));
  }
  SECTION("nothing seen") {
    const std::string clean = render_text(result_of(parse(kClean)));
    CHECK(has(clean, "RESULT: no SMTP inspection visible (exit status 0)\n"));
    CHECK(has(clean, "Notes:\n  - No SMTP inspection visible."));
  }
}

TEST_CASE("the JSON report") {
  const std::string json = render_json(result_of(parse(kMasked)));
  CHECK(has(json, "\"schema\": \"smtpguard-probe-report/1\""));
  CHECK(has(json, "\"result\": \"inspection\""));
  CHECK(has(json, "\"exit_code\": 1"));
  CHECK(has(json, "\"error\": null"));
  CHECK(has(json, "\"id\": \"banner_masked\""));
  CHECK(has(json, "\"inspection\": true"));
  CHECK(has(json, "\"confidence\": \"certain\""));
  CHECK(has(json,
            "{\"id\": \"ehlo_unrecognized\", \"text\": \"EHLO is answered 'Command "
            "unrecognized' or 'OK'.\", \"source\": \"KB 320027\"}"));
  CHECK(has(json,
            "{\"step\": \"helo\", \"sent\": \"HELO client.example.org\", \"status\": "
            "\"ok\", \"error\": null, \"elapsed_ms\": 0, \"reply\": {\"code\": 250, "
            "\"lines\": [\"250 mx.example.org\"], \"truncated\": false}}"));
  CHECK(has(json, "\"direct\": null"));
  // Balanced brackets outside strings: a cheap well-formedness check (the integration test
  // validates real reports against src/probe/report.schema.json).
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : json) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    if (c == '{' || c == '[') ++depth;
    if (c == '}' || c == ']') --depth;
    CHECK(depth >= 0);
  }
  CHECK(depth == 0);
  CHECK_FALSE(in_string);
}

TEST_CASE("JSON strings survive whatever a server sends") {
  CHECK(json_string("220 \"quoted\" \\ back") == "\"220 \\\"quoted\\\" \\\\ back\"");
  CHECK(json_string(std::string("caf\xe9\x01\r\n\t", 8)) == "\"caf\\u00e9\\u0001\\r\\n\\t\"");
  CHECK(json_string("") == "\"\"");
}

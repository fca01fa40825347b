#include "probe/transcript.hpp"

#include <catch2/catch.hpp>

using namespace sg::probe;

TEST_CASE("the readable transcript names each step by its command") {
  const auto t = parse_transcript(R"(
    # Postfix through smtpguard's modern profile
    S: 220 mx.example.org ESMTP Postfix 2.0
    C: EHLO client.example.org
    S: 250-mx.example.org
    S: 250 STARTTLS
    C: goodmorning
    S: 500 5.5.2 Error: command not recognized
    C: NOOP
    S: 250 2.0.0 Ok
    C: STARTTLS
    S: 220 2.0.0 Ready to start TLS
    T: ok TLSv1.3 TLS_AES_256_GCM_SHA384
    C: EHLO client.example.org
    S: 250 mx.example.org
    C: RSET
    S: 250 2.0.0 Ok
    C: QUIT
    !: closed quit connection closed by the peer
  )");
  REQUIRE(t);
  std::vector<Step> steps;
  for (const Exchange& e : t->exchanges) steps.push_back(e.step);
  CHECK(steps == std::vector<Step>{Step::kBanner, Step::kEhlo, Step::kUnknownVerb, Step::kNoop,
                                   Step::kStarttls, Step::kTlsHandshake, Step::kEhloTls,
                                   Step::kRset, Step::kQuit});
  REQUIRE(t->tls);
  CHECK(t->tls->ok);
  CHECK(t->tls->protocol == "TLSv1.3");
  CHECK(t->reply(Step::kEhlo)->lines.size() == 2);
  CHECK(t->reply(Step::kBanner)->code == 220);
  CHECK(t->find(Step::kQuit)->status == StepStatus::kClosed);
  CHECK_FALSE(t->find(Step::kQuit)->reply);

  SECTION("formatting and parsing again gives the same transcript") {
    const std::string text = format_transcript(*t);
    const auto again = parse_transcript(text);
    REQUIRE(again);
    CHECK(format_transcript(*again) == text);
    CHECK(text.find("T: ok TLSv1.3 TLS_AES_256_GCM_SHA384\n") != std::string::npos);
    CHECK(text.find("!: closed quit connection closed by the peer\n") != std::string::npos);
  }
}

TEST_CASE("a banner that never came, and malformed transcripts") {
  const auto t = parse_transcript("!: timeout banner no complete reply within 2000 ms\n");
  REQUIRE(t);
  REQUIRE(t->exchanges.size() == 1);
  CHECK(t->exchanges[0].step == Step::kBanner);
  CHECK(t->exchanges[0].status == StepStatus::kTimeout);

  CHECK_FALSE(parse_transcript("C: EHLO x\nC: NOOP\n"));         // no reply between
  CHECK_FALSE(parse_transcript("S: 250-a\n"));                   // unfinished reply
  CHECK_FALSE(parse_transcript("X: what\n"));                    // unknown tag
  CHECK_FALSE(parse_transcript("S: 220 a\nS: 250 b\n"));         // nobody asked
  CHECK_FALSE(parse_transcript("S: 220 a\n!: ok quit fine\n"));  // ok is no failure
}

TEST_CASE("step_of_command") {
  CHECK(step_of_command("ehlo x", false) == Step::kEhlo);
  CHECK(step_of_command("EHLO x", true) == Step::kEhloTls);
  CHECK(step_of_command("goodmorning", false) == Step::kUnknownVerb);
  CHECK(step_of_command("*", false) == Step::kAuthCancel);
  CHECK(step_of_command("X-LINK2STATE", false) == Step::kDeepVerb);
  CHECK(step_of_command("MAIL FROM:<>", false) == Step::kMail);
}

TEST_CASE("unprintable bytes are shown as \\xNN") {
  Transcript t;
  Exchange e;
  e.reply = Reply{220, {std::string("220 caf\xe9\x01", 9)}, false};
  t.exchanges.push_back(e);
  CHECK(format_transcript(t) == "S: 220 caf\\xE9\\x01\n");
}

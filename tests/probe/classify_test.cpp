#include "probe/classify.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "probe/reply_parser.hpp"

using namespace sg::probe;

namespace {

Transcript parse(const char* text) {
  auto t = parse_transcript(text);
  if (!t) FAIL("bad transcript: " << t.error());
  return *t;
}

std::vector<std::string> ids(const Classification& c) {
  std::vector<std::string> out;
  for (const Finding& f : c.findings) out.emplace_back(info(f.kind).id);
  std::sort(out.begin(), out.end());
  return out;
}

const Finding& need(const Classification& c, FindingKind k) {
  const Finding* f = c.find(k);
  if (!f) FAIL("no finding " << info(k).id);
  return *f;
}

bool cites(const Finding& f, const std::string& line) {
  return std::find(f.evidence.begin(), f.evidence.end(), line) != f.evidence.end();
}

// Postfix's own dialogue (the lab's server, seen without any gateway).
constexpr const char* kPostfixDirect = R"(
  S: 220 mx.example.org ESMTP Postfix 2.0
  C: EHLO client.example.org
  S: 250-mx.example.org
  S: 250-PIPELINING
  S: 250-SIZE 67108864
  S: 250-VRFY
  S: 250-ETRN
  S: 250-STARTTLS
  S: 250-AUTH PLAIN LOGIN
  S: 250-ENHANCEDSTATUSCODES
  S: 250-8BITMIME
  S: 250-DSN
  S: 250-SMTPUTF8
  S: 250 CHUNKING
  C: goodmorning
  S: 500 5.5.2 Error: command not recognized
  C: NOOP
  S: 250 2.0.0 Ok
  C: STARTTLS
  S: 220 2.0.0 Ready to start TLS
  T: ok TLSv1.3 TLS_AES_256_GCM_SHA384
  C: EHLO client.example.org
  S: 250-mx.example.org
  S: 250-PIPELINING
  S: 250-SIZE 67108864
  S: 250-VRFY
  S: 250-ETRN
  S: 250-AUTH PLAIN LOGIN
  S: 250-ENHANCEDSTATUSCODES
  S: 250-8BITMIME
  S: 250-DSN
  S: 250-SMTPUTF8
  S: 250 CHUNKING
  C: RSET
  S: 250 2.0.0 Ok
  C: QUIT
  S: 221 2.0.0 Bye
)";

}  // namespace

TEST_CASE("the banners mail admins look for") {
  struct Vector {
    const char* banner;
    BannerMask mask;
  };
  const auto v = GENERATE(values<Vector>({
      // KB 320027, literally: PIX 5.1+ (no separator after the code: Cisco masks it too)
      {"220*******************************************************0*2******0*****************"
       "******",
       BannerMask::kPix51},
      {"2002*******2***0*00", BannerMask::kPix51},
      {"220*******************************0*2******0***********", BannerMask::kPix51},
      // early PIX
      {"220 SMTP/cmap_________________________________________ read", BannerMask::kCmap},
      {"220 SMTP/cmap_____________________________________read", BannerMask::kCmap},
      // smtpguard's pix-mailguard and pix-legacy on the lab's banner
      {"220 *********************************2*0", BannerMask::kPix51},
      {"220 **********************************", BannerMask::kAsterisks},
      {"220-*****", BannerMask::kAsterisks},
      // real banners
      {"220 mx.example.org ESMTP Postfix 2.0", BannerMask::kNone},
      {"220 2.0.0 Ready", BannerMask::kNone},
      {"220 *", BannerMask::kNone},
      {"220 20", BannerMask::kNone},
      {"554 5.7.1 No SMTP service here", BannerMask::kNone},
  }));
  INFO(v.banner);
  CHECK(banner_mask(v.banner) == v.mask);
}

TEST_CASE("masking a banner the way PIX 5.1+ and 4.x do") {
  const std::string banner = "220 mx.example.org ESMTP Postfix 2.0";
  CHECK(mask_banner_line(banner, false) == "220 *****************************2*0");
  CHECK(mask_banner_line(banner, true) == "220 ********************************");
  // A Cisco masks the separator too; smtpguard keeps it (Postfix would wait for ever).
  CHECK(same_mask("220******************************2*0", mask_banner_line(banner, false)));
  CHECK(same_mask("220 *****************************2*0", mask_banner_line(banner, false)));
  CHECK_FALSE(same_mask("220 **********************************", mask_banner_line(banner, false)));
}

TEST_CASE("a reply that quotes the command as X's") {
  ReplyParser p;
  p.feed("500 5.3.3 Unrecognized command 'XXXXXXXXXXX'\r\n");
  const Reply exchange = p.take();
  CHECK(echoes_mask("goodmorning", exchange));
  CHECK_FALSE(echoes_mask("NOOP", exchange));
  CHECK_FALSE(echoes_mask("XXXXXXXXXXX", exchange));  // we sent X's ourselves
  p.feed("500 5.5.2 Error: command not recognized\r\n");
  CHECK_FALSE(echoes_mask("goodmorning", p.take()));
}

TEST_CASE("recorded transcripts: what each kind of gateway looks like") {
  struct Vector {
    const char* description;
    const char* path;
    const char* direct;  // nullptr: no --direct
    std::vector<std::string> expected;
    bool inspection;
  };
  const auto v = GENERATE(values<Vector>({
      {"no gateway: Postfix as it is", kPostfixDirect, nullptr, {}, false},
      {"no gateway, compared with itself", kPostfixDirect, kPostfixDirect, {}, false},
      {"KB 320027: PIX 5.1+ banner, EHLO refused, HELO accepted",
       R"(S: 220*******************************************************0*2******0*********
          C: EHLO client.example.org
          S: 500 5.5.1 Command unrecognized
          C: HELO client.example.org
          S: 250 mail.example.com Hello
          C: goodmorning
          S: 500 5.5.1 Command unrecognized
          C: NOOP
          S: 250 OK
          C: RSET
          S: 250 OK
          C: QUIT
          S: 221 closing)",
       nullptr,
       {"banner_masked", "ehlo_refused"},
       true},
      {"KB 320027: early PIX cmap banner, goodmorning answered OK like NOOP",
       R"(S: 220 SMTP/cmap_________________________________________ read
          C: EHLO client.example.org
          S: 250 OK
          C: HELO client.example.org
          S: 250 mail.example.com
          C: goodmorning
          S: 250 OK
          C: NOOP
          S: 250 OK
          C: RSET
          S: 250 OK
          C: QUIT
          S: 221 closing)",
       nullptr,
       {"banner_cmap", "ehlo_answered_ok", "unknown_command_ok"},
       true},
      {"Cisco ESA note: 250 XXXXXXXA, then 500 #5.5.1 command not recognized after STARTTLS",
       R"(S: 220 esa.example.com ESMTP
          C: EHLO client.example.org
          S: 250-esa.example.com
          S: 250-8BITMIME
          S: 250-SIZE 14680064
          S: 250 XXXXXXXA
          C: goodmorning
          S: 500 #5.5.1 command not recognized
          C: NOOP
          S: 250 OK
          C: STARTTLS
          S: 500 #5.5.1 command not recognized
          C: RSET
          S: 250 OK
          C: QUIT
          S: 221 Bye)",
       nullptr,
       {"ehlo_keyword_masked", "starttls_hidden", "starttls_refused"},
       true},
      {"Exchange behind a PIX 5.1+: it quotes the masked command",
       R"(S: 220 *****************************************2*****0****
          C: EHLO client.example.org
          S: 500 5.3.3 Unrecognized command 'XXXX'
          C: HELO client.example.org
          S: 250 ex.example.com Hello [198.18.1.1]
          C: goodmorning
          S: 500 5.3.3 Unrecognized command 'XXXXXXXXXXX'
          C: NOOP
          S: 250 2.0.0 OK
          C: RSET
          S: 250 2.0.0 Resetting
          C: QUIT
          S: 221 2.0.0 Closing connection.)",
       nullptr,
       {"banner_masked", "command_masked", "ehlo_refused"},
       true},
      {"Exchange 2003 behind smtpguard modern: X-LINK2STATE and XEXCH50 masked in EHLO",
       R"(S: 220 ex.example.com Microsoft ESMTP MAIL Service, Version: 6.0.3790.3959 ready
          C: EHLO client.example.org
          S: 250-ex.example.com Hello [198.18.1.1]
          S: 250-XXXA
          S: 250-SIZE
          S: 250-ETRN
          S: 250-PIPELINING
          S: 250-DSN
          S: 250-ENHANCEDSTATUSCODES
          S: 250-8bitmime
          S: 250-BINARYMIME
          S: 250-CHUNKING
          S: 250-VRFY
          S: 250-XXXXXXXXXXXA
          S: 250-XXXXXXA
          S: 250 OK
          C: goodmorning
          S: 500 5.3.3 Unrecognized command 'goodmorning'
          C: NOOP
          S: 250 2.0.0 OK
          C: RSET
          S: 250 2.0.0 Resetting
          C: QUIT
          S: 221 2.0.0 ex.example.com Service closing transmission channel)",
       nullptr,
       {"ehlo_keyword_masked", "exchange_verbs_blocked"},
       true},
      {"STARTTLS accepted, handshake broken on the way",
       R"(S: 220 mx.example.org ESMTP Postfix 2.0
          C: EHLO client.example.org
          S: 250-mx.example.org
          S: 250 STARTTLS
          C: goodmorning
          S: 500 5.5.2 Error: command not recognized
          C: NOOP
          S: 250 2.0.0 Ok
          C: STARTTLS
          S: 220 2.0.0 Ready to start TLS
          T: failed error:0A00010B:SSL routines::wrong version number)",
       nullptr,
       {"tls_failed"},
       true},
      {"the dialogue ends early and there is nothing to compare with",
       R"(S: 220 mx.example.org ESMTP Postfix 2.0
          C: EHLO client.example.org
          S: 250 mx.example.org
          C: goodmorning
          !: closed unknown_verb connection closed by the peer)",
       nullptr,
       {"session_incomplete"},
       false},
  }));
  INFO(v.description);
  const Transcript path = parse(v.path);
  const Transcript direct = v.direct ? parse(v.direct) : Transcript{};
  const Classification c = classify(path, v.direct ? &direct : nullptr);
  CHECK(ids(c) == v.expected);
  CHECK(c.inspection() == v.inspection);
  for (const Finding& f : c.findings) {
    INFO(info(f.kind).id);
    CHECK_FALSE(f.detail.empty());
    CHECK_FALSE(f.evidence.empty());
  }
}

TEST_CASE("KB 320027's test: 'goodmorning' answered OK with exactly NOOP's reply") {
  const Classification c = classify(parse(R"(
    S: 220 ***********************************
    C: EHLO client.example.org
    S: 250 2.0.0 Ok
    C: HELO client.example.org
    S: 250 mx.example.org
    C: goodmorning
    S: 250 2.0.0 Ok
    C: NOOP
    S: 250 2.0.0 Ok
    C: QUIT
    S: 221 2.0.0 Bye
  )"),
                                    nullptr);
  CHECK(ids(c) ==
        std::vector<std::string>{"banner_asterisks", "ehlo_answered_ok", "unknown_command_ok"});
  const Finding& ok = need(c, FindingKind::kUnknownCommandOk);
  CHECK(ok.confidence == Confidence::kCertain);
  CHECK(ok.detail.find("exactly the reply NOOP gets") != std::string::npos);
  CHECK(cites(ok, "C: goodmorning"));
  CHECK(cites(ok, "S: 250 2.0.0 Ok"));
  CHECK(need(c, FindingKind::kEhloAnsweredOk).confidence == Confidence::kCertain);
  // Without the server's banner, all asterisks could also be 5.1+ on a banner without 2 or 0.
  CHECK(need(c, FindingKind::kBannerAsterisks).confidence == Confidence::kLikely);
  // The symptoms and the fix come with the kind.
  const FindingInfo& fi = info(FindingKind::kUnknownCommandOk);
  CHECK(std::find(fi.symptoms.begin(), fi.symptoms.end(), Symptom::kEhloUnrecognized) !=
        fi.symptoms.end());
  CHECK(std::string(fi.fix).find("no fixup protocol smtp 25") != std::string::npos);
}

TEST_CASE("ESA note: XXXXXXXA read as STARTTLS, the refusal mapped to the TLS symptom") {
  const Classification c = classify(parse(R"(
    S: 220 esa.example.com ESMTP
    C: EHLO client.example.org
    S: 250-esa.example.com
    S: 250-8BITMIME
    S: 250-SIZE 14680064
    S: 250 XXXXXXXA
    C: goodmorning
    S: 500 #5.5.1 command not recognized
    C: NOOP
    S: 250 OK
    C: STARTTLS
    S: 500 #5.5.1 command not recognized
  )"),
                                    nullptr);
  const Finding& hidden = need(c, FindingKind::kStarttlsHidden);
  CHECK(hidden.confidence == Confidence::kLikely);
  CHECK(cites(hidden, "S: 250 XXXXXXXA"));
  const Finding& refused = need(c, FindingKind::kStarttlsRefused);
  CHECK(cites(refused, "S: 500 #5.5.1 command not recognized"));
  const FindingInfo& fi = info(FindingKind::kStarttlsRefused);
  REQUIRE(fi.symptoms.size() == 1);
  CHECK(fi.symptoms[0] == Symptom::kNoTls);
  CHECK(std::string(fi.fix).find("allow-tls") != std::string::npos);
}

TEST_CASE("asa-default by elimination: three XXXXXXXA are STARTTLS, SMTPUTF8 and CHUNKING") {
  // Recorded through smtpguardd --profile asa-default in the lab.
  const char* asa = R"(
    S: 220 *****************************2*0
    C: EHLO client.example.org
    S: 250-mx.example.org
    S: 250-PIPELINING
    S: 250-SIZE 67108864
    S: 250-VRFY
    S: 250-ETRN
    S: 250-XXXXXXXA
    S: 250-AUTH PLAIN LOGIN
    S: 250-ENHANCEDSTATUSCODES
    S: 250-8BITMIME
    S: 250-DSN
    S: 250-XXXXXXXA
    S: 250 XXXXXXXA
    C: goodmorning
    S: 500 5.5.2 Error: command not recognized
    C: NOOP
    S: 250 2.0.0 Ok
    C: STARTTLS
    S: 500 5.5.2 Error: command not recognized
    C: RSET
    S: 250 2.0.0 Ok
    C: QUIT
    S: 221 2.0.0 Bye
  )";
  SECTION("without --direct: inferred") {
    const Classification c = classify(parse(asa), nullptr);
    CHECK(ids(c) == std::vector<std::string>{"banner_masked", "chunking_hidden",
                                             "ehlo_keyword_masked", "smtputf8_hidden",
                                             "starttls_hidden", "starttls_refused"});
    CHECK(need(c, FindingKind::kEhloKeywordMasked).detail.find("by elimination") !=
          std::string::npos);
    CHECK(need(c, FindingKind::kChunkingHidden).confidence == Confidence::kLikely);
    CHECK(need(c, FindingKind::kStarttlsRefused).confidence == Confidence::kLikely);
  }
  SECTION("with --direct: line by line, certain") {
    const Transcript direct = parse(kPostfixDirect);
    const Classification c = classify(parse(asa), &direct);
    CHECK(ids(c) == std::vector<std::string>{"banner_masked", "chunking_hidden",
                                             "ehlo_keyword_masked", "smtputf8_hidden",
                                             "starttls_hidden", "starttls_refused"});
    const Finding& masked = need(c, FindingKind::kEhloKeywordMasked);
    CHECK(masked.detail.find("XXXXXXXA = STARTTLS, XXXXXXXA = SMTPUTF8, XXXXXXXA = CHUNKING") !=
          std::string::npos);
    for (const Finding& f : c.findings) CHECK(f.confidence == Confidence::kCertain);
    CHECK(cites(need(c, FindingKind::kStarttlsHidden), "direct S: 250-STARTTLS"));
    CHECK(need(c, FindingKind::kBannerMasked).detail.find("compared with the direct banner") !=
          std::string::npos);
  }
}

TEST_CASE("pix-mailguard with --direct: everything EHLO would have offered is hidden") {
  const Transcript direct = parse(kPostfixDirect);
  const Classification c = classify(parse(R"(
    S: 220 *****************************2*0
    C: EHLO client.example.org
    S: 500 5.5.2 Error: command not recognized
    C: HELO client.example.org
    S: 250 mx.example.org
    C: goodmorning
    S: 500 5.5.2 Error: command not recognized
    C: NOOP
    S: 250 2.0.0 Ok
    C: RSET
    S: 250 2.0.0 Ok
    C: QUIT
    S: 221 2.0.0 Bye
  )"),
                                    &direct);
  CHECK(ids(c) == std::vector<std::string>{"8bitmime_hidden", "auth_hidden", "banner_masked",
                                           "chunking_hidden", "ehlo_refused", "pipelining_hidden",
                                           "smtputf8_hidden", "starttls_hidden"});
  CHECK(need(c, FindingKind::kEhloRefused).confidence == Confidence::kCertain);
  CHECK(need(c, FindingKind::kBannerMasked).confidence == Confidence::kCertain);
  // STARTTLS was never sent through the path, so no "refused": hidden says it all.
  CHECK_FALSE(c.find(FindingKind::kStarttlsRefused));
}

TEST_CASE("pix-legacy and PIX 4.x: all asterisks where the server's banner has 2 and 0") {
  const Transcript direct = parse(kPostfixDirect);
  const Classification c = classify(parse(R"(
    S: 220 ********************************
    C: EHLO client.example.org
    S: 250 2.0.0 Ok
    C: HELO client.example.org
    S: 250 mx.example.org
    C: goodmorning
    S: 250 2.0.0 Ok
    C: NOOP
    S: 250 2.0.0 Ok
    C: QUIT
    S: 221 2.0.0 Bye
  )"),
                                    &direct);
  const Finding& b = need(c, FindingKind::kBannerAsterisks);
  CHECK(b.confidence == Confidence::kCertain);
  CHECK(cites(b, "direct S: 220 mx.example.org ESMTP Postfix 2.0"));
  CHECK(need(c, FindingKind::kUnknownCommandOk).detail.find("the server itself refuses it") !=
        std::string::npos);
  CHECK(c.find(FindingKind::kStarttlsHidden));
}

TEST_CASE("a stripped keyword shows only next to the server's own reply") {
  const char* stripped = R"(
    S: 220 mx.example.org ESMTP Postfix 2.0
    C: EHLO client.example.org
    S: 250-mx.example.org
    S: 250-PIPELINING
    S: 250-SIZE 67108864
    S: 250-VRFY
    S: 250-ETRN
    S: 250-STARTTLS
    S: 250-ENHANCEDSTATUSCODES
    S: 250-8BITMIME
    S: 250-DSN
    S: 250 SMTPUTF8
    C: goodmorning
    S: 500 5.5.2 Error: command not recognized
    C: NOOP
    S: 250 2.0.0 Ok
    C: AUTH PLAIN
    S: 334
    C: *
    S: 501 5.7.0 Authentication aborted
  )";
  SECTION("alone, AUTH answering 334 gives it away") {
    const Classification c = classify(parse(stripped), nullptr);
    CHECK(ids(c) == std::vector<std::string>{"auth_hidden"});
    CHECK(need(c, FindingKind::kAuthHidden).detail.find("334") != std::string::npos);
  }
  SECTION("with --direct, every removed line is named") {
    const Transcript direct = parse(kPostfixDirect);
    const Classification c = classify(parse(stripped), &direct);
    CHECK(ids(c) ==
          std::vector<std::string>{"auth_hidden", "chunking_hidden", "ehlo_keyword_missing"});
    const Finding& missing = need(c, FindingKind::kEhloKeywordMissing);
    CHECK(missing.detail ==
          "Offered by the server directly, absent through the path: AUTH, "
          "CHUNKING.");
    CHECK(cites(missing, "direct S: 250-AUTH PLAIN LOGIN"));
  }
}

TEST_CASE("--deep against Postfix behind modern: masked, and honestly not visible") {
  const char* deep = R"(
    S: 220 mx.example.org ESMTP Postfix 2.0
    C: EHLO client.example.org
    S: 250 mx.example.org
    C: goodmorning
    S: 500 5.5.2 Error: command not recognized
    C: NOOP
    S: 250 2.0.0 Ok
    C: XEXCH50
    S: 500 5.5.2 Error: command not recognized
    C: X-LINK2STATE
    S: 500 5.5.2 Error: command not recognized
    C: QUIT
    S: 221 2.0.0 Bye
  )";
  const Transcript direct = parse(deep);
  const Classification c = classify(parse(deep), &direct);
  CHECK(c.findings.empty());
  CHECK_FALSE(c.inspection());
  const bool says_invisible = std::any_of(c.notes.begin(), c.notes.end(), [](const auto& n) {
    return n.find(
               "XEXCH50 and X-LINK2STATE got the reply the server gives any unknown "
               "command") != std::string::npos;
  });
  CHECK(says_invisible);
}

TEST_CASE("--deep through a PIX 4.x: the Exchange verbs become NOOPs") {
  const Classification c = classify(parse(R"(
    S: 220 mx.example.org ESMTP Postfix 2.0
    C: EHLO client.example.org
    S: 250 mx.example.org
    C: goodmorning
    S: 250 2.0.0 Ok
    C: NOOP
    S: 250 2.0.0 Ok
    C: XEXCH50
    S: 250 2.0.0 Ok
    C: X-LINK2STATE
    S: 250 2.0.0 Ok
  )"),
                                    nullptr);
  const Finding& f = need(c, FindingKind::kExchangeVerbsBlocked);
  CHECK(f.confidence == Confidence::kCertain);
  CHECK(f.detail.find("XEXCH50 was accepted with exactly NOOP's reply") != std::string::npos);
  CHECK(cites(f, "C: X-LINK2STATE"));
}

TEST_CASE("relay denied because AUTH cannot be offered") {
  const Classification c = classify(parse(R"(
    S: 220 *****************************2*0
    C: EHLO client.example.org
    S: 500 5.5.2 Error: command not recognized
    C: HELO client.example.org
    S: 250 mx.example.org
    C: goodmorning
    S: 500 5.5.2 Error: command not recognized
    C: NOOP
    S: 250 2.0.0 Ok
    C: MAIL FROM:<user@example.net>
    S: 250 2.1.0 Ok
    C: RCPT TO:<someone@example.com>
    S: 554 5.7.1 <someone@example.com>: Relay access denied
    C: RSET
    S: 250 2.0.0 Ok
  )"),
                                    nullptr);
  const Finding& f = need(c, FindingKind::kRelayRefused);
  CHECK(f.detail.find("AUTH is not available through the path") != std::string::npos);
  CHECK_FALSE(info(f.kind).inspection);
  CHECK(c.inspection());  // the banner and EHLO are
}

TEST_CASE("a connection the path ends where the server's own goes on") {
  const Transcript direct = parse(kPostfixDirect);
  const Classification c = classify(parse(R"(
    S: 220 mx.example.org ESMTP Postfix 2.0
    C: EHLO client.example.org
    S: 250-mx.example.org
    S: 250-PIPELINING
    S: 250-SIZE 67108864
    S: 250-VRFY
    S: 250-ETRN
    S: 250-STARTTLS
    S: 250-AUTH PLAIN LOGIN
    S: 250-ENHANCEDSTATUSCODES
    S: 250-8BITMIME
    S: 250-DSN
    S: 250-SMTPUTF8
    S: 250 CHUNKING
    C: goodmorning
    !: closed unknown_verb connection closed by the peer
  )"),
                                    &direct);
  CHECK(ids(c) == std::vector<std::string>{"session_dropped"});
  CHECK(cites(need(c, FindingKind::kSessionDropped),
              "direct S: 500 5.5.2 Error: command not recognized"));
}

TEST_CASE("a failed probe classifies nothing") {
  Transcript t;
  t.target = "198.18.2.1:26";
  t.failure = "cannot connect to 198.18.2.1:26: Connection refused";
  const Classification c = classify(t, nullptr);
  CHECK(c.findings.empty());
  CHECK(c.notes.empty());
}

TEST_CASE("every finding kind and symptom is described once") {
  for (size_t i = 0; i <= static_cast<size_t>(FindingKind::kRelayRefused); ++i) {
    const FindingInfo& fi = info(static_cast<FindingKind>(i));
    INFO(fi.id);
    CHECK_FALSE(fi.title.empty());
    CHECK_FALSE(fi.fix.empty());
    for (size_t j = 0; j < i; ++j) CHECK(info(static_cast<FindingKind>(j)).id != fi.id);
  }
  for (size_t i = 0; i <= static_cast<size_t>(Symptom::kSmtputf8); ++i) {
    const SymptomInfo& si = info(static_cast<Symptom>(i));
    CHECK_FALSE(si.text.empty());
    CHECK_FALSE(si.source.empty());
  }
}

#include "smtp/session.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

using namespace sg::smtp;

namespace {

// Records every event as one readable line.
struct Recorder : SessionSink {
  std::vector<std::string> events;
  std::vector<Verb> answered;  // commands the "gateway" answers
  CommandFate on_command(const CommandLine& c) override {
    events.push_back(std::string(c.kind == LineKind::kAuthResponse ? "AUTHRSP " : "CMD ") +
                     std::string(to_string(c.verb_id)) + (c.cut ? " cut" : "") +
                     (c.continuation ? " cont" : "") + " @" + std::to_string(c.pos));
    const bool answer = std::find(answered.begin(), answered.end(), c.verb_id) != answered.end();
    return answer ? CommandFate::kAnswered : CommandFate::kForwarded;
  }
  void on_gateway_reply(uint64_t pos, Verb v) override {
    events.push_back("GWREPLY " + std::string(to_string(v)) + " @" + std::to_string(pos));
  }
  void on_reply(const ReplyLine& r) override {
    events.push_back("REPLY " + std::to_string(r.code) + " " + std::string(to_string(r.kind)) +
                     " #" + std::to_string(r.index) + (r.last ? " last" : "") + " @" +
                     std::to_string(r.pos));
  }
  void on_body_end(uint64_t pos) override { events.push_back("BODYEND @" + std::to_string(pos)); }
  void on_tls_start() override { events.push_back("TLS"); }
  void on_anomaly(Dir, Anomaly a) override {
    events.push_back("ANOMALY " + std::string(to_string(a)));
  }
};

std::span<const uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Feeds one direction the way the inspector does: keeps what was not consumed.
struct Feeder {
  Session session;
  Recorder rec;
  std::string pending[2];
  uint64_t pos[2] = {0, 0};
  void feed(Dir d, std::string_view chunk) {
    auto& p = pending[static_cast<int>(d)];
    p += chunk;
    refeed(d);
    const Dir o = d == Dir::kClientToServer ? Dir::kServerToClient : Dir::kClientToServer;
    refeed(o);
    refeed(d);
  }
  void refeed(Dir d) {
    auto& p = pending[static_cast<int>(d)];
    size_t n = session.feed(d, pos[static_cast<int>(d)], bytes_of(p), rec);
    p.erase(0, n);
    pos[static_cast<int>(d)] += n;
  }
};

constexpr Dir C = Dir::kClientToServer;
constexpr Dir S = Dir::kServerToClient;

}  // namespace

TEST_CASE("EHLO reply lines carry kind, index and finality") {
  Feeder f;
  f.feed(S, "220-mx.example.org ESMTP\r\n220 second line\r\n");
  f.feed(C, "EHLO client.example.org\r\n");
  f.feed(S, "250-mx.example.org\r\n250-PIPELINING\r\n250 STARTTLS\r\n");
  f.feed(C, "QUIT\r\n");
  f.feed(S, "221 bye\r\n");
  CHECK(f.rec.events == std::vector<std::string>{
                            "REPLY 220 greeting #0 @0",
                            "REPLY 220 greeting #1 last @26",
                            "CMD EHLO @0",
                            "REPLY 250 ehlo_reply #0 @43",
                            "REPLY 250 ehlo_reply #1 @63",
                            "REPLY 250 ehlo_reply #2 last @79",
                            "CMD QUIT @25",
                            "REPLY 221 reply #0 last @93",
                        });
}

TEST_CASE("client bytes after DATA wait for the reply that says what they are") {
  Feeder f;
  f.feed(S, "220 mx\r\n");
  f.feed(C, "HELO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n");
  f.feed(C, "Subject: x\r\n\r\nHELP\r\n.\r\nQUIT\r\n");
  CHECK(f.session.next_kind(C) == LineKind::kAwaitReply);
  CHECK(f.pending[0] == "Subject: x\r\n\r\nHELP\r\n.\r\nQUIT\r\n");
  f.feed(S, "250 hi\r\n250 ok\r\n250 ok\r\n354 go\r\n");
  // The body was consumed as a body (HELP inside it is no command), QUIT after it is one.
  CHECK(f.pending[0].empty());
  const auto& e = f.rec.events;
  CHECK(std::count(e.begin(), e.end(), "CMD HELP @77") == 0);
  CHECK(e.back() == "CMD QUIT @89");
  CHECK(std::find(e.begin(), e.end(), "BODYEND @89") != e.end());
}

TEST_CASE("a rejected DATA turns the waiting bytes back into commands") {
  Feeder f;
  f.feed(S, "220 mx\r\n");
  f.feed(C, "DATA\r\nHELP\r\n");
  CHECK(f.session.next_kind(C) == LineKind::kAwaitReply);
  f.feed(S, "554 no valid recipients\r\n");
  CHECK(f.rec.events.back() == "CMD HELP @6");
}

TEST_CASE("end of data is recognised only as CRLF.CRLF, across any split") {
  const std::string body = "line\r\n..dot stuffed\r\n.x\r\n\n.\n\r.\r\n.\r\n";
  const size_t end = body.size();  // the only real end is the final CRLF.CRLF
  for (size_t cut = 0; cut <= body.size(); ++cut) {
    Feeder f;
    f.feed(S, "220 mx\r\n");
    f.feed(C, "DATA\r\n");
    f.feed(S, "354 go\r\n");
    f.feed(C, body.substr(0, cut));
    f.feed(C, body.substr(cut));
    INFO("cut at " << cut);
    CHECK(f.rec.events.back() == "BODYEND @" + std::to_string(6 + end));
  }
}

TEST_CASE("AUTH responses are never commands") {
  Feeder f;
  f.feed(S, "220 mx\r\n");
  f.feed(C, "AUTH LOGIN\r\n");
  f.feed(C, "dXNlcg==\r\n");
  f.feed(S, "334 VXNlcm5hbWU6\r\n");
  f.feed(S, "334 UGFzc3dvcmQ6\r\n");
  f.feed(C, "cGFzcw==\r\n");
  f.feed(S, "235 ok\r\n");
  f.feed(C, "NOOP\r\n");
  const auto& e = f.rec.events;
  CHECK(e[1] == "CMD AUTH @0");
  CHECK(e[3] == "AUTHRSP UNKNOWN @12");
  CHECK(e[5] == "AUTHRSP UNKNOWN @22");
  CHECK(e.back() == "CMD NOOP @32");
}

TEST_CASE("STARTTLS stops parsing after the 220") {
  Feeder f;
  f.feed(S, "220 mx\r\n");
  f.feed(C, "STARTTLS\r\n");
  f.feed(S, "220 go ahead\r\n\x16\x03\x01");
  CHECK(f.session.stopped());
  CHECK(f.session.next_kind(C) == LineKind::kPassthrough);
  CHECK(f.rec.events.back() == "TLS");
}

TEST_CASE("BDAT chunks are counted, not parsed") {
  Feeder f;
  f.feed(S, "220 mx\r\n");
  f.feed(C, "BDAT 12 LAST\r\nHELP\r\nQUIT\r\nNOOP\r\n");
  const auto& e = f.rec.events;
  CHECK(e[1] == "CMD BDAT @0");
  CHECK(e[2] == "CMD NOOP @26");
}

TEST_CASE("an overlong command is cut at the cap and continues") {
  Session s({.max_command_line = 16, .max_reply_line = 512});
  Recorder r;
  const std::string line = "VRFY " + std::string(30, 'a') + "\r\n";
  size_t n = s.feed(C, 0, bytes_of(line), r);
  CHECK(n == line.size());
  CHECK(r.events == std::vector<std::string>{"ANOMALY overlong_line", "CMD VRFY cut @0",
                                             "CMD UNKNOWN cut cont @16", "CMD UNKNOWN cont @32"});
}

TEST_CASE("pipelined replies pair with their commands in order") {
  Feeder f;
  f.feed(S, "220 mx\r\n");
  f.feed(C, "EHLO a\r\n");
  f.feed(S, "250-mx\r\n250 PIPELINING\r\n");
  f.feed(C, "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nEHLO again\r\n");
  f.feed(S, "250 ok\r\n250 ok\r\n250-mx\r\n250 SIZE\r\n");
  const auto& e = f.rec.events;
  CHECK(e[e.size() - 2] == "REPLY 250 ehlo_reply #0 @48");
  CHECK(e.back() == "REPLY 250 ehlo_reply #1 last @56");
}

TEST_CASE("a gateway-answered command gets its reply slot between the server's replies") {
  Feeder f;
  f.rec.answered = {Verb::kVrfy};
  f.feed(S, "220 mx\r\n");  // 8 bytes
  f.feed(C, "MAIL FROM:<a@example.org>\r\nVRFY x\r\nRCPT TO:<b@example.org>\r\nDATA\r\n");
  // Nothing answered yet: MAIL is still pending at the server.
  CHECK(std::count_if(f.rec.events.begin(), f.rec.events.end(),
                      [](const std::string& e) { return e.rfind("GWREPLY", 0) == 0; }) == 0);
  // The server never saw VRFY: it answers MAIL, RCPT and DATA.
  f.feed(S, "250 ok\r\n250 ok\r\n354 go\r\n");
  const auto& e = f.rec.events;
  const auto at = [&](const std::string& s) { return std::find(e.begin(), e.end(), s) - e.begin(); };
  // The reply to VRFY belongs right after the reply to MAIL (server offset 8 + 8 = 16).
  REQUIRE(at("GWREPLY VRFY @16") < static_cast<long>(e.size()));
  CHECK(at("REPLY 250 reply #0 last @8") < at("GWREPLY VRFY @16"));
  CHECK(at("GWREPLY VRFY @16") < at("REPLY 250 reply #0 last @16"));
  // DATA was paired with 354, not shifted by the missing reply: the body is a body.
  CHECK(f.session.next_kind(C) == LineKind::kDataBody);
}

TEST_CASE("an answered command with nothing pending is answered at once") {
  Feeder f;
  f.rec.answered = {Verb::kExpn, Verb::kData};
  f.feed(S, "220 mx\r\n");
  f.feed(C, "EXPN staff\r\n");
  CHECK(f.rec.events.back() == "GWREPLY EXPN @8");
  // An answered DATA changes no phase: what follows is a command again.
  f.feed(C, "DATA\r\nHELP\r\n");
  CHECK(f.session.next_kind(C) == LineKind::kCommand);
  CHECK(f.rec.events.back() == "CMD HELP @18");
  f.feed(S, "214 help\r\n");
  CHECK(f.rec.events.back() == "REPLY 214 reply #0 last @8");
}

TEST_CASE("an answered command sent before the greeting is answered after it") {
  Feeder f;
  f.rec.answered = {Verb::kVrfy};
  f.feed(C, "VRFY x\r\n");
  CHECK(f.rec.events.back() == "CMD VRFY @0");
  f.feed(S, "220-mx\r\n220 more\r\n");
  CHECK(f.rec.events.back() == "GWREPLY VRFY @18");
}

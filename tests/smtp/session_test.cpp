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
  std::vector<Verb> answered;     // commands the "gateway" answers
  std::vector<Verb> neutralised;  // commands the "gateway" X's
  CommandFate on_command(const CommandLine& c) override {
    events.push_back(std::string(c.kind == LineKind::kAuthResponse ? "AUTHRSP " : "CMD ") +
                     std::string(to_string(c.verb_id)) + (c.cut ? " cut" : "") +
                     (c.continuation ? " cont" : "") + " @" + std::to_string(c.pos));
    const bool answer = std::find(answered.begin(), answered.end(), c.verb_id) != answered.end();
    if (!c.continuation &&
        std::find(neutralised.begin(), neutralised.end(), c.verb_id) != neutralised.end())
      return CommandFate::kNeutralised;
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
  const auto at = [&](const std::string& s) {
    return std::find(e.begin(), e.end(), s) - e.begin();
  };
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

// The evasions below move the gateway's reading of the dialogue where a server's does not go:
// each test states what the servers do and checks the session follows, at every split point.

namespace {

// Feeds `client` cut once at every point (after the greeting and `server_first`), then
// `server_after` if any, and checks every cut gives the events of the whole.
std::vector<std::string> client_every_split(const std::string& client,
                                            const std::string& server_after = {},
                                            std::vector<Verb> neutralised = {},
                                            SessionLimits limits = {}) {
  std::vector<std::string> whole;
  for (size_t cut = 0; cut <= client.size(); ++cut) {
    Feeder f{Session(limits)};
    f.rec.neutralised = neutralised;
    f.feed(S, "220 mx\r\n");
    f.feed(C, client.substr(0, cut));
    f.feed(C, client.substr(cut));
    if (!server_after.empty()) f.feed(S, server_after);
    if (cut == 0) {
      whole = f.rec.events;
    } else {
      INFO("cut at " << cut);
      CHECK(f.rec.events == whole);
    }
  }
  return whole;
}

bool has(const std::vector<std::string>& events, const std::string& e) {
  return std::find(events.begin(), events.end(), e) != events.end();
}

}  // namespace

TEST_CASE("BDAT words split at any blank; LAST only as a whole word", "[session][bdat]") {
  // Postfix and Exim split BDAT's arguments on any white space: each line is a 12-byte chunk
  // (holding two command-like lines) followed by NOOP.
  const std::string line = GENERATE(as<std::string>{}, "BDAT\t12\tLAST\r\n", "bdat 12 last\r\n",
                                    "BDAT 12\vLAST \r\n", "BDAT\f012  \r\n", "BDAT 12 LaSt\t\r\n");
  INFO(line);
  const auto e = client_every_split(line + "HELP\r\nQUIT\r\nNOOP\r\n");
  CHECK(e == std::vector<std::string>{"REPLY 220 greeting #0 last @0", "CMD BDAT @0",
                                      "CMD NOOP @" + std::to_string(line.size() + 12)});
}

TEST_CASE("a BDAT line without one readable chunk size is reported, not guessed",
          "[session][bdat]") {
  // The server refuses these or reads a size of its own: the bytes after them are a chunk or
  // commands, which the session cannot know. It reports it and reads commands.
  const std::string line = GENERATE(
      as<std::string>{}, "BDAT\r\n", "BDAT x\r\n", "BDAT 12 LASTX\r\n", "BDAT 12 LAST LAST\r\n",
      "BDAT 12 NOTLAST\r\n", "BDAT +12\r\n", "BDAT 0x1\r\n", "BDAT 12x LAST\r\n",
      "BDAT 99999999999999999999999\r\n", "BDAT 12 13\r\n", "BDAT -1 LAST\r\n");
  INFO(line);
  const auto e = client_every_split(line + "HELP\r\n");
  CHECK(e == std::vector<std::string>{"REPLY 220 greeting #0 last @0", "CMD BDAT @0",
                                      "ANOMALY unreadable_bdat",
                                      "CMD HELP @" + std::to_string(line.size())});
}

TEST_CASE("the verb is found as servers find it: after blanks, up to SP HT VT FF",
          "[session][verb]") {
  struct Case {
    std::string line;
    std::string verb;
  };
  const Case c = GENERATE(values<Case>({{" VRFY postmaster\r\n", "VRFY"},
                                        {"\tVRFY postmaster\r\n", "VRFY"},
                                        {"EXPN\vroot\r\n", "EXPN"},
                                        {"TURN\f\r\n", "TURN"},
                                        {" \t\v\fHELO x\r\n", "HELO"},
                                        {"NOOP\r\n", "NOOP"},
                                        {"\r\n", "UNKNOWN"}}));
  INFO(c.line);
  const auto e = client_every_split(c.line);
  CHECK(e.back() == "CMD " + c.verb + " @0");
  // DATA after blanks is DATA: the client waits for the reply.
  Feeder f;
  f.feed(S, "220 mx\r\n");
  f.feed(C, " \tDATA\r\nHELP\r\n");
  CHECK(f.session.next_kind(C) == LineKind::kAwaitReply);
}

TEST_CASE("a neutralised command opens no phase: what follows is commands", "[session][verb]") {
  // A masked BDAT reaches the server as an unknown command (500): the 10 bytes after it are
  // commands to the server, and so they are to the session.
  auto e = client_every_split("BDAT 10\r\nHELP\r\nQUIT\r\n", {}, {Verb::kBdat});
  CHECK(e == std::vector<std::string>{"REPLY 220 greeting #0 last @0", "CMD BDAT @0", "CMD HELP @9",
                                      "CMD QUIT @15"});
  // A masked DATA, STARTTLS or AUTH is no reason to wait for a reply either.
  for (Verb v : {Verb::kData, Verb::kStarttls, Verb::kAuth}) {
    Feeder f;
    f.rec.neutralised = {v};
    f.feed(S, "220 mx\r\n");
    f.feed(C, std::string(to_string(v)) + " PLAIN\r\nHELP\r\n");
    CHECK(f.rec.events.back().starts_with("CMD HELP"));
    CHECK(f.session.next_kind(C) == LineKind::kCommand);
  }
}

TEST_CASE("a cut AUTH response awaits the reply after its last piece", "[session][auth]") {
  // The line after a long AUTH response is no second response and no command either: the
  // client waits for the server's verdict, whose code says what comes next.
  const std::string response = std::string(40, 'Q') + "==\r\n";
  const std::string client = response + "HELP\r\n";
  for (size_t cut = 0; cut <= client.size(); ++cut) {
    INFO("cut at " << cut);
    Feeder f{Session({.max_command_line = 16, .max_reply_line = 512, .max_auth_line = 16})};
    f.feed(S, "220 mx\r\n");
    f.feed(C, "AUTH LOGIN\r\n");
    f.feed(S, "334 VXNlcm5hbWU6\r\n");
    f.feed(C, client.substr(0, cut));
    f.feed(C, client.substr(cut));
    CHECK(f.session.next_kind(C) == LineKind::kAwaitReply);
    CHECK(f.pending[0] == "HELP\r\n");
    CHECK(f.rec.events.back() == "AUTHRSP UNKNOWN cont @44");
    f.feed(S, "535 5.7.8 failed\r\n");
    CHECK(f.rec.events.back() == "CMD HELP @56");
  }
}

TEST_CASE("a '.' line a bare CR or LF begins or ends is reported, the body goes on",
          "[session][body]") {
  // Postfix (without smtpd_forbid_bare_newline), Sendmail and others end the data at some of
  // these; the session ends it at CRLF.CRLF only and says where a lenient server would have.
  const std::string body = GENERATE(as<std::string>{}, "a\n.\nHELP\r\n", "a\r\n.\nHELP\r\n",
                                    "a\n.\r\nHELP\r\n", "a\r.\rHELP\r\n", ".\nHELP\r\n",
                                    "a\r\n.\rHELP\r\n", "a\r\n.\r\r\nHELP\r\n", "a\r\r.\r\n");
  INFO(body);
  const std::string client = body + ".\r\nQUIT\r\n";
  std::vector<std::string> whole;
  for (size_t cut = 0; cut <= client.size(); ++cut) {
    Feeder f;
    f.feed(S, "220 mx\r\n");
    f.feed(C, "DATA\r\n");
    f.feed(S, "354 go\r\n");
    f.feed(C, client.substr(0, cut));
    f.feed(C, client.substr(cut));
    const auto& e = f.rec.events;
    CHECK(std::count(e.begin(), e.end(), "ANOMALY loose_end_of_data") == 1);
    CHECK(has(e, "BODYEND @" + std::to_string(6 + body.size() + 3)));
    CHECK(e.back() == "CMD QUIT @" + std::to_string(6 + body.size() + 3));
    if (cut == 0) whole = e;
    INFO("cut at " << cut);
    CHECK(e == whole);
  }
}

TEST_CASE("a clean body reports no loose end of data", "[session][body]") {
  const std::string client = "..x\r\n.x\r\n\r\n. \r\nx.\r\n.\r\n";
  for (size_t cut = 0; cut <= client.size(); ++cut) {
    Feeder f;
    f.feed(S, "220 mx\r\n");
    f.feed(C, "DATA\r\n");
    f.feed(S, "354 go\r\n");
    f.feed(C, client.substr(0, cut));
    f.feed(C, client.substr(cut));
    INFO("cut at " << cut);
    CHECK_FALSE(has(f.rec.events, "ANOMALY loose_end_of_data"));
    CHECK(f.rec.events.back() == "BODYEND @" + std::to_string(6 + client.size()));
  }
}

TEST_CASE("the 129th command awaiting a reply is reported", "[session][pipelining]") {
  Feeder f;
  f.feed(S, "220 mx\r\n");
  std::string rcpts;
  for (int i = 0; i < 128; ++i) rcpts += "RCPT TO:<r@example.org>\r\n";
  f.feed(C, rcpts);
  CHECK_FALSE(has(f.rec.events, "ANOMALY excessive_pending"));
  f.feed(C, "DATA\r\n");
  CHECK(f.rec.events.back() == "ANOMALY excessive_pending");
}

TEST_CASE("an AUTH line may be 12288 bytes long (RFC 4954)", "[session][auth]") {
  // XOAUTH2 and GSSAPI initial responses run to kilobytes: not cut at the command-line cap,
  // so the client waits for the reply as after any AUTH. Longer than 12288, it is cut.
  const std::string token(2000, 'T');
  const auto e = client_every_split(" AUTH XOAUTH2 " + token + "\r\n", "235 2.7.0 ok\r\n");
  CHECK(e == std::vector<std::string>{"REPLY 220 greeting #0 last @0", "CMD AUTH @0",
                                      "REPLY 235 reply #0 last @8"});
  Feeder f;
  f.feed(S, "220 mx\r\n");
  f.feed(C, "AUTH PLAIN " + std::string(12300, 'T') + "\r\n");
  CHECK(f.rec.events[1] == "ANOMALY overlong_line");
  CHECK(f.rec.events[2] == "CMD AUTH cut @0");
  CHECK(f.rec.events[3] == "CMD UNKNOWN cont @12288");
  CHECK(f.session.next_kind(C) == LineKind::kCommand);
}

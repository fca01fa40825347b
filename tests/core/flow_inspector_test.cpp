#include "core/flow_inspector.hpp"

#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <vector>

#include "policy/profile.hpp"

using namespace sg;
using core::FlowInspector;
using smtp::Dir;

namespace {

constexpr Dir C = Dir::kClientToServer;
constexpr Dir S = Dir::kServerToClient;

struct Step {
  Dir dir;
  std::string text;
};

struct Case {
  std::string name;
  std::string profile;
  std::vector<Step> steps;
  std::string client_out;  // what the server must receive
  std::string server_out;  // what the client must receive
};

std::span<const uint8_t> bytes_of(const std::string& s, size_t from, size_t n) {
  return {reinterpret_cast<const uint8_t*>(s.data()) + from, n};
}

// Feeds a dialogue with the given cut points inside every step, checking after every piece
// that bytes already decided never change later. Returns the two output streams.
struct Run {
  std::string out[2];
  bool stable = true;
  uint64_t undecided[2] = {0, 0};
};

Run run(const Case& c, const std::function<std::vector<size_t>(const std::string&)>& cuts) {
  auto profile = policy::builtin_profile(c.profile);
  REQUIRE(profile);
  core::Counters counters;
  FlowInspector in(*profile, counters);
  std::string original[2];
  std::vector<std::pair<int, std::string>> snapshots;  // (dir, output of decided bytes)
  auto snapshot = [&](int d) {
    std::string o = original[d].substr(0, in.decided_until(static_cast<Dir>(d)));
    in.apply(static_cast<Dir>(d), 0, {reinterpret_cast<uint8_t*>(o.data()), o.size()});
    snapshots.emplace_back(d, o);
  };
  for (const Step& s : c.steps) {
    const int d = static_cast<int>(s.dir);
    std::vector<size_t> points = cuts(s.text);
    points.push_back(s.text.size());
    size_t from = 0;
    for (size_t p : points) {
      if (p <= from || p > s.text.size()) continue;
      original[d] += s.text.substr(from, p - from);
      in.on_data(s.dir, bytes_of(s.text, from, p - from));
      from = p;
      snapshot(0);
      snapshot(1);
    }
  }
  Run r;
  for (int d = 0; d < 2; ++d) {
    r.out[d] = original[d];
    in.apply(static_cast<Dir>(d), 0,
             {reinterpret_cast<uint8_t*>(r.out[d].data()), r.out[d].size()});
    r.undecided[d] = in.frontier(static_cast<Dir>(d)) - in.decided_until(static_cast<Dir>(d));
  }
  for (const auto& [d, o] : snapshots)
    if (r.out[d].compare(0, o.size(), o) != 0) r.stable = false;
  return r;
}

const std::vector<Case>& cases() {
  static const std::vector<Case> k = {
      {"pix-mailguard masks the banner and blocked commands",
       "pix-mailguard",
       {{S, "220 mx.example.org ESMTP 2.0\r\n"},
        {C, "HELO client.example.org\r\n"},
        {S, "250 mx.example.org\r\n"},
        {C, "goodmorning\r\n"},
        {S, "500 5.5.2 Error: command not recognized\r\n"},
        {C, "VRFY postmaster\r\nHELP\r\n"},
        {S, "500 5.5.2 Error\r\n500 5.5.2 Error\r\n"},
        {C, "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n"},
        {S, "250 ok\r\n250 ok\r\n354 go\r\n"},
        {C, "Subject: t\r\n\r\nHELP me, VRFY\r\n.\r\n"},
        {S, "250 queued\r\n"},
        {C, "QUIT\r\n"},
        {S, "221 bye\r\n"}},
       "HELO client.example.org\r\nXXXXXXXXXXX\r\nXXXXXXXXXXXXXXX\r\nXXXX\r\n"
       "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n"
       "Subject: t\r\n\r\nHELP me, VRFY\r\n.\r\nQUIT\r\n",
       "220 *********************2*0\r\n250 mx.example.org\r\n"
       "500 5.5.2 Error: command not recognized\r\n500 5.5.2 Error\r\n500 5.5.2 Error\r\n"
       "250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n221 bye\r\n"},
      {"pix-mailguard masks every line of a multi-line banner",
       "pix-mailguard",
       {{S, "220-mx.example.org ESMTP\r\n220-second 2000\r\n220 third\r\n"},
        {C, "QUIT\r\n"},
        {S, "221 bye\r\n"}},
       "QUIT\r\n",
       "220-********************\r\n220-*******2000\r\n220 *****\r\n221 bye\r\n"},
      {"pix-legacy turns blocked commands into NOOP and masks the whole banner",
       "pix-legacy",
       {{S, "220 mx.example.org ESMTP 2.0\r\n"},
        {C, "EHLO c\r\n"},
        {S, "250 ok\r\n"},
        {C, "goodmorning\r\nHELO c\r\n"},
        {S, "250 ok\r\n250 mx\r\n"}},
       "NOOP  \r\nNOOP       \r\nHELO c\r\n",
       "220 ************************\r\n250 ok\r\n250 ok\r\n250 mx\r\n"},
      {"asa-default masks STARTTLS and unlisted keywords in the EHLO reply",
       "asa-default",
       {{S, "220 mx.example.org ESMTP\r\n"},
        {C, "EHLO c.example.org\r\n"},
        {S,
         "250-mx.example.org\r\n250-PIPELINING\r\n250-STARTTLS\r\n250-CHUNKING\r\n"
         "250-SIZE 10240000\r\n250 8BITMIME\r\n"},
        {C, "STARTTLS\r\n"},
        {S, "500 5.5.2 Error\r\n"},
        {C, "VRFY x\r\nEXPN y\r\nQUIT\r\n"},
        {S, "252 x\r\n500 no\r\n221 bye\r\n"}},
       "EHLO c.example.org\r\nXXXXXXXX\r\nVRFY x\r\nXXXXXX\r\nQUIT\r\n",
       "220 ********************\r\n250-mx.example.org\r\n250-PIPELINING\r\n250-XXXXXXXA\r\n"
       "250-XXXXXXXA\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n500 5.5.2 Error\r\n"
       "252 x\r\n500 no\r\n221 bye\r\n"},
      {"modern passes mail and blocks only dangerous verbs and keywords",
       "modern",
       {{S, "220 mx.example.org ESMTP Postfix\r\n"},
        {C, "EHLO c.example.org\r\n"},
        {S,
         "250-mx.example.org\r\n250-STARTTLS\r\n250-XEXCH50\r\n250-AUTH PLAIN\r\n"
         "250 CHUNKING\r\n"},
        {C, "X-LINK2STATE x\r\nVRFY y\r\nMAIL FROM:<a@example.org>\r\n"},
        {S, "500 no\r\n252 y\r\n250 ok\r\n"}},
       "EHLO c.example.org\r\nXXXXXXXXXXXXXX\r\nVRFY y\r\nMAIL FROM:<a@example.org>\r\n",
       "220 mx.example.org ESMTP Postfix\r\n250-mx.example.org\r\n250-STARTTLS\r\n"
       "250-XXXXXXA\r\n250-AUTH PLAIN\r\n250 CHUNKING\r\n500 no\r\n252 y\r\n250 ok\r\n"},
  };
  return k;
}

}  // namespace

TEST_CASE("every split point of every step gives the same rewritten streams") {
  for (const Case& c : cases()) {
    SECTION(c.name) {
      const Run whole = run(c, [](const std::string&) { return std::vector<size_t>{}; });
      CHECK(whole.out[0] == c.client_out);
      CHECK(whole.out[1] == c.server_out);
      CHECK(whole.undecided[0] == 0);
      CHECK(whole.undecided[1] == 0);
      size_t longest = 0;
      for (const Step& s : c.steps) longest = std::max(longest, s.text.size());
      for (size_t k = 1; k < longest; ++k) {
        const Run r = run(c, [k](const std::string&) { return std::vector<size_t>{k}; });
        INFO(c.name << ": cut at " << k);
        CHECK(r.out[0] == c.client_out);
        CHECK(r.out[1] == c.server_out);
        CHECK(r.stable);
        CHECK(r.undecided[0] == 0);
      }
    }
  }
}

TEST_CASE("one byte at a time gives the same rewritten streams") {
  for (const Case& c : cases()) {
    const Run r = run(c, [](const std::string& t) {
      std::vector<size_t> all;
      for (size_t i = 1; i < t.size(); ++i) all.push_back(i);
      return all;
    });
    INFO(c.name);
    CHECK(r.out[0] == c.client_out);
    CHECK(r.out[1] == c.server_out);
    CHECK(r.stable);
  }
}

TEST_CASE("random multi-cuts (seeded) give the same rewritten streams") {
  std::mt19937 rng(20261122);
  for (const Case& c : cases()) {
    for (int trial = 0; trial < 200; ++trial) {
      const Run r = run(c, [&rng](const std::string& t) {
        std::vector<size_t> pts;
        if (t.size() < 2) return pts;
        std::uniform_int_distribution<size_t> pick(1, t.size() - 1);
        const size_t n = pick(rng) % 5;
        for (size_t i = 0; i < n; ++i) pts.push_back(pick(rng));
        std::sort(pts.begin(), pts.end());
        return pts;
      });
      INFO(c.name << " trial " << trial);
      REQUIRE(r.out[0] == c.client_out);
      REQUIRE(r.out[1] == c.server_out);
      REQUIRE(r.stable);
    }
  }
}

TEST_CASE("a partial line is held only while it could still go either way") {
  auto profile = policy::builtin_profile("pix-mailguard");
  core::Counters counters;
  FlowInspector in(*profile, counters);
  const std::string greeting = "220 mx\r\n";
  in.on_data(S, bytes_of(greeting, 0, greeting.size()));
  struct Probe {
    std::string partial;
    bool decided;
  };
  // HEL may become HELO (allowed) or HELP (masked); VRF can only be masked; MAI only MAIL or
  // something unknown (masked).
  const auto probe = GENERATE(values<Probe>({{"HEL", false},
                                             {"VRF", true},
                                             {"MAI", false},
                                             {"goo", true},
                                             {"MAIL", false},
                                             {"MAIL ", true},
                                             {"HELP", true}}));
  FlowInspector fresh(*profile, counters);
  fresh.on_data(S, bytes_of(greeting, 0, greeting.size()));
  fresh.on_data(C, bytes_of(probe.partial, 0, probe.partial.size()));
  INFO(probe.partial);
  CHECK((fresh.decided_until(C) == fresh.frontier(C)) == probe.decided);
}

TEST_CASE("a neutralised partial line stays neutralised to its end") {
  auto profile = policy::builtin_profile("pix-mailguard");
  core::Counters counters;
  FlowInspector in(*profile, counters);
  const std::string greeting = "220 mx\r\n", head = "MAI", tail = "L FROM:<a@example.org>\r\n";
  in.on_data(S, bytes_of(greeting, 0, greeting.size()));
  in.on_data(C, bytes_of(head, 0, head.size()));
  CHECK(in.decided_until(C) == 0);
  in.force_decide(C);
  CHECK(in.decided_until(C) == 3);
  in.on_data(C, bytes_of(tail, 0, tail.size()));
  std::string out = head + tail;
  in.apply(C, 0, {reinterpret_cast<uint8_t*>(out.data()), out.size()});
  CHECK(out == std::string(25, 'X') + "\r\n");
  CHECK(counters.get(core::Counter::hold_timeouts) == 1);
}

TEST_CASE("client bytes pipelined after DATA are held until the 354") {
  auto profile = policy::builtin_profile("pix-mailguard");
  core::Counters counters;
  FlowInspector in(*profile, counters);
  const std::string g = "220 mx\r\n", c1 = "DATA\r\nHELP\r\n", r = "354 go\r\n";
  in.on_data(S, bytes_of(g, 0, g.size()));
  in.on_data(C, bytes_of(c1, 0, c1.size()));
  CHECK(in.decided_until(C) == 6);  // DATA decided; HELP waits: body or command?
  in.on_data(S, bytes_of(r, 0, r.size()));
  CHECK(in.decided_until(C) == c1.size());
  std::string out = c1;
  in.apply(C, 0, {reinterpret_cast<uint8_t*>(out.data()), out.size()});
  CHECK(out == c1);  // it was body text
}

TEST_CASE("edits acknowledged by the receiver are pruned") {
  auto profile = policy::builtin_profile("pix-mailguard");
  core::Counters counters;
  FlowInspector in(*profile, counters);
  const std::string g = "220 mx\r\n", c1 = "VRFY a\r\nVRFY b\r\n";
  in.on_data(S, bytes_of(g, 0, g.size()));
  in.on_data(C, bytes_of(c1, 0, c1.size()));
  CHECK(in.edits(C).size() == 2);
  in.on_ack(C, 8);
  CHECK(in.edits(C).size() == 1);
  in.on_ack(C, 16);
  CHECK(in.edits(C).empty());
}

namespace {

std::string rendered(const FlowInspector& in, Dir d, const std::string& original) {
  std::vector<uint8_t> out;
  in.edits(d).render(0, {reinterpret_cast<const uint8_t*>(original.data()), original.size()}, out);
  return {out.begin(), out.end()};
}

std::shared_ptr<policy::Profile> stripping_profile() {
  auto p = std::make_shared<policy::Profile>(*policy::builtin_profile("modern"));
  p->keywords[static_cast<size_t>(smtp::EhloKeyword::kChunking)] = policy::KeywordAction::kStrip;
  return p;
}

// An inspector with a stripping profile, past the greeting and an EHLO: the server's next
// bytes are the EHLO reply.
struct AfterEhlo {
  std::shared_ptr<policy::Profile> profile = stripping_profile();
  core::Counters counters;
  FlowInspector in{*profile, counters};
  const std::string greet = "220 mx\r\n";
  AfterEhlo() {
    const std::string ehlo = "EHLO c\r\n";
    in.on_data(S, bytes_of(greet, 0, greet.size()));
    in.on_data(C, bytes_of(ehlo, 0, ehlo.size()));
  }
  void reply(const std::string& r, size_t from, size_t n) { in.on_data(S, bytes_of(r, from, n)); }
};

const std::string kStripReply = "250-mx\r\n250-SIZE 10\r\n250 CHUNKING\r\n";

}  // namespace

TEST_CASE("a stripped last EHLO line makes the kept line before it final") {
  AfterEhlo t;
  const std::string& reply = kStripReply;
  // Up to the SIZE line: its separator is held, the line may yet become the last one.
  t.reply(reply, 0, 21);
  CHECK(t.in.decided_until(S) == t.greet.size() + 8 + 3);
  t.reply(reply, 21, reply.size() - 21);
  CHECK(t.in.decided_until(S) == t.greet.size() + reply.size());
  CHECK(rendered(t.in, S, t.greet + reply) == t.greet + "250-mx\r\n250 SIZE 10\r\n");
  CHECK(t.counters.get(core::Counter::edit_keyword_stripped) == 1);
}

TEST_CASE("after a hold timeout released the separator, the last line stays") {
  AfterEhlo t;
  const std::string& reply = kStripReply;
  t.reply(reply, 0, 21);
  t.in.force_decide(S);  // the server paused too long: the held '-' goes out as it is
  CHECK(t.in.decided_until(S) == t.greet.size() + 21);
  t.reply(reply, 21, reply.size() - 21);
  // Removing CHUNKING now would leave the client waiting for a final line.
  CHECK(rendered(t.in, S, t.greet + reply) == t.greet + reply);
  CHECK(t.counters.get(core::Counter::edit_strip_kept) == 1);
  CHECK(t.counters.get(core::Counter::edit_keyword_stripped) == 0);
}

TEST_CASE("an error reply to EHLO is never stripped") {
  AfterEhlo t;
  const std::string reply = "550-mx\r\n550 CHUNKING\r\n";
  t.reply(reply, 0, reply.size());
  CHECK(rendered(t.in, S, t.greet + reply) == t.greet + reply);
}

#include "probe/options.hpp"

#include <catch2/catch.hpp>
#include <vector>

using namespace sg::probe;

namespace {
CommandLine parse(std::vector<const char*> args) {
  args.insert(args.begin(), "smtpguard-probe");
  return parse_command_line(static_cast<int>(args.size()), args.data());
}
}  // namespace

TEST_CASE("HOST[:PORT] for names, IPv4 and IPv6") {
  struct Vector {
    const char* text;
    const char* host;  // nullptr: an error
    uint16_t port;
  };
  const auto v = GENERATE(values<Vector>({
      {"mx.example.org", "mx.example.org", 25},
      {"mx.example.org:2525", "mx.example.org", 2525},
      {"198.18.2.1", "198.18.2.1", 25},
      {"198.18.2.1:587", "198.18.2.1", 587},
      {"2001:db8:2::1", "2001:db8:2::1", 25},
      {"[2001:db8:2::1]", "2001:db8:2::1", 25},
      {"[2001:db8:2::1]:2525", "2001:db8:2::1", 2525},
      {"fe80::1%cl0", "fe80::1%cl0", 25},
      {"", nullptr, 0},
      {"mx.example.org:", nullptr, 0},
      {"mx.example.org:0", nullptr, 0},
      {"mx.example.org:65536", nullptr, 0},
      {"mx.example.org:25x", nullptr, 0},
      {"[2001:db8::1", nullptr, 0},
      {"[2001:db8::1]25", nullptr, 0},
      {"mx example", nullptr, 0},
      {"mx;rm -rf", nullptr, 0},
  }));
  INFO(v.text);
  const auto t = parse_target(v.text, 25);
  if (!v.host) {
    CHECK_FALSE(t);
  } else {
    REQUIRE(t);
    CHECK(t->host == v.host);
    CHECK(t->port == v.port);
  }
}

TEST_CASE("the command line") {
  SECTION("defaults") {
    const CommandLine cl = parse({"198.18.2.1"});
    REQUIRE(cl.options);
    CHECK(cl.options->target.port == 25);
    CHECK(cl.options->sequence.step_timeout == std::chrono::milliseconds(10'000));
    CHECK(cl.options->sequence.starttls);
    CHECK_FALSE(cl.options->sequence.deep);
    CHECK_FALSE(cl.options->json);
    CHECK_FALSE(cl.options->direct);
  }
  SECTION("everything given") {
    const CommandLine cl =
        parse({"--port", "2525", "--direct", "198.18.2.1", "--timeout", "2.5", "--json",
               "--auth-check", "--mail-from", "", "--rcpt-to", "user@example.org", "--deep",
               "--no-tls", "-6", "--helo-name", "client.example.org", "mx.example.org"});
    REQUIRE(cl.options);
    const Options& o = *cl.options;
    CHECK(o.target.host == "mx.example.org");
    CHECK(o.target.port == 2525);
    REQUIRE(o.direct);
    CHECK(o.direct->port == 2525);
    CHECK(o.sequence.step_timeout == std::chrono::milliseconds(2500));
    CHECK(o.json);
    CHECK(o.sequence.auth_check);
    CHECK(o.sequence.mail_from == std::string());
    CHECK(o.sequence.rcpt_to == std::string("user@example.org"));
    CHECK(o.sequence.deep);
    CHECK_FALSE(o.sequence.starttls);
    CHECK(o.sequence.family == Family::kIpv6);
    CHECK(o.helo_name_given);
    CHECK(o.sequence.helo_name == "client.example.org");
  }
  SECTION("help and version exit 0 with text") {
    CommandLine cl = parse({"--help"});
    CHECK_FALSE(cl.options);
    CHECK(cl.exit_code == 0);
    CHECK(cl.text.find("Exit status: 0 no inspection seen, 1 inspection found, 2 could not") !=
          std::string::npos);
    cl = parse({"--version"});
    CHECK(cl.exit_code == 0);
    CHECK(cl.text.rfind("smtpguard-probe ", 0) == 0);
  }
  SECTION("bad input exits 2 and names what is wrong") {
    struct Bad {
      std::vector<const char*> args;
      const char* says;
    };
    const auto b = GENERATE(values<Bad>({
        {{}, "which server?"},
        {{"a.example", "b.example"}, "one HOST[:PORT] only"},
        {{"mx.example.org:99999"}, "bad port"},
        {{"--port", "0", "mx.example.org"}, "--port"},
        {{"--timeout", "0", "mx.example.org"}, "--timeout"},
        {{"--timeout", "soon", "mx.example.org"}, "--timeout"},
        {{"--direct", "[::1", "mx.example.org"}, "--direct"},
        {{"--mail-from", "a b", "mx.example.org"}, "--mail-from"},
        {{"--rcpt-to", "<x>", "mx.example.org"}, "--rcpt-to"},
        {{"--helo-name", "", "mx.example.org"}, "--helo-name"},
        {{"-4", "-6", "mx.example.org"}, "exclude"},
        {{"--frobnicate", "mx.example.org"}, "unrecognised option"},
    }));
    const CommandLine cl = parse(b.args);
    CHECK_FALSE(cl.options);
    CHECK(cl.exit_code == 2);
    INFO(cl.text);
    CHECK(cl.text.find(b.says) != std::string::npos);
  }
}

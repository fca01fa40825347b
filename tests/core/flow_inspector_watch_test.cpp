// The before/after a decision carries while somebody watches (FlowInspector::watch_edits,
// Decision::before/after): only then, and exactly the line as received and as forwarded.
#include <catch2/catch.hpp>

#include <atomic>
#include <string>
#include <vector>

#include "core/flow_inspector.hpp"
#include "policy/profile.hpp"

using namespace sg;
using core::FlowInspector;
using smtp::Dir;

namespace {

constexpr Dir C = Dir::kClientToServer;
constexpr Dir S = Dir::kServerToClient;

struct Watched {
  std::atomic<bool> flag{false};
  core::Counters counters;
  std::unique_ptr<FlowInspector> in;
  explicit Watched(const char* profile) {
    auto p = policy::builtin_profile(profile);
    REQUIRE(p);
    profile_ = std::make_unique<policy::Profile>(*p);
    in = std::make_unique<FlowInspector>(*profile_, counters);
    in->watch_edits(&flag);
  }
  void say(Dir d, std::string_view text) {
    in->on_data(d, std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
  }
  std::unique_ptr<policy::Profile> profile_;
};

const core::Decision* find(const std::vector<core::Decision>& ds, policy::Event e) {
  for (const auto& d : ds)
    if (d.event == e) return &d;
  return nullptr;
}

}  // namespace

TEST_CASE("watched decisions carry the line before and after the edit", "[watch]") {
  Watched w("asa-default");
  w.flag = true;
  w.say(S, "220 mx.example.org ESMTP\r\n");
  auto ds = w.in->take_decisions();
  const core::Decision* banner = find(ds, policy::Event::kBannerMasked);
  REQUIRE(banner);
  CHECK(banner->edited);
  CHECK(banner->before == "220 mx.example.org ESMTP\r\n");
  CHECK(banner->after == "220 ********************\r\n");

  w.say(C, "EHLO c.example.org\r\n");
  w.say(S, "250-mx.example.org\r\n250-CHUNKING\r\n250-STARTTLS\r\n250 SIZE 1000\r\n");
  ds = w.in->take_decisions();
  std::vector<const core::Decision*> keywords;
  for (const auto& d : ds)
    if (d.event == policy::Event::kKeywordMasked) keywords.push_back(&d);
  REQUIRE(keywords.size() == 2);
  CHECK(keywords[0]->subject == "CHUNKING");
  CHECK(keywords[0]->before == "250-CHUNKING\r\n");
  CHECK(keywords[0]->after == "250-XXXXXXXA\r\n");
  CHECK(keywords[1]->before == "250-STARTTLS\r\n");
  CHECK(keywords[1]->after == "250-XXXXXXXA\r\n");

  w.say(C, "ETRN x\r\n");  // allowed by asa-default: no decision
  w.say(C, "XEXPS y\r\n");
  ds = w.in->take_decisions();
  const core::Decision* cmd = find(ds, policy::Event::kCommandMasked);
  REQUIRE(cmd);
  CHECK(cmd->before == "XEXPS y\r\n");
  CHECK(cmd->after == "XXXXXXX\r\n");
}

TEST_CASE("nobody watching: decisions carry no line text", "[watch]") {
  Watched w("asa-default");
  w.say(S, "220 mx.example.org ESMTP\r\n");
  auto ds = w.in->take_decisions();
  const core::Decision* banner = find(ds, policy::Event::kBannerMasked);
  REQUIRE(banner);
  CHECK_FALSE(banner->edited);
  CHECK(banner->before.empty());
  CHECK(banner->after.empty());
}

TEST_CASE("a watched line longer than the cap is cut to it", "[watch]") {
  Watched w("asa-default");
  w.flag = true;
  w.say(S, "220 mx ESMTP\r\n");
  w.in->take_decisions();
  const std::string line = "XFOO " + std::string(400, 'a') + "\r\n";
  w.say(C, line);
  auto ds = w.in->take_decisions();
  const core::Decision* cmd = find(ds, policy::Event::kCommandMasked);
  REQUIRE(cmd);
  CHECK(cmd->before == line.substr(0, core::Decision::kMaxEditText));
  CHECK(cmd->after.size() == core::Decision::kMaxEditText);
}

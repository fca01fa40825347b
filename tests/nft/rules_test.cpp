// The pure parts of the rule installer: the compat NFQUEUE target's info blob and the option
// checks made before the kernel is asked. The installer itself is exercised against the kernel
// by tests/integration/rules_test.sh.
#include <catch2/catch.hpp>

#include <cstring>

#include "nft/rules.hpp"

using sg::nft::encode_nfq_info_v3;

namespace {
// Reads field `i` of struct xt_NFQ_info_v3 back, in host order as the kernel reads it.
uint16_t field(const std::array<uint8_t, 8>& info, size_t i) {
  uint16_t v = 0;
  std::memcpy(&v, info.data() + 2 * i, sizeof(v));
  return v;
}
}  // namespace

TEST_CASE("xt_NFQ_info_v3 is {queuenum, queues_total, flags} in host order, padded to 8") {
  struct Case {
    const char* description;
    uint16_t first, total;
    bool bypass;
    uint16_t flags;
  };
  auto c = GENERATE(Case{"queue 0 alone", 0, 1, false, 0},
                    Case{"queues 0-1 with bypass", 0, 2, true, 0x1},
                    Case{"queues 100-163", 100, 64, false, 0},
                    Case{"queue 65535 with bypass", 65535, 1, true, 0x1});
  INFO(c.description);
  auto info = encode_nfq_info_v3(c.first, c.total, c.bypass);
  CHECK(field(info, 0) == c.first);
  CHECK(field(info, 1) == c.total);
  CHECK(field(info, 2) == c.flags);
  CHECK(field(info, 3) == 0);  // XT_ALIGN padding
}

TEST_CASE("the compat target never asks for CPU fanout") {
  // Fanout picks the queue by CPU, not by flow: both directions of a connection could land in
  // different workers (DESIGN.md section 2).
  for (bool bypass : {false, true}) {
    auto info = encode_nfq_info_v3(0, 2, bypass);
    CHECK((field(info, 2) & sg::nft::kNfqFlagCpuFanout) == 0);
  }
}

TEST_CASE("hook names are the nft keywords, used as chain names") {
  CHECK(std::string(sg::nft::hook_name(sg::nft::Hook::kForward)) == "forward");
  CHECK(std::string(sg::nft::hook_name(sg::nft::Hook::kInput)) == "input");
  CHECK(std::string(sg::nft::hook_name(sg::nft::Hook::kOutput)) == "output");
}

TEST_CASE("the queue chain runs after the filter chains, the mark chain right after it") {
  CHECK(sg::nft::RuleSet::kQueuePriority > 0);  // NF_IP_PRI_FILTER
  CHECK(sg::nft::RuleSet::kMarkPriority > sg::nft::RuleSet::kQueuePriority);
}

TEST_CASE("install refuses options it cannot express, before touching the kernel") {
  sg::nft::RuleOptions o;
  o.done_mark = 0;
  auto r = sg::nft::RuleSet(o).install();
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error(), Catch::Contains("done mark"));

  o = {};
  o.hooks.clear();
  r = sg::nft::RuleSet(o).install();
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error(), Catch::Contains("hook"));

  o = {};
  o.inject_mark = 0;
  r = sg::nft::RuleSet(o).install();
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error(), Catch::Contains("inject mark"));

  // A shared bit would let the packets of finished flows pass as the daemon's own, or count the
  // daemon's own packets as a finished flow's.
  o = {};
  o.done_mark = 0x00200000;
  o.inject_mark = 0x00300000;
  r = sg::nft::RuleSet(o).install();
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error(), Catch::Contains("inject mark") && Catch::Contains("done mark"));

  // A mapped flow must never pass as a finished one or as the daemon's own packets.
  for (uint32_t clash : {sg::nft::RuleOptions{}.done_mark, sg::nft::RuleOptions{}.inject_mark}) {
    o = {};
    o.mapped_mark = clash;
    r = sg::nft::RuleSet(o).install();
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error(), Catch::Contains("mapped mark"));
  }
}

TEST_CASE("the default marks are distinct bits") {
  const sg::nft::RuleOptions o;
  CHECK(o.inject_mark != 0);
  CHECK(o.done_mark != 0);
  CHECK((o.inject_mark & o.done_mark) == 0);
  CHECK(o.mapped_mark != 0);
  CHECK((o.mapped_mark & (o.mapped_mark - 1)) == 0);  // one bit
  CHECK((o.mapped_mark & (o.inject_mark | o.done_mark)) == 0);
}

// The decision of the rules watcher (src/nft/rules_watch.hpp): which nftables events concern the
// daemon's table, and when a restore runs. The socket and the thread are exercised against the
// kernel by tests/integration/rules_restore_test.sh.
#include <catch2/catch.hpp>

#include <linux/netfilter.h>

#include "nft/rules_watch.hpp"

using sg::Duration;
using sg::Timestamp;
using sg::nft::NftEvent;
using sg::nft::NftObject;
using sg::nft::RestoreSchedule;
using sg::nft::touches_our_table;
using std::chrono::milliseconds;

namespace {
NftEvent object(NftObject o, bool deleted, uint16_t family = NFPROTO_INET,
                const char* table = "smtpguard") {
  NftEvent e;
  e.object = o;
  e.deleted = deleted;
  e.family = family;
  e.table = table;
  return e;
}
const Timestamp t0{milliseconds(1000)};
}  // namespace

TEST_CASE("events that concern the daemon's table") {
  struct Case {
    const char* description;
    NftEvent event;
    bool ours;
  };
  auto c =
      GENERATE(Case{"inet smtpguard deleted", object(NftObject::kTable, true), true},
               Case{"a chain of inet smtpguard deleted", object(NftObject::kChain, true), true},
               Case{"a rule of inet smtpguard deleted", object(NftObject::kRule, true), true},
               Case{"a rule added to inet smtpguard", object(NftObject::kRule, false), true},
               Case{"ip smtpguard (the split fallback)",
                    object(NftObject::kTable, true, NFPROTO_IPV4), true},
               Case{"ip6 smtpguard", object(NftObject::kChain, true, NFPROTO_IPV6), true},
               Case{"inet filter", object(NftObject::kTable, true, NFPROTO_INET, "filter"), false},
               Case{"bridge smtpguard", object(NftObject::kTable, true, NFPROTO_BRIDGE), false},
               Case{"a set", object(NftObject::kOther, true), false},
               Case{"a generation", object(NftObject::kGeneration, false), false});
  INFO(c.description);
  CHECK(touches_our_table(c.event) == c.ours);
}

TEST_CASE("another process deletes the table: one restore, due at once") {
  RestoreSchedule s;
  CHECK_FALSE(s.wait(t0));
  // `nft flush ruleset`: rules, chains, then the table, then the generation.
  s.on_object(object(NftObject::kRule, true), t0);
  s.on_object(object(NftObject::kChain, true), t0 + milliseconds(1));
  s.on_object(object(NftObject::kTable, true), t0 + milliseconds(1));
  CHECK_FALSE(s.pending());  // not before the transaction is complete
  s.on_generation(false);
  REQUIRE(s.pending());
  CHECK(s.table_removed());
  CHECK(s.since() == t0);
  CHECK(s.wait(t0 + milliseconds(2)) == Duration::zero());
  s.restored(t0 + milliseconds(5));
  CHECK_FALSE(s.pending());
  CHECK_FALSE(s.wait(t0 + milliseconds(6)));
}

TEST_CASE("only rules deleted (nft flush table): a restore, the table did not go") {
  RestoreSchedule s;
  s.on_object(object(NftObject::kRule, true), t0);
  s.on_generation(false);
  CHECK(s.pending());
  CHECK_FALSE(s.table_removed());
}

TEST_CASE("the daemon's own transactions are ignored: a restore never triggers another") {
  RestoreSchedule s;
  // The restore deletes and re-adds the table in one transaction of its own.
  s.on_object(object(NftObject::kTable, false), t0);
  s.on_object(object(NftObject::kTable, true), t0);
  s.on_object(object(NftObject::kTable, false), t0);
  s.on_object(object(NftObject::kRule, false), t0);
  s.on_generation(true);
  CHECK_FALSE(s.pending());
  // And the next transaction starts clean.
  s.on_object(object(NftObject::kTable, true, NFPROTO_INET, "filter"), t0);
  s.on_generation(false);
  CHECK_FALSE(s.pending());
}

TEST_CASE("restores are at least 100 ms apart; a failure is retried after a second") {
  RestoreSchedule s;
  s.on_object(object(NftObject::kTable, true), t0);
  s.on_generation(false);
  s.restored(t0);
  // Deleted again at once: due only once the interval is over.
  s.on_object(object(NftObject::kTable, true), t0 + milliseconds(10));
  s.on_generation(false);
  CHECK(s.wait(t0 + milliseconds(10)) == milliseconds(90));
  CHECK(s.wait(t0 + milliseconds(100)) == Duration::zero());
  s.failed(t0 + milliseconds(100));
  CHECK(s.pending());
  CHECK(s.wait(t0 + milliseconds(600)) == milliseconds(500));
  CHECK(s.wait(t0 + milliseconds(1100)) == Duration::zero());
}

TEST_CASE("several transactions before the restore: the first one's time, table removal kept") {
  RestoreSchedule s;
  s.on_object(object(NftObject::kTable, true), t0);
  s.on_generation(false);
  s.on_object(object(NftObject::kRule, false), t0 + milliseconds(3));
  s.on_generation(false);
  CHECK(s.since() == t0);
  CHECK(s.table_removed());
}

TEST_CASE("lost events: a restore to be sure") {
  RestoreSchedule s;
  s.on_overrun(t0);
  CHECK(s.pending());
  CHECK(s.wait(t0) == Duration::zero());
}

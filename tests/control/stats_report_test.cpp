// Statistics snapshot and its renderings (src/control/stats_report.hpp): sums over workers,
// text/JSON/Prometheus output pinned for a small snapshot, and the exposition grammar.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "control/stats_report.hpp"

using namespace sg;
using namespace sg::control;
using core::Counter;
using nfq::ConntrackCounter;
using nfq::InjectCounter;
using nfq::QueueCounter;
using policy::Event;
using policy::kEventCount;

namespace {

// Two workers: queue 0 with kernel figures, queue 1 without (not readable).
StatsSnapshot small_snapshot() {
  core::Counters p0, p1;
  nfq::QueueCounters q0, q1;
  nfq::InjectCounters i0, i1;
  nfq::ConntrackCounters c0, c1;
  p0.add(Counter::packets, 7);
  p1.add(Counter::packets, 5);
  p0.add(Counter::bytes, 700);
  p1.add(Counter::bytes, 500);
  p0.add(Counter::edit_command_masked, 2);
  p1.add(Counter::flows_created, 3);
  q1.add(QueueCounter::nfq_enobufs, 4);
  i0.add(InjectCounter::inject_sent, 9);
  c1.add(ConntrackCounter::conntrack_not_found);
  nfq::KernelQueueStats k0;
  k0.queue_num = 0;
  k0.peer_portid = 1234;
  k0.queue_total = 2;
  k0.queue_dropped = 11;
  k0.user_dropped = 13;
  k0.id_sequence = 99;

  StatsSnapshot s;
  s.version = "0.1.0";
  s.pid = 4242;
  s.uptime_seconds = 93784;  // 1d 02:03:04
  s.profile = "modern";
  s.workers.push_back(capture_worker(0, p0, q0, i0, c0, k0));
  s.workers.push_back(capture_worker(1, p1, q1, i1, c1, std::nullopt));
  s.workers[0].flows_tracked = 3;
  s.workers[0].cpu = 2;  // pinned; queue 1 is not
  s.workers[1].flows_tracked = 1;
  s.events[static_cast<size_t>(Event::kCommandMasked)] = 3;
  s.events[static_cast<size_t>(Event::kStarttls)] = 1;
  s.log_lines = 4;
  s.log_suppressed = 0;
  s.rules[static_cast<size_t>(sg::nft::RulesWatchCounter::rules_restored)] = 2;
  return s;
}

// "name = value" lines as a map; fails on any other line or a repeated name.
std::map<std::string, std::string> text_values(const std::string& text) {
  std::map<std::string, std::string> values;
  std::istringstream in(text);
  std::regex line_re(R"(([a-z0-9_]+) = (\d+))");
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    INFO(line);
    REQUIRE(std::regex_match(line, m, line_re));
    REQUIRE(values.emplace(m[1], m[2]).second);
  }
  return values;
}

}  // namespace

TEST_CASE("stats: capture reads every counter; totals sum the workers") {
  StatsSnapshot s = small_snapshot();
  CHECK(s.workers[0].pipeline[static_cast<size_t>(Counter::packets)] == 7);
  CHECK(s.total(Counter::packets) == 12);
  CHECK(s.total(Counter::bytes) == 1200);
  CHECK(s.total(QueueCounter::nfq_enobufs) == 4);
  CHECK(s.total(InjectCounter::inject_sent) == 9);
  CHECK(s.total(ConntrackCounter::conntrack_not_found) == 1);
  CHECK(s.kernel_queue_dropped() == 11);  // queue 1 has no figures: counts nothing
  CHECK(s.kernel_user_dropped() == 13);
  CHECK(s.kernel_queue_waiting() == 2);
  CHECK(s.decisions() == 4);
  CHECK(s.flows_tracked() == 4);
}

TEST_CASE("stats: capture_workers reads any worker-like objects in order") {
  struct FakeWorker {
    uint16_t q;
    core::Counters pipeline;
    nfq::QueueCounters queue;
    nfq::InjectCounters inject;
    nfq::ConntrackCounters conntrack;
    uint16_t queue_num() const { return q; }
    const core::Counters& pipeline_counters() const { return pipeline; }
    const nfq::QueueCounters& queue_counters() const { return queue; }
    const nfq::InjectCounters& inject_counters() const { return inject; }
    const nfq::ConntrackCounters& conntrack_counters() const { return conntrack; }
    size_t flows_tracked() const { return q; }
    std::optional<uint16_t> pinned_cpu() const {
      return q == 4 ? std::optional<uint16_t>(7) : std::nullopt;
    }
    std::optional<nfq::KernelQueueStats> kernel_stats() const {
      if (q != 3) return std::nullopt;
      nfq::KernelQueueStats k;
      k.queue_dropped = 5;
      return k;
    }
  };
  std::vector<std::unique_ptr<FakeWorker>> workers;
  workers.push_back(std::make_unique<FakeWorker>());
  workers.push_back(std::make_unique<FakeWorker>());
  workers[0]->q = 3;
  workers[1]->q = 4;
  workers[1]->pipeline.add(Counter::holds, 6);
  workers[0]->conntrack.add(ConntrackCounter::conntrack_errors, 2);
  StatsSnapshot s;
  capture_workers(workers, s.workers);
  REQUIRE(s.workers.size() == 2);
  CHECK(s.workers[0].queue == 3);
  CHECK(s.workers[1].queue == 4);
  CHECK(s.total(Counter::holds) == 6);
  CHECK(s.workers[1].pipeline[static_cast<size_t>(Counter::holds)] == 6);
  CHECK(s.total(ConntrackCounter::conntrack_errors) == 2);
  CHECK(s.kernel_queue_dropped() == 5);
  CHECK_FALSE(s.workers[1].kernel);
  CHECK(s.workers[0].flows_tracked == 3);
  CHECK_FALSE(s.workers[0].cpu);
  CHECK(s.workers[1].flows_tracked == 4);
  CHECK(s.workers[1].cpu == std::optional<uint16_t>(7));
}

TEST_CASE("stats: policy names from a policy set, in rule order") {
  auto modern = policy::builtin_profile("modern");
  auto asa = policy::builtin_profile("asa-default");
  REQUIRE(modern);
  REQUIRE(asa);
  policy::PolicyRule mx1;
  mx1.name = "mx1";
  mx1.profile = asa;
  policy::PolicyRule mx2;
  mx2.name = "mx2";
  mx2.profile = modern;
  policy::PolicySet set(modern, {mx1, mx2});
  auto names = policy_names(set);
  REQUIRE(names.size() == 2);
  CHECK(names[0].rule == "mx1");
  CHECK(names[0].profile == asa->name);
  CHECK(names[1].rule == "mx2");
  CHECK(names[1].profile == modern->name);
  CHECK(policy_names(*policy::single_policy(modern)).empty());
}

TEST_CASE("stats text: name = value for every counter, summed, SIGUSR1 lines first") {
  const std::string text = render_text(small_snapshot());
  // The lines smtpguardd printed before this module existed come first, in the same order.
  CHECK(text.starts_with("packets = 12\nbytes = 1200\npackets_invalid = 0\n"));
  auto v = text_values(text);
  for (const auto& c : core::kCounterInfo) CHECK(v.count(std::string(c.name)) == 1);
  for (const auto& c : nfq::kQueueCounterInfo) CHECK(v.count(std::string(c.name)) == 1);
  for (const auto& c : nfq::kInjectCounterInfo) CHECK(v.count(std::string(c.name)) == 1);
  for (const auto& c : nfq::kConntrackCounterInfo) CHECK(v.count(std::string(c.name)) == 1);
  for (const auto& e : policy::kEventInfo) CHECK(v.count("event_" + std::string(e.name)) == 1);
  CHECK(v.size() == core::kCounterInfo.size() + nfq::kQueueCounterInfo.size() +
                        nfq::kInjectCounterInfo.size() + nfq::kConntrackCounterInfo.size() + 3 +
                        kEventCount + 3 + sg::nft::kRulesWatchCounterInfo.size() + 1 +
                        sg::eventlog::kWatchCounterInfo.size());
  CHECK(v["edit_command_masked"] == "2");
  CHECK(v["flows_created"] == "3");
  CHECK(v["nfq_enobufs"] == "4");
  CHECK(v["inject_sent"] == "9");
  CHECK(v["conntrack_not_found"] == "1");
  CHECK(v["event_command_masked"] == "3");
  CHECK(v["event_starttls"] == "1");
  CHECK(v["event_banner_masked"] == "0");
  CHECK_THAT(text, Catch::Contains("conntrack_errors = 0\n"
                                   "kernel_queue_dropped = 11\n"
                                   "kernel_user_dropped = 13\n"
                                   "kernel_queue_waiting = 2\n"
                                   "event_banner_masked = 0\n"));
  const std::string last_event(policy::kEventInfo.back().name);
  CHECK_THAT(text, Catch::Contains(
                       "event_" + last_event +
                       " = 0\nlog_lines = 4\nlog_suppressed = 0\nlog_journal_fallbacks = 0\n"));
  // The rules watcher's counters, then the decision watchers'.
  CHECK_THAT(text, Catch::Contains("log_journal_fallbacks = 0\nrules_changed_under = 0\n"
                                   "rules_restored = 2\nrules_restore_failed = 0\n"
                                   "rules_events_lost = 0\nwatchers = 0\n"));
  CHECK_THAT(text, Catch::EndsWith("watch_attached = 0\nwatch_refused = 0\nwatch_records = 0\n"
                                   "watch_dropped = 0\n"));
}

TEST_CASE("stats JSON: valid, with totals, events, per-queue counters and kernel figures") {
  StatsSnapshot s = small_snapshot();
  s.policies = {{"mx \"1\"", "asa-default"}};
  const std::string json = render_json(s);
  CHECK(nlohmann::json::accept(json));
  const auto parsed = nlohmann::json::parse(json);
  CHECK(parsed["log"]["journal_fallbacks"] == 0);
  CHECK(parsed["queues"][0]["cpu"] == 2);
  CHECK(parsed["totals"].size() == core::kCounterInfo.size() + nfq::kQueueCounterInfo.size() +
                                       nfq::kInjectCounterInfo.size() +
                                       nfq::kConntrackCounterInfo.size());
  CHECK(
      json.starts_with("{\n  \"version\": \"0.1.0\",\n  \"pid\": 4242,\n"
                       "  \"uptime_seconds\": 93784,\n  \"profile\": \"modern\",\n"
                       "  \"policies\": [\n    {\n      \"rule\": \"mx \\\"1\\\"\",\n"
                       "      \"profile\": \"asa-default\"\n    }\n  ],\n"
                       "  \"totals\": {\n    \"packets\": 12,\n    \"bytes\": 1200,\n"));
  CHECK_THAT(json, Catch::Contains("    \"conntrack_not_found\": 1,\n"));
  CHECK_THAT(json, Catch::Contains("  \"kernel\": {\n    \"queue_dropped\": 11,\n"
                                   "    \"user_dropped\": 13,\n    \"queue_waiting\": 2\n  },\n"));
  CHECK_THAT(json, Catch::Contains("    \"command_masked\": {\n      \"id\": 1102,\n"
                                   "      \"asa\": 108004,\n      \"count\": 3\n    },\n"));
  CHECK_THAT(json, Catch::Contains("  \"log\": {\n    \"lines\": 4,\n    \"suppressed\": 0,\n"
                                   "    \"journal_fallbacks\": 0\n  },\n"));
  CHECK_THAT(json, Catch::Contains("  \"queues\": [\n    {\n      \"queue\": 0,\n"
                                   "      \"cpu\": 2,\n      \"flows_tracked\": 3,\n"
                                   "      \"counters\": {\n        \"packets\": 7,\n"));
  CHECK_THAT(json, Catch::Contains("      \"kernel\": {\n        \"queue_waiting\": 2,\n"
                                   "        \"queue_dropped\": 11,\n"
                                   "        \"user_dropped\": 13,\n"
                                   "        \"id_sequence\": 99,\n"
                                   "        \"peer_portid\": 1234\n      }\n    },\n"));
  CHECK_THAT(json, Catch::Contains("      \"queue\": 1,\n      \"cpu\": null,\n"
                                   "      \"flows_tracked\": 1,\n      \"counters\": {\n"
                                   "        \"packets\": 5,\n"));
  CHECK_THAT(json, Catch::EndsWith("      \"kernel\": null\n    }\n  ]\n}\n"));

  // Every counter name appears once in totals and once per queue (and once more if an event
  // has the same name, e.g. starttls).
  for (const auto& c : core::kCounterInfo) {
    const std::string key = "\"" + std::string(c.name) + "\": ";
    size_t n = 0;
    for (size_t pos = json.find(key); pos != std::string::npos; pos = json.find(key, pos + 1)) ++n;
    size_t as_event = 0;
    for (const auto& e : policy::kEventInfo) as_event += e.name == c.name;
    INFO(c.name);
    CHECK(n == 3 + as_event);
  }

  StatsSnapshot empty;
  CHECK(nlohmann::json::accept(render_json(empty)));
  CHECK_THAT(render_json(empty), Catch::Contains("\"policies\": [],\n"));
  CHECK_THAT(render_json(empty), Catch::Contains("\"queues\": []\n"));
}

TEST_CASE("stats Prometheus: families from the counter tables, per queue") {
  StatsSnapshot s = small_snapshot();
  const std::string prom = render_prometheus(s);
  CHECK(
      prom.starts_with("# HELP smtpguard_info version and default profile of the daemon\n"
                       "# TYPE smtpguard_info gauge\n"
                       "smtpguard_info{version=\"0.1.0\",profile=\"modern\"} 1\n"
                       "# HELP smtpguard_uptime_seconds seconds since the daemon started\n"
                       "# TYPE smtpguard_uptime_seconds gauge\n"
                       "smtpguard_uptime_seconds 93784\n"));
  const std::string packets_help(core::kCounterInfo[static_cast<size_t>(Counter::packets)].help);
  CHECK_THAT(prom, Catch::Contains("# HELP smtpguard_packets_total " + packets_help + "\n" +
                                   "# TYPE smtpguard_packets_total counter\n"
                                   "smtpguard_packets_total{queue=\"0\"} 7\n"
                                   "smtpguard_packets_total{queue=\"1\"} 5\n"));
  CHECK_THAT(prom, Catch::Contains("smtpguard_nfq_enobufs_total{queue=\"1\"} 4\n"));
  CHECK_THAT(prom, Catch::Contains("smtpguard_inject_sent_total{queue=\"0\"} 9\n"));
  CHECK_THAT(prom, Catch::Contains("smtpguard_conntrack_not_found_total{queue=\"1\"} 1\n"));
  // Kernel figures only for the queue that has them.
  CHECK_THAT(prom, Catch::Contains("# TYPE smtpguard_kernel_queue_dropped_total counter\n"
                                   "smtpguard_kernel_queue_dropped_total{queue=\"0\"} 11\n"
                                   "# HELP smtpguard_kernel_user_dropped_total"));
  CHECK_THAT(prom, Catch::Contains("# TYPE smtpguard_kernel_queue_waiting gauge\n"
                                   "smtpguard_kernel_queue_waiting{queue=\"0\"} 2\n"));
  CHECK_THAT(prom,
             Catch::Contains("smtpguard_events_total{event=\"command_masked\",id=\"1102\"} 3\n"));
  CHECK_THAT(prom,
             Catch::Contains("smtpguard_events_total{event=\"banner_masked\",id=\"1001\"} 0\n"));
  CHECK_THAT(prom, Catch::Contains("# TYPE smtpguard_log_suppressed_total counter\n"
                                   "smtpguard_log_suppressed_total 0\n"));
  CHECK_THAT(prom, Catch::Contains("# TYPE smtpguard_rules_restored_total counter\n"
                                   "smtpguard_rules_restored_total 2\n"));
  CHECK_THAT(prom, !Catch::Contains("smtpguard_policy_info"));

  s.policies = {{"mx1", "asa-default"}, {"odd\\\"\n", "modern"}};
  const std::string with_rules = render_prometheus(s);
  CHECK_THAT(
      with_rules,
      Catch::Contains("smtpguard_policy_info{rule=\"mx1\",profile=\"asa-default\"} 1\n"
                      "smtpguard_policy_info{rule=\"odd\\\\\\\"\\n\",profile=\"modern\"} 1\n"));
}

TEST_CASE("stats Prometheus: every line follows the exposition format 0.0.4") {
  StatsSnapshot s = small_snapshot();
  s.policies = {{"mx1", "asa-default"}};
  const std::string prom = render_prometheus(s);
  REQUIRE(prom.ends_with("\n"));
  const std::string name = "[a-zA-Z_:][a-zA-Z0-9_:]*";
  const std::string label = "[a-zA-Z_][a-zA-Z0-9_]*=\"(?:[^\"\\\\\\n]|\\\\[\\\\\"n])*\"";
  const std::regex help("# HELP (" + name + ") [^\\n]*");
  const std::regex type("# TYPE (" + name + ") (counter|gauge)");
  const std::regex sample("(" + name + ")(?:\\{" + label + "(?:," + label + ")*\\})? [0-9]+");
  std::set<std::string> families;
  std::string current, current_type;
  bool expect_type = false;
  std::istringstream in(prom);
  size_t samples = 0;
  for (std::string line; std::getline(in, line);) {
    INFO(line);
    std::smatch m;
    if (std::regex_match(line, m, help)) {
      REQUIRE_FALSE(expect_type);
      current = m[1];
      REQUIRE(families.insert(current).second);  // one block per family
      expect_type = true;
    } else if (std::regex_match(line, m, type)) {
      REQUIRE(expect_type);
      REQUIRE(m[1] == current);
      current_type = m[2];
      expect_type = false;
    } else {
      REQUIRE(std::regex_match(line, m, sample));
      REQUIRE_FALSE(expect_type);
      REQUIRE(m[1] == current);
      // Counters end in _total; gauges do not.
      CHECK(current.ends_with("_total") == (current_type == "counter"));
      ++samples;
    }
  }
  CHECK(families.size() ==
        core::kCounterInfo.size() + nfq::kQueueCounterInfo.size() + nfq::kInjectCounterInfo.size() +
            nfq::kConntrackCounterInfo.size() + prometheus_extra_families().size() +
            sg::nft::kRulesWatchCounterInfo.size() + sg::eventlog::kWatchCounterInfo.size());
  // 2 workers x every counter, + kernel (1 queue x 3), events, info, policy, uptime, workers,
  // log (lines, suppressed, journal fallbacks), + 2 workers x flows tracked, + the rules
  // watcher's and the decision watchers' counters (no queue label).
  const size_t counters = core::kCounterInfo.size() + nfq::kQueueCounterInfo.size() +
                          nfq::kInjectCounterInfo.size() + nfq::kConntrackCounterInfo.size();
  CHECK(samples == 2 * counters + 3 + kEventCount + 7 + 2 + sg::nft::kRulesWatchCounterInfo.size() +
                       sg::eventlog::kWatchCounterInfo.size());
}

TEST_CASE("stats: no two metric families share a name") {
  std::set<std::string> names;
  size_t n = 0;
  auto add = [&](const auto& table) {
    for (const auto& c : table) {
      names.insert("smtpguard_" + std::string(c.name) + "_total");
      ++n;
    }
  };
  add(core::kCounterInfo);
  add(nfq::kQueueCounterInfo);
  add(nfq::kInjectCounterInfo);
  add(nfq::kConntrackCounterInfo);
  add(sg::nft::kRulesWatchCounterInfo);
  for (const std::string& f : prometheus_extra_families()) {
    CHECK(f.starts_with("smtpguard_"));
    names.insert(f);
    ++n;
  }
  CHECK(names.size() == n);
}

TEST_CASE("stats status: one worker") {
  StatsSnapshot s = small_snapshot();
  s.workers.pop_back();
  CHECK_THAT(render_status(s), Catch::Contains("\nqueues: 0 (1 worker)\n"
                                               "  queue 0: cpu 2, 3 flows now (100%)\n"));
}

TEST_CASE("stats status: no flows, no share") {
  StatsSnapshot s = small_snapshot();
  s.workers[0].flows_tracked = 0;
  s.workers[1].flows_tracked = 0;
  CHECK_THAT(render_status(s), Catch::Contains("  queue 0: cpu 2, 0 flows now (0%)\n"
                                               "  queue 1: not pinned, 0 flows now (0%)\n"));
}

TEST_CASE("stats status: shares are rounded to the nearest percent") {
  StatsSnapshot s = small_snapshot();
  s.workers[0].flows_tracked = 2;
  s.workers[1].flows_tracked = 1;
  CHECK_THAT(render_status(s), Catch::Contains("  queue 0: cpu 2, 2 flows now (67%)\n"
                                               "  queue 1: not pinned, 1 flow now (33%)\n"));
  CHECK_THAT(render_prometheus(s), Catch::Contains("# TYPE smtpguard_flows_tracked gauge\n"
                                                   "smtpguard_flows_tracked{queue=\"0\"} 2\n"
                                                   "smtpguard_flows_tracked{queue=\"1\"} 1\n"));
}

TEST_CASE("stats status: a few lines for people") {
  StatsSnapshot s = small_snapshot();
  CHECK(render_status(s) ==
        "smtpguardd 0.1.0, pid 4242, up 1d 02:03:04\n"
        "profile: modern\n"
        "queues: 0 1 (2 workers)\n"
        "  queue 0: cpu 2, 3 flows now (75%)\n"
        "  queue 1: not pinned, 1 flow now (25%)\n"
        "packets: 12 (1200 bytes); accepted 0, modified 0, dropped 0, held 0\n"
        "flows: 4 now; since start 3 tracked, 0 mapped, 0 reset, 0 evicted\n"
        "decisions: 4 (log: 4 lines, 0 suppressed)\n"
        "watch: 0 watchers now; 0 records sent, 0 dropped\n"
        "kernel: 11 dropped (queue full), 13 dropped (socket buffer), 2 waiting\n");
}

TEST_CASE("stats JSON: a name that is not UTF-8 is replaced, never thrown, and stays valid") {
  StatsSnapshot s = small_snapshot();
  s.policies = {{std::string("mx\xff\x01"), "modern"}};
  std::string json;
  REQUIRE_NOTHROW(json = render_json(s));
  CHECK(nlohmann::json::accept(json));
  CHECK(nlohmann::json::parse(json)["policies"][0]["rule"] == "mx\xef\xbf\xbd\u0001");
}

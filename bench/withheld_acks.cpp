// withheld_acks — what the per-worker byte budget (--memory-budget) bounds, measured through
// the real data path, and what the retained-block pool saves.
//
//   sg_withheld_acks rss --flows N --mib-per-flow M --budget-mib B [--profile NAME]
//     N connections are opened through one sg::core::Pipeline (the state one worker keeps) up
//     to the DATA body; then each sends M MiB of body in 1400-byte segments, round robin, and
//     the server never acknowledges a byte. Without a budget (B = 0) every inspected byte is
//     retained until acknowledged; with one, the flows retaining the most let go and new
//     segments are dropped (the sender would retransmit them). Prints one JSON object: the
//     growth of VmRSS, the bytes the pipeline counts against the budget, drops and releases.
//     Run it once per budget: a process does not give freed heap back, so each figure needs a
//     process of its own (bench/README.md has the commands).
//
//   sg_withheld_acks rss ... --before-354
//     The same, but the server never answers DATA: every byte the client sends after it waits
//     for the 354 in the session's pending buffer (a client that keeps its receive window at 0
//     so the reply never gets back). The per-connection cap raises the pending-buffer
//     exception (reject by default).
//
//   sg_withheld_acks churn [--rounds R] [--mib M]
//     M MiB of 64 KiB segments appended to one tcp::RetainedBytes, acknowledged about 3 MiB
//     behind (a bulk transfer), once allocating every block and once from a tcp::BlockPool,
//     alternately in the same process, R rounds (the first is a warm-up and not counted). Prints
//     the pooled / plain time ratio (median) and the page faults of each.
//
// Packets are built with the tests' PacketBuilder, addressed inside 198.18.0.0/15 only; nothing
// touches the network. Bounded: at most 20,000 flows and 64 MiB per flow.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "core/pipeline.hpp"
#include "core/pipeline_session.hpp"
#include "policy/policy_set.hpp"
#include "policy/profile.hpp"
#include "tcp/block_pool.hpp"
#include "tcp/retained_bytes.hpp"

using namespace sg;

namespace {

long rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  return -1;
}

long minor_faults() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  return r.ru_minflt;
}

[[noreturn]] void usage(int code) {
  std::fprintf(code == 0 ? stdout : stderr,
               "usage: sg_withheld_acks rss --flows N --mib-per-flow M --budget-mib B "
               "[--profile NAME] [--before-354]\n"
               "       sg_withheld_acks churn [--rounds R] [--mib M]\n");
  std::exit(code);
}

struct Args {
  std::string mode;
  size_t flows = 200;
  size_t mib_per_flow = 2;
  size_t budget_mib = 64;
  std::string profile = "modern";
  bool before_354 = false;
  size_t rounds = 5;
  size_t churn_mib = 2048;
};

size_t number(const std::string& key, const std::string& text, size_t max) {
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || v > max) {
    std::fprintf(stderr, "withheld_acks: %s wants a number up to %zu, not '%s'\n", key.c_str(), max,
                 text.c_str());
    usage(2);
  }
  return static_cast<size_t>(v);
}

Args parse(int argc, char** argv) {
  if (argc < 2) usage(2);
  Args a;
  a.mode = argv[1];
  if (a.mode == "--help" || a.mode == "-h") usage(0);
  if (a.mode != "rss" && a.mode != "churn") usage(2);
  for (int i = 2; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "--help") usage(0);
    if (k == "--before-354") {
      a.before_354 = true;
      continue;
    }
    if (i + 1 >= argc) usage(2);
    const std::string v = argv[++i];
    if (k == "--flows") {
      a.flows = number(k, v, 20000);
    } else if (k == "--mib-per-flow") {
      a.mib_per_flow = number(k, v, 64);
    } else if (k == "--budget-mib") {
      a.budget_mib = number(k, v, 1 << 20);
    } else if (k == "--profile") {
      a.profile = v;
    } else if (k == "--rounds") {
      a.rounds = number(k, v, 100);
    } else if (k == "--mib") {
      a.churn_mib = number(k, v, 1 << 16);
    } else {
      usage(2);
    }
  }
  if (a.flows == 0 || a.rounds < 2) usage(2);
  return a;
}

int run_rss(const Args& a) {
  auto profile = policy::builtin_profile(a.profile);
  if (!profile) {
    std::fprintf(stderr, "withheld_acks: unknown profile %s\n", a.profile.c_str());
    return 2;
  }
  core::PipelineConfig config{policy::single_policy(profile)};
  config.memory_budget = a.budget_mib << 20;
  config.max_flows = a.flows + 16;  // nothing is evicted
  core::Pipeline pipeline(std::move(config));
  std::vector<std::unique_ptr<test::PipelineSession>> sessions;
  sessions.reserve(a.flows);
  for (size_t i = 0; i < a.flows; ++i) {
    sessions.push_back(
        std::make_unique<test::PipelineSession>(pipeline, static_cast<uint16_t>(10000 + i)));
    test::PipelineSession& s = *sessions.back();
    if (!a.before_354) {
      s.open_data();
      continue;
    }
    s.handshake();
    s.server("220 mx.example.org ESMTP\r\n");
    s.client("EHLO c.example.org\r\n");
    s.server("250 mx.example.org\r\n");
    s.client("MAIL FROM:<a@example.org>\r\n");
    s.server("250 ok\r\n");
    s.client("RCPT TO:<b@example.org>\r\n");
    s.server("250 ok\r\n");
    s.client("DATA\r\n");  // the 354 never comes back
  }
  const long before = rss_kib();
  const std::string segment = test::body_segment(1400, 'b');
  const size_t per_flow = (a.mib_per_flow << 20) / segment.size();
  size_t sent = 0, dropped = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t k = 0; k < per_flow; ++k) {
    for (auto& s : sessions) {
      ++sent;
      if (s->client(segment).verdict.kind == core::VerdictKind::kDrop) ++dropped;
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const long after = rss_kib();
  const auto& c = pipeline.counters();
  std::printf(
      "{\"mode\": \"rss\", \"profile\": \"%s\", \"flows\": %zu, \"mib_per_flow\": %zu, "
      "\"budget_mib\": %zu, \"segments\": %zu, \"segments_dropped\": %zu, "
      "\"rss_before_kib\": %ld, \"rss_after_kib\": %ld, \"rss_growth_mib\": %.1f, "
      "\"budget_used_mib\": %.1f, \"budget_drops\": %llu, \"budget_releases\": %llu, "
      "\"budget_released_mib\": %.1f, \"before_354\": %s, \"exception_pending_buffer\": %llu, "
      "\"exception_memory_budget\": %llu, \"flows_reset\": %llu, \"seconds\": %.2f}\n",
      a.profile.c_str(), a.flows, a.mib_per_flow, a.budget_mib, sent, dropped, before, after,
      (after - before) / 1024.0, pipeline.budget_used() / 1048576.0,
      static_cast<unsigned long long>(c.get(core::Counter::budget_drops)),
      static_cast<unsigned long long>(c.get(core::Counter::budget_releases)),
      c.get(core::Counter::budget_released_bytes) / 1048576.0, a.before_354 ? "true" : "false",
      static_cast<unsigned long long>(c.get(core::Counter::exception_pending_buffer)),
      static_cast<unsigned long long>(c.get(core::Counter::exception_memory_budget)),
      static_cast<unsigned long long>(c.get(core::Counter::flows_reset)), seconds);
  return 0;
}

// One bulk transfer through a RetainedBytes: 64 KiB segments, acknowledged ~3 MiB behind.
double churn_once(tcp::BlockPool* pool, size_t mib) {
  tcp::RetainedBytes retained(8u << 20, pool);
  std::string segment(65536, 'x');
  const size_t segments = (mib << 20) / segment.size();
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < segments; ++i) {
    segment[i % segment.size()] ^= 1;  // different bytes each time
    retained.append(segment);
    if (retained.size() > (4u << 20)) retained.release_before(retained.end() - (3u << 20));
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int run_churn(const Args& a) {
  std::vector<double> ratios;
  double plain_sum = 0, pooled_sum = 0;
  long plain_faults = 0, pooled_faults = 0;
  for (size_t round = 0; round < a.rounds; ++round) {
    const long f0 = minor_faults();
    const double plain = churn_once(nullptr, a.churn_mib);
    const long f1 = minor_faults();
    tcp::BlockPool pool;
    const double pooled = churn_once(&pool, a.churn_mib);
    const long f2 = minor_faults();
    std::fprintf(stderr,
                 "withheld_acks: round %zu: plain %.3f s (%ld faults), pooled %.3f s (%ld)\n",
                 round, plain, f1 - f0, pooled, f2 - f1);
    if (round == 0) continue;  // warm-up
    ratios.push_back(pooled / plain);
    plain_sum += plain;
    pooled_sum += pooled;
    plain_faults += f1 - f0;
    pooled_faults += f2 - f1;
  }
  std::sort(ratios.begin(), ratios.end());
  const size_t n = ratios.size();
  std::printf(
      "{\"mode\": \"churn\", \"mib\": %zu, \"rounds\": %zu, \"plain_seconds_mean\": %.3f, "
      "\"pooled_seconds_mean\": %.3f, \"pooled_over_plain_median\": %.2f, "
      "\"pooled_over_plain_min\": %.2f, \"pooled_over_plain_max\": %.2f, "
      "\"plain_faults_per_round\": %ld, \"pooled_faults_per_round\": %ld}\n",
      a.churn_mib, n, plain_sum / n, pooled_sum / n, ratios[n / 2], ratios.front(), ratios.back(),
      plain_faults / static_cast<long>(n), pooled_faults / static_cast<long>(n));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  return args.mode == "rss" ? run_rss(args) : run_churn(args);
}

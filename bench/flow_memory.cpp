// flow_memory — what an idle tracked connection costs smtpguardd in memory, measured through
// the real data path: N connections are opened through one sg::core::Pipeline (the state one
// worker keeps), each taken as far as --state says, and then left idle. The process's resident
// memory (VmRSS of /proc/self/status) is read before the pipeline exists, after it is created
// (its flow table reserves its buckets up front) and after the N flows; the difference per flow
// is the figure the benchmark reports.
//
//   sg_flow_memory --flows N [--state syn|established|greeted] [--profile NAME]
//
//   syn          the client's SYN only (a half-open connection, as in a SYN flood)
//   established  SYN, SYN-ACK, ACK: the SMTP inspector exists
//   greeted      also the server's greeting and the client's ACK of it (default): a
//                connection waiting for its first command, the usual idle flow
//
// Prints one JSON object on stdout. Packets are built with the tests' PacketBuilder, addressed
// inside 198.18.0.0/15 only; nothing touches the network.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "core/pipeline.hpp"
#include "net/packet.hpp"
#include "policy/policy_set.hpp"
#include "policy/profile.hpp"
#include "support/packet_builder.hpp"

using namespace sg;

namespace {

// A field of /proc/self/status in KiB ("VmRSS", "VmHWM").
long status_kib(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0)
      return std::strtol(line.c_str() + field.size() + 1, nullptr, 10);
  }
  return -1;
}

enum class Depth { kSyn, kEstablished, kGreeted };

struct Args {
  size_t flows = 100000;
  Depth depth = Depth::kGreeted;
  std::string profile = "modern";
};

[[noreturn]] void usage(int code) {
  std::fprintf(stderr,
               "usage: sg_flow_memory --flows N [--state syn|established|greeted] "
               "[--profile NAME]\n");
  std::exit(code);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    if (k == "--help") usage(0);
    if (i + 1 >= argc) usage(2);
    std::string v = argv[++i];
    if (k == "--flows") {
      a.flows = std::stoul(v);
    } else if (k == "--state") {
      if (v == "syn") {
        a.depth = Depth::kSyn;
      } else if (v == "established") {
        a.depth = Depth::kEstablished;
      } else if (v == "greeted") {
        a.depth = Depth::kGreeted;
      } else {
        usage(2);
      }
    } else if (k == "--profile") {
      a.profile = v;
    } else {
      usage(2);
    }
  }
  if (a.flows == 0 || a.flows > 4'000'000) usage(2);
  return a;
}

const char* depth_name(Depth d) {
  switch (d) {
    case Depth::kSyn:
      return "syn";
    case Depth::kEstablished:
      return "established";
    case Depth::kGreeted:
      return "greeted";
  }
  return "?";
}

// Connection i: client 198.18.1.0/24 .. 198.18.255.x (port 1024 + i % 60000), server
// 198.18.2.1:25 — unique 4-tuples for up to 4M connections, all in 198.18.0.0/15.
struct Endpoints {
  std::string client;
  uint16_t client_port;
};

Endpoints endpoints(size_t i) {
  const size_t host = i / 60000;  // 0..66
  char addr[32];
  std::snprintf(addr, sizeof(addr), "198.18.%zu.%zu", 16 + host / 250, 1 + host % 250);
  return {addr, static_cast<uint16_t>(1024 + i % 60000)};
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  auto profile = policy::builtin_profile(args.profile);
  if (!profile) {
    std::fprintf(stderr, "flow_memory: unknown profile %s\n", args.profile.c_str());
    return 2;
  }

  const long rss_start = status_kib("VmRSS");
  core::PipelineConfig config{policy::single_policy(profile)};
  config.max_flows = args.flows + 16;  // nothing is evicted
  core::Pipeline pipeline(std::move(config));
  const long rss_pipeline = status_kib("VmRSS");

  core::Output out;
  Timestamp now = Clock::now();
  uint32_t id = 1;
  const std::string server = "198.18.2.1";
  const std::string banner = "220 mx.example.org ESMTP Postfix\r\n";
  size_t not_accepted = 0;
  auto feed = [&](std::vector<uint8_t> pkt) {
    out.clear();
    auto v = pipeline.process(id++, pkt, false, now, out);
    if (v.kind != core::VerdictKind::kAccept && v.kind != core::VerdictKind::kAcceptModified) {
      ++not_accepted;
    }
  };

  const auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < args.flows; ++i) {
    const Endpoints e = endpoints(i);
    const uint32_t cseq = 1000 + static_cast<uint32_t>(i) * 7919u;
    const uint32_t sseq = 5000 + static_cast<uint32_t>(i) * 104729u;
    auto c2s = [&] {
      test::PacketBuilder b;
      b.v4(e.client, server).ports(e.client_port, 25);
      return b;
    };
    auto s2c = [&] {
      test::PacketBuilder b;
      b.v4(server, e.client).ports(25, e.client_port);
      return b;
    };
    feed(c2s().seq(cseq).flags(net::kTcpSyn).mss(1460).sack_permitted().window_scale(7).build());
    if (args.depth != Depth::kSyn) {
      feed(s2c()
               .seq(sseq)
               .ack(cseq + 1)
               .flags(net::kTcpSyn | net::kTcpAck)
               .mss(1460)
               .sack_permitted()
               .window_scale(7)
               .build());
      feed(c2s().seq(cseq + 1).ack(sseq + 1).flags(net::kTcpAck).build());
    }
    if (args.depth == Depth::kGreeted) {
      feed(s2c()
               .seq(sseq + 1)
               .ack(cseq + 1)
               .flags(net::kTcpAck | net::kTcpPsh)
               .payload(banner)
               .build());
      feed(c2s()
               .seq(cseq + 1)
               .ack(sseq + 1 + static_cast<uint32_t>(banner.size()))
               .flags(net::kTcpAck)
               .build());
    }
    now += std::chrono::microseconds(1);  // 1M flows span 1 s: none reaches its idle timeout
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const long rss_flows = status_kib("VmRSS");
  const auto& c = pipeline.counters();
  const uint64_t created = c.get(core::Counter::flows_created);
  const uint64_t evicted = c.get(core::Counter::flows_evicted);

  const double per_flow = static_cast<double>(rss_flows - rss_start) * 1024.0 / args.flows;
  const double per_flow_entries =
      static_cast<double>(rss_flows - rss_pipeline) * 1024.0 / args.flows;
  std::printf(
      "{\"flows\": %zu, \"state\": \"%s\", \"profile\": \"%s\", \"flows_created\": %llu, "
      "\"flows_evicted\": %llu, \"packets_not_accepted\": %zu, \"packets\": %u, "
      "\"rss_start_kib\": %ld, \"rss_after_pipeline_kib\": %ld, \"rss_after_flows_kib\": %ld, "
      "\"vm_hwm_kib\": %ld, \"rss_flows_bytes\": %lld, \"bytes_per_flow\": %.1f, "
      "\"bytes_per_flow_entries_only\": %.1f, \"seconds\": %.3f}\n",
      args.flows, depth_name(args.depth), args.profile.c_str(),
      static_cast<unsigned long long>(created), static_cast<unsigned long long>(evicted),
      not_accepted, id - 1, rss_start, rss_pipeline, rss_flows, status_kib("VmHWM"),
      static_cast<long long>(rss_flows - rss_start) * 1024, per_flow, per_flow_entries, seconds);
  return 0;
}

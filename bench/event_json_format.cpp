// The JSON event line on the workers' path: the daemon's fixed-buffer writer
// (eventlog/event_json.hpp) against the same object built and dumped with nlohmann::ordered_json
// (Debian's nlohmann-json3, which the statistics' JSON uses), in the same run: ns and heap
// allocations per line, median over rounds. Both lines are parsed back and compared field by
// field, so the two sides write the same event.
//
//   sg_event_json_format [--lines N] [--rounds R]
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "eventlog/event_json.hpp"
#include "eventlog/event_log.hpp"
#include "policy/policy_set.hpp"
#include "replay/allocation_count.hpp"

using namespace sg;
using Json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

namespace {

core::Decision sample_decision() {
  core::Decision d;
  d.event = policy::Event::kKeywordMasked;
  d.action = "mask";
  d.client = policy::parse_subnet("198.18.1.1")->address;
  d.server = policy::parse_subnet("198.18.2.1")->address;
  d.client_port = 40000;
  d.server_port = 25;
  d.dir = smtp::Dir::kServerToClient;
  d.subject = "STARTTLS";
  d.helo = "client.example.org";
  d.mail_from = "sender@example.org";
  d.rcpt_count = 1;
  return d;
}

// The same object as format_json_decision, through nlohmann.
std::string nlohmann_line(const core::Decision& d, eventlog::WallClock::time_point t) {
  const policy::EventInfo& info = policy::info(d.event);
  const bool c2s = d.dir == smtp::Dir::kClientToServer;
  eventlog::JsonLine ts;  // the timestamp text is the same helper on both sides
  ts.timestamp(t);
  std::string when(ts.view());
  Json j;
  j["timestamp"] = when.substr(1, when.size() - 2);
  j["flow_id"] = eventlog::flow_id(d);
  j["event_type"] = "smtpguard";
  j["src_ip"] = (c2s ? d.client : d.server).to_string();
  j["src_port"] = c2s ? d.client_port : d.server_port;
  j["dest_ip"] = (c2s ? d.server : d.client).to_string();
  j["dest_port"] = c2s ? d.server_port : d.client_port;
  j["proto"] = "TCP";
  j["smtp"] = {{"helo", d.helo}, {"mail_from", d.mail_from}, {"rcpt_count", d.rcpt_count}};
  j["smtpguard"] = {{"event", info.name},
                    {"id", info.id},
                    {"asa", info.asa_id != 0 ? Json(info.asa_id) : Json(nullptr)},
                    {"action", d.action},
                    {"dir", c2s ? "c2s" : "s2c"},
                    {"ends_connection", d.ends_connection},
                    {"subject", d.subject},
                    {"detail", d.detail}};
  return j.dump(-1, ' ', true, Json::error_handler_t::replace);
}

struct Result {
  double ns_per_line;
  double allocs_per_line;
};

template <class F>
Result measure(int lines, F&& write_one) {
  const uint64_t a0 = bench::thread_allocations();
  const auto t0 = Clock::now();
  for (int i = 0; i < lines; ++i) write_one();
  const auto t1 = Clock::now();
  const uint64_t a1 = bench::thread_allocations();
  return {std::chrono::duration<double, std::nano>(t1 - t0).count() / lines,
          static_cast<double>(a1 - a0) / lines};
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int lines = 200000, rounds = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--lines") == 0) {
      lines = std::atoi(argv[i + 1]);
    } else if (std::strcmp(argv[i], "--rounds") == 0) {
      rounds = std::atoi(argv[i + 1]);
    } else {
      std::fprintf(stderr, "usage: sg_event_json_format [--lines N] [--rounds R]\n");
      return 2;
    }
  }
  if (lines <= 0 || rounds <= 0 || argc % 2 == 0) {
    std::fprintf(stderr, "usage: sg_event_json_format [--lines N] [--rounds R]\n");
    return 2;
  }
  const core::Decision d = sample_decision();
  const auto when = eventlog::WallClock::now();
  // Same event on both sides.
  eventlog::JsonLine mine;
  eventlog::format_json_decision(d, when, mine);
  if (Json::parse(mine.view()) != Json::parse(nlohmann_line(d, when))) {
    std::fprintf(stderr, "the two lines differ:\n%.*s\n%s\n", static_cast<int>(mine.view().size()),
                 mine.view().data(), nlohmann_line(d, when).c_str());
    return 1;
  }
  std::vector<double> fixed_ns, nl_ns, ratio;
  double fixed_allocs = 0, nl_allocs = 0;
  size_t sink = 0;
  for (int r = 0; r < rounds; ++r) {
    const Result a = measure(lines, [&] {
      eventlog::JsonLine j;
      eventlog::format_json_decision(d, when, j);
      sink += j.view().size();
    });
    const Result b = measure(lines, [&] { sink += nlohmann_line(d, when).size(); });
    fixed_ns.push_back(a.ns_per_line);
    nl_ns.push_back(b.ns_per_line);
    ratio.push_back(b.ns_per_line / a.ns_per_line);
    fixed_allocs = a.allocs_per_line;
    nl_allocs = b.allocs_per_line;
  }
  std::printf("lines per round %d, rounds %d (medians; %zu bytes written)\n", lines, rounds, sink);
  std::printf("fixed-buffer writer  %8.0f ns/line  %5.1f allocations/line\n", median(fixed_ns),
              fixed_allocs);
  std::printf("nlohmann::ordered_json %6.0f ns/line  %5.1f allocations/line\n", median(nl_ns),
              nl_allocs);
  std::printf("nlohmann / fixed     %8.2f x\n", median(ratio));
  return 0;
}

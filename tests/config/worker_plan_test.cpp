// The workers the daemon starts (src/config/worker_plan.hpp): queues = auto against the CPUs of
// the affinity mask, explicit ranges as given, worker-cpus pinning and its check at start.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "config/options.hpp"
#include "config/worker_plan.hpp"

using namespace sg::config;

namespace {

// The options from a command line and, if given, a configuration file's text.
Options options(std::vector<std::string> args, const std::string& file_text = "") {
  args.insert(args.begin(), "smtpguardd");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  CommandLine cl = parse_command_line(static_cast<int>(argv.size()), argv.data());
  INFO(cl.text);
  REQUIRE(cl.arguments);
  std::optional<ConfigFile> file;
  if (!file_text.empty()) {
    auto parsed = parse_config_text("/etc/smtpguard/test.conf", file_text);
    REQUIRE(parsed);
    file = std::move(*parsed);
  }
  auto o = resolve_options(*cl.arguments, file ? &*file : nullptr);
  INFO((o ? "" : o.error().text()));
  REQUIRE(o);
  return *o;
}

std::vector<uint16_t> cpus(uint16_t first, uint16_t last) {
  std::vector<uint16_t> out;
  for (uint32_t c = first; c <= last; ++c) out.push_back(static_cast<uint16_t>(c));
  return out;
}

}  // namespace

TEST_CASE("queues auto: one queue per CPU of the affinity mask, 1 to 64") {
  struct Case {
    size_t affinity_cpus;
    uint16_t last;
  };
  auto c = GENERATE(Case{1, 0}, Case{2, 1}, Case{7, 6}, Case{64, 63}, Case{65, 63}, Case{1024, 63},
                    Case{0, 0});
  INFO(c.affinity_cpus << " CPUs");
  CHECK(resolve_queues(QueueSpec{}, c.affinity_cpus) == QueueRange{0, c.last});
}

TEST_CASE("an explicit range is kept whatever the CPUs") {
  const QueueSpec spec{false, QueueRange{4, 5}};
  CHECK(resolve_queues(spec, 1) == QueueRange{4, 5});
  CHECK(resolve_queues(spec, 16) == QueueRange{4, 5});
}

TEST_CASE("the default is auto: the plan and the log line say how many workers and why") {
  const Options o = options({});
  auto two = plan_workers(o, {0, 1});
  REQUIRE(two);
  CHECK(two->queues == QueueRange{0, 1});
  CHECK(two->workers() == 2);
  CHECK(two->cpus.empty());
  CHECK_FALSE(two->cpu_of(0));
  CHECK(two->description == "queues auto: 2 workers (2 CPUs in the affinity mask), queue 0-1");

  // A single-CPU machine (or taskset -c 3): one worker on queue 0, a plain `queue num 0`.
  auto one = plan_workers(o, {3});
  REQUIRE(one);
  CHECK(one->queues == QueueRange{0, 0});
  CHECK(one->description == "queues auto: 1 worker (1 CPU in the affinity mask), queue 0");

  auto many = plan_workers(o, cpus(0, 95));
  REQUIRE(many);
  CHECK(many->queues == QueueRange{0, 63});
  CHECK(many->description ==
        "queues auto: 64 workers (96 CPUs in the affinity mask, at most 64 workers), queue 0-63");
}

TEST_CASE("explicit queues: as configured") {
  auto plan = plan_workers(options({"--queues", "3-5"}), cpus(0, 7));
  REQUIRE(plan);
  CHECK(plan->queues == QueueRange{3, 5});
  CHECK(plan->description == "queues 3-5: 3 workers");
  auto single = plan_workers(options({"--queues", "7"}), cpus(0, 7));
  REQUIRE(single);
  CHECK(single->queues == QueueRange{7, 7});
  CHECK(single->description == "queues 7: 1 worker");
}

TEST_CASE("worker-cpus: worker i on the i-th CPU, from the start again when they run out") {
  auto plan = plan_workers(options({"--queues", "0-4", "--worker-cpus", "6,2-3"}), cpus(0, 7));
  REQUIRE(plan);
  CHECK(plan->cpus == std::vector<uint16_t>{6, 2, 3});
  std::vector<uint16_t> got;
  for (size_t i = 0; i < plan->workers(); ++i) got.push_back(*plan->cpu_of(i));
  CHECK(got == std::vector<uint16_t>{6, 2, 3, 6, 2});
  CHECK(plan->description ==
        "queues 0-4: 5 workers; worker-cpus 6,2-3: queue 0 on CPU 6, queue 1 on CPU 2, queue 2 "
        "on CPU 3, queue 3 on CPU 6, queue 4 on CPU 2");

  // With auto: as many workers as CPUs in the mask, each on one of the list.
  auto automatic = plan_workers(options({"--worker-cpus", "1,0"}), {0, 1});
  REQUIRE(automatic);
  CHECK(automatic->queues == QueueRange{0, 1});
  CHECK(*automatic->cpu_of(0) == 1);
  CHECK(*automatic->cpu_of(1) == 0);
}

TEST_CASE("worker-cpus: a CPU outside the affinity mask is a configuration error at start") {
  SECTION("on the command line: exit 2, naming the option") {
    auto plan = plan_workers(options({"--worker-cpus", "0-2"}), {0, 1});
    REQUIRE_FALSE(plan);
    CHECK(plan.error().from_command_line());
    CHECK(error_message(plan.error()) ==
          "smtpguardd: --worker-cpus: CPU 2 is not in the process's affinity mask (0-1) "
          "(allowed: CPUs of the affinity mask)\nTry 'smtpguardd --help'.\n");
    CHECK(exit_code(plan.error(), false) == 2);
  }
  SECTION("in the file: exit 1, naming the file and the line") {
    auto plan = plan_workers(options({}, "# pinned\nworker-cpus = 4\n"), {0, 1, 2, 3});
    REQUIRE_FALSE(plan);
    CHECK(plan.error().text() ==
          "/etc/smtpguard/test.conf:2: option 'worker-cpus': CPU 4 is not in the process's "
          "affinity mask (0-3) (allowed: CPUs of the affinity mask)");
    CHECK(exit_code(plan.error(), false) == 1);
  }
}

TEST_CASE("worker-cpus: empty is no pinning (the shipped file's commented default)") {
  CHECK(options({"--worker-cpus", ""}).worker_cpus.empty());
  CHECK(options({}, "worker-cpus =\n").worker_cpus.empty());
}

TEST_CASE("worker-cpus: bad syntax is refused when the options are read") {
  for (const char* bad : {"0,,1", ",", "x", "2-1", "1,1", "1024"}) {
    INFO("--worker-cpus '" << bad << "'");
    std::vector<std::string> args{"smtpguardd", "--worker-cpus", bad};
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());
    CommandLine cl = parse_command_line(static_cast<int>(argv.size()), argv.data());
    REQUIRE(cl.arguments);
    auto o = resolve_options(*cl.arguments, nullptr);
    REQUIRE_FALSE(o);
    CHECK_THAT(o.error().text(), Catch::StartsWith("--worker-cpus: "));
  }
}

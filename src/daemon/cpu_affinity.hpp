#pragma once
// The CPUs this process may run on, and pinning a thread to one of them: the kernel side of
// config/worker_plan.hpp (queues = auto counts the CPUs, worker-cpus pins the workers).
#include <cstdint>
#include <string>
#include <vector>

#include "util/expected.hpp"

namespace sg::daemon {

// The CPUs of the calling thread's affinity mask (sched_getaffinity), ascending; empty when the
// mask cannot be read. Read in main before any thread starts, so it is the process's mask
// (taskset, systemd's CPUAffinity=, a container's cpuset).
std::vector<uint16_t> affinity_cpus();

// Pins the calling thread to `cpu` (pthread_setaffinity_np). The error says why not.
Expected<bool, std::string> pin_this_thread(uint16_t cpu);

}  // namespace sg::daemon

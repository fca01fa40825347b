#include "daemon/cpu_affinity.hpp"

#include <pthread.h>
#include <sched.h>

#include <cerrno>
#include <cstring>

namespace sg::daemon {

std::vector<uint16_t> affinity_cpus() {
  std::vector<uint16_t> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
    if (CPU_ISSET(cpu, &set)) cpus.push_back(static_cast<uint16_t>(cpu));
  return cpus;
}

Expected<bool, std::string> pin_this_thread(uint16_t cpu) {
  if (cpu >= CPU_SETSIZE) return unexpected("CPU " + std::to_string(cpu) + " out of range");
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  // Returns the error number rather than setting errno.
  const int err = ::pthread_setaffinity_np(::pthread_self(), sizeof set, &set);
  if (err != 0) {
    return unexpected("cannot pin to CPU " + std::to_string(cpu) + ": " + std::strerror(err));
  }
  return true;
}

}  // namespace sg::daemon

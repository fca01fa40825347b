#pragma once
// The core never reads a clock: callers pass the time in, so tests control it.
#include <chrono>

namespace sg {
using Clock = std::chrono::steady_clock;
using Timestamp = Clock::time_point;
using Duration = Clock::duration;
using std::chrono::milliseconds;
using std::chrono::seconds;
}  // namespace sg

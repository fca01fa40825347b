#pragma once
// Heap allocations of the calling thread: every call to any operator new since the thread
// started (allocation_count.cpp replaces the global operators in the replay binary only).
// malloc called directly is not counted.
#include <cstdint>

namespace sg::bench {

uint64_t thread_allocations();

}  // namespace sg::bench

#pragma once
// The watch hub's counters (eventlog/watch_hub.hpp), declared once; in `smtpguardctl stats`,
// its JSON and the Prometheus exposition.
#include "util/counter_set.hpp"

namespace sg::eventlog {

#define SG_WATCH_COUNTERS(X)                                                  \
  X(watch_attached, "watchers attached (smtpguardctl watch)")                 \
  X(watch_refused, "watchers refused because the most allowed were attached") \
  X(watch_records, "decision records queued for watchers")                    \
  X(watch_dropped, "decision records dropped because a watcher did not read them in time")

SG_DECLARE_COUNTERS(WatchCounter, kWatchCounterInfo, SG_WATCH_COUNTERS)

}  // namespace sg::eventlog

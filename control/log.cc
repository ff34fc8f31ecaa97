// Log output.
#include "control/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace tandem::control {
namespace {
std::atomic<int> min_level{static_cast<int>(LogLevel::kInfo)};
std::mutex out_mutex;
const char* Name(LogLevel l) {
  switch (l) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarning: return "warning";
    case LogLevel::kError: return "error";
  }
  return "?";
}
}  // namespace

void SetLogLevel(LogLevel level) { min_level = static_cast<int>(level); }

bool ParseLogLevel(std::string_view text, LogLevel* out) {
  for (LogLevel l : {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarning, LogLevel::kError}) {
    if (text == Name(l)) {
      *out = l;
      return true;
    }
  }
  return false;
}

void LogLine(LogLevel level, std::string_view message) {
  if (static_cast<int>(level) < min_level.load(std::memory_order_relaxed)) return;
  std::string ts = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
  std::lock_guard<std::mutex> lock(out_mutex);
  std::fprintf(stderr, "%s %s: %.*s\n", ts.c_str(), Name(level), static_cast<int>(message.size()),
               message.data());
  std::fflush(stderr);
}

}  // namespace tandem::control

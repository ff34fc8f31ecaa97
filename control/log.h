// Single-line, leveled logs to stderr (journald adds its own timestamps; we keep ours for
// plain terminals). Thread-safe; not for the hot path.
#pragma once

#include <string_view>

#include "absl/strings/str_cat.h"

namespace tandem::control {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

void SetLogLevel(LogLevel level);
bool ParseLogLevel(std::string_view text, LogLevel* out);
void LogLine(LogLevel level, std::string_view message);

template <typename... Args>
void LogInfo(const Args&... args) { LogLine(LogLevel::kInfo, absl::StrCat(args...)); }
template <typename... Args>
void LogWarning(const Args&... args) { LogLine(LogLevel::kWarning, absl::StrCat(args...)); }
template <typename... Args>
void LogError(const Args&... args) { LogLine(LogLevel::kError, absl::StrCat(args...)); }
template <typename... Args>
void LogDebug(const Args&... args) { LogLine(LogLevel::kDebug, absl::StrCat(args...)); }

}  // namespace tandem::control

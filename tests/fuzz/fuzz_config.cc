// Fuzz target: config::LoadConfigText on the input as TOML, and ParseDuration on it as a
// duration string. The loader reads nothing from disk (zone files are only named), so the
// target opens no file. Errors must say where: a failed load's message starts with the
// name given for the text.
#include <string>

#include "absl/strings/match.h"
#include "config/config.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto config = tandem::config::LoadConfigText(text, "/fuzz/tandem.toml");
  if (!config.ok()) {
    std::string message(config.status().message());
    if (message.empty()) tandem::fuzz::Fail("config error without a message");
    if (!absl::StartsWith(message, "/fuzz/tandem.toml:"))
      tandem::fuzz::Fail("config error without the file name");
  } else {
    if (config->server.workers < 1) tandem::fuzz::Fail("accepted a config with no worker");
    for (const auto& z : config->zones)
      if (z.name.empty()) tandem::fuzz::Fail("accepted a zone without a name");
  }
  if (size < 64) (void)tandem::config::ParseDuration(text);
  return 0;
}

// tandemd: the server. Parses the command line, validates the config, runs the daemon
// until SIGTERM or SIGINT; SIGHUP reloads the configuration and the zone files.
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "config/config.h"
#include "control/control_socket.h"
#include "control/daemon.h"
#include "control/log.h"
#include "control/metrics.h"

namespace {

constexpr const char* kUsage =
    "usage: tandemd --config FILE [--check-config]\n"
    "  --config FILE     the TOML configuration (see docs/configuration.md)\n"
    "  --check-config    validate the configuration and its zone files, then exit\n"
    "                    (0 when valid; otherwise FILE:LINE: message for each error)\n"
    "  --version         print the version\n";

int Fail(const std::string& message) {
  std::fprintf(stderr, "%s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      config_path = arg.substr(9);
    } else if (arg == "--check-config") {
      check_only = true;
    } else if (arg == "--version") {
      std::printf("tandemd %s\n", TANDEM_VERSION);
      return 0;
    } else if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      std::fprintf(stderr, "tandemd: unknown argument '%s'\n%s", arg.c_str(), kUsage);
      return 2;
    }
  }
  if (config_path.empty()) {
    std::fprintf(stderr, "tandemd: --config FILE is required\n%s", kUsage);
    return 2;
  }

  auto cfg = tandem::config::LoadConfigFile(config_path);
  if (!cfg.ok()) return Fail(std::string(cfg.status().message()));
  tandem::control::LogLevel level;
  if (tandem::control::ParseLogLevel(cfg->server.log_level, &level)) tandem::control::SetLogLevel(level);
  if (auto s = tandem::control::CheckSupported(*cfg); !s.ok()) return Fail(std::string(s.message()));
  if (check_only) {
    auto snapshot = tandem::control::BuildSnapshot(*cfg);
    if (!snapshot.ok()) return Fail(std::string(snapshot.status().message()));
    std::printf("%s: configuration and %zu zones valid\n", config_path.c_str(), cfg->zones.size());
    return 0;
  }

  // Signals are taken synchronously by the main thread; every other thread blocks them.
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&set, s);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  tandem::control::Daemon daemon(std::move(*cfg));
  if (auto s = daemon.Start(); !s.ok()) return Fail(std::string(s.message()));
  // Operator endpoints; their addresses are read at start (a reload keeps them).
  const tandem::config::Config running = daemon.CurrentConfig();
  std::unique_ptr<tandem::control::MetricsServer> metrics;
  if (!running.metrics.listen.empty()) {
    auto m = tandem::control::MetricsServer::Start(running.metrics.listen, daemon);
    if (!m.ok()) return Fail(std::string(m.status().message()));
    metrics = std::move(*m);
  }
  std::unique_ptr<tandem::control::ControlServer> control;
  if (!running.control.socket.empty()) {
    auto c = tandem::control::ControlServer::Start(running.control.socket, daemon);
    if (!c.ok()) return Fail(std::string(c.status().message()));
    control = std::move(*c);
  }
  for (;;) {
    int sig = 0;
    sigwait(&set, &sig);
    if (sig == SIGHUP) {
      tandem::control::LogInfo("SIGHUP: reloading the configuration and zone files");
      if (auto s = daemon.Reload(); !s.ok()) tandem::control::LogError(s.message());
      continue;
    }
    tandem::control::LogInfo("signal ", strsignal(sig), ": stopping");
    break;
  }
  control.reset();
  metrics.reset();
  daemon.Stop();
  return 0;
}

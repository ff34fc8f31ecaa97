// Continuous SOA probes of zone sources: one thread, one non-blocking UDP socket per
// target, any number of probes in flight, driven by poll(). A probe fails on a timeout, a
// reply slower than the overload threshold, an rcode other than NOERROR, AA not set, or
// no SOA for the zone in the answer; a truncated reply is asked again over TCP.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "config/config.h"
#include "control/tsig.h"
#include "dataplane/address.h"

namespace tandem::control {

struct ProbeTarget {
  dataplane::Endpoint endpoint;
  std::string zone;  // wire form
  std::optional<tsig::Key> key;
  config::HealthConfig health;
};

struct ProbeResult {
  bool ok = false;
  absl::Duration latency;
  uint32_t serial = 0;  // when a SOA came back
  std::string error;    // why it failed: "timeout", "overloaded: 312ms", "rcode SERVFAIL", ...
};

class Prober {
 public:
  // Called from the probe thread for every finished probe, with the target's index.
  using Callback = std::function<void(size_t target, const ProbeResult& result)>;

  explicit Prober(Callback callback);
  ~Prober();

  size_t Add(ProbeTarget target);  // before Start
  void Start();
  void Stop();

 private:
  struct Slot;
  void Run();
  void Send(Slot& s, absl::Time now);
  void Receive(Slot& s, absl::Time now);
  void Finish(size_t index, Slot& s, ProbeResult r, absl::Time now);

  Callback callback_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace tandem::control

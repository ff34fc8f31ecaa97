// Pulled zones: for every source of every zone with `sources`, a copy of the zone kept
// fresh by SOA refresh timers and NOTIFY, fetched by IXFR with AXFR fallback, checked,
// saved under state_dir and built into a servable Zone. The zone answered is the newest
// valid copy (RFC 1982 serials; among equal serials the source listed first); a zone with
// no valid copy (none yet, or every copy past its SOA expire time) answers SERVFAIL.
//
//   per source:  due? -> SOA query --fail--> retry timer (SOA retry, clamped)
//                            |
//                 serial newer than our copy (or no copy)?
//                   no  -> refreshed: refresh timer, expire timer restarted
//                   yes -> IXFR (when we hold a copy) --fail--> AXFR
//                          -> complete, valid, not older? -> build -> save -> serve
//                             (a copy of kSaveAfterServing records or more: serve, then save)
//
// One control-plane thread runs the timers and transfers; NOTIFY and tandemctl refresh
// make a source due at once (repeated NOTIFYs coalesce into one check).
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "config/config.h"
#include "control/failover.h"
#include "control/probe.h"
#include "control/tsig.h"
#include "control/zone_copy.h"
#include "dataplane/address.h"
#include "dataplane/handler.h"
#include "dataplane/zone/snapshot.h"

namespace tandem::control {

struct SourceStatus {
  std::string name;
  std::string address;
  bool has_copy = false;
  uint32_t serial = 0;
  size_t records = 0;
  bool expired = false;
  absl::Time last_refresh = absl::InfinitePast();  // last successful SOA check or transfer
  absl::Time expires = absl::InfinitePast();
  absl::Time next_check = absl::InfinitePast();
  std::string last_error;     // empty after a success
  std::string last_transfer;  // "AXFR serial 7: 1200 records, 3 messages, 12 ms at ..."
  uint64_t transfers_ok = 0, transfers_failed = 0;
  uint64_t transfers_axfr = 0, transfers_ixfr = 0;  // of transfers_ok
  bool up = true;             // health from continuous probes
  absl::Duration probe_latency;
  std::string probe_error;    // the last probe's failure, empty after a success
  uint32_t probe_serial = 0;  // the serial the last good probe saw
  uint64_t probes_ok = 0, probes_failed = 0;
};

struct PulledZoneStatus {
  std::string name;           // "example.com."
  std::string active_source;  // empty when serving nothing (SERVFAIL)
  uint32_t serial = 0;
  std::string state;          // "serving", "expired", "waiting for a first copy"
  std::string pinned;         // the operator's pin, empty for automatic choice
  uint64_t swaps = 0;
  std::string last_swap_reason;
  absl::Time last_swap = absl::InfinitePast();
  std::vector<SourceStatus> sources;
};

class Secondaries : public dataplane::NotifySink {
 public:
  // `on_change` is called (from the refresh thread, no lock held) whenever the zone
  // answered for some pulled zone changes.
  Secondaries(const config::Config& cfg, std::function<void()> on_change);
  ~Secondaries() override;

  // Resolves keys and addresses and loads the copies saved under state_dir, so they are
  // served at once. Errors name the zone and source.
  absl::Status Init();
  void Start();
  void Stop();

  // The zone to answer for each pulled zone (a SERVFAIL placeholder when none is valid).
  std::vector<std::shared_ptr<const zone::Zone>> ActiveZones() const;
  std::vector<PulledZoneStatus> Status() const;
  bool Has(const std::string& zone_name) const;
  // Makes every source of the zone due now.
  absl::Status Refresh(const std::string& zone_name);
  // Pins the zone to a source's copy ("auto" releases the pin).
  absl::Status Use(const std::string& zone_name, const std::string& source);

  uint8_t OnNotify(const uint8_t* zone_wire, size_t zone_len, const sockaddr* from) override;

 private:
  struct Source;
  struct Pulled;

  struct Outcome;
  // A large copy accepted and served, to be written to disk (outside the lock), then its
  // timers.
  struct Unsaved {
    std::string zone, source;
    std::string copy_path;
    std::shared_ptr<const ZoneCopy> copy;
    std::string timers_path, timers;
    void Write() const;
  };
  static constexpr size_t kSaveAfterServing = 100000;  // records

  void Run();
  void OnProbe(size_t target, const ProbeResult& r);
  void SelectLocked(absl::Time now);
  std::string SwapReason(const Pulled& z, const Choice& c) const;
  static Outcome Check(const config::ZoneConfig& cfg, const std::string& apex, const Source& s,
                       std::shared_ptr<const ZoneCopy> copy);
  void Apply(Pulled& z, Source& s, Outcome out, absl::Time now);
  void Schedule(Source& s, Outcome& out, Pulled& z, absl::Time now);
  static void MakeDue(Source& s);
  void LoadSaved(Pulled& z, Source& s);
  void SaveTimers(const Pulled& z, const Source& s) const;
  static std::string TimersText(const Source& s);
  bool ActiveChangedLocked();
  std::shared_ptr<const zone::Zone> ActiveLocked(const Pulled& z, std::string* source) const;
  Pulled* FindLocked(const std::string& apex_wire_lower);
  std::string CopyPath(const Pulled& z, const Source& s, const char* ext) const;

  config::Config cfg_;
  std::function<void()> on_change_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Pulled>> zones_;
  std::vector<const zone::Zone*> last_active_;
  std::vector<Unsaved> unsaved_;
  std::unique_ptr<Prober> prober_;
  std::vector<std::pair<Pulled*, int>> probe_map_;  // probe target -> zone, source
  bool stop_ = false;
  bool running_ = false;
  std::thread thread_;
};

}  // namespace tandem::control

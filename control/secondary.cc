// Pulled zones: timers, refreshes, transfers, NOTIFY, persistence.
#include "control/secondary.h"

#include <malloc.h>
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "control/failover.h"
#include "control/log.h"
#include "control/transfer.h"
#include "dataplane/dns/name.h"
#include "dataplane/dns/wire.h"
#include "dataplane/zone/builder.h"

namespace tandem::control {

struct Secondaries::Source {
  std::string name;
  std::string address_text;
  dataplane::Endpoint endpoint;
  std::optional<tsig::Key> key;
  std::shared_ptr<const ZoneCopy> copy;
  std::shared_ptr<const zone::Zone> built;
  absl::Time next_check = absl::InfinitePast();
  absl::Time last_ok = absl::InfinitePast();
  absl::Time expires = absl::InfinitePast();
  std::string last_error;
  std::string last_transfer;
  uint64_t transfers_ok = 0, transfers_failed = 0;
  uint64_t transfers_axfr = 0, transfers_ixfr = 0;
  bool recheck = false;  // a NOTIFY or refresh came while a check was in flight
  // Health from continuous probes.
  config::HealthConfig hc;
  Health health{3, 3};
  absl::Duration probe_latency;
  std::string probe_error;
  uint32_t probe_serial = 0;
  uint64_t probes_ok = 0, probes_failed = 0;
};

struct Secondaries::Pulled {
  config::ZoneConfig cfg;
  std::string apex;  // lower-case wire
  std::string name;  // "example.com."
  std::vector<Source> sources;
  std::vector<dataplane::Prefix> notify_allow;
  std::shared_ptr<const zone::Zone> unavailable;
  // Failover.
  int active = -1;   // the source answered from
  int pinned = -1;   // tandemctl use ZONE SOURCE
  absl::Duration hold;
  absl::Time last_swap = absl::InfinitePast();
  uint64_t swaps = 0;
  std::string last_swap_reason;
};

// What one refresh found; applied under the lock.
struct Secondaries::Outcome {
  bool ok = false;
  std::string error;
  std::shared_ptr<const ZoneCopy> copy;   // a new copy, or null when ours stays
  std::shared_ptr<const zone::Zone> built;
  std::string transfer;                   // what was transferred, for status and logs
  bool transferred = false;
};

namespace {

struct SoaTimers {
  absl::Duration refresh, retry, expire;
};

SoaTimers TimersOf(const dns::Record& soa, const config::ZoneConfig& c) {
  const auto* f = reinterpret_cast<const uint8_t*>(soa.rdata.data()) + soa.rdata.size() - 16;
  auto clamp = [](uint32_t secs, absl::Duration lo, absl::Duration hi) {
    return std::clamp(absl::Seconds(secs), lo, hi);
  };
  return {clamp(dns::Get32(f), c.refresh_min, c.refresh_max),
          clamp(dns::Get32(f + 4), c.retry_min, c.retry_max),
          clamp(dns::Get32(f + 8), c.expire_min, c.expire_max)};
}

// Up to 10% earlier, so that many zones with the same timers do not refresh in step.
absl::Duration Jitter(absl::Duration d) {
  thread_local std::mt19937 rng(std::random_device{}());
  return d - d * (std::uniform_real_distribution<double>(0, 0.1)(rng));
}

std::string FileSafe(std::string s) {
  if (s.size() > 1 && s.back() == '.') s.pop_back();
  return absl::StrReplaceAll(s, {{"/", "%2f"}, {"\\", "%5c"}});
}

bool SameHost(const sockaddr* a, const dataplane::Endpoint& b) {
  if (a == nullptr || a->sa_family != b.family()) return false;
  if (a->sa_family == AF_INET)
    return std::memcmp(&reinterpret_cast<const sockaddr_in*>(a)->sin_addr,
                       &reinterpret_cast<const sockaddr_in*>(&b.addr)->sin_addr, 4) == 0;
  return std::memcmp(&reinterpret_cast<const sockaddr_in6*>(a)->sin6_addr,
                     &reinterpret_cast<const sockaddr_in6*>(&b.addr)->sin6_addr, 16) == 0;
}

}  // namespace

// One refresh of one source, without locks: SOA query, then IXFR/AXFR when newer.
Secondaries::Outcome Secondaries::Check(const config::ZoneConfig& cfg, const std::string& apex,
                                        const Source& s, std::shared_ptr<const ZoneCopy> copy) {
  Outcome out;
  TransferOptions o;
  o.server = s.endpoint;
  o.zone = apex;
  o.key = s.key ? &*s.key : nullptr;
  o.timeout = cfg.transfer_timeout;
  o.max_bytes = static_cast<size_t>(cfg.max_transfer_size);
  auto soa = QuerySoa(o);
  if (!soa.ok()) {
    out.error = std::string(soa.status().message());
    return out;
  }
  if (!soa->authoritative) {
    out.error = absl::StrCat("SOA answer from ", s.address_text, " is not authoritative");
    return out;
  }
  if (copy && soa->serial == copy->serial()) {
    out.ok = true;  // up to date: the timers restart (RFC 1034 4.3.5)
    return out;
  }
  if (copy && SerialNewer(copy->serial(), soa->serial)) {
    // The source went back to an older version: ours stays, and is not refreshed by it.
    out.error = absl::StrCat("the source serves serial ", soa->serial, ", older than its copy's ", copy->serial());
    return out;
  }
  absl::Time start = absl::Now();
  absl::Time received = start;  // when the last stream ended: the rest is checks and building
  absl::StatusOr<TransferResult> result = absl::UnknownError("no transfer");
  std::shared_ptr<const ZoneCopy> next;
  std::string ixfr_error;
  if (copy) {
    CopyBuilder whole_zone(apex);  // an AXFR-style answer is built as it arrives
    result = Transfer(o, copy->soa(), &whole_zone);
    received = absl::Now();
    if (result.ok() && result->incremental) {
      auto applied = copy->Apply(result->diffs);
      if (applied.ok()) next = std::make_shared<const ZoneCopy>(std::move(*applied));
      else ixfr_error = std::string(applied.status().message());
    } else if (result.ok() && !result->up_to_date) {
      auto whole = whole_zone.Finish();
      if (whole.ok()) next = std::make_shared<const ZoneCopy>(std::move(*whole));
      else ixfr_error = std::string(whole.status().message());
    } else if (result.ok()) {
      out.ok = true;
      return out;
    } else {
      ixfr_error = std::string(result.status().message());
    }
    if (!next) LogWarning("zone ", dns::NameToText(reinterpret_cast<const uint8_t*>(apex.data())),
                          " from ", s.name, ": IXFR failed (", ixfr_error, "); falling back to AXFR");
  }
  const char* kind = next ? (result->incremental ? "IXFR" : "IXFR (whole zone)") : "AXFR";
  if (!next) {
    // The zone is built while it arrives; what is left after the stream is the layout.
    CopyBuilder whole_zone(apex);
    result = Transfer(o, std::nullopt, &whole_zone);
    received = absl::Now();
    if (!result.ok()) {
      out.error = std::string(result.status().message());
      return out;
    }
    auto whole = whole_zone.Finish();
    if (!whole.ok()) {
      out.error = absl::StrCat("AXFR: ", whole.status().message());
      return out;
    }
    next = std::make_shared<const ZoneCopy>(std::move(*whole));
  }
  if (copy && SerialNewer(copy->serial(), next->serial())) {
    out.error = absl::StrCat(kind, " brought serial ", next->serial(), ", older than our ", copy->serial());
    return out;
  }
  auto built = next->Build();
  if (!built.ok()) {
    out.error = absl::StrCat(kind, ": ", built.status().message());
    return out;
  }
  out.ok = true;
  out.transferred = true;
  out.copy = std::move(next);
  out.built = std::move(*built);
  out.transfer = absl::StrCat(kind, " serial ", out.copy->serial(), ": ", out.copy->size(),
                              " records, ", result->messages, " messages, ", result->bytes,
                              " bytes, ", absl::FormatDuration(absl::Now() - start), " (",
                              absl::FormatDuration(absl::Now() - received), " after the stream)");
  return out;
}

Secondaries::Secondaries(const config::Config& cfg, std::function<void()> on_change)
    : cfg_(cfg), on_change_(std::move(on_change)) {}

Secondaries::~Secondaries() { Stop(); }

std::string Secondaries::CopyPath(const Pulled& z, const Source& s, const char* ext) const {
  return absl::StrCat(cfg_.server.state_dir, "/zones/", FileSafe(z.name), "/", FileSafe(s.name), ext);
}

absl::Status Secondaries::Init() {
  std::vector<tsig::Key> keys;
  for (const auto& k : cfg_.tsig) {
    auto key = tsig::MakeKey(k);
    if (!key.ok()) return key.status();
    keys.push_back(*key);
  }
  for (const auto& zc : cfg_.zones) {
    if (zc.sources.empty()) continue;
    auto z = std::make_unique<Pulled>();
    z->cfg = zc;
    auto apex = dns::NameFromText(zc.name);
    if (!apex.ok()) return apex.status();
    z->apex = *apex;
    dns::LowerName(reinterpret_cast<uint8_t*>(z->apex.data()), z->apex.size());
    z->name = dns::NameToText(reinterpret_cast<const uint8_t*>(z->apex.data()));
    z->unavailable = zone::ZoneBuilder::Unavailable(z->apex);
    z->hold = zc.health.value_or(cfg_.health).hold;
    for (const auto& p : zc.notify_allow)
      if (auto prefix = dataplane::ParsePrefix(p)) z->notify_allow.push_back(*prefix);
    for (const auto& sc : zc.sources) {
      Source s;
      s.name = sc.name;
      s.address_text = sc.address;
      auto ep = dataplane::ParseEndpoint(sc.address, 53);
      if (!ep) return absl::InvalidArgumentError(absl::StrCat("zone ", zc.name, " source ", sc.name, ": bad address ", sc.address));
      s.endpoint = *ep;
      if (!sc.tsig.empty()) {
        std::string want = dns::NameFromText(sc.tsig).value_or("");
        dns::LowerName(reinterpret_cast<uint8_t*>(want.data()), want.size());
        for (const auto& k : keys)
          if (k.name == want) s.key = k;
        if (!s.key) return absl::InvalidArgumentError(absl::StrCat("zone ", zc.name, " source ", sc.name, ": no TSIG key ", sc.tsig));
      }
      s.hc = sc.health.value_or(zc.health.value_or(cfg_.health));
      s.health = Health(s.hc.rise, s.hc.fall);
      LoadSaved(*z, s);
      z->sources.push_back(std::move(s));
    }
    zones_.push_back(std::move(z));
  }
  prober_ = std::make_unique<Prober>([this](size_t target, const ProbeResult& r) { OnProbe(target, r); });
  for (auto& z : zones_) {
    for (size_t i = 0; i < z->sources.size(); ++i) {
      const Source& src = z->sources[i];
      prober_->Add({src.endpoint, z->apex, src.key, src.hc});
      probe_map_.emplace_back(z.get(), static_cast<int>(i));
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  SelectLocked(absl::Now());
  ActiveChangedLocked();
  return absl::OkStatus();
}

void Secondaries::OnProbe(size_t target, const ProbeResult& r) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto [z, index] = probe_map_[target];
    Source& s = z->sources[index];
    s.probe_latency = r.latency;
    s.probe_error = r.error;
    if (r.ok) {
      ++s.probes_ok;
      s.probe_serial = r.serial;
      // A newer serial seen by a probe is fetched now, not at the next refresh.
      if (!s.copy || SerialNewer(r.serial, s.copy->serial())) MakeDue(s);
    } else {
      ++s.probes_failed;
    }
    if (s.health.Record(r.ok)) {
      if (s.health.up())
        LogInfo("zone ", z->name, " source ", s.name, " UP after ", s.hc.rise, " good probes (serial ", r.serial, ")");
      else
        LogWarning("zone ", z->name, " source ", s.name, " DOWN after ", s.hc.fall, " failed probes: ", r.error);
    }
    // The policy runs here too, so a refresh blocked on a silent source never delays a
    // swap (nor an expiry).
    SelectLocked(absl::Now());
    if (!ActiveChangedLocked()) {
      cv_.notify_all();
      return;
    }
  }
  cv_.notify_all();
  on_change_();
}

// Applies the failover policy to every zone; logs and counts each swap.
void Secondaries::SelectLocked(absl::Time now) {
  for (auto& zp : zones_) {
    Pulled& z = *zp;
    std::vector<CopyView> views;
    for (const auto& s : z.sources) {
      // A source whose probes see an older serial than its copy is not answered for.
      bool behind = s.copy && s.probe_serial != 0 && SerialNewer(s.copy->serial(), s.probe_serial);
      views.push_back({s.copy != nullptr && s.expires > now, s.health.up() && !behind,
                       s.copy ? s.copy->serial() : 0});
    }
    Choice c = ChooseCopy(views, z.active, z.pinned, now - z.last_swap < z.hold);
    if (c.index == z.active) continue;
    std::string reason = SwapReason(z, c);
    if (z.active >= 0 || c.index >= 0) {
      LogInfo("zone ", z.name, ": answering from ", c.index >= 0 ? z.sources[c.index].name : "nothing (SERVFAIL)",
              c.index >= 0 ? absl::StrCat(" serial ", z.sources[c.index].copy->serial()) : "", ": ", reason);
    }
    if (z.active >= 0) ++z.swaps;
    z.active = c.index;
    z.last_swap = now;
    z.last_swap_reason = reason;
  }
}

std::string Secondaries::SwapReason(const Pulled& z, const Choice& c) const {
  auto name = [&](int i) { return i >= 0 ? z.sources[i].name : std::string("nothing"); };
  const Source* old = z.active >= 0 ? &z.sources[z.active] : nullptr;
  const Source* next = c.index >= 0 ? &z.sources[c.index] : nullptr;
  switch (c.reason) {
    case Reason::kFirstCopy: return absl::StrCat("first copy, from ", name(c.index));
    case Reason::kNewerSerial:
      return absl::StrCat(name(c.index), " has the newer serial ", next->copy->serial(), " (", name(z.active),
                          " has ", old->copy ? old->copy->serial() : 0, ")");
    case Reason::kActiveDown:
      return absl::StrCat(name(z.active), " DOWN after ", old->hc.fall, " failed probes: ", old->probe_error);
    case Reason::kPreferred:
      return absl::StrCat(name(c.index), " is UP with the same serial and preferred over ", name(z.active));
    case Reason::kActiveExpired: return absl::StrCat("the copy from ", name(z.active), " expired");
    case Reason::kPinned: return absl::StrCat("pinned to ", name(c.index), " by the operator");
    case Reason::kNoCopy: return "no valid copy left";
    case Reason::kNone: break;
  }
  return "";
}

void Secondaries::LoadSaved(Pulled& z, Source& s) {
  std::string path = CopyPath(z, s, ".zone");
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return;
  auto copy = ZoneCopy::Load(z.apex, path);
  if (!copy.ok()) {
    LogWarning("zone ", z.name, " source ", s.name, ": saved copy not usable: ", copy.status().message());
    return;
  }
  auto built = copy->Build();
  if (!built.ok()) {
    LogWarning("zone ", z.name, " source ", s.name, ": saved copy not usable: ", built.status().message());
    return;
  }
  s.copy = std::make_shared<const ZoneCopy>(std::move(*copy));
  s.built = std::move(*built);
  // Timers: "last_refresh <unix seconds> expires <unix seconds>".
  std::ifstream timers(CopyPath(z, s, ".timers"));
  std::string k1, k2;
  int64_t last = 0, expires = 0;
  if (timers >> k1 >> last >> k2 >> expires && k1 == "last_refresh" && k2 == "expires") {
    s.last_ok = absl::FromUnixSeconds(last);
    s.expires = absl::FromUnixSeconds(expires);
    s.next_check = s.last_ok + TimersOf(s.copy->soa(), z.cfg).refresh;
  }
  LogInfo("zone ", z.name, " source ", s.name, ": serving the saved copy, serial ", s.copy->serial(),
          s.expires < absl::Now() ? " (expired: SERVFAIL until a refresh succeeds)" : "");
}

std::string Secondaries::TimersText(const Source& s) {
  return absl::StrCat("last_refresh ", absl::ToUnixSeconds(s.last_ok), " expires ",
                      absl::ToUnixSeconds(s.expires), "\n");
}

void Secondaries::SaveTimers(const Pulled& z, const Source& s) const {
  if (auto st = WriteFileAtomically(CopyPath(z, s, ".timers"), TimersText(s)); !st.ok())
    LogWarning("zone ", z.name, " source ", s.name, ": ", st.message());
}

void Secondaries::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (running_ || zones_.empty()) return;
  stop_ = false;
  running_ = true;
  thread_ = std::thread([this] { Run(); });
  prober_->Start();
}

void Secondaries::Stop() {
  if (prober_) prober_->Stop();
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  running_ = false;
}

void Secondaries::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    bool transferred = false;
    absl::Time now = absl::Now();
    Pulled* due_zone = nullptr;
    Source* due = nullptr;
    absl::Time wake = now + absl::Seconds(1);  // expiry is checked at least every second
    for (auto& z : zones_) {
      for (auto& s : z->sources) {
        if (s.next_check <= now && (due == nullptr || s.next_check < due->next_check)) {
          due = &s;
          due_zone = z.get();
        }
        wake = std::min(wake, s.next_check);
      }
    }
    if (due != nullptr) {
      std::shared_ptr<const ZoneCopy> copy = due->copy;
      config::ZoneConfig cfg = due_zone->cfg;
      std::string apex = due_zone->apex;
      Source source = *due;  // the I/O runs on a snapshot of the source's settings
      due->next_check = absl::InfiniteFuture();  // not picked again while in flight
      lock.unlock();
      Outcome out = Check(cfg, apex, source, copy);
      transferred = out.transferred;
      lock.lock();
      if (stop_) break;
      Apply(*due_zone, *due, std::move(out), absl::Now());
    }
    SelectLocked(absl::Now());
    bool changed = ActiveChangedLocked();
    std::vector<Unsaved> unsaved = std::move(unsaved_);
    unsaved_.clear();
    if (changed || !unsaved.empty() || transferred) {
      lock.unlock();
      if (changed) on_change_();                   // served first,
      for (const Unsaved& u : unsaved) u.Write();  // then saved
      // A transfer's transient memory (messages, records, the builder, the copy replaced)
      // back to the system, not kept in the heap.
      if (transferred) malloc_trim(0);
      lock.lock();
      continue;
    }
    if (due == nullptr) cv_.wait_until(lock, absl::ToChronoTime(wake));
  }
}

void Secondaries::Apply(Pulled& z, Source& s, Outcome out, absl::Time now) {
  Schedule(s, out, z, now);
  if (s.recheck) {  // asked again while in flight: one more check, at once
    s.recheck = false;
    s.next_check = absl::InfinitePast();
  }
}

void Secondaries::Schedule(Source& s, Outcome& out, Pulled& z, absl::Time now) {
  if (!out.ok) {
    s.last_error = out.error;
    ++s.transfers_failed;
    absl::Duration retry = s.copy ? TimersOf(s.copy->soa(), z.cfg).retry : z.cfg.retry_min;
    s.next_check = now + Jitter(retry);
    LogWarning("zone ", z.name, " source ", s.name, ": refresh failed, retry in ",
               absl::FormatDuration(retry), ": ", out.error);
    return;
  }
  bool save_after_serving = false;
  if (out.copy) {
    // A small copy is on disk before it is served; a large one is served first and saved
    // right after (Run, without the lock), so writing it does not delay answering it.
    save_after_serving = out.copy->size() >= kSaveAfterServing;
    if (save_after_serving) {
      unsaved_.push_back({z.name, s.name, CopyPath(z, s, ".zone"), out.copy, {}, {}});
    } else if (auto st = out.copy->Save(CopyPath(z, s, ".zone")); !st.ok()) {
      LogWarning("zone ", z.name, " source ", s.name, ": copy not saved: ", st.message());
    }
    s.copy = std::move(out.copy);
    s.built = std::move(out.built);
    s.last_transfer = absl::StrCat(out.transfer, " at ", absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", now, absl::UTCTimeZone()));
    ++s.transfers_ok;
    ++(out.transfer.rfind("IXFR", 0) == 0 ? s.transfers_ixfr : s.transfers_axfr);
    LogInfo("zone ", z.name, " source ", s.name, " (", s.address_text, "): ", out.transfer);
  }
  s.last_error.clear();
  if (!s.copy) return;
  SoaTimers t = TimersOf(s.copy->soa(), z.cfg);
  s.last_ok = now;
  s.expires = now + t.expire;
  s.next_check = now + Jitter(t.refresh);
  if (save_after_serving) {  // the timers go to disk after the copy they are for
    unsaved_.back().timers_path = CopyPath(z, s, ".timers");
    unsaved_.back().timers = TimersText(s);
  } else {
    SaveTimers(z, s);
  }
}

void Secondaries::Unsaved::Write() const {
  if (auto st = copy->Save(copy_path); !st.ok()) {
    LogWarning("zone ", zone, " source ", source, ": copy not saved: ", st.message());
    return;
  }
  if (timers_path.empty()) return;
  if (auto st = WriteFileAtomically(timers_path, timers); !st.ok())
    LogWarning("zone ", zone, " source ", source, ": ", st.message());
}

std::shared_ptr<const zone::Zone> Secondaries::ActiveLocked(const Pulled& z, std::string* source) const {
  if (z.active < 0 || !z.sources[z.active].built) return z.unavailable;
  if (source) *source = z.sources[z.active].name;
  return z.sources[z.active].built;
}

bool Secondaries::ActiveChangedLocked() {
  std::vector<const zone::Zone*> now;
  for (const auto& z : zones_) now.push_back(ActiveLocked(*z, nullptr).get());
  if (now == last_active_) return false;
  last_active_ = std::move(now);
  return true;
}

std::vector<std::shared_ptr<const zone::Zone>> Secondaries::ActiveZones() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::shared_ptr<const zone::Zone>> out;
  for (const auto& z : zones_) out.push_back(ActiveLocked(*z, nullptr));
  return out;
}

std::vector<PulledZoneStatus> Secondaries::Status() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<PulledZoneStatus> out;
  absl::Time now = absl::Now();
  for (const auto& z : zones_) {
    PulledZoneStatus zs;
    zs.name = z->name;
    auto active = ActiveLocked(*z, &zs.active_source);
    bool any_copy = false;
    for (const auto& s : z->sources) {
      SourceStatus ss;
      ss.name = s.name;
      ss.address = s.address_text;
      ss.has_copy = s.copy != nullptr;
      any_copy |= ss.has_copy;
      if (s.copy) {
        ss.serial = s.copy->serial();
        ss.records = s.copy->size();
      }
      ss.expired = s.copy && s.expires <= now;
      ss.last_refresh = s.last_ok;
      ss.expires = s.expires;
      ss.next_check = s.next_check;
      ss.last_error = s.last_error;
      ss.last_transfer = s.last_transfer;
      ss.transfers_ok = s.transfers_ok;
      ss.transfers_failed = s.transfers_failed;
      ss.transfers_axfr = s.transfers_axfr;
      ss.transfers_ixfr = s.transfers_ixfr;
      ss.up = s.health.up();
      ss.probe_latency = s.probe_latency;
      ss.probe_error = s.probe_error;
      ss.probe_serial = s.probe_serial;
      ss.probes_ok = s.probes_ok;
      ss.probes_failed = s.probes_failed;
      zs.sources.push_back(std::move(ss));
    }
    zs.serial = active->servfail() ? 0 : active->serial();
    zs.pinned = z->pinned >= 0 ? z->sources[z->pinned].name : "";
    zs.swaps = z->swaps;
    zs.last_swap_reason = z->last_swap_reason;
    zs.last_swap = z->last_swap;
    zs.state = !active->servfail() ? "serving" : any_copy ? "expired" : "waiting for a first copy";
    out.push_back(std::move(zs));
  }
  return out;
}

void Secondaries::MakeDue(Source& s) {
  if (s.next_check == absl::InfiniteFuture()) s.recheck = true;  // in flight
  else s.next_check = absl::InfinitePast();
}

Secondaries::Pulled* Secondaries::FindLocked(const std::string& apex) {
  for (auto& z : zones_)
    if (z->apex == apex) return z.get();
  return nullptr;
}

bool Secondaries::Has(const std::string& zone_name) const {
  auto apex = dns::NameFromText(zone_name);
  if (!apex.ok()) return false;
  dns::LowerName(reinterpret_cast<uint8_t*>(apex->data()), apex->size());
  std::lock_guard<std::mutex> lock(mu_);
  return const_cast<Secondaries*>(this)->FindLocked(*apex) != nullptr;
}

absl::Status Secondaries::Refresh(const std::string& zone_name) {
  auto apex = dns::NameFromText(zone_name);
  if (!apex.ok()) return apex.status();
  dns::LowerName(reinterpret_cast<uint8_t*>(apex->data()), apex->size());
  {
    std::lock_guard<std::mutex> lock(mu_);
    Pulled* z = FindLocked(*apex);
    if (z == nullptr) return absl::NotFoundError(absl::StrCat("no pulled zone ", zone_name));
    for (auto& s : z->sources) MakeDue(s);
  }
  cv_.notify_all();
  return absl::OkStatus();
}

absl::Status Secondaries::Use(const std::string& zone_name, const std::string& source) {
  auto apex = dns::NameFromText(zone_name);
  if (!apex.ok()) return apex.status();
  dns::LowerName(reinterpret_cast<uint8_t*>(apex->data()), apex->size());
  {
    std::lock_guard<std::mutex> lock(mu_);
    Pulled* z = FindLocked(*apex);
    if (z == nullptr) return absl::NotFoundError(absl::StrCat("no pulled zone ", zone_name));
    if (source == "auto") {
      z->pinned = -1;
      LogInfo("zone ", z->name, ": pin released; the failover policy chooses the copy");
    } else {
      int found = -1;
      for (size_t i = 0; i < z->sources.size(); ++i)
        if (z->sources[i].name == source) found = static_cast<int>(i);
      if (found < 0) return absl::NotFoundError(absl::StrCat("zone ", z->name, " has no source ", source));
      const Source& s = z->sources[found];
      if (!s.copy || s.expires <= absl::Now())
        return absl::FailedPreconditionError(absl::StrCat("source ", source, " of zone ", z->name, " has no valid copy to answer from"));
      z->pinned = found;
      LogInfo("zone ", z->name, ": pinned to source ", source, " by the operator");
    }
  }
  cv_.notify_all();
  return absl::OkStatus();
}

uint8_t Secondaries::OnNotify(const uint8_t* zone_wire, size_t zone_len, const sockaddr* from) {
  std::string apex(reinterpret_cast<const char*>(zone_wire), zone_len);
  bool any = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Pulled* z = FindLocked(apex);
    if (z == nullptr) return dns::kNotAuth;
    bool allowed = false;
    for (const auto& p : z->notify_allow) allowed |= from != nullptr && p.Contains(from);
    for (auto& s : z->sources) {
      // A NOTIFY from a source makes that source due; from notify_allow, every source.
      if (SameHost(from, s.endpoint) || allowed) {
        MakeDue(s);
        any = true;
      }
    }
  }
  if (!any) return dns::kRefused;
  cv_.notify_all();
  return dns::kNoError;
}

}  // namespace tandem::control

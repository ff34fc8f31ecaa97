// Health checks of load-balancing pool members: one thread, one event loop. The loop waits
// in curl_multi_poll() on libcurl's sockets (http, https) and on its own non-blocking
// sockets (tcp connect, dns over udp) at once; there is no thread per check. Verdicts go to
// a callback; hysteresis and the choice of members are the caller's (see control/failover.h).
//
// Each member, from Start():
//
//   idle --(next due)--> in flight --(answer | error | timeout)--> idle, callback
//     ^                                                             | next = start + interval
//     +-------------------------------------------------------------+
//
// Checks of one member never overlap: a check that outlives its interval is followed at
// once by the next. A member of kind kNone is never checked and never called back: it is
// taken as always up.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "dataplane/address.h"

namespace tandem::control {

struct MemberCheck {
  enum class Kind { kNone, kTcp, kHttp, kHttps, kDns } kind = Kind::kNone;
  dataplane::Endpoint target;  // member address + check port
  // http(s): GET path; Host (and, for https, the name the certificate must carry; the
  // connection still goes to `target`, never to a resolved address); empty: the address.
  std::string path = "/";
  std::string host;
  std::vector<int> expect = {200};  // accepted status codes
  std::string body;                 // the first 64 KiB of the body must contain this, if set
  // https: PEM file of the CAs to trust instead of the system store (e.g. a private CA or a
  // self-signed member). Certificates are always verified, name included.
  std::string ca_file;
  // dns: the question (name in text, type, class IN) and the rcode that means healthy.
  std::string dns_name;
  uint16_t dns_type = 1;
  int dns_rcode = 0;
  absl::Duration interval = absl::Seconds(2), timeout = absl::Seconds(1);
};

struct CheckResult {
  bool ok = false;
  absl::Duration latency;  // start of the check to its verdict
  std::string error;       // why it failed: "timeout", "status 503", "rcode NXDOMAIN", ...
};

class PoolMonitor {
 public:
  // Called from the monitor thread for every finished check, with the member's index.
  using Callback = std::function<void(size_t member, const CheckResult& result)>;

  explicit PoolMonitor(Callback callback);
  ~PoolMonitor();  // Stop()
  PoolMonitor(const PoolMonitor&) = delete;
  PoolMonitor& operator=(const PoolMonitor&) = delete;

  size_t Add(MemberCheck check);  // before Start; returns the member's index
  void Start();                   // first checks at once
  void Stop();  // returns within ~200 ms; checks in flight are dropped without a callback

 private:
  struct Member;
  void Run();
  void Begin(Member& m, absl::Time now);
  // A verdict when the check ends at once (a local error, a connect on loopback).
  std::optional<CheckResult> BeginTcp(Member& m);
  std::optional<CheckResult> BeginDns(Member& m);
  std::optional<CheckResult> BeginHttp(Member& m);
  void OnReady(Member& m, short revents, absl::Time now);
  void OnCurlDone(void* easy, int code, absl::Time now);
  void Finish(Member& m, CheckResult r, absl::Time now);
  void Drop(Member& m);

  Callback callback_;
  std::vector<std::unique_ptr<Member>> members_;
  void* multi_ = nullptr;  // CURLM*, shared by the http(s) checks of all members
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace tandem::control

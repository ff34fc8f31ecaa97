// The primary side of zone transfers: AXFR (RFC 5936) and IXFR (RFC 1995) served over TCP
// to the clients a zone's allow_transfer admits, with TSIG when the request is signed;
// and NOTIFY (RFC 1996) sent to a zone's notify targets when its serial changes.
//
//   AXFR: SOA, every record, SOA, packed into messages of up to 16 KiB (names compressed
//         inside a message, never across messages), each sent as soon as it is full while
//         the zone is walked record by record
//   IXFR from serial S: S not older than ours -> our SOA alone
//                       history holds S..ours  -> the differences (RFC 1995 4)
//                       otherwise               -> the whole zone, AXFR-style
//
// Transfers run on a small pool of control-plane threads; the TCP worker only hands the
// connection over.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/functional/function_ref.h"
#include "control/journal.h"
#include "control/tsig.h"
#include "dataplane/address.h"
#include "dataplane/handler.h"
#include "dataplane/zone/snapshot.h"

namespace tandem::control {

// What the transfer server needs to know of one zone at the moment of a request.
struct TransferableZone {
  std::shared_ptr<const zone::Zone> zone;      // as served now
  std::vector<dataplane::Prefix> allow;        // allow_transfer
  std::shared_ptr<const Journal> journal;      // may be null (no IXFR history)
};

class TransferServer : public dataplane::TransferSink {
 public:
  using Lookup = std::function<std::optional<TransferableZone>(const std::string& apex_lower)>;

  TransferServer(Lookup lookup, std::vector<tsig::Key> keys, int threads = 2);
  ~TransferServer() override;

  void OnTransfer(int fd, std::string query, const sockaddr* from) override;
  void Stop();
  void SetKeys(std::vector<tsig::Key> keys);  // on reload

  // Takes each message of an answer as soon as it is built (and signed); returns false when
  // the client is gone, which ends the answer.
  using MessageSink = absl::FunctionRef<bool(const std::string& message)>;

  // Answers `query` one message at a time: a transfer holds one message, never the zone's
  // records or the whole answer, and its first message leaves before the rest of the zone
  // is walked.
  // Nothing goes to `sink` when the request is to be dropped.
  void Answer(std::string query, const sockaddr* from, MessageSink sink) const;
  // The same, collected (for tests).
  std::vector<std::string> Answer(std::string query, const sockaddr* from) const;

 private:
  struct Job {
    int fd;
    std::string query;
    sockaddr_storage from;
  };
  void Run();
  void Serve(Job& job) const;

  Lookup lookup_;
  mutable std::mutex keys_mu_;
  std::vector<tsig::Key> keys_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

// Sends NOTIFY for a zone to each target, retrying (5 tries, 2 s apart) until each
// acknowledges; one background thread, coalescing repeated notifications of a zone.
class Notifier {
 public:
  Notifier();
  ~Notifier();
  void Notify(const std::string& apex_wire, uint32_t serial, const std::vector<std::string>& targets);
  void Stop();

 private:
  struct Pending {
    std::string apex;
    uint32_t serial;
    dataplane::Endpoint target;
    int tries = 0;
    absl::Time next;
  };
  void Run();
  bool SendOne(const Pending& p) const;

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Pending> pending_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace tandem::control

// The query handler: request bytes in, response bytes out, answered from a Snapshot.
// The same handler serves the socket, DPDK and in-memory ports. Per call it allocates
// nothing, takes no lock and makes no system call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "dataplane/counters.h"

struct sockaddr;

namespace tandem::zone {
class Snapshot;
}

namespace tandem::dataplane {

// Receives NOTIFY messages (RFC 1996) for the control plane. Called from workers, for
// NOTIFY only (never for queries); returns the rcode of the acknowledgement: NOERROR when
// accepted (a refresh is scheduled), REFUSED or NOTAUTH otherwise.
class NotifySink {
 public:
  virtual ~NotifySink() = default;
  virtual uint8_t OnNotify(const uint8_t* zone_wire, size_t zone_len, const sockaddr* from) = 0;
};

// Takes over TCP connections that ask for a zone transfer (AXFR, IXFR): `fd` is a
// connected blocking socket now owned by the sink, `query` the request message.
class TransferSink {
 public:
  virtual ~TransferSink() = default;
  virtual void OnTransfer(int fd, std::string query, const sockaddr* from) = 0;
};

// Verifies signed requests and signs their responses (TSIG, RFC 8945). Signed requests
// are rare (a secondary's SOA checks, NOTIFY): this path may allocate.
struct TsigVerdict {
  bool formerr = false;   // malformed TSIG: FORMERR, unsigned
  uint16_t error = 0;     // BADSIG, BADKEY, BADTIME: NOTAUTH carrying the error
  size_t length = 0;      // the request's length without its TSIG record
  std::shared_ptr<const void> state;  // what Sign needs (opaque to the data plane)
};

class TsigSink {
 public:
  virtual ~TsigSink() = default;
  // `msg` is the handler's own copy; the TSIG record is stripped (ARCOUNT adjusted).
  virtual TsigVerdict Verify(uint8_t* msg, size_t len) = 0;
  // Appends the response's TSIG (signed, or carrying the verdict's error); returns the new
  // length, at most `cap`, or 0 when it does not fit.
  virtual size_t Sign(const TsigVerdict& verdict, uint8_t* msg, size_t len, size_t cap) = 0;
};

struct HandlerOptions {
  uint16_t udp_max_payload = 1232;  // cap on the client's advertised EDNS UDP size
  int max_cname_chain = 8;          // CNAME/DNAME links followed inside a zone
  NotifySink* notify = nullptr;     // NOTIFY is answered NOTIMP without one
  TransferSink* transfer = nullptr; // AXFR/IXFR are answered REFUSED over TCP without one
  TsigSink* tsig = nullptr;         // signed requests are answered NOTAUTH without one
  // Answers to CHAOS TXT questions (as Knot DNS and NSD give them): `identity` for id.server
  // and hostname.bind, `version` for version.bind and version.server. Empty: not told
  // (REFUSED, as for every other CHAOS question). At most 255 octets each.
  std::string identity;
  std::string version;
};

// One request of a burst and where its response goes. `out` may be `query` (answered in
// place, as the poll-mode path does inside the receive buffer); it must not overlap any
// other exchange of the burst.
struct Exchange {
  const uint8_t* query = nullptr;
  uint32_t query_len = 0;
  uint8_t* out = nullptr;
  uint32_t out_cap = 0;
  Transport transport = Transport::kUdp;
  const sockaddr* client = nullptr;  // may be null; for NOTIFY access checks
  uint32_t response_len = 0;         // set by AnswerBurst: 0 when nothing is to be sent
};

// The parsed request shared by the handler's stages (dataplane/burst.h).
struct PreparedQuery;

class QueryHandler {
 public:
  explicit QueryHandler(HandlerOptions options = {}) : options_(options) {}

  // Answers `query` into `out` (which may alias `query`: the header and question are
  // answered in place). `out_cap` is the buffer size: 65535 or more for TCP, at least the
  // UDP payload cap for UDP. Returns the response length, or 0 when nothing is to be sent.
  // `client` (may be null) is the sender, for NOTIFY access checks.
  size_t Answer(const zone::Snapshot* snapshot, const uint8_t* query, size_t query_len,
                uint8_t* out, size_t out_cap, Transport transport, WorkerCounters& counters,
                const sockaddr* client = nullptr) const;

  // Answers a burst (a port's receive burst; any size, taken 32 at a time): each response
  // is the one Answer gives for the same request, in `response_len`. Parses every request
  // first and warms the cache with each one's index slot, node and RDATA before answering
  // any, so that the memory latencies of a burst overlap instead of adding up.
  void AnswerBurst(const zone::Snapshot* snapshot, std::span<Exchange> burst,
                   WorkerCounters& counters) const;
  static constexpr size_t kBurstStage = 32;  // requests prepared together

  const HandlerOptions& options() const { return options_; }
  // Set before any port starts; the sink must outlive the ports.
  void set_notify_sink(NotifySink* sink) { options_.notify = sink; }
  void set_transfer_sink(TransferSink* sink) { options_.transfer = sink; }
  void set_tsig_sink(TsigSink* sink) { options_.tsig = sink; }

 private:
  // `prepared` is `query` parsed (PrepareQuery); `reserve`: bytes kept free at the end for
  // a TSIG record.
  size_t AnswerImpl(const zone::Snapshot* snapshot, const PreparedQuery& prepared,
                    const uint8_t* query, size_t query_len, uint8_t* out, size_t out_cap,
                    Transport transport, WorkerCounters& counters, const sockaddr* client,
                    size_t reserve) const;
  size_t AnswerSigned(const zone::Snapshot* snapshot, const uint8_t* query, size_t query_len,
                      uint8_t* out, size_t out_cap, Transport transport, WorkerCounters& counters,
                      const sockaddr* client) const;

  HandlerOptions options_;
};

}  // namespace tandem::dataplane

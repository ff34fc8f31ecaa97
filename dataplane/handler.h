// The query handler: request bytes in, response bytes out, answered from a Snapshot.
// The same handler serves the socket, DPDK and in-memory ports. Per call it allocates
// nothing, takes no lock and makes no system call.
#pragma once

#include <cstddef>
#include <cstdint>

#include "dataplane/counters.h"

namespace tandem::zone {
class Snapshot;
}

namespace tandem::dataplane {

struct HandlerOptions {
  uint16_t udp_max_payload = 1232;  // cap on the client's advertised EDNS UDP size
  int max_cname_chain = 8;          // CNAME/DNAME links followed inside a zone
};

class QueryHandler {
 public:
  explicit QueryHandler(HandlerOptions options = {}) : options_(options) {}

  // Answers `query` into `out` (which may alias `query`: the header and question are
  // answered in place). `out_cap` is the buffer size: 65535 or more for TCP, at least the
  // UDP payload cap for UDP. Returns the response length, or 0 when nothing is to be sent.
  size_t Answer(const zone::Snapshot* snapshot, const uint8_t* query, size_t query_len,
                uint8_t* out, size_t out_cap, Transport transport,
                WorkerCounters& counters) const;

  const HandlerOptions& options() const { return options_; }

 private:
  HandlerOptions options_;
};

}  // namespace tandem::dataplane

// TSIG for requests answered by the data plane (SOA queries from secondaries, NOTIFY,
// any signed query): verification with the configured keys and signed responses.
#pragma once

#include <mutex>
#include <vector>

#include "control/tsig.h"
#include "dataplane/handler.h"

namespace tandem::control {

class QueryTsig : public dataplane::TsigSink {
 public:
  void SetKeys(std::vector<tsig::Key> keys);

  dataplane::TsigVerdict Verify(uint8_t* msg, size_t len) override;
  size_t Sign(const dataplane::TsigVerdict& verdict, uint8_t* msg, size_t len, size_t cap) override;

 private:
  std::mutex mu_;  // keys change on reload only
  std::vector<tsig::Key> keys_;
};

}  // namespace tandem::control

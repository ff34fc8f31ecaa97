// Fuzz target: request bytes -> QueryHandler::Answer over a small zone (fuzz_common.h).
// Every input is answered four ways: UDP and TCP, each into a separate output buffer and
// in place in the request buffer. Each response must be well-formed, fit its buffer, and
// the in-place answer must equal the separate one byte for byte. A query ID with the low
// bit set goes to a handler with a NOTIFY sink (accepting or refusing by the next bit).
#include <netinet/in.h>

#include <cstring>
#include <memory>
#include <vector>

#include "dataplane/handler.h"
#include "tests/fuzz/fuzz_common.h"

namespace {

using tandem::dataplane::HandlerOptions;
using tandem::dataplane::NotifySink;
using tandem::dataplane::QueryHandler;
using tandem::dataplane::Transport;
using tandem::dataplane::WorkerCounters;

class FuzzNotifySink : public NotifySink {
 public:
  uint8_t OnNotify(const uint8_t* zone_wire, size_t zone_len, const sockaddr* from) override {
    if (zone_len == 0 || zone_len > tandem::dns::kMaxNameLength ||
        tandem::dns::WireNameLength(zone_wire, zone_len) != zone_len)
      tandem::fuzz::Fail("NOTIFY sink got a malformed zone name");
    if (from == nullptr) tandem::fuzz::Fail("NOTIFY sink got no sender");
    return accept ? tandem::dns::kNoError : tandem::dns::kRefused;
  }
  bool accept = true;
};

struct Fixture {
  std::unique_ptr<tandem::zone::Snapshot> snapshot = tandem::fuzz::MakeSnapshot();
  FuzzNotifySink sink;
  QueryHandler plain{HandlerOptions{}};
  QueryHandler notifying{HandlerOptions{.notify = &sink}};
  WorkerCounters counters;
};

Fixture& Get() {
  static Fixture* f = new Fixture();
  return *f;
}

// One transport: separate output, then in place; both checked and compared.
void AnswerBothWays(const QueryHandler& h, const uint8_t* data, size_t size, Transport t,
                    size_t cap) {
  Fixture& f = Get();
  sockaddr_in from{};
  from.sin_family = AF_INET;
  from.sin_addr.s_addr = htonl(0x7f000001);
  const auto* client = reinterpret_cast<const sockaddr*>(&from);

  // Exactly sized heap buffers, so that any write or read past them is caught.
  std::unique_ptr<uint8_t[]> query(new uint8_t[size ? size : 1]);
  std::memcpy(query.get(), data, size);
  std::unique_ptr<uint8_t[]> out(new uint8_t[cap]);
  size_t n = h.Answer(f.snapshot.get(), query.get(), size, out.get(), cap, t, f.counters, client);
  if (std::memcmp(query.get(), data, size) != 0)
    tandem::fuzz::Fail("Answer changed a separate request buffer");
  if (n > 0) tandem::fuzz::CheckResponse(out.get(), n, cap);

  size_t room = std::max(size, cap);
  std::unique_ptr<uint8_t[]> inplace(new uint8_t[room]);
  std::memcpy(inplace.get(), data, size);
  size_t m =
      h.Answer(f.snapshot.get(), inplace.get(), size, inplace.get(), cap, t, f.counters, client);
  if (m != n) tandem::fuzz::Fail("in-place answer length differs from the separate one");
  if (m > 0) {
    tandem::fuzz::CheckResponse(inplace.get(), m, room);
    if (std::memcmp(inplace.get(), out.get(), m) != 0)
      tandem::fuzz::Fail("in-place answer differs from the separate one");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Fixture& f = Get();
  const QueryHandler* h = &f.plain;
  if (size >= 2 && (data[1] & 1)) {
    h = &f.notifying;
    f.sink.accept = (data[1] & 2) != 0;
  }
  AnswerBothWays(*h, data, size, Transport::kUdp, h->options().udp_max_payload);
  AnswerBothWays(*h, data, size, Transport::kUdp, 512);  // below the EDNS size asked for
  AnswerBothWays(*h, data, size, Transport::kTcp, tandem::dns::kMaxMessageSize);
  return 0;
}

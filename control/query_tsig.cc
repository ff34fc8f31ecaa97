// TSIG for data-plane requests.
#include "control/query_tsig.h"

#include <cstring>
#include <ctime>

namespace tandem::control {

void QueryTsig::SetKeys(std::vector<tsig::Key> keys) {
  std::lock_guard<std::mutex> lock(mu_);
  keys_ = std::move(keys);
}

dataplane::TsigVerdict QueryTsig::Verify(uint8_t* msg, size_t len) {
  std::vector<tsig::Key> keys;
  {
    std::lock_guard<std::mutex> lock(mu_);
    keys = keys_;
  }
  auto verdict = std::make_shared<tsig::ServerVerdict>(
      tsig::VerifyRequest(msg, len, keys, static_cast<uint64_t>(time(nullptr))));
  dataplane::TsigVerdict v;
  v.formerr = verdict->error == tsig::kFormErr;
  v.error = v.formerr ? 0 : verdict->error;
  v.length = verdict->signed_request ? verdict->length_without_tsig : len;
  v.state = verdict;
  return v;
}

size_t QueryTsig::Sign(const dataplane::TsigVerdict& v, uint8_t* msg, size_t len, size_t cap) {
  const auto* verdict = static_cast<const tsig::ServerVerdict*>(v.state.get());
  if (verdict == nullptr || !verdict->signed_request) return 0;
  uint64_t now = static_cast<uint64_t>(time(nullptr));
  std::string m(reinterpret_cast<const char*>(msg), len);
  absl::Status s;
  if (verdict->error == 0 || verdict->error == tsig::kBadTime) {
    const tsig::Key* key = nullptr;
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& k : keys_)
      if (k.name == verdict->key_name) key = &k;
    if (key == nullptr) return 0;
    tsig::ServerSession session(*key, verdict->request_mac);
    s = verdict->error == 0 ? session.Sign(&m, now) : session.SignBadTime(&m, now, verdict->time_signed);
  } else {
    s = tsig::AppendErrorTsig(&m, *verdict, now);
  }
  if (!s.ok() || m.size() > cap) return 0;
  std::memcpy(msg, m.data(), m.size());
  return m.size();
}

}  // namespace tandem::control

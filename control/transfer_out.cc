// AXFR/IXFR out and NOTIFY out.
#include "control/transfer_out.h"

#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "absl/strings/str_cat.h"
#include "control/log.h"
#include "dataplane/dns/message.h"
#include "dataplane/dns/name.h"
#include "dataplane/dns/rrtype.h"
#include "dataplane/dns/wire.h"

namespace tandem::control {
namespace {

constexpr size_t kMessageLimit = 16384;

std::string AddressText(const sockaddr* sa) {
  if (sa == nullptr) return "?";
  dataplane::Endpoint e;
  std::memcpy(&e.addr, sa, sa->sa_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6));
  return e.ToString();
}

// Builds the messages of a transfer: the question in the first only.
class MessageStream {
 public:
  MessageStream(const uint8_t* query, size_t question_end) : query_(query, query + question_end) {
    Start(true);
  }

  void Add(const dns::Record& r) {
    size_t before = w_->size();
    if (!Put(r)) {
      Finish();
      Start(false);
      if (!Put(r)) {
        w_->Rollback(before);  // larger than a message alone: cannot happen for valid RDATA
        return;
      }
    }
    ++count_;
  }

  std::vector<std::string> Done() {
    Finish();
    return std::move(out_);
  }

 private:
  bool Put(const dns::Record& r) {
    return w_->WriteRecord(reinterpret_cast<const uint8_t*>(r.owner.data()), r.type, r.ttl,
                           reinterpret_cast<const uint8_t*>(r.rdata.data()),
                           static_cast<uint16_t>(r.rdata.size()));
  }

  void Start(bool with_question) {
    buf_.assign(65535, 0);
    size_t qlen = with_question ? query_.size() : dns::kHeaderSize;
    std::memcpy(buf_.data(), query_.data(), qlen);
    buf_[2] = static_cast<uint8_t>(0x80 | (query_[2] & 0x78) | 0x04);  // QR, opcode, AA
    buf_[3] = 0;
    dns::Put16(buf_.data() + 4, with_question ? 1 : 0);
    std::memset(buf_.data() + 6, 0, 6);
    w_ = std::make_unique<dns::MessageWriter>(buf_.data(), kMessageLimit);
    if (with_question) {
      int labels = dns::CountLabels(buf_.data() + dns::kHeaderSize);
      w_->StartAfterQuestion(qlen, labels);
    } else {
      w_->StartAfterQuestion(dns::kHeaderSize, 0);
    }
    count_ = 0;
  }

  void Finish() {
    if (w_ == nullptr) return;
    dns::Put16(buf_.data() + 6, count_);
    out_.emplace_back(reinterpret_cast<const char*>(buf_.data()), w_->size());
    w_.reset();
  }

  std::vector<uint8_t> query_;
  std::vector<uint8_t> buf_;
  std::unique_ptr<dns::MessageWriter> w_;
  uint16_t count_ = 0;
  std::vector<std::string> out_;
};

std::string ErrorMessage(const uint8_t* query, size_t question_end, uint8_t rcode) {
  std::string m(reinterpret_cast<const char*>(query), question_end);
  m[2] = static_cast<char>(0x80 | (query[2] & 0x79));
  m[3] = static_cast<char>(rcode);
  std::memset(m.data() + 6, 0, 6);
  return m;
}

bool SendAll(int fd, const std::string& msg) {
  std::string framed(2, '\0');
  dns::Put16(reinterpret_cast<uint8_t*>(framed.data()), static_cast<uint16_t>(msg.size()));
  framed += msg;
  size_t off = 0;
  while (off < framed.size()) {
    ssize_t n = send(fd, framed.data() + off, framed.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// The client's serial from the SOA in an IXFR request's authority section.
std::optional<uint32_t> ClientSerial(const uint8_t* msg, size_t len, size_t question_end) {
  if (dns::header::Nscount(msg) < 1) return std::nullopt;
  size_t pos = question_end;
  for (int i = 0; i < dns::header::Ancount(msg); ++i) {
    uint16_t t;
    if (!dns::SkipRecord(msg, len, pos, &pos, &t)) return std::nullopt;
  }
  int budget = 64;
  dns::Record r;
  std::string error;
  if (!dns::ReadRecord(msg, len, &pos, &budget, &r, &error) || r.type != dns::kTypeSOA || r.rdata.size() < 22)
    return std::nullopt;
  return SoaSerial(r);
}

}  // namespace

TransferServer::TransferServer(Lookup lookup, std::vector<tsig::Key> keys, int threads)
    : lookup_(std::move(lookup)), keys_(std::move(keys)) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
}

TransferServer::~TransferServer() { Stop(); }

void TransferServer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
  for (auto& j : jobs_) close(j.fd);
  jobs_.clear();
}

void TransferServer::SetKeys(std::vector<tsig::Key> keys) {
  std::lock_guard<std::mutex> lock(keys_mu_);
  keys_ = std::move(keys);
}

void TransferServer::OnTransfer(int fd, std::string query, const sockaddr* from) {
  Job job{fd, std::move(query), {}};
  if (from) std::memcpy(&job.from, from, from->sa_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6));
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ || jobs_.size() >= 64) {  // more waiting transfers than that: refuse the connection
      close(fd);
      return;
    }
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
}

void TransferServer::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    if (jobs_.empty()) {
      cv_.wait(lock);
      continue;
    }
    Job job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    Serve(job);
    close(job.fd);
    lock.lock();
  }
}

void TransferServer::Serve(Job& job) const {
  timeval tv{10, 0};  // a client that stops reading is dropped
  setsockopt(job.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  const sockaddr* from = reinterpret_cast<const sockaddr*>(&job.from);
  for (const std::string& m : Answer(job.query, from))
    if (!SendAll(job.fd, m)) {
      LogWarning("transfer to ", AddressText(from), " cut: ", strerror(errno));
      return;
    }
}

std::vector<std::string> TransferServer::Answer(std::string query, const sockaddr* from) const {
  auto* msg = reinterpret_cast<uint8_t*>(query.data());
  uint64_t now = static_cast<uint64_t>(time(nullptr));
  std::vector<tsig::Key> keys;
  {
    std::lock_guard<std::mutex> lock(keys_mu_);
    keys = keys_;
  }
  tsig::ServerVerdict verdict = tsig::VerifyRequest(msg, query.size(), keys, now);
  size_t len = verdict.signed_request ? verdict.length_without_tsig : query.size();
  dns::Query q;
  dns::QueryVerdict v = dns::ParseQuery(msg, len, &q);
  if (v == dns::QueryVerdict::kDrop) return {};
  if (v != dns::QueryVerdict::kOk || verdict.error == dns::kFormErr)
    return {ErrorMessage(msg, v == dns::QueryVerdict::kFormErrHeader ? dns::kHeaderSize : q.question_end, dns::kFormErr)};
  std::string who = AddressText(from);
  std::string zone_text = dns::NameToText(q.qname.data);
  if (verdict.error != 0) {
    std::string m = ErrorMessage(msg, q.question_end, dns::kNotAuth);
    (void)tsig::AppendErrorTsig(&m, verdict, now);
    LogWarning("transfer of ", zone_text, " to ", who, " refused: TSIG ", tsig::ErrorText(verdict.error));
    return {m};
  }
  std::string apex(reinterpret_cast<const char*>(q.qname.data), q.qname.length);
  dns::LowerName(reinterpret_cast<uint8_t*>(apex.data()), apex.size());
  auto zone = lookup_(apex);
  bool allowed = false;
  if (zone)
    for (const auto& p : zone->allow) allowed |= from != nullptr && p.Contains(from);
  std::vector<std::string> out;
  if (!zone || zone->zone->servfail()) {
    out.push_back(ErrorMessage(msg, q.question_end, zone ? dns::kServFail : dns::kNotAuth));
  } else if (!allowed) {
    LogWarning("transfer of ", zone_text, " to ", who, " refused: not in allow_transfer");
    out.push_back(ErrorMessage(msg, q.question_end, dns::kRefused));
  } else {
    const zone::Zone& z = *zone->zone;
    std::vector<dns::Record> records = ZoneRecords(z);
    MessageStream stream(msg, q.question_end);
    std::optional<uint32_t> client = q.qtype == dns::kTypeIXFR ? ClientSerial(msg, len, q.question_end) : std::nullopt;
    std::optional<std::vector<const IxfrDiff*>> chain;
    if (client && zone->journal) chain = zone->journal->Chain(*client, z.serial());
    const char* kind = "AXFR";
    if (client && !SerialNewer(z.serial(), *client)) {
      kind = "IXFR (up to date)";
      stream.Add(records[0]);
    } else if (chain) {
      kind = "IXFR";
      stream.Add(records[0]);
      for (const IxfrDiff* d : *chain) {
        stream.Add(d->from_soa);
        for (const auto& r : d->removed) stream.Add(r);
        stream.Add(d->to_soa);
        for (const auto& r : d->added) stream.Add(r);
      }
      stream.Add(records[0]);
    } else {
      if (client) kind = "IXFR (whole zone)";
      for (const auto& r : records) stream.Add(r);
      stream.Add(records[0]);
    }
    out = stream.Done();
    LogInfo("transfer of ", zone_text, " serial ", z.serial(), " to ", who, ": ", kind, ", ", out.size(), " messages");
  }
  if (verdict.signed_request) {
    const tsig::Key* key = nullptr;
    for (const auto& k : keys)
      if (k.name == verdict.key_name) key = &k;
    if (key != nullptr) {
      tsig::ServerSession session(*key, verdict.request_mac);
      for (auto& m : out) (void)session.Sign(&m, now);
    }
  }
  return out;
}

// ---- NOTIFY out -------------------------------------------------------------------------

Notifier::Notifier() : thread_([this] { Run(); }) {}

Notifier::~Notifier() { Stop(); }

void Notifier::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Notifier::Notify(const std::string& apex, uint32_t serial, const std::vector<std::string>& targets) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& t : targets) {
      auto ep = dataplane::ParseEndpoint(t, 53);
      if (!ep) continue;
      // A newer notification of the same zone to the same target replaces the old one.
      std::erase_if(pending_, [&](const Pending& p) {
        return p.apex == apex && p.target.ToString() == ep->ToString();
      });
      pending_.push_back({apex, serial, *ep, 0, absl::InfinitePast()});
    }
  }
  cv_.notify_all();
}

bool Notifier::SendOne(const Pending& p) const {
  int fd = socket(p.target.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  uint16_t id = static_cast<uint16_t>(arc4random());
  std::string m(12, '\0');
  auto* h = reinterpret_cast<uint8_t*>(m.data());
  dns::Put16(h, id);
  h[2] = static_cast<uint8_t>(dns::kOpNotify << 3 | 0x04);  // NOTIFY, AA
  dns::Put16(h + 4, 1);
  m += p.apex;
  m.append("\x00\x06\x00\x01", 4);  // SOA IN
  bool acked = false;
  if (connect(fd, reinterpret_cast<const sockaddr*>(&p.target.addr), p.target.len) == 0 &&
      send(fd, m.data(), m.size(), 0) == static_cast<ssize_t>(m.size())) {
    pollfd pfd{fd, POLLIN, 0};
    uint8_t buf[512];
    if (poll(&pfd, 1, 1000) == 1) {
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      acked = n >= 12 && dns::Get16(buf) == id && dns::header::Qr(buf) &&
              dns::header::Opcode(buf) == dns::kOpNotify && dns::header::Rcode(buf) == 0;
    }
  }
  close(fd);
  return acked;
}

void Notifier::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    absl::Time now = absl::Now();
    auto due = std::find_if(pending_.begin(), pending_.end(), [&](const Pending& p) { return p.next <= now; });
    if (due == pending_.end()) {
      absl::Time wake = now + absl::Seconds(2);
      for (const auto& p : pending_) wake = std::min(wake, p.next);
      cv_.wait_until(lock, absl::ToChronoTime(wake));
      continue;
    }
    Pending p = *due;
    lock.unlock();
    bool acked = SendOne(p);
    lock.lock();
    std::string zone = dns::NameToText(reinterpret_cast<const uint8_t*>(p.apex.data()));
    auto it = std::find_if(pending_.begin(), pending_.end(), [&](const Pending& x) {
      return x.apex == p.apex && x.serial == p.serial && x.target.ToString() == p.target.ToString();
    });
    if (it == pending_.end()) continue;  // replaced meanwhile
    if (acked) {
      LogInfo("zone ", zone, ": NOTIFY serial ", p.serial, " to ", p.target.ToString(), " acknowledged");
      pending_.erase(it);
    } else if (++it->tries >= 5) {
      LogWarning("zone ", zone, ": NOTIFY serial ", p.serial, " to ", p.target.ToString(), " not acknowledged after 5 tries");
      pending_.erase(it);
    } else {
      it->next = absl::Now() + absl::Seconds(2);
    }
  }
}

}  // namespace tandem::control

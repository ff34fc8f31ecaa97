// AXFR/IXFR out and NOTIFY out.
#include "control/transfer_out.h"

#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <optional>

#include "absl/strings/str_cat.h"
#include "control/log.h"
#include "control/zone_copy.h"
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

// Hands the messages of an answer to the sink one at a time, each signed first when the
// request was (RFC 8945 5.3.1: every message, each MAC chained to the one before).
class Output {
 public:
  Output(TransferServer::MessageSink sink, const tsig::Key* key, const std::string& request_mac,
         uint64_t now)
      : sink_(sink), now_(now) {
    if (key != nullptr) session_.emplace(*key, request_mac);
  }

  // False when the client is gone: nothing more is to be sent.
  bool Send(std::string* m) {
    if (cut_) return false;
    if (session_) (void)session_->Sign(m, now_);
    if (!sink_(*m)) {
      cut_ = true;
      return false;
    }
    ++sent_;
    return true;
  }

  size_t sent() const { return sent_; }
  bool cut() const { return cut_; }

 private:
  TransferServer::MessageSink sink_;
  std::optional<tsig::ServerSession> session_;
  uint64_t now_;
  size_t sent_ = 0;
  bool cut_ = false;
};

// Packs records into the messages of a transfer (the question in the first only) and sends
// each as soon as it is full: one message buffer whatever the size of the zone.
class MessageStream {
 public:
  MessageStream(const uint8_t* query, size_t question_end, Output* out)
      : query_(query, query + question_end), buf_(65535), out_(out) {
    Start(true);
  }

  // Each returns false once the client is gone: the caller stops.
  bool Add(const dns::Record& r) {
    return Add(reinterpret_cast<const uint8_t*>(r.owner.data()), r.type, r.ttl,
               reinterpret_cast<const uint8_t*>(r.rdata.data()),
               static_cast<uint16_t>(r.rdata.size()));
  }
  bool Add(const uint8_t* owner, uint16_t type, uint32_t ttl, const uint8_t* rdata,
           uint16_t rdlen) {
    size_t before = w_->size();
    if (!w_->WriteRecord(owner, type, ttl, rdata, rdlen)) {
      if (!Finish()) return false;
      Start(false);
      if (!w_->WriteRecord(owner, type, ttl, rdata, rdlen)) {
        w_->Rollback(before);  // larger than a message alone: cannot happen for valid RDATA
        return true;
      }
    }
    ++count_;
    return true;
  }
  // Sends the last message.
  bool Done() { return Finish(); }

 private:
  void Start(bool with_question) {
    size_t qlen = with_question ? query_.size() : dns::kHeaderSize;
    std::memcpy(buf_.data(), query_.data(), qlen);
    buf_[2] = static_cast<uint8_t>(0x80 | (query_[2] & 0x78) | 0x04);  // QR, opcode, AA
    buf_[3] = 0;
    dns::Put16(buf_.data() + 4, with_question ? 1 : 0);
    std::memset(buf_.data() + 6, 0, 6);
    w_.emplace(buf_.data(), kMessageLimit);
    if (with_question) {
      int labels = dns::CountLabels(buf_.data() + dns::kHeaderSize);
      w_->StartAfterQuestion(qlen, labels);
    } else {
      w_->StartAfterQuestion(dns::kHeaderSize, 0);
    }
    count_ = 0;
  }

  bool Finish() {
    dns::Put16(buf_.data() + 6, count_);
    message_.assign(reinterpret_cast<const char*>(buf_.data()), w_->size());  // reuses its capacity
    return out_->Send(&message_);
  }

  std::vector<uint8_t> query_;
  std::vector<uint8_t> buf_;
  std::optional<dns::MessageWriter> w_;
  uint16_t count_ = 0;
  std::string message_;
  Output* out_;
};

bool AddSoa(MessageStream& s, const zone::Zone& z) {
  zone::Rdata rr = z.First(z.soa());
  return s.Add(z.apex(), dns::kTypeSOA, z.soa().ttl, rr.data, rr.size);
}

// RFC 1995 4: our SOA; per difference its old SOA, the records removed, its new SOA, the
// records added; our SOA again.
bool AddDifferences(MessageStream& s, const zone::Zone& z,
                    const std::vector<const IxfrDiff*>& chain) {
  if (!AddSoa(s, z)) return false;
  for (const IxfrDiff* d : chain) {
    if (!s.Add(d->from_soa)) return false;
    for (const auto& r : d->removed)
      if (!s.Add(r)) return false;
    if (!s.Add(d->to_soa)) return false;
    for (const auto& r : d->added)
      if (!s.Add(r)) return false;
  }
  return AddSoa(s, z);
}

// RFC 5936 2.2: the SOA, every other record, the SOA again, walked in place; the walk
// stops when the client is gone.
bool AddZone(MessageStream& s, const zone::Zone& z) {
  return ForEachRecord(z, [&](const uint8_t* owner, size_t, uint16_t type, uint32_t ttl,
                              const uint8_t* rdata, uint16_t rdlen) {
           return s.Add(owner, type, ttl, rdata, rdlen);
         }) &&
         AddSoa(s, z);
}

// Streams the answer to an admitted request for `z` (see the top of transfer_out.h);
// returns what it was, for the log.
const char* StreamZone(MessageStream& s, const zone::Zone& z, const Journal* journal,
                       std::optional<uint32_t> client) {
  if (client && !SerialNewer(z.serial(), *client)) {
    if (AddSoa(s, z)) s.Done();
    return "IXFR (up to date)";
  }
  std::optional<std::vector<const IxfrDiff*>> chain;
  if (client && journal != nullptr) chain = journal->Chain(*client, z.serial());
  if (chain) {
    if (AddDifferences(s, z, *chain)) s.Done();
    return "IXFR";
  }
  if (AddZone(s, z)) s.Done();
  return client ? "IXFR (whole zone)" : "AXFR";
}

std::string ErrorMessage(const uint8_t* query, size_t question_end, uint8_t rcode) {
  std::string m(reinterpret_cast<const char*>(query), question_end);
  m[2] = static_cast<char>(0x80 | (query[2] & 0x79));
  m[3] = static_cast<char>(rcode);
  std::memset(m.data() + 6, 0, 6);
  return m;
}

// One message with its TCP length prefix, without copying it.
bool SendAll(int fd, const std::string& msg) {
  uint8_t length[2];
  dns::Put16(length, static_cast<uint16_t>(msg.size()));
  iovec iov[2] = {{length, 2}, {const_cast<char*>(msg.data()), msg.size()}};
  msghdr mh{};
  mh.msg_iov = iov;
  mh.msg_iovlen = 2;
  while (mh.msg_iovlen > 0) {
    ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    auto left = static_cast<size_t>(n);
    while (mh.msg_iovlen > 0 && left >= mh.msg_iov->iov_len) {  // the parts sent whole
      left -= mh.msg_iov->iov_len;
      ++mh.msg_iov;
      --mh.msg_iovlen;
    }
    if (left > 0) {  // the part sent in part
      mh.msg_iov->iov_base = static_cast<char*>(mh.msg_iov->iov_base) + left;
      mh.msg_iov->iov_len -= left;
    }
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
  Answer(std::move(job.query), from, [&](const std::string& m) {
    if (SendAll(job.fd, m)) return true;
    LogWarning("transfer to ", AddressText(from), " cut: ", strerror(errno));
    return false;
  });
}

std::vector<std::string> TransferServer::Answer(std::string query, const sockaddr* from) const {
  std::vector<std::string> out;
  Answer(std::move(query), from, [&](const std::string& m) {
    out.push_back(m);
    return true;
  });
  return out;
}

void TransferServer::Answer(std::string query, const sockaddr* from, MessageSink sink) const {
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
  if (v == dns::QueryVerdict::kDrop) return;
  if (v != dns::QueryVerdict::kOk || verdict.error == dns::kFormErr) {
    sink(ErrorMessage(msg,
                      v == dns::QueryVerdict::kFormErrHeader ? dns::kHeaderSize : q.question_end,
                      dns::kFormErr));
    return;
  }
  std::string who = AddressText(from);
  std::string zone_text = dns::NameToText(q.qname.data);
  if (verdict.error != 0) {
    std::string m = ErrorMessage(msg, q.question_end, dns::kNotAuth);
    (void)tsig::AppendErrorTsig(&m, verdict, now);
    LogWarning("transfer of ", zone_text, " to ", who, " refused: TSIG ", tsig::ErrorText(verdict.error));
    sink(m);
    return;
  }
  const tsig::Key* key = nullptr;
  if (verdict.signed_request)
    for (const auto& k : keys)
      if (k.name == verdict.key_name) key = &k;
  Output out(sink, key, verdict.request_mac, now);
  std::string apex(reinterpret_cast<const char*>(q.qname.data), q.qname.length);
  dns::LowerName(reinterpret_cast<uint8_t*>(apex.data()), apex.size());
  auto zone = lookup_(apex);
  bool allowed = false;
  if (zone)
    for (const auto& p : zone->allow) allowed |= from != nullptr && p.Contains(from);
  if (!zone || zone->zone->servfail()) {
    std::string m = ErrorMessage(msg, q.question_end, zone ? dns::kServFail : dns::kNotAuth);
    out.Send(&m);
  } else if (!allowed) {
    LogWarning("transfer of ", zone_text, " to ", who, " refused: not in allow_transfer");
    std::string m = ErrorMessage(msg, q.question_end, dns::kRefused);
    out.Send(&m);
  } else {
    // The zone stays alive (held by `zone`) until its last record is sent.
    const zone::Zone& z = *zone->zone;
    MessageStream stream(msg, q.question_end, &out);
    std::optional<uint32_t> client = q.qtype == dns::kTypeIXFR ? ClientSerial(msg, len, q.question_end) : std::nullopt;
    const char* kind = StreamZone(stream, z, zone->journal.get(), client);
    LogInfo("transfer of ", zone_text, " serial ", z.serial(), " to ", who, ": ", kind, ", ",
            out.sent(), " messages", out.cut() ? ", then the client was gone" : "");
  }
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

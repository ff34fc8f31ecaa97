// SOA queries and AXFR/IXFR streams.
#include "control/transfer.h"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "absl/strings/str_cat.h"
#include "control/journal.h"
#include "control/tsig.h"
#include "dataplane/dns/name.h"
#include "dataplane/dns/rrtype.h"
#include "dataplane/dns/wire.h"

namespace tandem::control {
namespace {

using dns::Get16;
using dns::Put16;

uint64_t Now() { return static_cast<uint64_t>(time(nullptr)); }

std::string ZoneText(const TransferOptions& o) {
  return dns::NameToText(reinterpret_cast<const uint8_t*>(o.zone.data()));
}

absl::Status Error(const TransferOptions& o, const std::string& what) {
  return absl::UnavailableError(absl::StrCat(ZoneText(o), " from ", o.server.ToString(), ": ", what));
}

// A socket closed on scope exit.
struct Socket {
  int fd = -1;
  ~Socket() {
    if (fd >= 0) close(fd);
  }
};

bool WaitFor(int fd, short events, absl::Time deadline) {
  for (;;) {
    int ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (ms <= 0) return false;
    pollfd p{fd, events, 0};
    int rc = poll(&p, 1, ms);
    if (rc > 0) return true;
    if (rc < 0 && errno != EINTR) return false;
  }
}

std::string MakeQuery(const TransferOptions& o, uint16_t id, uint16_t qtype,
                      const std::optional<dns::Record>& authority_soa) {
  std::string m(12, '\0');
  auto* h = reinterpret_cast<uint8_t*>(m.data());
  Put16(h, id);
  Put16(h + 4, 1);
  if (authority_soa) Put16(h + 8, 1);
  m += o.zone;
  uint8_t tail[4];
  Put16(tail, qtype);
  Put16(tail + 2, dns::kClassIn);
  m.append(reinterpret_cast<char*>(tail), 4);
  if (authority_soa) dns::AppendRecord(&m, *authority_soa);
  return m;
}

// Checks the header of a response to `id`; returns an empty string when fine.
std::string CheckHeader(const uint8_t* msg, size_t len, uint16_t id) {
  if (len < dns::kHeaderSize) return "short message";
  if (Get16(msg) != id) return "response ID does not match the query";
  if (!dns::header::Qr(msg)) return "message is not a response";
  uint8_t rcode = dns::header::Rcode(msg);
  static const char* kNames[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
                                 "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE"};
  if (rcode != 0) return absl::StrCat("server answered ", rcode <= 10 ? kNames[rcode] : std::to_string(rcode));
  return "";
}

// Parses the answer section of a message (the question is skipped).
bool ReadAnswers(const uint8_t* msg, size_t len, std::vector<dns::Record>* out, std::string* error) {
  size_t pos = dns::kHeaderSize;
  for (int i = 0; i < dns::header::Qdcount(msg); ++i) {
    if (dns::SkipName(msg, len, pos, &pos) != dns::NameError::kOk || pos + 4 > len) {
      *error = "malformed question";
      return false;
    }
    pos += 4;
  }
  int budget = 4096;
  for (int i = 0; i < dns::header::Ancount(msg); ++i) {
    dns::Record r;
    if (!dns::ReadRecord(msg, len, &pos, &budget, &r, error)) return false;
    out->push_back(std::move(r));
  }
  return true;
}

bool IsZoneSoa(const dns::Record& r, const std::string& zone) {
  return r.type == dns::kTypeSOA && r.rdata.size() >= 22 &&
         dns::NameEqual(reinterpret_cast<const uint8_t*>(r.owner.data()),
                        reinterpret_cast<const uint8_t*>(zone.data()));
}

// Follows the records of an AXFR or IXFR response stream (RFC 5936 2.2, RFC 1995 4).
class Stream {
 public:
  Stream(std::string zone, bool ixfr, std::optional<uint32_t> have)
      : zone_(std::move(zone)), ixfr_(ixfr), have_(have) {}

  // Takes one message's answers; returns false with *error on a broken sequence.
  bool Take(std::vector<dns::Record>& records, std::string* error) {
    for (auto& r : records) {
      if (done_) {
        *error = "records after the closing SOA";
        return false;
      }
      if (!InZone(r)) {
        *error = absl::StrCat("out-of-zone record ", dns::NameToText(reinterpret_cast<const uint8_t*>(r.owner.data())));
        return false;
      }
      if (!Step(std::move(r), error)) return false;
    }
    return true;
  }

  // A single-SOA IXFR answer ends the stream at the end of its message.
  bool EndOfMessage() {
    if (ixfr_ && count_ == 1 && have_ && !SerialNewer(result_.serial, *have_)) {
      result_.up_to_date = true;
      done_ = true;
    }
    return done_;
  }

  bool done() const { return done_; }
  size_t count() const { return count_; }
  TransferResult& result() { return result_; }

 private:
  bool InZone(const dns::Record& r) const {
    return dns::IsSubdomain(reinterpret_cast<const uint8_t*>(r.owner.data()), r.owner.size(),
                            reinterpret_cast<const uint8_t*>(zone_.data()), zone_.size());
  }

  bool Step(dns::Record r, std::string* error) {
    ++count_;
    bool soa = r.type == dns::kTypeSOA;
    if (count_ == 1) {
      if (!IsZoneSoa(r, zone_)) {
        *error = "the stream does not start with the zone's SOA";
        return false;
      }
      result_.serial = SoaSerial(r);
      first_ = r;
      return true;
    }
    if (count_ == 2 && ixfr_ && soa && have_) {
      mode_ = kDiffs;
    } else if (count_ == 2) {
      mode_ = kWhole;
      result_.records.push_back(first_);
    }
    if (mode_ == kWhole) {
      // The closing SOA equals the first one; names compare without case (a server's
      // compression may spell them differently in different messages).
      if (soa && dns::CanonicalRdata(r.type, r.rdata) == dns::CanonicalRdata(first_.type, first_.rdata)) {
        done_ = true;
        return true;
      }
      if (soa) {
        *error = "a second SOA record inside the zone";
        return false;
      }
      result_.records.push_back(std::move(r));
      return true;
    }
    return DiffStep(std::move(r), error);
  }

  // IXFR differences: (SOA old, removed..., SOA new, added...)+, SOA final.
  bool DiffStep(dns::Record r, std::string* error) {
    result_.incremental = true;
    bool soa = r.type == dns::kTypeSOA;
    if (!soa) {
      if (diff_state_ == kNone) {
        *error = "IXFR record outside a difference sequence";
        return false;
      }
      auto& d = result_.diffs.back();
      (diff_state_ == kRemoving ? d.removed : d.added).push_back(std::move(r));
      return true;
    }
    uint32_t serial = SoaSerial(r);
    if (diff_state_ == kRemoving) {
      result_.diffs.back().to_soa = std::move(r);
      diff_state_ = kAdding;
      return true;
    }
    if (diff_state_ == kAdding && serial == result_.serial &&
        SoaSerial(result_.diffs.back().to_soa) == result_.serial) {
      done_ = true;
      return true;
    }
    result_.diffs.push_back({});
    result_.diffs.back().from_soa = std::move(r);
    diff_state_ = kRemoving;
    return true;
  }

  enum Mode { kUnknown, kWhole, kDiffs } mode_ = kUnknown;
  enum DiffState { kNone, kRemoving, kAdding } diff_state_ = kNone;
  std::string zone_;
  bool ixfr_;
  std::optional<uint32_t> have_;
  dns::Record first_;
  size_t count_ = 0;
  bool done_ = false;
  TransferResult result_;
};

class TcpExchange {
 public:
  TcpExchange(const TransferOptions& o) : o_(o) {}

  absl::Status Connect() {
    sock_.fd = socket(o_.server.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (sock_.fd < 0) return Error(o_, absl::StrCat("socket: ", strerror(errno)));
    int rc = connect(sock_.fd, reinterpret_cast<const sockaddr*>(&o_.server.addr), o_.server.len);
    if (rc != 0 && errno != EINPROGRESS) return Error(o_, absl::StrCat("connect: ", strerror(errno)));
    if (!WaitFor(sock_.fd, POLLOUT, absl::Now() + o_.timeout)) return Error(o_, "connect: timed out");
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(sock_.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return Error(o_, absl::StrCat("connect: ", strerror(err)));
    return absl::OkStatus();
  }

  absl::Status Send(const std::string& msg) {
    std::string framed(2, '\0');
    Put16(reinterpret_cast<uint8_t*>(framed.data()), static_cast<uint16_t>(msg.size()));
    framed += msg;
    size_t off = 0;
    while (off < framed.size()) {
      if (!WaitFor(sock_.fd, POLLOUT, absl::Now() + o_.timeout)) return Error(o_, "send: timed out");
      ssize_t n = send(sock_.fd, framed.data() + off, framed.size() - off, MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN && errno != EINTR) return Error(o_, absl::StrCat("send: ", strerror(errno)));
      if (n > 0) off += static_cast<size_t>(n);
    }
    return absl::OkStatus();
  }

  // Reads one length-prefixed message; `closed` is set on a clean end of stream before it.
  absl::Status Receive(std::string* msg, bool* closed) {
    uint8_t prefix[2];
    *closed = false;
    size_t got = 0;
    if (auto s = ReadExactly(prefix, 2, &got); !s.ok()) {
      if (got == 0 && eof_) *closed = true;
      return s;
    }
    msg->resize(Get16(prefix));
    return ReadExactly(reinterpret_cast<uint8_t*>(msg->data()), msg->size(), &got);
  }

 private:
  absl::Status ReadExactly(uint8_t* buf, size_t n, size_t* got) {
    *got = 0;
    while (*got < n) {
      if (!WaitFor(sock_.fd, POLLIN, absl::Now() + o_.timeout)) return Error(o_, "receive: timed out");
      ssize_t r = recv(sock_.fd, buf + *got, n - *got, 0);
      if (r == 0) {
        eof_ = true;
        return Error(o_, "connection closed by the server");
      }
      if (r < 0 && errno != EAGAIN && errno != EINTR) return Error(o_, absl::StrCat("receive: ", strerror(errno)));
      if (r > 0) *got += static_cast<size_t>(r);
    }
    return absl::OkStatus();
  }

  const TransferOptions& o_;
  Socket sock_;
  bool eof_ = false;
};

// Verifies (and strips) TSIG when a key is set; returns the DNS part's length.
absl::StatusOr<size_t> Unsign(tsig::ClientSession* session, std::string* msg) {
  if (session == nullptr) return msg->size();
  return session->VerifyResponse(reinterpret_cast<uint8_t*>(msg->data()), msg->size(), Now());
}

absl::StatusOr<SoaAnswer> ParseSoaAnswer(const TransferOptions& o, const uint8_t* msg, size_t len,
                                         uint16_t id) {
  if (std::string e = CheckHeader(msg, len, id); !e.empty()) return Error(o, absl::StrCat("SOA query: ", e));
  std::vector<dns::Record> answers;
  std::string error;
  if (!ReadAnswers(msg, len, &answers, &error)) return Error(o, absl::StrCat("SOA query: ", error));
  for (auto& r : answers) {
    if (IsZoneSoa(r, o.zone)) {
      SoaAnswer a;
      a.serial = SoaSerial(r);
      a.soa = std::move(r);
      a.authoritative = dns::header::Aa(msg);
      return a;
    }
  }
  return Error(o, "SOA query: no SOA record in the answer");
}

absl::StatusOr<SoaAnswer> QuerySoaTcp(const TransferOptions& o) {
  uint16_t id = static_cast<uint16_t>(arc4random());
  std::string q = MakeQuery(o, id, dns::kTypeSOA, std::nullopt);
  std::unique_ptr<tsig::ClientSession> session;
  if (o.key) {
    session = std::make_unique<tsig::ClientSession>(*o.key);
    if (auto s = session->SignRequest(&q, Now()); !s.ok()) return s;
  }
  TcpExchange x(o);
  if (auto s = x.Connect(); !s.ok()) return s;
  if (auto s = x.Send(q); !s.ok()) return s;
  std::string r;
  bool closed;
  if (auto s = x.Receive(&r, &closed); !s.ok()) return s;
  auto len = Unsign(session.get(), &r);
  if (!len.ok()) return Error(o, absl::StrCat("SOA query: TSIG: ", len.status().message()));
  return ParseSoaAnswer(o, reinterpret_cast<const uint8_t*>(r.data()), *len, id);
}

}  // namespace

bool SerialNewer(uint32_t a, uint32_t b) {
  return a != b && static_cast<uint32_t>(a - b) < 0x80000000u;
}

absl::StatusOr<SoaAnswer> QuerySoa(const TransferOptions& o) {
  absl::Time start = absl::Now();
  uint16_t id = static_cast<uint16_t>(arc4random());
  std::string q = MakeQuery(o, id, dns::kTypeSOA, std::nullopt);
  std::unique_ptr<tsig::ClientSession> session;
  if (o.key) {
    session = std::make_unique<tsig::ClientSession>(*o.key);
    if (auto s = session->SignRequest(&q, Now()); !s.ok()) return s;
  }
  Socket sock;
  sock.fd = socket(o.server.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock.fd < 0 || connect(sock.fd, reinterpret_cast<const sockaddr*>(&o.server.addr), o.server.len) != 0 ||
      send(sock.fd, q.data(), q.size(), 0) < 0)
    return Error(o, absl::StrCat("SOA query: ", strerror(errno)));
  absl::Time deadline = start + o.timeout;
  std::string r(65535, '\0');
  for (;;) {
    if (!WaitFor(sock.fd, POLLIN, deadline)) return Error(o, "SOA query: timed out");
    ssize_t n = recv(sock.fd, r.data(), r.size(), 0);
    if (n < 0) return Error(o, absl::StrCat("SOA query: ", strerror(errno)));
    if (n < 12 || Get16(reinterpret_cast<const uint8_t*>(r.data())) != id) continue;  // not ours
    r.resize(static_cast<size_t>(n));
    break;
  }
  if (dns::header::Tc(reinterpret_cast<const uint8_t*>(r.data()))) {
    auto tcp = QuerySoaTcp(o);
    if (tcp.ok()) tcp->latency = absl::Now() - start;
    return tcp;
  }
  auto len = Unsign(session.get(), &r);
  if (!len.ok()) return Error(o, absl::StrCat("SOA query: TSIG: ", len.status().message()));
  auto a = ParseSoaAnswer(o, reinterpret_cast<const uint8_t*>(r.data()), *len, id);
  if (a.ok()) a->latency = absl::Now() - start;
  return a;
}

absl::StatusOr<TransferResult> Transfer(const TransferOptions& o, const std::optional<dns::Record>& have) {
  bool ixfr = have.has_value();
  const char* kind = ixfr ? "IXFR" : "AXFR";
  uint16_t id = static_cast<uint16_t>(arc4random());
  std::string q = MakeQuery(o, id, ixfr ? dns::kTypeIXFR : dns::kTypeAXFR, have);
  std::unique_ptr<tsig::ClientSession> session;
  if (o.key) {
    session = std::make_unique<tsig::ClientSession>(*o.key);
    if (auto s = session->SignRequest(&q, Now()); !s.ok()) return s;
  }
  TcpExchange x(o);
  if (auto s = x.Connect(); !s.ok()) return s;
  if (auto s = x.Send(q); !s.ok()) return s;
  Stream stream(o.zone, ixfr, have ? std::optional<uint32_t>(SoaSerial(*have)) : std::nullopt);
  size_t messages = 0, bytes = 0;
  while (!stream.done()) {
    std::string m;
    bool closed;
    if (auto s = x.Receive(&m, &closed); !s.ok())
      return Error(o, absl::StrCat(kind, " cut after ", stream.count(), " records in ", messages, " messages: ", s.message()));
    ++messages;
    bytes += m.size() + 2;
    if (bytes > o.max_bytes) return Error(o, absl::StrCat(kind, " larger than the limit of ", o.max_bytes, " bytes"));
    auto len = Unsign(session.get(), &m);
    if (!len.ok()) return Error(o, absl::StrCat(kind, " message ", messages, ": TSIG: ", len.status().message()));
    const auto* msg = reinterpret_cast<const uint8_t*>(m.data());
    if (std::string e = CheckHeader(msg, *len, id); !e.empty()) return Error(o, absl::StrCat(kind, ": ", e));
    std::vector<dns::Record> records;
    std::string error;
    if (!ReadAnswers(msg, *len, &records, &error) || !stream.Take(records, &error))
      return Error(o, absl::StrCat(kind, " message ", messages, ": ", error));
    stream.EndOfMessage();
  }
  if (session) {
    if (auto s = session->Finish(); !s.ok()) return Error(o, absl::StrCat(kind, ": TSIG: ", s.message()));
  }
  TransferResult result = std::move(stream.result());
  result.messages = messages;
  result.bytes = bytes;
  return result;
}

}  // namespace tandem::control

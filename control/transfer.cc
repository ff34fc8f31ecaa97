// SOA queries and AXFR/IXFR streams.
#include "control/transfer.h"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
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

// Sets *pos past the question section of a message.
bool SkipQuestions(const uint8_t* msg, size_t len, size_t* pos, std::string* error) {
  *pos = dns::kHeaderSize;
  for (int i = 0; i < dns::header::Qdcount(msg); ++i) {
    if (dns::SkipName(msg, len, *pos, pos) != dns::NameError::kOk || *pos + 4 > len) {
      *error = "malformed question";
      return false;
    }
    *pos += 4;
  }
  return true;
}

// Parses the answer section of a message (the question is skipped).
bool ReadAnswers(const uint8_t* msg, size_t len, std::vector<dns::Record>* out, std::string* error) {
  size_t pos;
  if (!SkipQuestions(msg, len, &pos, error)) return false;
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

using View = RecordArena::View;

// Follows the records of an AXFR or IXFR response stream (RFC 5936 2.2, RFC 1995 4).
// Records come as views into the message being read: a whole zone's go to the sink (or
// the result's arena) without a string of their own; only IXFR differences and the first
// SOA are kept as records.
class Stream {
 public:
  Stream(std::string zone, bool ixfr, std::optional<uint32_t> have, ZoneSink* sink = nullptr)
      : zone_(std::move(zone)), ixfr_(ixfr), have_(have), sink_(sink) {}

  // Takes one record of a message; returns false with *error on a broken sequence.
  bool Take(const View& r, std::string* error) {
    if (done_) {
      *error = "records after the closing SOA";
      return false;
    }
    if (!NameInZone(r.owner, r.owner_len, zone_)) {
      *error = absl::StrCat("out-of-zone record ", dns::NameToText(r.owner));
      return false;
    }
    return Step(r, error);
  }
  bool Take(const dns::Record& r, std::string* error) { return Take(View::Of(r), error); }

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
  bool Step(const View& r, std::string* error) {
    ++count_;
    bool soa = r.type == dns::kTypeSOA;
    if (count_ == 1) {
      first_ = r.ToRecord();
      if (!IsZoneSoa(first_, zone_)) {
        *error = "the stream does not start with the zone's SOA";
        return false;
      }
      result_.serial = SoaSerial(first_);
      return true;
    }
    if (count_ == 2 && ixfr_ && soa && have_) {
      mode_ = kDiffs;
    } else if (count_ == 2) {
      mode_ = kWhole;
      Whole(View::Of(first_));
    }
    if (mode_ == kWhole) {
      if (soa) {
        // The closing SOA equals the first one; names compare without case (a server's
        // compression may spell them differently in different messages).
        dns::Record closing = r.ToRecord();
        if (dns::CanonicalRdata(closing.type, closing.rdata) ==
            dns::CanonicalRdata(first_.type, first_.rdata)) {
          done_ = true;
          return true;
        }
        *error = "a second SOA record inside the zone";
        return false;
      }
      Whole(r);
      return true;
    }
    return DiffStep(r.ToRecord(), error);
  }

  void Whole(const View& r) {
    if (sink_)
      sink_->Add(r);
    else
      result_.records.Add(r.owner, r.owner_len, r.type, r.rclass, r.ttl, r.rdata, r.rdlen);
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
  ZoneSink* sink_;
  dns::Record first_;
  size_t count_ = 0;
  bool done_ = false;
  TransferResult result_;
};

// Reads the record at msg[*pos] as a view: the owner decompressed into `owner`, the RDATA
// where it lies in the message when its type holds no names (most records of a zone);
// other records through dns::ReadRecord into `scratch`, which also reports every error.
bool ReadView(const uint8_t* msg, size_t len, size_t* pos, int* budget, dns::NameBuf* owner,
              dns::Record* scratch, View* out, std::string* error) {
  size_t p;
  if (dns::SkipName(msg, len, *pos, &p) == dns::NameError::kOk && p + 10 <= len &&
      !dns::HasNames(Get16(msg + p)) &&
      dns::ParseName(msg, len, *pos, owner, &p, budget) == dns::NameError::kOk) {
    uint16_t rdlen = Get16(msg + p + 8);
    if (p + 10 + rdlen <= len) {
      *out = View{
          owner->data,  owner->length, Get16(msg + p), Get16(msg + p + 2), dns::Get32(msg + p + 4),
          msg + p + 10, rdlen};
      *pos = p + 10 + rdlen;
      return true;
    }
  }
  if (!dns::ReadRecord(msg, len, pos, budget, scratch, error)) return false;
  *out = View::Of(*scratch);
  return true;
}

// Feeds the answer section of one transfer message to the stream, record by record (the
// question is skipped). `scratch` is reused for the records read as dns::Records.
bool ReadStream(const uint8_t* msg, size_t len, dns::Record* scratch, Stream* stream,
                std::string* error) {
  size_t pos;
  if (!SkipQuestions(msg, len, &pos, error)) return false;
  int budget = 4096;
  dns::NameBuf owner;
  View view;
  for (int i = 0; i < dns::header::Ancount(msg); ++i) {
    if (!ReadView(msg, len, &pos, &budget, &owner, scratch, &view, error) ||
        !stream->Take(view, error))
      return false;
  }
  return true;
}

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
  // From what the socket gave and was not taken yet: a transfer's messages come in reads
  // of up to 256 KiB, not in two reads (and two polls) each.
  absl::Status ReadExactly(uint8_t* buf, size_t n, size_t* got) {
    *got = 0;
    while (*got < n) {
      if (in_begin_ == in_end_)
        if (auto s = Fill(); !s.ok()) return s;
      size_t k = std::min(n - *got, in_end_ - in_begin_);
      std::memcpy(buf + *got, in_.data() + in_begin_, k);
      in_begin_ += k;
      *got += k;
    }
    return absl::OkStatus();
  }

  absl::Status Fill() {
    if (in_.empty()) in_.resize(size_t{256} << 10);
    in_begin_ = in_end_ = 0;
    for (;;) {
      ssize_t r = recv(sock_.fd, in_.data(), in_.size(), 0);  // non-blocking: poll only when empty
      if (r > 0) {
        in_end_ = static_cast<size_t>(r);
        return absl::OkStatus();
      }
      if (r == 0) {
        eof_ = true;
        return Error(o_, "connection closed by the server");
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        return Error(o_, absl::StrCat("receive: ", strerror(errno)));
      if (!WaitFor(sock_.fd, POLLIN, absl::Now() + o_.timeout))
        return Error(o_, "receive: timed out");
    }
  }

  const TransferOptions& o_;
  Socket sock_;
  bool eof_ = false;
  std::vector<uint8_t> in_;
  size_t in_begin_ = 0, in_end_ = 0;
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

void RecordArena::Encode(uint8_t* p, const uint8_t* owner, size_t owner_len, uint16_t type,
                         uint16_t rclass, uint32_t ttl, const uint8_t* rdata, uint16_t rdlen) {
  *p++ = static_cast<uint8_t>(owner_len);
  std::memcpy(p, owner, owner_len);
  p += owner_len;
  std::memcpy(p, &type, 2);
  std::memcpy(p + 2, &rclass, 2);
  std::memcpy(p + 4, &ttl, 4);
  std::memcpy(p + 8, &rdlen, 2);
  std::memcpy(p + 10, rdata, rdlen);
}

void RecordArena::Add(const uint8_t* owner, size_t owner_len, uint16_t type, uint16_t rclass,
                      uint32_t ttl, const uint8_t* rdata, uint16_t rdlen) {
  size_t need = EncodedSize(owner_len, rdlen);
  if (blocks_.empty() || kBlockSize - blocks_.back().used < need)
    blocks_.push_back({std::unique_ptr<uint8_t[]>(new uint8_t[kBlockSize]), 0});
  Block& b = blocks_.back();
  Encode(b.data.get() + b.used, owner, owner_len, type, rclass, ttl, rdata, rdlen);
  b.used += need;
  ++count_;
}

void RecordArena::Add(const dns::Record& r) {
  Add(reinterpret_cast<const uint8_t*>(r.owner.data()), r.owner.size(), r.type, r.rclass, r.ttl,
      reinterpret_cast<const uint8_t*>(r.rdata.data()), static_cast<uint16_t>(r.rdata.size()));
}

size_t RecordArena::bytes() const {
  size_t n = 0;
  for (const Block& b : blocks_) n += b.used;
  return n;
}

RecordArena::View RecordArena::Iterator::operator*() const {
  const uint8_t* p = arena_->blocks_[block_].data.get() + offset_;
  View v;
  v.owner_len = p[0];
  v.owner = p + 1;
  p += 1 + v.owner_len;
  std::memcpy(&v.type, p, 2);
  std::memcpy(&v.rclass, p + 2, 2);
  std::memcpy(&v.ttl, p + 4, 4);
  std::memcpy(&v.rdlen, p + 8, 2);
  v.rdata = p + 10;
  return v;
}

RecordArena::Iterator& RecordArena::Iterator::operator++() {
  const Block& b = arena_->blocks_[block_];
  const uint8_t* p = b.data.get() + offset_;
  uint16_t rdlen;
  std::memcpy(&rdlen, p + 1 + p[0] + 8, 2);
  offset_ += 1 + p[0] + 10 + rdlen;
  if (offset_ >= b.used) {
    ++block_;
    offset_ = 0;
  }
  return *this;
}

RecordArena::View RecordArena::View::Of(const dns::Record& r) {
  return View{reinterpret_cast<const uint8_t*>(r.owner.data()),
              static_cast<uint8_t>(r.owner.size()),
              r.type,
              r.rclass,
              r.ttl,
              reinterpret_cast<const uint8_t*>(r.rdata.data()),
              static_cast<uint16_t>(r.rdata.size())};
}

bool NameInZone(const uint8_t* name, size_t len, const std::string& apex) {
  size_t pos = 0;
  while (pos < len && len - pos > apex.size()) {
    if (name[pos] == 0) return false;
    pos += 1 + name[pos];
  }
  if (pos > len || len - pos != apex.size()) return false;
  // Most names spell the apex as the zone is spelled: bytes first, case only if they differ.
  return std::memcmp(name + pos, apex.data(), apex.size()) == 0 ||
         dns::NameEqual(name + pos, reinterpret_cast<const uint8_t*>(apex.data()));
}

dns::Record RecordArena::View::ToRecord() const {
  return dns::Record{std::string(reinterpret_cast<const char*>(owner), owner_len), type, rclass,
                     ttl, std::string(reinterpret_cast<const char*>(rdata), rdlen)};
}

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

absl::StatusOr<TransferResult> Transfer(const TransferOptions& o,
                                        const std::optional<dns::Record>& have, ZoneSink* sink) {
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
  Stream stream(o.zone, ixfr, have ? std::optional<uint32_t>(SoaSerial(*have)) : std::nullopt,
                sink);
  size_t messages = 0, bytes = 0;
  // One message buffer and one record, reused: after the first messages their strings
  // have the capacity they need, so reading a record allocates nothing.
  std::string m;
  dns::Record record;
  while (!stream.done()) {
    bool closed;
    if (auto s = x.Receive(&m, &closed); !s.ok())
      return Error(o, absl::StrCat(kind, " cut after ", stream.count(), " records in ", messages, " messages: ", s.message()));
    ++messages;
    bytes += m.size() + 2;
    if (bytes > o.max_bytes) return Error(o, absl::StrCat(kind, " larger than the limit of ", o.max_bytes, " bytes"));
    auto len = Unsign(session.get(), &m);
    if (!len.ok()) return Error(o, absl::StrCat(kind, " message ", messages, ": TSIG: ", len.status().message()));
    const auto* msg = reinterpret_cast<const uint8_t*>(m.data());
    if (std::string e = CheckHeader(msg, *len, id); !e.empty())
      return Error(o, absl::StrCat(kind, ": ", e));
    std::string error;
    if (!ReadStream(msg, *len, &record, &stream, &error))
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

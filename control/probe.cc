// SOA probe loop.
#include "control/probe.h"

#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "absl/strings/str_cat.h"
#include "control/transfer.h"
#include "dataplane/dns/name.h"
#include "dataplane/dns/record.h"
#include "dataplane/dns/rrtype.h"
#include "dataplane/dns/wire.h"

namespace tandem::control {

struct Prober::Slot {
  ProbeTarget target;
  int fd = -1;
  bool in_flight = false;
  uint16_t id = 0;
  absl::Time sent;
  absl::Time next;  // when the next probe is due
  std::unique_ptr<tsig::ClientSession> session;
};

namespace {

const char* RcodeText(int rcode) {
  static const char* kNames[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
                                 "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE"};
  return rcode >= 0 && rcode <= 10 ? kNames[rcode] : "other";
}

}  // namespace

Prober::Prober(Callback callback) : callback_(std::move(callback)) {}

Prober::~Prober() {
  Stop();
  for (auto& s : slots_)
    if (s->fd >= 0) close(s->fd);
}

size_t Prober::Add(ProbeTarget target) {
  auto s = std::make_unique<Slot>();
  s->target = std::move(target);
  s->next = absl::InfinitePast();
  slots_.push_back(std::move(s));
  return slots_.size() - 1;
}

void Prober::Start() {
  if (slots_.empty() || thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
}

void Prober::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void Prober::Send(Slot& s, absl::Time now) {
  if (s.fd < 0) {
    s.fd = socket(s.target.endpoint.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s.fd >= 0 &&
        connect(s.fd, reinterpret_cast<const sockaddr*>(&s.target.endpoint.addr), s.target.endpoint.len) != 0) {
      close(s.fd);
      s.fd = -1;
    }
  }
  s.id = static_cast<uint16_t>(arc4random());
  std::string q(12, '\0');
  auto* h = reinterpret_cast<uint8_t*>(q.data());
  dns::Put16(h, s.id);
  dns::Put16(h + 4, 1);
  q += s.target.zone;
  q.append("\x00\x06\x00\x01", 4);
  s.session.reset();
  if (s.target.key) {
    s.session = std::make_unique<tsig::ClientSession>(*s.target.key);
    (void)s.session->SignRequest(&q, static_cast<uint64_t>(time(nullptr)));
  }
  s.sent = now;
  s.in_flight = true;
  s.next = now + s.target.health.interval;
  if (s.fd < 0 || send(s.fd, q.data(), q.size(), 0) < 0) s.sent = now - s.target.health.timeout;  // fails at once
}

void Prober::Finish(size_t index, Slot& s, ProbeResult r, absl::Time now) {
  s.in_flight = false;
  r.latency = now - s.sent;
  if (r.ok && r.latency > s.target.health.overload) {
    r.ok = false;
    r.error = absl::StrCat("overloaded: replied in ", absl::FormatDuration(r.latency));
  }
  callback_(index, r);
}

void Prober::Receive(Slot& s, absl::Time now) {
  size_t index = 0;
  while (slots_[index].get() != &s) ++index;
  uint8_t buf[4096];
  ssize_t n = recv(s.fd, buf, sizeof buf, 0);
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return;
    Finish(index, s, {false, {}, 0, absl::StrCat("receive: ", strerror(errno))}, now);  // e.g. port unreachable
    return;
  }
  if (n < 12 || dns::Get16(buf) != s.id || !dns::header::Qr(buf)) return;  // not ours
  size_t len = static_cast<size_t>(n);
  if (s.session) {
    auto l = s.session->VerifyResponse(buf, len, static_cast<uint64_t>(time(nullptr)));
    if (!l.ok()) {
      Finish(index, s, {false, {}, 0, absl::StrCat("TSIG: ", l.status().message())}, now);
      return;
    }
    len = *l;
  }
  if (dns::header::Tc(buf)) {  // rare for an SOA: ask over TCP, bounded by the timeout
    TransferOptions o;
    o.server = s.target.endpoint;
    o.zone = s.target.zone;
    o.key = s.target.key ? &*s.target.key : nullptr;
    o.timeout = s.target.health.timeout;
    auto a = QuerySoa(o);
    ProbeResult r;
    r.ok = a.ok() && a->authoritative;
    r.error = a.ok() ? (r.ok ? "" : "AA not set") : std::string(a.status().message());
    if (a.ok()) r.serial = a->serial;
    Finish(index, s, r, absl::Now());
    return;
  }
  ProbeResult r;
  int rcode = dns::header::Rcode(buf);
  if (rcode != 0) {
    r.error = absl::StrCat("rcode ", RcodeText(rcode));
  } else if (!dns::header::Aa(buf)) {
    r.error = "AA not set";
  } else {
    size_t pos = 12;
    bool found = false;
    if (dns::header::Qdcount(buf) == 1 && dns::SkipName(buf, len, pos, &pos) == dns::NameError::kOk) {
      pos += 4;
      int budget = 32;
      for (int i = 0; i < dns::header::Ancount(buf) && pos <= len; ++i) {
        dns::Record rec;
        std::string error;
        if (!dns::ReadRecord(buf, len, &pos, &budget, &rec, &error)) break;
        if (rec.type == dns::kTypeSOA && rec.rdata.size() >= 22 &&
            dns::NameEqual(reinterpret_cast<const uint8_t*>(rec.owner.data()),
                           reinterpret_cast<const uint8_t*>(s.target.zone.data()))) {
          r.serial = dns::Get32(reinterpret_cast<const uint8_t*>(rec.rdata.data()) + rec.rdata.size() - 20);
          found = true;
          break;
        }
      }
    }
    r.ok = found;
    if (!found) r.error = "no SOA in the answer";
  }
  Finish(index, s, r, now);
}

void Prober::Run() {
  std::vector<pollfd> fds;
  std::vector<Slot*> polled;
  while (!stop_.load(std::memory_order_relaxed)) {
    absl::Time now = absl::Now();
    absl::Time wake = now + absl::Milliseconds(200);  // Stop is noticed within this
    fds.clear();
    polled.clear();
    for (size_t i = 0; i < slots_.size(); ++i) {
      Slot& s = *slots_[i];
      if (s.in_flight && now - s.sent >= s.target.health.timeout) {
        Finish(i, s, {false, {}, 0, "timeout"}, now);
      }
      if (!s.in_flight && s.next <= now) Send(s, now);
      if (s.in_flight) {
        wake = std::min(wake, s.sent + s.target.health.timeout);
        if (s.fd >= 0) {
          fds.push_back({s.fd, POLLIN, 0});
          polled.push_back(&s);
        }
      } else {
        wake = std::min(wake, s.next);
      }
    }
    int ms = static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(wake - absl::Now())) + 1);
    int rc = poll(fds.data(), fds.size(), ms);
    if (rc <= 0) continue;
    now = absl::Now();
    for (size_t k = 0; k < fds.size(); ++k)
      if (fds[k].revents & (POLLIN | POLLERR)) Receive(*polled[k], now);
  }
}

}  // namespace tandem::control

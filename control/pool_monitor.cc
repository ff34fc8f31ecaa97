// Pool member health check loop.
#include "control/pool_monitor.h"

#include <curl/curl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "dataplane/dns/name.h"
#include "dataplane/dns/wire.h"

namespace tandem::control {

namespace {

constexpr absl::Duration kStopLatency = absl::Milliseconds(200);  // Stop is noticed within this
constexpr size_t kMaxBody = 64 * 1024;
// libcurl times out an http(s) check itself; this is a backstop should it ever not.
constexpr absl::Duration kCurlGrace = absl::Milliseconds(500);

struct Body {
  std::string data;
  bool capped = false;  // more than kMaxBody came: the transfer was cut there on purpose
};

size_t CollectBody(char* p, size_t size, size_t n, void* user) {
  auto* b = static_cast<Body*>(user);
  size_t len = size * n;
  size_t room = kMaxBody - b->data.size();
  if (len > room) {  // returning short makes libcurl end the transfer with CURLE_WRITE_ERROR
    b->data.append(p, room);
    b->capped = true;
    return 0;
  }
  b->data.append(p, len);
  return len;
}

const char* RcodeText(int rcode) {
  static const char* kNames[] = {"NOERROR",  "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
                                 "YXDOMAIN", "YXRRSET", "NXRRSET",  "NOTAUTH",  "NOTZONE"};
  return rcode >= 0 && rcode <= 10 ? kNames[rcode] : "other";
}

std::string RcodeName(int rcode) { return absl::StrCat(RcodeText(rcode), "(", rcode, ")"); }

// "name:port", IPv6 literals bracketed, as URLs and CURLOPT_CONNECT_TO want them.
std::string Authority(const std::string& host, uint16_t port) {
  if (host.find(':') != std::string::npos) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

CheckResult Failed(std::string error) { return {false, {}, std::move(error)}; }

}  // namespace

struct PoolMonitor::Member {
  size_t index = 0;
  MemberCheck check;
  std::string setup_error;  // a check that could not be built fails each time with this
  bool in_flight = false;
  absl::Time started;
  absl::Time next;      // when the next check is due
  absl::Time deadline;  // when the check in flight times out
  int fd = -1;          // tcp, dns: the socket of the check in flight
  std::string query;    // dns: the question, wire form (the ID is set per check)
  uint16_t id = 0;
  CURL* easy = nullptr;  // http(s): one handle, reused by every check of the member
  bool in_multi = false;
  std::string url;
  curl_slist* connect_to = nullptr;
  Body body;
  char curl_error[CURL_ERROR_SIZE] = {};

  ~Member() {
    if (fd >= 0) close(fd);
    if (easy) curl_easy_cleanup(easy);
    curl_slist_free_all(connect_to);
  }
};

namespace {

// The question of a dns check, with a zero ID: header, name, type, class IN.
absl::StatusOr<std::string> BuildQuery(const MemberCheck& c) {
  auto name = dns::NameFromText(c.dns_name);
  if (!name.ok()) return name.status();
  std::string q(dns::kHeaderSize, '\0');
  dns::Put16(reinterpret_cast<uint8_t*>(q.data()) + 4, 1);  // QDCOUNT
  q += *name;
  uint8_t tail[4];
  dns::Put16(tail, c.dns_type);
  dns::Put16(tail + 2, dns::kClassIn);
  q.append(reinterpret_cast<const char*>(tail), sizeof tail);
  return q;
}

// Options of an http(s) check that do not change between checks. Returns an error text.
std::string SetupEasy(CURL* e, const MemberCheck& c, std::string* url, curl_slist** connect_to,
                      Body* body, char* error_buffer, void* owner) {
  const char* scheme = c.kind == MemberCheck::Kind::kHttps ? "https" : "http";
  std::string path = c.path.empty() || c.path[0] != '/' ? "/" + c.path : c.path;
  if (c.host.empty()) {
    *url = absl::StrCat(scheme, "://", c.target.ToString(), path);
  } else {
    // The URL names the host, for the Host header, SNI and the certificate check; the
    // connection goes to the member's address all the same, with no name resolution.
    std::string authority = Authority(c.host, c.target.port());
    *url = absl::StrCat(scheme, "://", authority, path);
    *connect_to =
        curl_slist_append(nullptr, absl::StrCat(authority, ":", c.target.ToString()).c_str());
    if (!*connect_to) return "out of memory";
  }
  CURLcode rc = CURLE_OK;
  auto set = [&](CURLoption o, auto v) {
    if (rc == CURLE_OK) rc = curl_easy_setopt(e, o, v);
  };
  set(CURLOPT_URL, url->c_str());
  set(CURLOPT_PRIVATE, owner);
  set(CURLOPT_ERRORBUFFER, error_buffer);
  set(CURLOPT_WRITEFUNCTION, &CollectBody);
  set(CURLOPT_WRITEDATA, static_cast<void*>(body));
  // 0 would mean no timeout at all to libcurl.
  set(CURLOPT_TIMEOUT_MS,
      static_cast<long>(std::max<int64_t>(1, absl::ToInt64Milliseconds(c.timeout))));
  set(CURLOPT_NOSIGNAL, 1L);
  set(CURLOPT_PROXY, "");  // never through a proxy from the environment: check the member
  set(CURLOPT_PROTOCOLS_STR, "http,https");
  set(CURLOPT_FOLLOWLOCATION, 0L);
  // A fresh connection per check: a kept-alive one would hide a member that stopped
  // accepting.
  set(CURLOPT_FRESH_CONNECT, 1L);
  set(CURLOPT_FORBID_REUSE, 1L);
  set(CURLOPT_SSL_VERIFYPEER, 1L);
  set(CURLOPT_SSL_VERIFYHOST, 2L);
  if (!c.ca_file.empty()) set(CURLOPT_CAINFO, c.ca_file.c_str());
  if (*connect_to) set(CURLOPT_CONNECT_TO, *connect_to);
  set(CURLOPT_USERAGENT, "tandem-pool-monitor/" TANDEM_VERSION);
  if (rc != CURLE_OK) return absl::StrCat("http setup: ", curl_easy_strerror(rc));
  return "";
}

}  // namespace

PoolMonitor::PoolMonitor(Callback callback) : callback_(std::move(callback)) {
  static std::once_flag global;  // curl_global_init is not safe against other threads
  std::call_once(global, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  multi_ = curl_multi_init();
}

PoolMonitor::~PoolMonitor() {
  Stop();
  members_.clear();  // the easy handles are out of the multi handle by now
  if (multi_) curl_multi_cleanup(multi_);
}

size_t PoolMonitor::Add(MemberCheck check) {
  auto m = std::make_unique<Member>();
  m->index = members_.size();
  m->check = std::move(check);
  const MemberCheck& c = m->check;
  if (c.kind == MemberCheck::Kind::kDns) {
    auto q = BuildQuery(c);
    if (q.ok())
      m->query = std::move(*q);
    else
      m->setup_error = absl::StrCat("query name: ", q.status().message());
  } else if (c.kind == MemberCheck::Kind::kHttp || c.kind == MemberCheck::Kind::kHttps) {
    m->easy = multi_ ? curl_easy_init() : nullptr;
    if (!m->easy)
      m->setup_error = "http setup: libcurl failed to initialise";
    else
      m->setup_error =
          SetupEasy(m->easy, c, &m->url, &m->connect_to, &m->body, m->curl_error, m.get());
  }
  members_.push_back(std::move(m));
  return members_.size() - 1;
}

void PoolMonitor::Start() {
  if (thread_.joinable()) return;
  stop_ = false;
  for (auto& m : members_) m->next = absl::InfinitePast();
  thread_ = std::thread([this] { Run(); });
}

void PoolMonitor::Stop() {
  stop_ = true;
  if (multi_) curl_multi_wakeup(multi_);
  if (thread_.joinable()) thread_.join();
}

void PoolMonitor::Begin(Member& m, absl::Time now) {
  m.in_flight = true;
  m.started = now;
  m.next = now + m.check.interval;
  m.deadline = now + m.check.timeout;
  std::optional<CheckResult> verdict;
  if (!m.setup_error.empty()) {
    verdict = Failed(m.setup_error);
  } else {
    switch (m.check.kind) {
      case MemberCheck::Kind::kTcp:
        verdict = BeginTcp(m);
        break;
      case MemberCheck::Kind::kDns:
        verdict = BeginDns(m);
        break;
      case MemberCheck::Kind::kHttp:
      case MemberCheck::Kind::kHttps:
        m.deadline += kCurlGrace;
        verdict = BeginHttp(m);
        break;
      case MemberCheck::Kind::kNone:
        verdict = CheckResult{true, {}, ""};
        break;
    }
  }
  if (verdict) Finish(m, std::move(*verdict), now);
}

std::optional<CheckResult> PoolMonitor::BeginTcp(Member& m) {
  const dataplane::Endpoint& t = m.check.target;
  m.fd = socket(t.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (m.fd < 0) return Failed(absl::StrCat("socket: ", strerror(errno)));
  if (connect(m.fd, reinterpret_cast<const sockaddr*>(&t.addr), t.len) == 0)
    return CheckResult{true, {}, ""};
  if (errno == EINPROGRESS) return std::nullopt;
  return Failed(absl::StrCat("connect: ", strerror(errno)));
}

std::optional<CheckResult> PoolMonitor::BeginDns(Member& m) {
  const dataplane::Endpoint& t = m.check.target;
  // A new socket, so a new source port, per check: a late answer to an earlier check
  // cannot be taken for this one.
  m.fd = socket(t.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (m.fd < 0) return Failed(absl::StrCat("socket: ", strerror(errno)));
  if (connect(m.fd, reinterpret_cast<const sockaddr*>(&t.addr), t.len) != 0)
    return Failed(absl::StrCat("connect: ", strerror(errno)));
  m.id = static_cast<uint16_t>(arc4random());
  dns::Put16(reinterpret_cast<uint8_t*>(m.query.data()), m.id);
  if (send(m.fd, m.query.data(), m.query.size(), 0) < 0)
    return Failed(absl::StrCat("send: ", strerror(errno)));
  return std::nullopt;
}

std::optional<CheckResult> PoolMonitor::BeginHttp(Member& m) {
  m.body = Body{};
  m.curl_error[0] = '\0';
  CURLMcode rc = curl_multi_add_handle(multi_, m.easy);
  if (rc != CURLM_OK) return Failed(absl::StrCat("http: ", curl_multi_strerror(rc)));
  m.in_multi = true;
  return std::nullopt;
}

void PoolMonitor::OnReady(Member& m, short revents, absl::Time now) {
  if (m.check.kind == MemberCheck::Kind::kTcp) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(m.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err == 0 && !(revents & POLLOUT)) return;
    Finish(m,
           err == 0 ? CheckResult{true, {}, ""} : Failed(absl::StrCat("connect: ", strerror(err))),
           now);
    return;
  }
  uint8_t buf[512];  // only the header matters; a longer answer is cut, which is fine
  for (;;) {
    ssize_t n = recv(m.fd, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      Finish(m, Failed(absl::StrCat("receive: ", strerror(errno))), now);  // port unreachable
      return;
    }
    if (n < static_cast<ssize_t>(dns::kHeaderSize) || dns::header::Id(buf) != m.id ||
        !dns::header::Qr(buf))
      continue;  // not the answer to this check
    int rcode = dns::header::Rcode(buf);
    Finish(m,
           rcode == m.check.dns_rcode ? CheckResult{true, {}, ""}
                                      : Failed(absl::StrCat("rcode ", RcodeName(rcode), ", want ",
                                                            RcodeName(m.check.dns_rcode))),
           now);
    return;
  }
}

void PoolMonitor::OnCurlDone(void* easy, int code, absl::Time now) {
  char* owner = nullptr;
  curl_easy_getinfo(easy, CURLINFO_PRIVATE, &owner);
  Member& m = *reinterpret_cast<Member*>(owner);
  const MemberCheck& c = m.check;
  if (code == CURLE_OPERATION_TIMEDOUT) {
    Finish(m, Failed("timeout"), now);
    return;
  }
  if (code != CURLE_OK && !(code == CURLE_WRITE_ERROR && m.body.capped)) {
    const char* why =
        m.curl_error[0] ? m.curl_error : curl_easy_strerror(static_cast<CURLcode>(code));
    Finish(m, Failed(absl::StrCat(c.kind == MemberCheck::Kind::kHttps ? "https: " : "http: ", why)),
           now);
    return;
  }
  long status = 0;
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
  if (std::find(c.expect.begin(), c.expect.end(), status) == c.expect.end()) {
    Finish(m, Failed(absl::StrCat("status ", status)), now);
  } else if (!c.body.empty() && m.body.data.find(c.body) == std::string::npos) {
    Finish(m, Failed(absl::StrCat("body lacks \"", c.body, "\"")), now);
  } else {
    Finish(m, {true, {}, ""}, now);
  }
}

void PoolMonitor::Drop(Member& m) {
  if (m.fd >= 0) close(m.fd);
  m.fd = -1;
  if (m.in_multi) curl_multi_remove_handle(multi_, m.easy);
  m.in_multi = false;
  m.in_flight = false;
}

void PoolMonitor::Finish(Member& m, CheckResult r, absl::Time now) {
  Drop(m);
  r.latency = now - m.started;
  callback_(m.index, r);
}

void PoolMonitor::Run() {
  std::vector<pollfd> ours;  // the sockets of tcp and dns checks in flight
  std::vector<Member*> owners;
  std::vector<curl_waitfd> extra;
  while (!stop_.load(std::memory_order_relaxed)) {
    absl::Time now = absl::Now();
    absl::Time wake = now + kStopLatency;
    ours.clear();
    owners.clear();
    for (auto& p : members_) {
      Member& m = *p;
      if (m.check.kind == MemberCheck::Kind::kNone) continue;
      if (m.in_flight && now >= m.deadline) Finish(m, Failed("timeout"), now);
      if (!m.in_flight && m.next <= now) Begin(m, now);
      if (!m.in_flight) {
        wake = std::min(wake, m.next);
        continue;
      }
      wake = std::min(wake, m.deadline);  // libcurl's own timers shorten the wait further
      if (m.fd >= 0) {
        short events = m.check.kind == MemberCheck::Kind::kTcp ? POLLOUT : POLLIN;
        ours.push_back({m.fd, events, 0});
        owners.push_back(&m);
      }
    }
    extra.clear();
    for (const pollfd& p : ours)
      extra.push_back(
          {p.fd, static_cast<short>(p.events == POLLOUT ? CURL_WAIT_POLLOUT : CURL_WAIT_POLLIN),
           0});
    int ms =
        static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(wake - absl::Now())) + 1);
    curl_multi_poll(multi_, extra.data(), static_cast<unsigned>(extra.size()), ms, nullptr);
    now = absl::Now();
    // curl_multi_poll reports only POLLIN/POLLOUT/POLLPRI of extra sockets; a failed connect
    // may show as POLLERR alone, so look at our sockets again ourselves.
    if (!ours.empty() && poll(ours.data(), ours.size(), 0) > 0) {
      for (size_t k = 0; k < ours.size(); ++k)
        if (ours[k].revents && owners[k]->in_flight) OnReady(*owners[k], ours[k].revents, now);
    }
    int running = 0;
    curl_multi_perform(multi_, &running);
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi_, &queued))
      if (msg->msg == CURLMSG_DONE) OnCurlDone(msg->easy_handle, msg->data.result, now);
  }
  for (auto& m : members_)
    if (m->in_flight) Drop(*m);
}

}  // namespace tandem::control

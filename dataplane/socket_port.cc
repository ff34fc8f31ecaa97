// The socket port (see socket_port.h): binding the listen addresses, the UDP burst loop
// (one per worker socket) and the TCP event loop (one for every connection).
#include "dataplane/socket_port.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <exception>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "dataplane/dns/message.h"
#include "dataplane/dns/name.h"
#include "dataplane/handler.h"
#include "dataplane/publisher.h"
#include "dataplane/rrl.h"

namespace tandem::dataplane {
namespace socket_port_internal {

constexpr int kBurst = 32;               // datagrams per recvmmsg, events per epoll_wait
constexpr int kWaitMs = 100;             // receive and epoll timeout: how soon Stop is seen
constexpr size_t kTcpFrame = 2 + 65535;  // length prefix + the largest message
constexpr size_t kMinUdpBuffer = 4096;   // queries up to this size are read whole
constexpr size_t kControlSpace = CMSG_SPACE(sizeof(in6_pktinfo));
constexpr int kUdpReceiveBuffer = 4 << 20;  // bytes per UDP worker socket
// UDP answers over IPv4 carry DF when the payload cap keeps them within this (DNS Flag
// Day 2020's 1232 octets: 1260 with the IPv4 and UDP headers, below any usual MTU).
constexpr uint16_t kDontFragmentPayload = 1232;
constexpr int kBindAttempts = 16;  // port 0: tries for a port free for TCP and UDP
constexpr int kReadsPerEvent = 8;  // so one busy connection cannot starve the others
constexpr uint64_t kListenerTag = 1ull << 63;
static_assert(kControlSpace >= CMSG_SPACE(sizeof(in_pktinfo)));

using Clock = std::chrono::steady_clock;

// An owned file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~Fd() { Reset(); }
  int get() const { return fd_; }
  int Release() { return std::exchange(fd_, -1); }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

struct Listener {
  Endpoint bound;
  bool wildcard = false;  // 0.0.0.0 or ::: replies need their source set from PKTINFO
  Fd tcp;
  std::vector<Fd> udp;  // one per worker, one SO_REUSEPORT group
};

namespace {

// A status from errno, naming the listen address and the failed step.
absl::Status Errno(const std::string& where, const char* step) {
  int error = errno;
  return absl::ErrnoToStatus(error, absl::StrCat(where, ": ", step));
}

int SetInt(int fd, int level, int name, int value) {
  return setsockopt(fd, level, name, &value, sizeof value);
}

const sockaddr* Sockaddr(const Endpoint& ep) { return reinterpret_cast<const sockaddr*>(&ep.addr); }

bool IsWildcard(const Endpoint& ep) {
  if (ep.family() == AF_INET)
    return reinterpret_cast<const sockaddr_in*>(&ep.addr)->sin_addr.s_addr == htonl(INADDR_ANY);
  return IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6*>(&ep.addr)->sin6_addr);
}

bool WouldBlock() { return errno == EAGAIN || errno == EWOULDBLOCK; }

void NameThread(const char* name) { pthread_setname_np(pthread_self(), name); }

// A socket of `type` for the endpoint's family; IPv6 sockets take IPv6 only.
absl::StatusOr<Fd> OpenSocket(const Endpoint& ep, int type, const std::string& where) {
  Fd fd(socket(ep.family(), type | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return Errno(where, "socket");
  if (ep.family() == AF_INET6 && SetInt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, 1) < 0)
    return Errno(where, "IPV6_V6ONLY");
  return fd;
}

// The TCP listener. It has no SO_REUSEPORT, so a second server on the same address fails
// here instead of silently sharing the port. `bound` receives the address with its port.
absl::StatusOr<Fd> BindTcp(const Endpoint& ep, const std::string& where, Endpoint* bound) {
  absl::StatusOr<Fd> fd = OpenSocket(ep, SOCK_STREAM | SOCK_NONBLOCK, where);
  if (!fd.ok()) return fd;
  int s = fd->get();
  if (SetInt(s, SOL_SOCKET, SO_REUSEADDR, 1) < 0) return Errno(where, "SO_REUSEADDR");
  if (bind(s, Sockaddr(ep), ep.len) < 0) return Errno(where, "tcp bind");
  if (listen(s, SOMAXCONN) < 0) return Errno(where, "listen");
  bound->len = sizeof bound->addr;
  if (getsockname(s, reinterpret_cast<sockaddr*>(&bound->addr), &bound->len) < 0)
    return Errno(where, "getsockname");
  return fd;
}

// One UDP worker socket. `port_taken` tells a port clash from other failures.
absl::StatusOr<Fd> BindUdp(const Endpoint& ep, bool wildcard, bool dont_fragment,
                           const std::string& where, bool* port_taken) {
  absl::StatusOr<Fd> fd = OpenSocket(ep, SOCK_DGRAM, where);
  if (!fd.ok()) return fd;
  int s = fd->get();
  if (SetInt(s, SOL_SOCKET, SO_REUSEPORT, 1) < 0) return Errno(where, "SO_REUSEPORT");
  timeval wait{0, kWaitMs * 1000};
  if (setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait) < 0)
    return Errno(where, "SO_RCVTIMEO");
  // A burst of queries waits in the receive buffer while the worker answers the previous
  // one: ask for more than the kernel default (212 KB). Past net.core.rmem_max only root
  // gets it (SO_RCVBUFFORCE); otherwise the default stays, which is not an error.
  if (SetInt(s, SOL_SOCKET, SO_RCVBUFFORCE, kUdpReceiveBuffer) < 0)
    SetInt(s, SOL_SOCKET, SO_RCVBUF, kUdpReceiveBuffer);
  // Answers that always fit an Ethernet frame leave with DF set, as the poll-mode path
  // sends them (DNS Flag Day 2020: no fragments), whatever path MTU an ICMP message claims
  // (PROBE, not DO). The kernel then also skips choosing an IP identification per datagram
  // (a hash and a shared atomic), about a tenth of a worker's time on loopback.
  if (dont_fragment && ep.family() == AF_INET &&
      SetInt(s, IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_PROBE) < 0)
    return Errno(where, "IP_MTU_DISCOVER");
  if (wildcard && ep.family() == AF_INET && SetInt(s, IPPROTO_IP, IP_PKTINFO, 1) < 0)
    return Errno(where, "IP_PKTINFO");
  if (wildcard && ep.family() == AF_INET6 && SetInt(s, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1) < 0)
    return Errno(where, "IPV6_RECVPKTINFO");
  if (bind(s, Sockaddr(ep), ep.len) < 0) {
    *port_taken = errno == EADDRINUSE;
    return Errno(where, "udp bind");
  }
  return fd;
}

absl::Status BindUdpGroup(Listener& listener, int workers, bool dont_fragment,
                          const std::string& where, bool* port_taken) {
  for (int i = 0; i < workers; ++i) {
    absl::StatusOr<Fd> fd = BindUdp(listener.bound, listener.wildcard, dont_fragment, where, port_taken);
    if (!fd.ok()) return fd.status();
    listener.udp.push_back(*std::move(fd));
  }
  return absl::OkStatus();
}

// Binds the TCP listener, then the UDP sockets on the same port. With port 0 the kernel
// picks the TCP port and the UDP group may find it taken: then it tries another.
absl::StatusOr<std::unique_ptr<Listener>> BindListener(const Endpoint& requested, int workers,
                                                       bool dont_fragment, const std::string& where) {
  for (int attempt = 1;; ++attempt) {
    auto listener = std::make_unique<Listener>();
    listener->wildcard = IsWildcard(requested);
    absl::StatusOr<Fd> tcp = BindTcp(requested, where, &listener->bound);
    if (!tcp.ok()) return tcp.status();
    listener->tcp = *std::move(tcp);
    bool port_taken = false;
    absl::Status udp = BindUdpGroup(*listener, workers, dont_fragment, where, &port_taken);
    if (udp.ok()) return listener;
    if (!port_taken || requested.port() != 0 || attempt == kBindAttempts) return udp;
  }
}

int UdpWorkers(const SocketPortOptions& options) { return options.udp ? options.workers : 0; }

absl::Status Validate(const SocketPortOptions& options) {
  if (options.listen.empty()) return absl::InvalidArgumentError("socket port: no listen address");
  if (options.workers < 1 || options.workers > 1024)
    return absl::InvalidArgumentError(
        absl::StrCat("socket port: workers must be 1..1024, not ", options.workers));
  if (options.tcp_max_connections < 1)
    return absl::InvalidArgumentError("socket port: tcp_max_connections must be positive");
  if (options.tcp_idle_timeout <= absl::ZeroDuration())
    return absl::InvalidArgumentError("socket port: tcp_idle_timeout must be positive");
  return absl::OkStatus();
}

}  // namespace

// ---- UDP ----------------------------------------------------------------------------

struct UdpContext {
  int fd;
  bool wildcard;
  unsigned reader;
  const QueryHandler* handler;
  SnapshotPublisher* publisher;
  WorkerCounters* counters;
  const std::atomic<bool>* stopping;
  const RrlOptions* rrl;
  uint32_t coalesce_us;  // SocketPortOptions::udp_coalesce_us
};

// One UDP worker: receives bursts on its socket, answers them together in place in their
// slots' buffers (QueryHandler::AnswerBurst) and sends the answers in one sendmmsg. Everything is allocated up front.
class UdpWorker {
 public:
  explicit UdpWorker(const UdpContext& context);
  void Run();

 private:
  struct Slot {
    sockaddr_storage peer;
    iovec rx_iov;
    iovec tx_iov;
    alignas(cmsghdr) uint8_t rx_control[kControlSpace];
    alignas(cmsghdr) uint8_t tx_control[kControlSpace];
  };

  int Receive(bool coalesce);
  int AnswerBurst(int received, const zone::Snapshot* snapshot);
  void SetReplySource(Slot& slot, const msghdr& rx, msghdr& tx);
  void SendAll(int count);
  size_t Limit(const sockaddr_storage& peer, uint8_t* response, size_t len);

  UdpContext ctx_;
  WorkerCounters& counters_;
  RateLimiter rrl_;
  unsigned reader_;
  size_t buffer_size_;
  std::unique_ptr<uint8_t[]> buffers_;
  Slot slots_[kBurst];
  mmsghdr rx_[kBurst];
  mmsghdr tx_[kBurst];
};

UdpWorker::UdpWorker(const UdpContext& context)
    : ctx_(context),
      counters_(*context.counters),
      rrl_(*context.rrl),
      reader_(context.reader),
      buffer_size_(std::max<size_t>(kMinUdpBuffer, context.handler->options().udp_max_payload)),
      buffers_(std::make_unique_for_overwrite<uint8_t[]>(buffer_size_ * kBurst)) {
  std::memset(slots_, 0, sizeof slots_);
  std::memset(rx_, 0, sizeof rx_);
  std::memset(tx_, 0, sizeof tx_);
  for (int i = 0; i < kBurst; ++i) {
    Slot& slot = slots_[i];
    slot.rx_iov = {buffers_.get() + i * buffer_size_, buffer_size_};
    msghdr& h = rx_[i].msg_hdr;
    h.msg_name = &slot.peer;
    h.msg_iov = &slot.rx_iov;
    h.msg_iovlen = 1;
    h.msg_control = ctx_.wildcard ? slot.rx_control : nullptr;
  }
}

void UdpWorker::Run() {
  NameThread("tandem-udp");
  SnapshotPublisher& publisher = *ctx_.publisher;
  publisher.Online(reader_);
  const bool coalesce = ctx_.coalesce_us > 0;
  if (coalesce) prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);  // wake on time, not 50 µs late
  int received = 0;
  int64_t gap = kStreamGapNs, last_return = 0;  // when the last receive returned
  while (!ctx_.stopping->load(std::memory_order_relaxed)) {
    received = Receive(coalesce && WaitBeforeReceive(received, gap));
    if (coalesce) {  // the vDSO clock: no system call
      timespec now;
      clock_gettime(CLOCK_MONOTONIC, &now);
      int64_t t = static_cast<int64_t>(now.tv_sec) * 1000000000 + now.tv_nsec;
      gap = t - last_return;
      last_return = t;
    }
    if (received > 0) SendAll(AnswerBurst(received, publisher.Current()));
    publisher.Quiescent(reader_);
  }
  publisher.Offline(reader_);
}

// Blocks (offline, so that Publish need not wait for us) for up to kWaitMs; with
// `coalesce`, first sleeps for the configured time.
int UdpWorker::Receive(bool coalesce) {
  for (mmsghdr& m : rx_) {
    m.msg_hdr.msg_namelen = sizeof(sockaddr_storage);
    m.msg_hdr.msg_controllen = ctx_.wildcard ? kControlSpace : 0;
  }
  ctx_.publisher->Offline(reader_);
  if (coalesce) {
    timespec wait{0, static_cast<long>(ctx_.coalesce_us) * 1000};
    nanosleep(&wait, nullptr);
    ++counters_.udp_waits;
  }
  int received = recvmmsg(ctx_.fd, rx_, kBurst, MSG_WAITFORONE, nullptr);
  ctx_.publisher->Online(reader_);
  if (received < 0) {
    if (!WouldBlock() && errno != EINTR) ++counters_.rx_errors;
    return 0;
  }
  counters_.rx_packets += received;
  return received;
}

// Answers the received datagrams in place; returns how many tx_ messages are filled.
int UdpWorker::AnswerBurst(int received, const zone::Snapshot* snapshot) {
  int count = 0;
  if (rrl_.enabled()) {
    timespec now;  // the coarse clock is read from the vDSO: no system call
    clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
    rrl_.SetNow(static_cast<uint64_t>(now.tv_sec) * 1000 + static_cast<uint64_t>(now.tv_nsec) / 1000000);
  }
  Exchange exchanges[kBurst];
  int slot_of[kBurst];  // the slot of each exchange
  int nx = 0;
  for (int i = 0; i < received; ++i) {
    if (rx_[i].msg_hdr.msg_flags & MSG_TRUNC) {  // larger than the buffer: not a query we can answer
      ++counters_.rx_errors;
      continue;
    }
    Slot& slot = slots_[i];
    auto* buffer = static_cast<uint8_t*>(slot.rx_iov.iov_base);
    exchanges[nx] = {buffer, rx_[i].msg_len, buffer, static_cast<uint32_t>(buffer_size_),
                     Transport::kUdp, reinterpret_cast<const sockaddr*>(&slot.peer)};
    slot_of[nx++] = i;
  }
  ctx_.handler->AnswerBurst(snapshot, std::span<Exchange>(exchanges, nx), counters_);
  for (int k = 0; k < nx; ++k) {
    int i = slot_of[k];
    Slot& slot = slots_[i];
    auto* buffer = static_cast<uint8_t*>(slot.rx_iov.iov_base);
    size_t len = exchanges[k].response_len;
    if (len != 0 && rrl_.enabled()) len = Limit(slot.peer, buffer, len);
    if (len == 0) continue;
    slot.tx_iov = {buffer, len};
    msghdr& tx = tx_[count++].msg_hdr;
    tx.msg_name = &slot.peer;
    tx.msg_namelen = rx_[i].msg_hdr.msg_namelen;
    tx.msg_iov = &slot.tx_iov;
    tx.msg_iovlen = 1;
    tx.msg_control = nullptr;
    tx.msg_controllen = 0;
    if (ctx_.wildcard) SetReplySource(slot, rx_[i].msg_hdr, tx);
  }
  return count;
}

// Response rate limiting by the client's address.
size_t UdpWorker::Limit(const sockaddr_storage& peer, uint8_t* response, size_t len) {
  if (peer.ss_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(peer);
    return rrl_.Apply(a.sin6_addr.s6_addr, true, response, len, counters_);
  }
  const auto& a = reinterpret_cast<const sockaddr_in&>(peer);
  return rrl_.Apply(reinterpret_cast<const uint8_t*>(&a.sin_addr), false, response, len, counters_);
}

// On a wildcard socket the reply leaves from the address the query was sent to.
void UdpWorker::SetReplySource(Slot& slot, const msghdr& rx, msghdr& tx) {
  auto& rx_header = const_cast<msghdr&>(rx);  // CMSG_NXTHDR takes a non-const pointer
  for (cmsghdr* c = CMSG_FIRSTHDR(&rx); c != nullptr; c = CMSG_NXTHDR(&rx_header, c)) {
    bool v4 = c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO;
    bool v6 = c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO;
    if (!v4 && !v6) continue;
    size_t size = v4 ? sizeof(in_pktinfo) : sizeof(in6_pktinfo);
    tx.msg_control = slot.tx_control;
    tx.msg_controllen = CMSG_SPACE(size);
    cmsghdr* out = CMSG_FIRSTHDR(&tx);
    out->cmsg_len = CMSG_LEN(size);
    out->cmsg_level = c->cmsg_level;
    out->cmsg_type = c->cmsg_type;
    std::memcpy(CMSG_DATA(out), CMSG_DATA(c), size);  // IPv6 keeps the interface index
    if (v4) {
      in_pktinfo info;
      std::memcpy(&info, CMSG_DATA(out), sizeof info);
      info.ipi_ifindex = 0;  // routing picks the interface, as for a bound socket
      info.ipi_addr = {};    // ipi_spec_dst, the local address, becomes the source
      std::memcpy(CMSG_DATA(out), &info, sizeof info);
    }
    return;
  }
}

// Sends without blocking; a datagram the kernel refuses is counted and skipped.
void UdpWorker::SendAll(int count) {
  int done = 0;
  while (done < count) {
    int sent = sendmmsg(ctx_.fd, tx_ + done, count - done, MSG_DONTWAIT);
    if (sent < 0) {
      if (errno == EINTR) continue;
      ++counters_.rx_errors;
      ++done;
      continue;
    }
    counters_.tx_packets += sent;
    done += sent;
  }
}

// ---- TCP ----------------------------------------------------------------------------

// One client connection: the read buffer holds at most one whole frame; the write buffer
// two, and reading stops while it holds more than one (a client that does not read cannot
// make us buffer more).
struct TcpConnection {
  Fd fd;
  uint32_t slot = 0;
  uint32_t generation = 0;  // tells a stale epoll event from one for the slot's new tenant
  uint32_t events = 0;      // the epoll interest registered now
  bool eof = false;         // the client has shut down its sending side
  bool handed_off = false;  // a zone transfer took the connection over
  sockaddr_storage peer{};  // the client, for NOTIFY access checks
  Clock::time_point last_query;
  size_t in_len = 0;
  size_t out_begin = 0;
  size_t out_end = 0;
  std::unique_ptr<uint8_t[]> in = std::make_unique_for_overwrite<uint8_t[]>(kTcpFrame);
  std::unique_ptr<uint8_t[]> out = std::make_unique_for_overwrite<uint8_t[]>(2 * kTcpFrame);

  size_t pending() const { return out_end - out_begin; }
  bool CanRead() const { return !eof && pending() <= kTcpFrame && in_len < kTcpFrame; }
};

// The TCP event loop: every listener and connection on one epoll set, level-triggered.
class TcpLoop {
 public:
  static absl::StatusOr<std::unique_ptr<TcpLoop>> Create(const std::vector<int>& listeners,
                                                         const SocketPortOptions& options,
                                                         const QueryHandler& handler,
                                                         SnapshotPublisher& publisher,
                                                         WorkerCounters& counters,
                                                         const std::atomic<bool>& stopping);
  void Run(unsigned reader);

 private:
  TcpLoop(const std::vector<int>& listeners, const SocketPortOptions& options,
          const QueryHandler& handler, SnapshotPublisher& publisher, WorkerCounters& counters,
          const std::atomic<bool>& stopping);
  void Dispatch(const epoll_event& event);
  void Accept(int listener);
  int AcceptOverLimit(int listener);
  void Open(Fd fd, const sockaddr_storage& peer);
  void Close(TcpConnection& c);
  bool Service(TcpConnection& c);
  void AnswerFrames(TcpConnection& c);
  bool HandOffTransfer(TcpConnection& c, const uint8_t* query, size_t len);
  bool Flush(TcpConnection& c);
  void UpdateInterest(TcpConnection& c);
  void CloseIdle();

  std::vector<int> listeners_;
  const QueryHandler& handler_;
  SnapshotPublisher& publisher_;
  WorkerCounters& counters_;
  const std::atomic<bool>& stopping_;
  Clock::duration idle_timeout_;
  Clock::duration sweep_interval_;
  Fd epoll_;
  Fd reserve_;  // a spare descriptor, given up to shed connections when out of descriptors
  std::vector<std::unique_ptr<TcpConnection>> slots_;
  std::vector<uint32_t> free_;
  uint32_t generation_ = 0;
  const zone::Snapshot* snapshot_ = nullptr;
  Clock::time_point now_;
  Clock::time_point next_sweep_;
};

TcpLoop::TcpLoop(const std::vector<int>& listeners, const SocketPortOptions& options,
                 const QueryHandler& handler, SnapshotPublisher& publisher,
                 WorkerCounters& counters, const std::atomic<bool>& stopping)
    : listeners_(listeners),
      handler_(handler),
      publisher_(publisher),
      counters_(counters),
      stopping_(stopping),
      idle_timeout_(absl::ToChronoNanoseconds(options.tcp_idle_timeout)),
      sweep_interval_(
          std::min<Clock::duration>(std::chrono::milliseconds(kWaitMs), idle_timeout_ / 4)),
      slots_(options.tcp_max_connections) {
  for (uint32_t i = slots_.size(); i > 0; --i) free_.push_back(i - 1);
}

absl::StatusOr<std::unique_ptr<TcpLoop>> TcpLoop::Create(const std::vector<int>& listeners,
                                                         const SocketPortOptions& options,
                                                         const QueryHandler& handler,
                                                         SnapshotPublisher& publisher,
                                                         WorkerCounters& counters,
                                                         const std::atomic<bool>& stopping) {
  std::unique_ptr<TcpLoop> loop(
      new TcpLoop(listeners, options, handler, publisher, counters, stopping));
  loop->epoll_ = Fd(epoll_create1(EPOLL_CLOEXEC));
  if (loop->epoll_.get() < 0) return Errno("tcp", "epoll_create1");
  for (size_t i = 0; i < listeners.size(); ++i) {
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = kListenerTag | i;
    if (epoll_ctl(loop->epoll_.get(), EPOLL_CTL_ADD, listeners[i], &event) < 0)
      return Errno(options.listen[i], "epoll_ctl");
  }
  loop->reserve_ = Fd(open("/dev/null", O_RDONLY | O_CLOEXEC));
  return loop;
}

void TcpLoop::Run(unsigned reader) {
  NameThread("tandem-tcp");
  publisher_.Online(reader);
  epoll_event events[kBurst];
  while (!stopping_.load(std::memory_order_relaxed)) {
    publisher_.Offline(reader);
    int ready = epoll_wait(epoll_.get(), events, kBurst, kWaitMs);
    publisher_.Online(reader);
    now_ = Clock::now();
    snapshot_ = publisher_.Current();
    for (int i = 0; i < ready; ++i) Dispatch(events[i]);
    if (now_ >= next_sweep_) CloseIdle();
    publisher_.Quiescent(reader);
  }
  snapshot_ = nullptr;
  for (auto& c : slots_) c.reset();
  publisher_.Offline(reader);
}

void TcpLoop::Dispatch(const epoll_event& event) {
  if (event.data.u64 & kListenerTag) {
    Accept(listeners_[event.data.u64 & 0xffffffff]);
    return;
  }
  TcpConnection* c = slots_[static_cast<uint32_t>(event.data.u64)].get();
  if (c == nullptr || c->generation != event.data.u64 >> 32) return;  // closed in this batch
  if ((event.events & EPOLLERR) || !Service(*c)) Close(*c);
}

// Accepts what is waiting; past the connection cap a connection is closed at once.
void TcpLoop::Accept(int listener) {
  for (int i = 0; i < kBurst; ++i) {
    sockaddr_storage peer{};
    socklen_t peer_len = sizeof peer;
    Fd fd(accept4(listener, reinterpret_cast<sockaddr*>(&peer), &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (fd.get() < 0) {
      if (errno == EMFILE || errno == ENFILE) {
        counters_.rx_errors += AcceptOverLimit(listener);
      } else if (!WouldBlock() && errno != EINTR && errno != ECONNABORTED) {
        ++counters_.rx_errors;
      }
      return;
    }
    if (free_.empty()) {
      ++counters_.rx_errors;  // refused at the cap; ~Fd closes it
      continue;
    }
    Open(std::move(fd), peer);
  }
}

// Out of descriptors: frees the reserve to accept and close one connection, so that the
// level-triggered listener does not spin. Returns the connections shed.
int TcpLoop::AcceptOverLimit(int listener) {
  reserve_.Reset();
  Fd shed(accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
  int count = shed.get() >= 0 ? 1 : 0;
  shed.Reset();
  reserve_ = Fd(open("/dev/null", O_RDONLY | O_CLOEXEC));
  return count;
}

void TcpLoop::Open(Fd fd, const sockaddr_storage& peer) {
  SetInt(fd.get(), IPPROTO_TCP, TCP_NODELAY, 1);  // answers go out whole; no Nagle delay
  auto c = std::make_unique<TcpConnection>();
  c->peer = peer;
  c->slot = free_.back();
  c->generation = ++generation_ & 0x7fffffff;
  c->events = EPOLLIN;
  c->last_query = now_;
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = uint64_t{c->generation} << 32 | c->slot;
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd.get(), &event) < 0) {
    ++counters_.rx_errors;
    return;
  }
  c->fd = std::move(fd);
  free_.pop_back();
  slots_[c->slot] = std::move(c);
}

void TcpLoop::Close(TcpConnection& c) {
  uint32_t slot = c.slot;
  slots_[slot].reset();  // closing the descriptor also removes it from the epoll set
  free_.push_back(slot);
}

// Moves a connection on after an event: sends what is buffered, answers what is complete,
// reads while there is room. Returns false when the connection is to be closed.
bool TcpLoop::Service(TcpConnection& c) {
  for (int reads = 0;; ++reads) {
    if (!Flush(c)) return false;
    AnswerFrames(c);
    if (c.handed_off) return false;  // closes the slot; the descriptor is the transfer's now
    if (!Flush(c)) return false;
    // AnswerFrames stops while the output is full; once that has drained, answer what is
    // already buffered rather than wait for input that may never come.
    if (c.pending() <= kTcpFrame && c.in_len >= 2 &&
        c.in_len - 2 >= (size_t{c.in[0]} << 8 | c.in[1]))
      continue;
    if (!c.CanRead() || reads == kReadsPerEvent) break;
    ssize_t n = recv(c.fd.get(), c.in.get() + c.in_len, kTcpFrame - c.in_len, MSG_DONTWAIT);
    if (n > 0) {
      c.in_len += n;
    } else if (n == 0) {
      c.eof = true;  // answer what was complete, then close once it is sent
    } else if (WouldBlock()) {
      break;
    } else if (errno != EINTR) {
      return false;
    }
  }
  if (c.eof && c.pending() == 0) return false;
  UpdateInterest(c);
  return true;
}

// Answers the complete queries in the read buffer, in order, while the write buffer has
// room for a whole response. A 0-length message ends the connection once the answers
// before it are sent.
void TcpLoop::AnswerFrames(TcpConnection& c) {
  size_t pos = 0;
  while (c.in_len - pos >= 2 && c.pending() <= kTcpFrame) {
    const uint8_t* frame = c.in.get() + pos;
    size_t len = size_t{frame[0]} << 8 | frame[1];
    if (len == 0) {
      c.eof = true;
      c.in_len = pos;  // drops the rest
      break;
    }
    if (c.in_len - pos - 2 < len) break;
    if (len == dns::kHeaderSize && dns::header::Qdcount(frame + 2) != 0) {
      // A header announcing a question it does not carry: on a stream that says the
      // framing is lost rather than that a query is malformed. Knot DNS and NSD close the
      // connection; so does tandem, once the answers before it are sent.
      ++counters_.queries[static_cast<int>(Transport::kTcp)];
      ++counters_.dropped;
      ++counters_.rx_packets;
      c.eof = true;
      c.in_len = pos;  // drops the rest
      break;
    }
    if (2 * kTcpFrame - c.out_end < kTcpFrame) {  // make room at the end
      std::memmove(c.out.get(), c.out.get() + c.out_begin, c.pending());
      c.out_end -= c.out_begin;
      c.out_begin = 0;
    }
    if (HandOffTransfer(c, frame + 2, len)) return;
    uint8_t* out = c.out.get() + c.out_end;
    size_t n = handler_.Answer(snapshot_, frame + 2, len, out + 2, kTcpFrame - 2, Transport::kTcp,
                               counters_, reinterpret_cast<const sockaddr*>(&c.peer));
    if (n > 0) {
      out[0] = static_cast<uint8_t>(n >> 8);
      out[1] = static_cast<uint8_t>(n);
      c.out_end += 2 + n;
      ++counters_.tx_packets;
    }
    ++counters_.rx_packets;
    c.last_query = now_;
    pos += 2 + len;
  }
  if (pos > 0) std::memmove(c.in.get(), c.in.get() + pos, c.in_len - pos);
  c.in_len -= pos;
}

// AXFR and IXFR requests go, with the connection, to the control plane's transfer
// server (when there is one and nothing is waiting to be sent before them): a transfer
// is a stream of messages that the data plane does not hold.
bool TcpLoop::HandOffTransfer(TcpConnection& c, const uint8_t* query, size_t len) {
  TransferSink* sink = handler_.options().transfer;
  if (sink == nullptr || c.pending() != 0 || len < dns::kHeaderSize || dns::header::Qr(query) ||
      dns::header::Opcode(query) != dns::kOpQuery || dns::header::Qdcount(query) != 1)
    return false;
  size_t pos;
  if (dns::SkipName(query, len, dns::kHeaderSize, &pos) != dns::NameError::kOk || pos + 4 > len)
    return false;
  uint16_t qtype = dns::Get16(query + pos);
  if (qtype != dns::kTypeAXFR && qtype != dns::kTypeIXFR) return false;
  epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, c.fd.get(), nullptr);
  int fd = c.fd.Release();
  int flags = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);  // the transfer server writes with blocking sends
  sink->OnTransfer(fd, std::string(reinterpret_cast<const char*>(query), len),
                   reinterpret_cast<const sockaddr*>(&c.peer));
  c.handed_off = true;
  ++counters_.rx_packets;
  return true;
}

// Writes what the kernel takes now; the rest waits for EPOLLOUT. False on a send error.
bool TcpLoop::Flush(TcpConnection& c) {
  while (c.pending() > 0) {
    ssize_t n =
        send(c.fd.get(), c.out.get() + c.out_begin, c.pending(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (WouldBlock()) return true;
      if (errno == EINTR) continue;
      return false;
    }
    c.out_begin += n;
  }
  c.out_begin = c.out_end = 0;
  return true;
}

void TcpLoop::UpdateInterest(TcpConnection& c) {
  uint32_t want =
      (c.CanRead() ? uint32_t{EPOLLIN} : 0) | (c.pending() > 0 ? uint32_t{EPOLLOUT} : 0);
  if (want == c.events) return;
  epoll_event event{};
  event.events = want;
  event.data.u64 = uint64_t{c.generation} << 32 | c.slot;
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, c.fd.get(), &event) == 0) c.events = want;
}

// Closes connections that have not completed a query for the idle timeout.
void TcpLoop::CloseIdle() {
  next_sweep_ = now_ + sweep_interval_;
  for (auto& c : slots_) {
    if (c != nullptr && now_ - c->last_query >= idle_timeout_) Close(*c);
  }
}

}  // namespace socket_port_internal

// ---- SocketServer ---------------------------------------------------------------------

using socket_port_internal::BindListener;
using socket_port_internal::Listener;
using socket_port_internal::TcpLoop;
using socket_port_internal::UdpContext;
using socket_port_internal::UdpWorkers;
using socket_port_internal::UdpWorker;

SocketServer::SocketServer(const SocketPortOptions& options, SnapshotPublisher& publisher,
                           const QueryHandler& handler)
    : publisher_(publisher),
      handler_(handler),
      rrl_(options.rrl),
      udp_coalesce_us_(options.udp_coalesce_us),
      counter_count_(options.listen.size() * UdpWorkers(options) + 1),
      counters_(std::make_unique<WorkerCounters[]>(counter_count_)) {}

absl::StatusOr<std::unique_ptr<SocketServer>> SocketServer::Start(const SocketPortOptions& options,
                                                                  SnapshotPublisher& publisher,
                                                                  const QueryHandler& handler) {
  if (absl::Status valid = socket_port_internal::Validate(options); !valid.ok()) return valid;
  std::unique_ptr<SocketServer> server(new SocketServer(options, publisher, handler));
  std::vector<int> tcp_fds;
  for (const std::string& text : options.listen) {
    std::optional<Endpoint> endpoint = ParseEndpoint(text);
    if (!endpoint)
      return absl::InvalidArgumentError(absl::StrCat(text, ": not an ADDR:PORT listen address"));
    absl::StatusOr<std::unique_ptr<Listener>> listener = BindListener(
        *endpoint, UdpWorkers(options), handler.options().udp_max_payload <= socket_port_internal::kDontFragmentPayload, text);
    if (!listener.ok()) return listener.status();
    server->bound_.push_back((*listener)->bound);
    tcp_fds.push_back((*listener)->tcp.get());
    server->listeners_.push_back(*std::move(listener));
  }
  absl::StatusOr<std::unique_ptr<TcpLoop>> tcp =
      TcpLoop::Create(tcp_fds, options, handler, publisher,
                      server->counters_[server->counter_count_ - 1], server->stopping_);
  if (!tcp.ok()) return tcp.status();
  server->tcp_ = *std::move(tcp);
  if (absl::Status readers = server->RegisterReaders(); !readers.ok()) return readers;
  server->StartThreads();
  return server;
}

// Registers every thread's RCU reader id up front, so that a publisher with too few
// reader slots fails Start instead of a worker thread.
absl::Status SocketServer::RegisterReaders() {
  try {
    while (readers_.size() < counter_count_) readers_.push_back(publisher_.RegisterReader());
  } catch (const std::exception& e) {
    return absl::ResourceExhaustedError(
        absl::StrCat("socket port: ", counter_count_, " snapshot readers needed: ", e.what()));
  }
  return absl::OkStatus();
}

void SocketServer::StartThreads() {
  size_t next = 0;
  for (const auto& listener : listeners_) {
    for (const auto& fd : listener->udp) {
      UdpContext context{.fd = fd.get(),
                         .wildcard = listener->wildcard,
                         .reader = readers_[next],
                         .handler = &handler_,
                         .publisher = &publisher_,
                         .counters = &counters_[next],
                         .stopping = &stopping_,
                         .rrl = &rrl_,
                         .coalesce_us = udp_coalesce_us_};
      threads_.emplace_back([context] { UdpWorker(context).Run(); });
      ++next;
    }
  }
  threads_.emplace_back([loop = tcp_.get(), reader = readers_[next]] { loop->Run(reader); });
}

SocketServer::~SocketServer() { Stop(); }

void SocketServer::Stop() {
  stopping_.store(true, std::memory_order_relaxed);
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
  for (unsigned reader : readers_) publisher_.UnregisterReader(reader);
  readers_.clear();
  tcp_.reset();
  listeners_.clear();
}

WorkerCounters SocketServer::Totals() const {
  WorkerCounters sum;
  for (size_t i = 0; i < counter_count_; ++i) sum += counters_[i];
  return sum;
}

std::vector<WorkerCounters> SocketServer::PerWorker() const {
  return std::vector<WorkerCounters>(counters_.get(), counters_.get() + counter_count_);
}

std::vector<Endpoint> SocketServer::BoundEndpoints() const { return bound_; }

}  // namespace tandem::dataplane

// A blocking client socket for tests against a real port: UDP datagrams or TCP with DNS's
// two-byte length framing, every read bounded by a timeout. Closed on scope exit.
#pragma once

#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "dataplane/address.h"

namespace tandem::testing {

using Bytes = std::vector<uint8_t>;

// `message` with its TCP length prefix (RFC 1035 4.2.2).
inline Bytes Frame(const Bytes& message) {
  Bytes f = {static_cast<uint8_t>(message.size() >> 8), static_cast<uint8_t>(message.size())};
  f.insert(f.end(), message.begin(), message.end());
  return f;
}

class Client {
 public:
  Client(const dataplane::Endpoint& to, int type = SOCK_STREAM,
         std::chrono::milliseconds timeout = std::chrono::milliseconds(2000)) {
    fd_ = socket(to.family(), type, 0);
    SetTimeout(timeout);
    connected_ = connect(fd_, reinterpret_cast<const sockaddr*>(&to.addr), to.len) == 0;
  }
  ~Client() { close(fd_); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  int fd() const { return fd_; }
  bool connected() const { return connected_; }
  void SetTimeout(std::chrono::milliseconds timeout) {
    timeval tv{static_cast<time_t>(timeout.count() / 1000),
               static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  // All of `bytes`, as they are.
  bool Send(const Bytes& bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return true;
  }
  // One DNS message over TCP, length-prefixed.
  bool SendFrame(const Bytes& message) { return Send(Frame(message)); }
  // One datagram, or nothing before the timeout.
  std::optional<Bytes> ReceiveDatagram() {
    Bytes buf(65535);
    ssize_t n = recv(fd_, buf.data(), buf.size(), 0);
    if (n < 0) return std::nullopt;
    buf.resize(static_cast<size_t>(n));
    return buf;
  }
  // Exactly n bytes, or nothing on EOF, error or timeout.
  std::optional<Bytes> ReadExact(size_t n) {
    Bytes buf(n);
    for (size_t done = 0; done < n;) {
      ssize_t got = recv(fd_, buf.data() + done, n - done, 0);
      if (got <= 0) return std::nullopt;
      done += static_cast<size_t>(got);
    }
    return buf;
  }
  // One length-prefixed message.
  std::optional<Bytes> ReadFrame() {
    std::optional<Bytes> prefix = ReadExact(2);
    if (!prefix) return std::nullopt;
    return ReadExact(size_t{(*prefix)[0]} << 8 | (*prefix)[1]);
  }
  // recv's result after waiting: 0 when the server closed the connection, -1 on a timeout.
  ssize_t ReceiveResult() {
    uint8_t byte;
    return recv(fd_, &byte, 1, 0);
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

}  // namespace tandem::testing

// Endpoint and prefix parsing.
#include "dataplane/address.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace tandem::dataplane {

uint16_t Endpoint::port() const {
  if (addr.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&addr)->sin_port);
  return ntohs(reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_port);
}

std::string Endpoint::ToString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&addr)->sin_addr, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(port());
  }
  inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_addr, buf, sizeof buf);
  return "[" + std::string(buf) + "]:" + std::to_string(port());
}

std::optional<Endpoint> ParseEndpoint(std::string_view text, std::optional<uint16_t> default_port) {
  std::string host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = std::string(text.substr(1, close - 1));
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port_text = rest.substr(1);
      if (port_text.empty()) return std::nullopt;
    }
  } else {
    size_t colon = text.rfind(':');
    if (colon != std::string_view::npos) {
      if (text.find(':') != colon) return std::nullopt;  // bare IPv6 needs brackets
      host = std::string(text.substr(0, colon));
      port_text = text.substr(colon + 1);
      if (port_text.empty()) return std::nullopt;
    } else {
      host = std::string(text);
    }
  }
  uint16_t port = 0;
  if (!port_text.empty()) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), v);
    if (ec != std::errc() || p != port_text.data() + port_text.size() || v > 65535) return std::nullopt;
    port = static_cast<uint16_t>(v);
  } else if (default_port) {
    port = *default_port;
  } else {
    return std::nullopt;
  }
  Endpoint ep;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ep.addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ep.addr);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    ep.len = sizeof(sockaddr_in);
    return ep;
  }
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    ep.len = sizeof(sockaddr_in6);
    return ep;
  }
  return std::nullopt;
}

std::optional<Prefix> ParsePrefix(std::string_view text) {
  Prefix p;
  std::string host(text.substr(0, text.find('/')));
  if (inet_pton(AF_INET, host.c_str(), p.bytes) == 1) {
    p.family = AF_INET;
    p.length = 32;
  } else if (inet_pton(AF_INET6, host.c_str(), p.bytes) == 1) {
    p.family = AF_INET6;
    p.length = 128;
  } else {
    return std::nullopt;
  }
  if (size_t slash = text.find('/'); slash != std::string_view::npos) {
    std::string_view len_text = text.substr(slash + 1);
    int v = -1;
    auto [ptr, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), v);
    if (ec != std::errc() || ptr != len_text.data() + len_text.size() || v < 0 || v > p.length)
      return std::nullopt;
    p.length = v;
  }
  return p;
}

bool Prefix::Contains(const sockaddr* sa) const {
  const uint8_t* a;
  if (sa->sa_family == AF_INET && family == AF_INET) {
    a = reinterpret_cast<const uint8_t*>(&reinterpret_cast<const sockaddr_in*>(sa)->sin_addr);
  } else if (sa->sa_family == AF_INET6 && family == AF_INET6) {
    a = reinterpret_cast<const uint8_t*>(&reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr);
  } else {
    return false;
  }
  int full = length / 8;
  if (std::memcmp(a, bytes, full) != 0) return false;
  int rest = length % 8;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a[full] & mask) == (bytes[full] & mask);
}

}  // namespace tandem::dataplane

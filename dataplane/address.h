// Parsing of "ADDR:PORT" endpoints ("127.0.0.1:53", "[::1]:53") and "ADDR/LEN" prefixes,
// shared by the config validator and the ports. No I/O.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tandem::dataplane {

struct Endpoint {
  sockaddr_storage addr{};
  socklen_t len = 0;
  int family() const { return addr.ss_family; }
  uint16_t port() const;
  std::string ToString() const;
};

// "ADDR:PORT" with a dotted IPv4 address or a bracketed IPv6 address; when
// `default_port` is given, "ADDR" alone is accepted too.
std::optional<Endpoint> ParseEndpoint(std::string_view text,
                                      std::optional<uint16_t> default_port = std::nullopt);

struct Prefix {
  int family = 0;  // AF_INET or AF_INET6
  uint8_t bytes[16] = {};
  int length = 0;
  bool Contains(const sockaddr* sa) const;
};

// "10.0.0.0/8", "2001:db8::/32", or a bare address (a host prefix).
std::optional<Prefix> ParsePrefix(std::string_view text);

}  // namespace tandem::dataplane

#pragma once
// Free loopback ports for tests that start real servers (exporters) on 127.0.0.1.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace continuum::test_support {

/// True when nothing is bound to 127.0.0.1:`port` right now.
inline bool port_free(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

/// Two consecutive free loopback ports (the host_port_base + i convention), starting from one the
/// kernel hands out; -1 if none was found.
inline int free_port_pair() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                 ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
    int p = ntohs(a.sin_port);
    ::close(fd);
    if (bound && p < 65000 && port_free(p) && port_free(p + 1)) return p;
  }
  return -1;
}

}  // namespace continuum::test_support

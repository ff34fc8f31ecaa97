"""Network namespaces for tests of the poll-mode path.

Testbed: two namespaces joined by a veth pair.
  server namespace: tandemd's DPDK port (net_af_packet or net_af_xdp on the veth end),
                    its exception interface (net_tap) with the answered addresses
  client namespace: the other veth end with client addresses, knotd on its loopback

The server-side veth end gets no address and its kernel stack is kept off it (no ARP
replies, no IPv6, strict reverse-path filter): only tandemd speaks on it. The client
end's transmit checksum offload is turned off, because a veth hands frames to AF_PACKET
with only the pseudo-header checksum filled in, as a real NIC never would.

Names carry the test's pid; everything is removed by Testbed.close(), also on failure.
"""

import ctypes
import os
import subprocess

CLONE_NEWNET = 0x40000000

SERVER_V4 = "198.18.0.1"
CLIENT_V4 = "198.18.0.2"
SERVER_V6 = "2001:db8:18::1"
CLIENT_V6 = "2001:db8:18::2"


def sh(*argv, check=True, ns=None):
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(argv)
    return subprocess.run(cmd, check=check, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=30)


class Testbed:
    def __init__(self, tag=None):
        tag = tag or str(os.getpid())
        self.server_ns = "tds%s" % tag
        self.client_ns = "tdc%s" % tag
        self.server_if = "tdv%ss" % tag[-8:]
        self.client_if = "tdv%sc" % tag[-8:]
        self.exception_if = "tdx%s" % tag[-8:]
        self._root_ns_fd = None

    def open(self):
        sh("ip", "netns", "add", self.server_ns)
        sh("ip", "netns", "add", self.client_ns)
        sh("ip", "link", "add", self.server_if, "type", "veth", "peer", "name", self.client_if)
        sh("ip", "link", "set", self.server_if, "netns", self.server_ns)
        sh("ip", "link", "set", self.client_if, "netns", self.client_ns)
        s, c = self.server_ns, self.client_ns
        sh("ip", "link", "set", "lo", "up", ns=s)
        sh("ip", "link", "set", self.server_if, "up", ns=s)
        sh("sysctl", "-qw", "net.ipv6.conf.%s.disable_ipv6=1" % self.server_if,
           "net.ipv4.conf.%s.arp_ignore=8" % self.server_if,
           "net.ipv4.conf.all.rp_filter=1", "net.ipv4.conf.%s.rp_filter=1" % self.server_if, ns=s)
        sh("ip", "link", "set", "lo", "up", ns=c)
        sh("ip", "link", "set", self.client_if, "up", ns=c)
        sh("ip", "addr", "add", CLIENT_V4 + "/24", "dev", self.client_if, ns=c)
        sh("ip", "-6", "addr", "add", CLIENT_V6 + "/64", "dev", self.client_if, "nodad", ns=c)
        sh("ethtool", "-K", self.client_if, "tx", "off", ns=c)
        return self

    def server_mac(self):
        out = sh("cat", "/sys/class/net/%s/address" % self.server_if, ns=self.server_ns).stdout
        return out.strip()

    def enter_client(self):
        """Moves this process into the client namespace (sockets and children follow)."""
        libc = ctypes.CDLL(None, use_errno=True)
        self._root_ns_fd = os.open("/proc/self/ns/net", os.O_RDONLY)
        fd = os.open("/run/netns/%s" % self.client_ns, os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns %s" % self.client_ns)
        finally:
            os.close(fd)

    def leave_client(self):
        if self._root_ns_fd is not None:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.setns(self._root_ns_fd, CLONE_NEWNET)
            os.close(self._root_ns_fd)
            self._root_ns_fd = None

    def close(self):
        self.leave_client()
        for ns in (self.client_ns, self.server_ns):
            sh("ip", "netns", "del", ns, check=False)

    def __enter__(self):
        try:
            return self.open()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc):
        self.close()
        return False


# ---------------------------------------------------------------------------------------
# For the failover test: run this thread inside a namespace for a while (to reach servers
# on the loopback of the server namespace, or tandemd from the client namespace).

class Inside:
    """`with Inside(NS):` sockets made by this thread (and children it starts) in the
    meanwhile belong to the namespace NS; the thread's namespace is restored on exit."""

    def __init__(self, ns):
        self.ns = ns
        self._fd = None

    def __enter__(self):
        libc = ctypes.CDLL(None, use_errno=True)
        self._fd = os.open("/proc/self/ns/net", os.O_RDONLY)
        fd = os.open("/run/netns/%s" % self.ns, os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns %s" % self.ns)
        except BaseException:
            os.close(self._fd)
            self._fd = None
            raise
        finally:
            os.close(fd)
        return self

    def __exit__(self, *exc):
        if self._fd is not None:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.setns(self._fd, CLONE_NEWNET)
            os.close(self._fd)
            self._fd = None
        return False


#!/usr/bin/env python3
"""Write the package's small test captures, deterministically (needs scapy).

    python zeek_scripts/testing/traces/make_traces.py [DIR]

Each capture is one scenario the reference corpus lacks (see SCENARIOS).
Addresses, ports, sequence numbers, payloads and timestamps are fixed, so
running this again writes the same bytes: the tests check that.
`many_connections` builds a larger capture for the package's benchmark.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw
from scapy.utils import wrpcap

CLIENT, SERVER = "10.1.0.2", "10.1.0.1"
CLIENT6, SERVER6 = "2001:db8::2", "2001:db8::1"
CLIENT_MAC, SERVER_MAC = "02:00:00:00:00:02", "02:00:00:00:00:01"
START = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
MSS = 1448


@dataclass
class Tcp:
    """One TCP connection, built packet by packet with consistent sequence numbers."""

    client: str
    server: str
    sport: int
    dport: int
    clock: float = START
    packets: list[Packet] = field(default_factory=list)
    cseq: int = 1_000
    sseq: int = 5_000

    def _ip(self, from_client: bool) -> Packet:
        src, dst = (self.client, self.server) if from_client else (self.server, self.client)
        macs = (CLIENT_MAC, SERVER_MAC) if from_client else (SERVER_MAC, CLIENT_MAC)
        layer = IPv6(src=src, dst=dst) if ":" in src else IP(src=src, dst=dst, id=len(self.packets) + 1)
        return Ether(src=macs[0], dst=macs[1]) / layer

    def send(self, from_client: bool, flags: str, payload: bytes = b"") -> Tcp:
        """Append one segment; SYN and FIN count one sequence number, payload its length."""
        sport, dport = (self.sport, self.dport) if from_client else (self.dport, self.sport)
        seq, ack = (self.cseq, self.sseq) if from_client else (self.sseq, self.cseq)
        segment = TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack if "A" in flags else 0, window=65535)
        packet = self._ip(from_client) / segment
        if payload:
            packet = packet / Raw(load=payload)
        self.clock += 0.001
        packet.time = self.clock
        self.packets.append(packet)
        used = len(payload) + ("S" in flags) + ("F" in flags)
        if from_client:
            self.cseq += used
        else:
            self.sseq += used
        return self

    def handshake(self) -> Tcp:
        return self.send(True, "S").send(False, "SA").send(True, "A")

    def stream(self, from_client: bool, data: bytes) -> Tcp:
        """Send `data` in MSS-sized segments, each acknowledged by the peer every second segment."""
        for i in range(0, len(data), MSS):
            self.send(from_client, "PA" if i + MSS >= len(data) else "A", data[i : i + MSS])
            if (i // MSS) % 2 == 1 or i + MSS >= len(data):
                self.send(not from_client, "A")
        return self

    def close(self) -> Tcp:
        return self.send(True, "FA").send(False, "FA").send(True, "A")


def _udp(
    client: str, server: str, sport: int, dport: int, exchange: list[tuple[bool, bytes]], clock: float = START
) -> list[Packet]:
    packets = []
    for i, (from_client, payload) in enumerate(exchange):
        src, dst, sp, dp = (client, server, sport, dport) if from_client else (server, client, dport, sport)
        macs = (CLIENT_MAC, SERVER_MAC) if from_client else (SERVER_MAC, CLIENT_MAC)
        packet = Ether(src=macs[0], dst=macs[1]) / IP(src=src, dst=dst, id=i + 1) / UDP(sport=sp, dport=dp) / payload
        packet.time = clock + 0.5 * i
        packets.append(packet)
    return packets


def _filler(size: int, head: bytes) -> bytes:
    """`size` bytes starting with `head`, then a repeating printable pattern."""
    body = (b"0123456789abcdefghijklmnopqrstuvwxyz" * (size // 36 + 1))[: size - len(head)]
    return head + body


HTTP_OK = b"HTTP/1.1 200 OK\r\nServer: synack-test\r\nContent-Length: 0\r\n\r\n"
TLS_SERVER_HELLO = b"\x16\x03\x03\x00\x5a\x02\x00\x00\x56\x03\x03" + bytes(range(32))


def client_first(size: int) -> list[Packet]:
    """A client that sends `size` bytes (an HTTP request with a large body) before the server answers."""
    request = _filler(size, b"POST /upload HTTP/1.1\r\nHost: synack.test\r\nContent-Length: %d\r\n\r\n" % size)
    conn = Tcp(CLIENT, SERVER, 40_001, 8080).handshake().stream(True, request).stream(False, HTTP_OK)
    return conn.close().packets


def tls_client_hello() -> list[Packet]:
    """A 1.8 KB TLS ClientHello (as with a post-quantum key share), then the ServerHello."""
    hello = _filler(1_800, b"\x16\x03\x01\x07\x03\x01\x00\x06\xff\x03\x03")
    conn = Tcp(CLIENT, SERVER, 40_002, 443).handshake().stream(True, hello).stream(False, TLS_SERVER_HELLO)
    return conn.close().packets


def synack_with_payload() -> list[Packet]:
    """A server whose SYN-ACK already carries data (as TCP Fast Open allows)."""
    conn = Tcp(CLIENT, SERVER, 40_003, 2525).send(True, "S").send(False, "SA", b"220 synack.test ESMTP\r\n")
    return conn.send(True, "A").stream(True, b"QUIT\r\n").stream(False, b"221 bye\r\n").close().packets


def udp_late_answer() -> list[Packet]:
    """A UDP service that answers only the third request."""
    requests = [(True, b"PING %d" % i) for i in range(3)]
    return _udp(CLIENT, SERVER, 50_000, 5_000, [*requests, (False, b"PONG 2 from synack-test")])


def ipv6_server() -> list[Packet]:
    """An SSH server on IPv6."""
    conn = Tcp(CLIENT6, SERVER6, 40_004, 22).handshake().stream(False, b"SSH-2.0-OpenSSH_9.6 synack-test\r\n")
    return conn.stream(True, b"SSH-2.0-client\r\n").close().packets


def rst_after_synack() -> list[Packet]:
    """A half-open scan (the client resets after the SYN-ACK) and a server that resets after it."""
    scan = Tcp(CLIENT, SERVER, 40_005, 3306).send(True, "S").send(False, "SA").send(True, "R")
    late = Tcp(CLIENT, SERVER, 40_006, 3307, clock=START + 1).send(True, "S").send(False, "SA").send(False, "R")
    return scan.packets + late.packets


def rst_without_syn() -> list[Packet]:
    """Only RSTs from both sides, no SYN seen (a stale connection torn down):
    Zeek's conn_state is REJ though the history has no S; no SYN was refused,
    so both sides call it midstream (the letters decide, not conn_state)."""
    conn = Tcp(CLIENT, SERVER, 40_011, 23)
    return conn.send(True, "R").send(False, "R").packets


def synack_after_data() -> list[Packet]:
    """The SYN was missed and the server's first data segment was captured before
    its SYN-ACK (reordered on a mirror port): Zeek keeps the server as originator
    (history H, no h), so the originator is the server (``open_orig``)."""
    conn = Tcp(CLIENT, SERVER, 40_007, 40_123)
    conn.cseq += 1  # the SYN that was missed
    conn.sseq += 1
    conn.send(False, "A", b"hello from 40123\r\n")
    conn.sseq -= 1 + len(b"hello from 40123\r\n")
    return conn.send(False, "SA").send(True, "A").packets


def synack_dropped() -> list[Packet]:
    """A mirror port that drops packets: the server's SYN-ACK never reaches
    the sensor, the rest of each connection does (history SADdafF and the
    like; the servers are inferred, 10.1.0.1:2200, :2201 and :2202), and,
    for contrast, a SYN answered by a bare ACK only (not a server, :2203)."""
    banner = b"SSH-2.0-OpenSSH_9.6 behind a lossy tap\r\n"

    def missed(sport: int, dport: int, second: float) -> Tcp:
        conn = Tcp(CLIENT, SERVER, sport, dport, clock=START + second).send(True, "S")
        conn.sseq += 1  # the SYN-ACK the sensor did not see
        return conn.send(True, "A")

    talk = missed(40_020, 2200, 0).stream(False, banner).stream(True, b"SSH-2.0-client\r\n").close()
    quiet = missed(40_021, 2201, 1).send(False, "A").stream(True, b"hello\r\n").close()
    reset = missed(40_022, 2202, 2).stream(False, b"220 going away\r\n").send(False, "R")
    bare = Tcp(CLIENT, SERVER, 40_023, 2203, clock=START + 3).send(True, "S").send(False, "A")
    return sorted(talk.packets + quiet.packets + reset.packets + bare.packets, key=lambda p: float(p.time))


def answers_everything(ports: int = 300, first_port: int = 1) -> list[Packet]:
    """A half-open scan of a host that answers a SYN on every port (a SYN
    proxy, a tarpit, a honeypot): 10.1.0.9 sends a SYN-ACK to each of
    `ports` ports from `first_port` on, the scanner resets, no data."""
    packets: list[Packet] = []
    for i in range(ports):
        conn = Tcp(CLIENT, "10.1.0.9", 30_000 + i % 30_000, first_port + i, clock=START + i * 0.01)
        packets += conn.send(True, "S").send(False, "SA").send(True, "R").packets
    return packets


def new_ports() -> list[Packet]:
    """Server ports for the notice tests, one connection a second (the
    baseline in tests/notice-*.zeek knows 10.1.0.1 22/tcp and 53/udp and
    2001:db8::1 22/tcp, and expects 10.1.0.0/24 tcp 3000-4000):

    * known: 10.1.0.1:22/tcp, [2001:db8::1]:22/tcp, 10.1.0.1:53/udp;
    * new: 10.1.0.1:8443/tcp (banner first, twice), [2001:db8::1]:2222/tcp,
      10.1.0.1:8080/tcp (replies after the request), 10.1.0.1:5000/udp;
    * expected: 10.1.0.1:3389/tcp;
    * not servers: 10.1.0.1:9000/tcp (no answer), 10.1.0.1:9001/tcp (reset),
      10.1.0.1:6000/udp (no answer), a remote 93.184.216.34:8081/tcp;
    * late (t+12 s, for the re-read test): 10.1.0.1:7000/tcp.
    """
    banner = b"220 synack-test new service\r\n"

    def tcp(server: str, client: str, sport: int, dport: int, second: float) -> Tcp:
        return Tcp(client, server, sport, dport, clock=START + second)

    conns = [
        tcp(SERVER, CLIENT, 41_000, 22, 0).handshake().stream(False, b"SSH-2.0-OpenSSH_9.6\r\n").close(),
        tcp(SERVER, CLIENT, 41_001, 8443, 1).handshake().stream(False, banner).close(),
        tcp(SERVER, CLIENT, 41_002, 8443, 2).handshake().stream(False, banner).close(),
        tcp(SERVER, CLIENT, 41_003, 3389, 3).handshake().stream(True, b"\x03\x00\x00\x13").close(),
        tcp(SERVER6, CLIENT6, 41_004, 22, 4).handshake().stream(False, b"SSH-2.0-OpenSSH_9.6\r\n").close(),
        tcp(SERVER6, CLIENT6, 41_005, 2222, 5).handshake().stream(False, b"SSH-2.0-dropbear\r\n").close(),
        tcp(SERVER, CLIENT, 41_006, 8080, 6)
        .handshake()
        .stream(True, b"GET / HTTP/1.1\r\n\r\n")
        .stream(False, HTTP_OK)
        .close(),
        tcp(SERVER, CLIENT, 41_007, 9000, 9).send(True, "S"),
        tcp(SERVER, CLIENT, 41_008, 9001, 10).send(True, "S").send(False, "RA"),
        tcp("93.184.216.34", CLIENT, 41_009, 8081, 11).handshake().stream(False, banner).close(),
        tcp(SERVER, CLIENT, 41_010, 7000, 12).handshake().stream(False, banner).close(),
    ]
    packets = [p for c in conns for p in c.packets]
    packets += _udp(CLIENT, SERVER, 51_000, 53, [(True, b"query"), (False, b"answer")], START + 7)
    packets += _udp(CLIENT, SERVER, 51_001, 5000, [(True, b"PING"), (False, b"PONG new udp")], START + 8)
    packets += _udp(CLIENT, SERVER, 51_002, 6000, [(True, b"PING")], START + 8.2)
    return sorted(packets, key=lambda p: float(p.time))


SCENARIOS: dict[str, Callable[[], list[Packet]]] = {
    "client-first-200.pcap": lambda: client_first(200),
    "client-first-1800-tls.pcap": tls_client_hello,
    "client-first-65536.pcap": lambda: client_first(65_536),
    "synack-payload.pcap": synack_with_payload,
    "udp-late-answer.pcap": udp_late_answer,
    "ipv6-server.pcap": ipv6_server,
    "rst-after-synack.pcap": rst_after_synack,
    "synack-after-data.pcap": synack_after_data,
    "rst-without-syn.pcap": rst_without_syn,
    "new-ports.pcap": new_ports,
    "synack-dropped.pcap": synack_dropped,
    "answers-everything.pcap": answers_everything,
}


def many_connections(count: int, reply_after: int = 300) -> Iterator[Packet]:
    """`count` short connections over 250 servers and 4 ports: a client request of
    `reply_after` bytes, a one-segment reply, a close; for the benchmark."""
    ports = (80, 443, 8080, 5432)
    for i in range(count):
        server = f"10.2.{i % 250 // 50}.{i % 50 + 1}"
        client = f"10.3.{i // 60000 % 250}.{i // 240 % 250 + 1}"
        conn = Tcp(client, server, 20_000 + i % 40_000, ports[i % 4], clock=START + i * 0.002)
        conn.handshake().stream(True, _filler(reply_after, b"GET / HTTP/1.1\r\n")).stream(False, HTTP_OK)
        yield from conn.close().packets


def write_all(folder: Path) -> list[Path]:
    """Write every scenario's capture into `folder`; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, build in SCENARIOS.items():
        wrpcap(str(folder / name), build())
        written.append(folder / name)
    return written


if __name__ == "__main__":
    for path in write_all(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent):
        print(path)

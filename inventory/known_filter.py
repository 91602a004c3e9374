"""The known server ports as a Bloom filter, for baselines of millions of ports.

An Input-framework table costs Zeek about 400 bytes and 5 µs to load per
row: a baseline of 1,000,000 known ports costs each Zeek process 1.2 GB.
`synack export-known --filter FILE` writes the exact ports to FILE as a
Bloom filter instead (about 3.6 MB per million ports) and leaves only the
allowlist's ranges in the table; the package's notice.zeek reads it with
``redef SynAck::known_filter_file``. The file is a Zeek ASCII log of four
settings and the filter's bytes in hex, CHUNK_BYTES a line:

    #fields  kind         value   data
             bits         28766   -        (m: the filter's size in bits)
             hashes       20      -        (k)
             entries      1000    -        (n: the ports it holds)
             chunk_bytes  4096    -
             chunk        0       00a1...  (bytes value*CHUNK_BYTES...)

A port is the text ``<address>/<proto>/<port>`` (``10.1.0.1/tcp/22``;
IPv6 compressed, lower case, as Zeek prints an addr; an IPv4-mapped
address as its IPv4). With d = MD5 of that text, h1 and h2 its first two
big-endian 32-bit words, and h2 made odd, the port's bits are
(h1 + i * h2) mod m for i < k, bit b being bit b % 8 (least significant
first) of byte b // 8. Zeek computes the same (md5_hash, fmt).

A false positive (a new port the filter says it holds) is a notice not
raised: the filter is sized for FALSE_POSITIVE_RATE, one port in a million.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

#: The share of new ports a filter of this size takes for known.
FALSE_POSITIVE_RATE = 1e-6
#: Bytes of the filter on one line of the file.
CHUNK_BYTES = 4096
#: The smallest filter, in bits (128 KiB): double hashing has about
#: bits**2 / 2 probe sequences, so a filter of a few ports sized by the rate
#: alone takes far more new ports for known than the rate says (one in 500
#: for 11 ports in 317 bits, one in 400,000 for 1,000 ports in 65,536).
MIN_BITS = 1 << 20
#: Ports hashed at a time (their bit positions are k * 8 bytes each).
SLICE = 100_000

HEADER = (
    "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tsynack_known_filter\n"
    "#fields\tkind\tvalue\tdata\n#types\tstring\tcount\tstring\n"
)


@dataclass(frozen=True)
class FilterShape:
    """A Bloom filter's size in bits (m) and hash count (k) for n entries."""

    bits: int
    hashes: int

    @classmethod
    def for_entries(cls, n: int, rate: float = FALSE_POSITIVE_RATE) -> FilterShape:
        """The smallest shape holding `n` entries at `rate` false positives (at least MIN_BITS)."""
        bits = max(MIN_BITS, math.ceil(-max(n, 1) * math.log(rate) / math.log(2) ** 2))
        return cls(bits, max(1, round(-math.log2(rate))))


def port_texts(hosts: Iterable[str], protos: Iterable[str], ports: Iterable[int]) -> list[bytes]:
    """Each port's text as the filter hashes it (see the module): Zeek's form of the address."""
    return [f"{_zeek_addr(h)}/{p}/{int(n)}".encode() for h, p, n in zip(hosts, protos, ports)]


def _zeek_addr(host: str) -> str:
    if ":" not in host:
        return host
    address = ipaddress.IPv6Address(host.split("%", 1)[0])
    return str(address.ipv4_mapped or address)


def bit_positions(texts: list[bytes], shape: FilterShape) -> np.ndarray:
    """The (len(texts), k) bit positions of `texts` in a filter of `shape`."""
    digests = np.frombuffer(b"".join(hashlib.md5(t).digest()[:8] for t in texts), dtype=">u4").reshape(-1, 2)
    h1 = digests[:, 0].astype(np.uint64)
    h2 = digests[:, 1].astype(np.uint64) | np.uint64(1)
    i = np.arange(shape.hashes, dtype=np.uint64)
    return (h1[:, None] + i[None, :] * h2[:, None]) % np.uint64(shape.bits)


def filter_bytes(texts: list[bytes], shape: FilterShape) -> bytes:
    """The filter of `texts` (bit b is bit b % 8 of byte b // 8)."""
    bits = np.zeros(shape.bits, dtype=bool)
    for start in range(0, len(texts), SLICE):
        bits[bit_positions(texts[start : start + SLICE], shape).ravel()] = True
    return np.packbits(bits, bitorder="little").tobytes()


def holds(data: bytes, shape: FilterShape, texts: list[bytes]) -> np.ndarray:
    """Whether the filter `data` holds each of `texts` (a bool array)."""
    positions = bit_positions(texts, shape)
    byte = np.frombuffer(data, dtype=np.uint8)[(positions // np.uint64(8)).astype(np.int64)]
    set_bits = (byte >> (positions % np.uint64(8)).astype(np.uint8)) & 1
    return np.asarray(set_bits.astype(bool).all(axis=1), dtype=bool)


def write_filter(out: IO[str], servers: pd.DataFrame) -> int:
    """Write the filter of the tcp and udp ports of `servers` (server_h, proto,
    server_p) to `out` (see the module); return how many ports it holds."""
    tcp_udp = servers[servers["proto"].astype(str).isin(["tcp", "udp"])]
    texts = port_texts(tcp_udp["server_h"].astype(str), tcp_udp["proto"].astype(str), tcp_udp["server_p"])
    shape = FilterShape.for_entries(len(texts))
    data = filter_bytes(texts, shape)
    out.write(HEADER)
    out.write(f"bits\t{shape.bits}\t-\nhashes\t{shape.hashes}\t-\nentries\t{len(texts)}\t-\n")
    out.write(f"chunk_bytes\t{CHUNK_BYTES}\t-\n")
    for n, start in enumerate(range(0, len(data), CHUNK_BYTES)):
        out.write(f"chunk\t{n}\t{data[start : start + CHUNK_BYTES].hex()}\n")
    return len(texts)


@dataclass(frozen=True)
class KnownFilter:
    """A filter file as read back: its shape, the ports it holds, its bytes."""

    shape: FilterShape
    entries: int
    data: bytes


def read_filter(path: Path) -> KnownFilter | None:
    """The filter at `path`, or None when there is none or it is not one."""
    settings: dict[str, int] = {}
    chunks: dict[int, str] = {}
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("#"):
                    continue
                kind, value, hex_bytes = (line.rstrip("\n").split("\t") + ["", ""])[:3]
                if kind == "chunk":
                    chunks[int(value)] = hex_bytes
                else:
                    settings[kind] = int(value)
        data = bytes.fromhex("".join(chunks[n] for n in range(len(chunks))))
        return KnownFilter(FilterShape(settings["bits"], settings["hashes"]), settings["entries"], data)
    except (OSError, ValueError, KeyError):
        return None

"""The handshake rules of DESIGN.md, row by row."""

from __future__ import annotations

import pyarrow as pa
import pytest

from synack.ingest.handshake import derive_outcome


def outcome_of(
    proto: str,
    history: str | None,
    state: str | None = "SF",
    resp_pkts: int | None = 1,
    resp: str = "10.0.0.2",
    handshake: str | None = "absent",
) -> tuple[str, str | None, int | None, str | None]:
    columns = {
        "proto": pa.array([proto]).dictionary_encode(),
        "history": pa.array([history], pa.string()).dictionary_encode(),
        "conn_state": pa.array([state], pa.string()).dictionary_encode(),
        "resp_pkts": pa.array([resp_pkts], pa.uint64()),
        "orig_h": pa.array(["10.0.0.1"]).dictionary_encode(),
        "orig_p": pa.array([40000], pa.uint16()),
        "resp_h": pa.array([resp]).dictionary_encode(),
        "resp_p": pa.array([443], pa.uint16()),
    }
    if handshake != "absent":
        columns["handshake"] = pa.array([handshake], pa.string()).dictionary_encode()
    out = derive_outcome(pa.table(columns))
    return (
        out["outcome"].cast(pa.string())[0].as_py(),
        out["server_h"].cast(pa.string())[0].as_py(),
        out["server_p"][0].as_py(),
        out["client_h"].cast(pa.string())[0].as_py(),
    )


RESP = ("10.0.0.2", 443, "10.0.0.1")
ORIG = ("10.0.0.1", 40000, "10.0.0.2")
NONE = (None, None, None)

#: The README's outcome table, row by row: (history, conn_state, responder
#: packets) -> (outcome, server, server port, client).
OUTCOME_TABLE = [
    # A SYN-ACK seen: open.
    ("ShADadFf", "SF", 5, ("open", *RESP)),
    ("^hADad", "SF", 2, ("open", *RESP)),
    ("ShR", "RSTO", 1, ("open", *RESP)),
    ("HcADF", "SH", 1, ("open", *ORIG)),
    # A SYN, no SYN-ACK seen, the responder's data or established ACK: inferred.
    ("SADdafF", "SF", 4, ("inferred", *RESP)),
    ("SDdAaFf", "S3", 4, ("inferred", *RESP)),
    ("SdcADFr", "RSTR", 3, ("inferred", *RESP)),
    ("Sdr", "REJ", 2, ("inferred", *RESP)),  # REJ by Zeek, but data came before the reset
    ("SAa", "S1", 1, ("inferred", *RESP)),
    ("SaR", "RSTO", 1, ("inferred", *RESP)),
    # The responder's first answer a reset: rejected, whatever conn_state says.
    ("Sr", "REJ", 1, ("rejected", *RESP)),
    ("Sar", "REJ", 2, ("rejected", *RESP)),
    ("Srd", "RSTR", 2, ("rejected", *RESP)),
    # Nothing at all from the responder: unanswered.
    ("S", "S0", 0, ("unanswered", *NONE)),
    ("SAD", "S0", 0, ("unanswered", *NONE)),
    ("SR", "RSTOS0", 0, ("unanswered", *NONE)),
    ("SADF", "SH", 0, ("unanswered", *NONE)),
    # Something from the responder, but no SYN-ACK, data, established ACK or reset: ambiguous.
    ("Sa", "S0", 1, ("ambiguous", *NONE)),  # Zeek logs a bare ACK back as S0
    ("Sf", "SH", 1, ("ambiguous", *NONE)),
    ("S", "S0", 1, ("ambiguous", *NONE)),  # a packet back and no letter for it
    # No SYN and no SYN-ACK: midstream.
    ("DdA", "OTH", 2, ("midstream", *NONE)),
    ("C", "OTH", 0, ("midstream", *NONE)),
    ("dDr", "OTH", 2, ("midstream", *NONE)),
    (None, None, 1, ("midstream", *NONE)),
    # No history to read: conn_state REJ still says rejected.
    (None, "REJ", 1, ("rejected", *RESP)),
]


@pytest.mark.parametrize(("history", "state", "resp_pkts", "expected"), OUTCOME_TABLE)
def test_tcp_outcome_table(
    history: str | None, state: str | None, resp_pkts: int, expected: tuple[object, ...]
) -> None:
    assert outcome_of("tcp", history, state, resp_pkts=resp_pkts) == expected


def test_readme_outcome_table_lists_every_outcome() -> None:
    """The README's table names each outcome the rules produce, with whether it counts as a server."""
    from pathlib import Path

    from synack.ingest.schema import OUTCOMES

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("### Outcomes") :]
    section = section[: section.index("\n## ")]
    for outcome in OUTCOMES:
        assert f"`{outcome}`" in section, outcome
    for history, _state, _pkts, _expected in OUTCOME_TABLE:
        if history:
            assert f"`{history}`" in section, history


def test_udp_answered_only_when_the_responder_sent_packets() -> None:
    assert outcome_of("udp", "Dd", resp_pkts=1) == ("answered", "10.0.0.2", 443, "10.0.0.1")
    assert outcome_of("udp", "D", "S0", resp_pkts=0)[0] == "unanswered"
    assert outcome_of("udp", "D", "S0", resp_pkts=None)[0] == "unanswered"


@pytest.mark.parametrize("resp", ["224.0.0.251", "255.255.255.255", "ff02::fb"])
def test_answers_from_multicast_or_broadcast_are_no_service(resp: str) -> None:
    assert outcome_of("udp", "Dd", resp_pkts=1, resp=resp)[1:] == (None, None, None)


def test_icmp_never_makes_a_server() -> None:
    assert outcome_of("icmp", None, "OTH", resp_pkts=1) == ("none", None, None, None)


def test_history_decides_over_the_zeek_package_handshake_column() -> None:
    """Older package versions wrote `unanswered` where the SYN-ACK was missed: the history overrides it."""
    assert outcome_of("tcp", "SADdafF", "SF", handshake="unanswered")[0] == "inferred"
    assert outcome_of("tcp", "ShADad", "SF", handshake="rejected")[0] == "open"
    # The column decides rows without a history.
    assert outcome_of("tcp", None, "OTH", handshake="open_orig") == ("open", *ORIG)
    assert outcome_of("tcp", None, "SF", handshake="inferred") == ("inferred", *RESP)
    assert outcome_of("tcp", None, "SF", handshake=None)[0] == "midstream"


def suricata_outcome(ts: str, tc: str, pkts_toclient: int) -> str:
    table = pa.table({
        "proto": pa.array(["tcp"]).dictionary_encode(), "tcp_flags_ts": pa.array([ts]),
        "tcp_flags_tc": pa.array([tc]), "resp_pkts": pa.array([pkts_toclient], pa.uint64()),
        "orig_h": pa.array(["10.0.0.1"]), "orig_p": pa.array([40000], pa.uint16()),
        "resp_h": pa.array(["10.0.0.2"]), "resp_p": pa.array([443], pa.uint16()),
    })  # fmt: skip
    return derive_outcome(table)["outcome"].cast(pa.string())[0].as_py()


@pytest.mark.parametrize(
    ("ts", "tc", "pkts", "expected"),
    [
        ("1b", "1b", 4, "open"),  # SYN-ACK from the server
        ("1b", "18", 3, "inferred"),  # ACK+PSH from the server, its SYN-ACK missed
        ("1b", "1c", 3, "inferred"),  # data, then a reset
        ("02", "14", 1, "rejected"),  # RST+ACK to the SYN
        ("02", "00", 0, "unanswered"),
        ("02", "10", 1, "ambiguous"),  # a bare ACK back
        ("18", "18", 3, "midstream"),  # no SYN either way
    ],
)
def test_suricata_flag_rules(ts: str, tc: str, pkts: int, expected: str) -> None:
    assert suricata_outcome(ts, tc, pkts) == expected

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


@pytest.mark.parametrize(
    ("history", "state", "expected"),
    [
        ("ShADadFf", "SF", ("open", "10.0.0.2", 443, "10.0.0.1")),
        ("^hADad", "SF", ("open", "10.0.0.2", 443, "10.0.0.1")),
        ("HcADF", "SH", ("open", "10.0.0.1", 40000, "10.0.0.2")),
        ("Sr", "REJ", ("rejected", "10.0.0.2", 443, "10.0.0.1")),
        ("S", "S0", ("unanswered", None, None, None)),
        ("SAD", "S0", ("unanswered", None, None, None)),
        ("SR", "RSTOS0", ("unanswered", None, None, None)),
        ("DdA", "OTH", ("midstream", None, None, None)),
        ("C", "OTH", ("midstream", None, None, None)),
        (None, None, ("midstream", None, None, None)),
        ("ShR", "RSTO", ("open", "10.0.0.2", 443, "10.0.0.1")),
    ],
)
def test_tcp_history_rules(history: str | None, state: str | None, expected: tuple[object, ...]) -> None:
    assert outcome_of("tcp", history, state) == expected


def test_udp_answered_only_when_the_responder_sent_packets() -> None:
    assert outcome_of("udp", "Dd", resp_pkts=1) == ("answered", "10.0.0.2", 443, "10.0.0.1")
    assert outcome_of("udp", "D", "S0", resp_pkts=0)[0] == "unanswered"
    assert outcome_of("udp", "D", "S0", resp_pkts=None)[0] == "unanswered"


@pytest.mark.parametrize("resp", ["224.0.0.251", "255.255.255.255", "ff02::fb"])
def test_answers_from_multicast_or_broadcast_are_no_service(resp: str) -> None:
    assert outcome_of("udp", "Dd", resp_pkts=1, resp=resp)[1:] == (None, None, None)


def test_icmp_never_makes_a_server() -> None:
    assert outcome_of("icmp", None, "OTH", resp_pkts=1) == ("none", None, None, None)


def test_zeek_package_handshake_column_decides_over_history() -> None:
    assert outcome_of("tcp", "DdA", "OTH", handshake="open_orig") == ("open", "10.0.0.1", 40000, "10.0.0.2")
    assert outcome_of("tcp", "ShADad", "SF", handshake="rejected")[0] == "rejected"
    # History stays the fallback where the column is unset.
    assert outcome_of("tcp", "ShADad", "SF", handshake=None)[0] == "open"

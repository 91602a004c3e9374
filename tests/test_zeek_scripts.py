"""The Zeek package: every script parses, and it is shaped as zkg and Zeek expect.

Running the scripts needs a `zeek` binary (see zeek_scripts/testing, btest);
these checks run everywhere, so a broken script fails CI without Zeek.
"""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "zeek_scripts"
SCRIPTS = sorted(PACKAGE.rglob("*.zeek"))


def test_there_are_scripts() -> None:
    assert (PACKAGE / "scripts" / "main.zeek") in SCRIPTS


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_script_parses(path: Path, tmp_path: Path) -> None:
    """Every script parses; a btest's extra files (@TEST-START-FILE) each on their own."""
    zeekscript = pytest.importorskip("zeekscript")
    parts = re.split(r"^@TEST-(?:START|END)-FILE.*$", path.read_text(), flags=re.MULTILINE)
    for i, text in enumerate(parts):
        part = tmp_path / f"part{i}.zeek"
        part.write_text(text)
        script = zeekscript.Script(part)
        assert script.parse(), script.get_error()
        assert not script.has_error(), script.get_error()


def test_zeekscript_rejects_a_broken_script(tmp_path: Path) -> None:
    zeekscript = pytest.importorskip("zeekscript")
    broken = tmp_path / "broken.zeek"
    broken.write_text((PACKAGE / "scripts" / "main.zeek").read_text().replace("return F;", "return F", 1))
    script = zeekscript.Script(broken)
    assert not script.parse() or script.has_error()


def test_zkg_meta_at_the_repository_root_points_at_the_scripts() -> None:
    """zkg reads zkg.meta at the root of the package's git repository."""
    meta = configparser.ConfigParser()
    meta.read(PACKAGE.parent / "zkg.meta")
    assert (PACKAGE.parent / meta["package"]["script_dir"] / "__load__.zeek").exists()
    assert meta["package"]["description"].strip()
    assert meta["package"]["test_command"].startswith("cd zeek_scripts/testing && btest")
    assert not (PACKAGE / "zkg.meta").exists()


def test_load_files_load_the_parts() -> None:
    load = (PACKAGE / "scripts" / "__load__.zeek").read_text()
    assert "@load ./main" in load and "@load-sigs ./server-reply.sig" in load
    assert "@load ./scripts" in (PACKAGE / "__load__.zeek").read_text()


def test_signatures_call_an_exported_function() -> None:
    sigs = (PACKAGE / "scripts" / "server-reply.sig").read_text()
    main = (PACKAGE / "scripts" / "main.zeek").read_text()
    functions = set(re.findall(r"eval\s+SynAck::(\w+)", sigs))
    assert functions == {"record_reply"}
    for name in functions:
        assert re.search(rf"global {name}: function\(state: signature_state, data: string\): bool", main)


def test_every_exported_option_and_field_is_documented() -> None:
    main = (PACKAGE / "scripts" / "main.zeek").read_text()
    export = main[main.index("export {") : main.index("\n}\n", main.index("export {"))]
    lines = export.splitlines()
    declared = [i for i, line in enumerate(lines) if re.match(r"\s*(option|global)\s+\w+|\s*\w+: \w+.*&log", line)]
    assert len(declared) >= 8
    for i in declared:
        assert lines[i - 1].strip().startswith("##"), lines[i]
    for option in ("reply_bytes", "capture_reply", "sensor_name", "skip_reply_ports", "skip_reply_nets"):
        assert re.search(rf"option {option}:", export), option
    for column in ("handshake: string", "synack_ts: time", "server_reply: string", "sensor: string"):
        assert column in export


def test_handshake_values_match_what_the_ingester_reads() -> None:
    from synack.ingest.handshake import HANDSHAKE_VALUES

    main = (PACKAGE / "scripts" / "main.zeek").read_text()
    written = set(re.findall(r'"(open|open_orig|inferred|rejected|unanswered|ambiguous|midstream|answered)"', main))
    assert written == set(HANDSHAKE_VALUES)


@pytest.mark.parametrize("path", sorted((PACKAGE / "scripts").glob("*.zeek")), ids=lambda p: p.name)
def test_package_script_is_as_zeek_format_writes_it(path: Path, tmp_path: Path) -> None:
    """The package's scripts pass zeek-format: formatting them changes nothing."""
    zeekscript = pytest.importorskip("zeekscript")
    import io

    script = zeekscript.Script(path)
    assert script.parse(), script.get_error()
    out = io.BytesIO()
    script.format(out)
    assert out.getvalue().decode() == path.read_text()

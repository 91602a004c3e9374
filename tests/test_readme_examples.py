"""The README's examples print what they say: its inventory commands, run as
written on the demo store, and its notebook snippet, run as Python."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from synack.cli import app
from synack.ingest.conn_ingest import ingest_paths
from synack.samples.generate import OUT

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
runner = CliRunner()


def _block(heading: str, language: str) -> str:
    """The first `language` code block after the README heading `heading`."""
    section = README.split(f"\n## {heading}\n", 1)[1]
    return section.split(f"```{language}\n", 1)[1].split("```", 1)[0]


def _commands(block: str) -> Iterator[tuple[list[str], str]]:
    """Each command line of a shell block (an optional `[--flag]` taken both
    ways) with its comment."""
    for line in block.splitlines():
        command, _, comment = line.partition("#")
        optional = re.search(r"\[(--[\w-]+)\]", command)
        forms = [command]
        if optional is not None:
            forms = [command.replace(optional.group(0), ""), command.replace(optional.group(0), optional.group(1))]
        for form in forms:
            yield shlex.split(form), comment.strip()


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("readme") / "synack-store"
    ingest_paths([OUT], store)
    return store


#: What each inventory command's comment promises, as a line of its output.
PROMISES = {
    "servers": "Server ports (", "clients": "Client ports (", "closed": "Closed ports (",
    "new-ports": "New server ports (", "gone-ports": "Gone server ports (", "notices": "no sensor notices from ",
    "changed-ports": "no changed server ports from ",
    "status": "4 days, 2026-11-18 to 2026-11-21",
}  # fmt: skip


def test_the_inventory_commands_run_as_written(demo_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNACK_STORE", str(demo_store))
    ran = set()
    for args, comment in _commands(_block("Inventories", "sh")):
        assert args[0] == "synack" and comment, args
        result = runner.invoke(app, args[1:])
        assert result.exit_code == 0, (args, result.output)
        ran.add(args[1])
        if args[1:] == ["servers", "--since", "7d", "--nets", "all"]:
            # The README says it: ages count back from the wall clock, the
            # samples are older, and the empty answer names its range.
            assert result.output.startswith("no server ports from ") and " UTC " in result.output, result.output
            continue
        if "--json" in args:
            assert json.loads(result.output)["days"] == 4
            continue
        assert PROMISES[args[1]] in result.output, (args, result.output)
        if "--as-of" in args:  # archived logs: the samples' last day is in range
            assert "(0)" not in result.output, result.output
    assert ran == set(PROMISES)


def test_the_notebook_snippet_runs(demo_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's Python snippet, run from a folder holding its store and
    allowlist: every line answers (DataFrames, or the status dictionary)."""
    snippet = _block("From a notebook", "python")
    (tmp_path / "synack-store").symlink_to(demo_store)
    (tmp_path / "allow.txt").write_text("10.1.0.10 tcp 80,443\n")
    monkeypatch.chdir(tmp_path)
    results: dict[str, object] = {}
    for number, line in enumerate(snippet.splitlines()):
        code = line.split("  #", 1)[0].strip()
        if not code:
            continue
        if code.startswith(("from ", "import ")) or "=" in code.split("(", 1)[0]:
            exec(code, results)  # noqa: S102 - the README's own code
        else:
            results[f"line{number}"] = eval(code, results)  # noqa: S307
    answers = [v for k, v in results.items() if k.startswith("line")]
    frames = [f for a in answers for f in (a if isinstance(a, tuple) else (a,)) if isinstance(f, pd.DataFrame)]
    assert len(frames) >= 6 and any(len(f) for f in frames)
    status = next(a for a in answers if isinstance(a, dict))
    assert status["days"] == 4 and status["records"] > 0


def test_the_next_question_examples_run_as_written(demo_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The filters and `synack host` block of "Inventories" runs and answers."""
    monkeypatch.setenv("SYNACK_STORE", str(demo_store))
    section = README.split("\n## Inventories\n", 1)[1].split("**The next question.**", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    promises = {"servers": "Server ports (", "clients": "Client ports (", "host": "host 10.1.0.11: sensors",
                "new-ports": "new server ports"}  # fmt: skip
    ran = set()
    for args, comment in _commands(block):
        result = runner.invoke(app, args[1:])
        assert result.exit_code == 0 and comment, (args, result.output)
        assert promises[args[1]] in result.output, (args, result.output)
        ran.add(args[1])
    assert ran == set(promises)

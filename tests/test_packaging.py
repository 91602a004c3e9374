"""The distribution installs one top-level name, `synack`, holding the
repository's folders as subpackages, the data they read, and the command."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(out)]
    build = subprocess.run([*command, str(ROOT)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    (built,) = out.glob("synack-*.whl")
    return zipfile.ZipFile(built)


@pytest.mark.slow
def test_the_wheel_holds_no_top_level_name_but_synack(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    top = {name.split("/", 1)[0] for name in names}
    assert top == {"synack", next(t for t in top if t.endswith(".dist-info"))}, top
    for needed in ("synack/__init__.py", "synack/__main__.py", "synack/cli.py", "synack/py.typed",
                   "synack/ingest/store_files.py", "synack/inventory/store_inventory.py",
                   "synack/inventory/data/port_names.tsv", "synack/samples/explore.ipynb",
                   "synack/samples/zeek/current/conn.log"):  # fmt: skip
        assert needed in names, needed
    assert not [n for n in names if n.startswith(("synack/tests/", "synack/bench/", "synack/zeek_scripts/"))]
    entry_points = wheel.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "synack = synack.cli:main" in entry_points


def test_the_public_import_and_python_dash_m() -> None:
    """`from synack import Inventory` is the inventory's class; `python -m synack` is the command."""
    import synack
    from synack.inventory.store_inventory import Inventory

    assert synack.Inventory is Inventory
    with pytest.raises(AttributeError):
        _ = synack.no_such_name
    result = subprocess.run([sys.executable, "-m", "synack", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "servers" in result.stdout, result.stderr


def test_nothing_imports_the_folders_by_their_repository_names() -> None:
    """`import ingest...` would load a second copy of a module from the
    checkout (a namespace package), beside the installed synack.ingest:
    a monkeypatch or an isinstance check then misses. Only `synack.` names."""
    bare = re.compile(r"^\s*(?:import|from)\s+(?:ingest|inventory|samples|cli)\b", re.M)
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("ingest", "inventory", "samples", "tests", "bench", "docs")
        for path in (ROOT / folder).rglob("*.py")
        if bare.search(path.read_text(encoding="utf-8"))
    ]
    offenders += [name for name in ("cli.py", "__init__.py", "__main__.py") if bare.search((ROOT / name).read_text())]
    assert not offenders


def test_the_watch_unit_can_write_the_baseline_the_readme_recommends() -> None:
    """Before: the README's --export-known path was outside the unit's ReadWritePaths (ProtectSystem=strict
    made every export fail, and the unit did not ask for one)."""
    unit = (ROOT / "deploy" / "synack-watch.service").read_text()
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    target = Path(re.search(r"--export-known (\S+)", exec_start).group(1))  # type: ignore[union-attr]
    writable = [Path(p) for line in unit.splitlines() if line.startswith("ReadWritePaths=")
                for p in line.split("=", 1)[1].split()]  # fmt: skip
    assert "ProtectSystem=strict" in unit and target.parent in writable
    readme = (ROOT / "README.md").read_text()
    assert f"--export-known {target}" in readme and f'known_servers_file = "{target}"' in readme

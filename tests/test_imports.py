"""The package's shape: one-way imports between its parts, and no work at import.

- The parts of `callmetrics` (each subpackage, each top-level module) import each other in one
  direction only: the graph of every `import` in src/ (function-local ones included, so none
  can hide a cycle) has no cycle, and the lower layers never load Dagster.
- Each part imports alone in a fresh interpreter.
- Importing every module of the project opens no file of the project (outside its source),
  lists no folder of it, touches no data folder and starts no process: an audit hook
  (`sys.addaudithook`) watches a fresh interpreter import them all.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from callmetrics.settings import PROJECT_ROOT

SRC = PROJECT_ROOT / "src"
PACKAGE = SRC / "callmetrics"
# The bottom layers: what they import must never pull in the orchestrator.
WITHOUT_DAGSTER = ("settings", "errors", "exporter", "publishing", "generation", "api")


def part_of(module: str) -> str:
    """`callmetrics.exporter.query` -> `exporter`; `callmetrics.pipeline` -> `pipeline`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def module_name(path: Path) -> str:
    relative = path.relative_to(SRC).with_suffix("")
    parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """Every `callmetrics...` module a file imports, wherever the import statement is."""
    found: set[str] = set()
    package = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else (
        module_name(path)
    )
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
    return {name for name in found if name == "callmetrics" or name.startswith("callmetrics.")}


def part_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        source = part_of(module_name(path))
        for target in map(part_of, imported_modules(path)):
            if source and target and target != source:
                graph.setdefault(source, set()).add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def all_parts() -> list[str]:
    return sorted(
        p.stem if p.is_file() else p.name
        for p in PACKAGE.iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()
    )


def all_modules() -> list[str]:
    return sorted(module_name(p) for p in PACKAGE.rglob("*.py") if p.stem != "__main__")


# ----------------------------------------------------------------------------- the tests


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "a2": {"c"}}) is None


def test_the_parts_of_the_package_import_each_other_one_way() -> None:
    graph = part_graph()
    # the graph is the real one: the command layer reaches the orchestration, which reaches
    # publishing and the exporter, which reach the settings
    assert {"orchestration", "publishing"} <= graph["pipeline"]
    assert {"exporter", "publishing", "settings"} <= graph["orchestration"]
    assert "settings" in graph["exporter"]
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph) or [])}"
    # the bottom layers import nothing above them
    for low in WITHOUT_DAGSTER:
        assert not graph.get(low, set()) & {"orchestration", "pipeline", "cli", "rollback"}, low


def test_no_top_level_orchestration_package_is_left() -> None:
    assert not (PROJECT_ROOT / "orchestration").exists()
    assert "orchestration" in all_parts()


@pytest.mark.parametrize("part", all_parts())
def test_each_part_imports_alone_in_a_fresh_interpreter(part: str) -> None:
    code = (
        "import importlib, json, sys\n"
        f"importlib.import_module('callmetrics.{part}')\n"
        "print(json.dumps('dagster' in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    if part in WITHOUT_DAGSTER:
        assert json.loads(done.stdout.splitlines()[-1]) is False, f"{part} loads Dagster"


# The child: load the third-party libraries first (their own imports may read their files), then
# watch every file opened, folder listed and process started while each project module imports.
_WATCH_IMPORTS = r"""
import importlib, json, os, sys
import dagster, dagster_dbt, duckdb, fastapi, pandas, psycopg, pyarrow.parquet, uvicorn

project, src, watched = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
modules = json.loads(sys.argv[4])
seen = []

def inside(path, folder):
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)

def hook(event, args):
    if event == "subprocess.Popen" or event == "os.system" or event == "os.posix_spawn":
        seen.append([event, repr(args[:2])])
        return
    if event not in ("open", "os.listdir", "os.scandir"):
        return
    target = args[0] if args else None
    if isinstance(target, bytes):
        target = os.fsdecode(target)
    if not isinstance(target, str):
        return
    path = os.path.abspath(target)
    if any(inside(path, folder) for folder in watched):
        seen.append([event, path])
    elif inside(path, project) and not inside(path, sys.prefix):
        # the interpreter reads the project's own source (and writes its byte code)
        if inside(path, src) and (path.endswith((".py", ".pyc")) or "__pycache__" in path
                                  or os.path.isdir(path)):
            return
        seen.append([event, path])

sys.addaudithook(hook)
for name in modules:
    before = len(seen)
    importlib.import_module(name)
    for item in seen[before:]:
        item.insert(0, name)
print(json.dumps(seen))
"""


def test_importing_every_module_does_no_io_and_starts_no_process(tmp_path: Path) -> None:
    modules = all_modules()
    assert "callmetrics.orchestration.definitions" in modules and len(modules) > 60
    data = tmp_path / "data"
    env = {
        **os.environ,
        "CALLMETRICS_RAW_DIR": str(data / "raw"),
        "CALLMETRICS_WAREHOUSE": str(data / "warehouse" / "callmetrics.duckdb"),
        "CALLMETRICS_KEYS": str(data / "keys.json"),
        "CALLMETRICS_EXPORT_DIR": str(data / "exports"),
    }
    watched = [str(data), str(PROJECT_ROOT / "data"), str(PROJECT_ROOT / "target")]
    done = subprocess.run(
        [sys.executable, "-c", _WATCH_IMPORTS, str(PROJECT_ROOT), str(SRC), json.dumps(watched),
         json.dumps(modules)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen == [], "work at import:\n" + "\n".join(" ".join(item) for item in seen)


def test_the_watch_sees_io_at_import(tmp_path: Path) -> None:
    """The audit hook is not blind: a module that reads a project file at import is caught."""
    (tmp_path / "noisy").mkdir()
    (tmp_path / "noisy" / "__init__.py").write_text(
        "from pathlib import Path\nPath(__file__).parent.with_name('data.txt').read_text()\n"
        "import subprocess\nsubprocess.run(['true'])\n",
        encoding="utf-8",
    )
    (tmp_path / "data.txt").write_text("x", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", _WATCH_IMPORTS, str(tmp_path), str(tmp_path / "noisy"), "[]",
         json.dumps(["noisy"])],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.splitlines()[-1])
    assert ["noisy", "open", str(tmp_path / "data.txt")] in seen
    assert any(item[1] == "subprocess.Popen" for item in seen)

"""The package's shape: imports run one way (the layers in pyproject.toml), no cycles, lint clean."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

PKG = ROOT / "leakscan"
#: Every module by its dotted name under leakscan: ``audit``, ``sources.rows``... (package inits left out).
FILES = {(p.relative_to(PKG).with_suffix("").as_posix().replace("/", ".")): p
         for p in PKG.rglob("*.py") if p.stem not in ("__init__", "__main__")}
MODULES = set(FILES)


def _module_of(dotted: str) -> str | None:
    """The module of ``MODULES`` that ``dotted`` (a name under leakscan) is, or lies in."""
    parts = dotted.split(".")
    for k in range(len(parts), 0, -1):
        if ".".join(parts[:k]) in MODULES:
            return ".".join(parts[:k])
    return None


def _relative_imports(name: str, path: Path) -> set[str]:
    """Modules of the package that ``path`` imports, at the top or inside functions."""
    package = name.split(".")[:-1]  # the package holding the module, relative to leakscan
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        targets = []
        if isinstance(node, ast.ImportFrom) and node.level >= 1:
            base = package[:len(package) - (node.level - 1)] if node.level > 1 else package
            prefix = ".".join(base + ([node.module] if node.module else []))
            if node.module is None:
                targets = [".".join(base + [a.name]) for a in node.names]
            else:
                targets = [prefix] + [f"{prefix}.{a.name}" for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("leakscan."):
            targets = [node.module.removeprefix("leakscan.")]
        elif isinstance(node, ast.Import):
            targets = [a.name.removeprefix("leakscan.") for a in node.names if a.name.startswith("leakscan.")]
        for t in targets:
            m = _module_of(t)
            if m is not None and m != name:
                out.add(m)
    return out


GRAPH = {m: _relative_imports(m, FILES[m]) for m in sorted(MODULES)}


def _layers() -> list[list[str]]:
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (contract,) = config["tool"]["importlinter"]["contracts"]
    return [[m.strip().removeprefix("leakscan.") for m in layer.split("|")] for layer in contract["layers"]]


def test_every_module_has_a_layer():
    placed = [m for layer in _layers() for m in layer]
    assert sorted(placed) == sorted(MODULES), set(MODULES) ^ set(placed)


def test_imports_run_down_the_layers_only():
    rank = {m: len(_layers()) - k for k, layer in enumerate(_layers()) for m in layer}
    bad = [f"{a} imports {b}" for a, deps in GRAPH.items() for b in deps if rank[b] >= rank[a]]
    assert not bad, bad


def test_no_import_cycles_lazy_imports_included():
    state: dict[str, int] = {}

    def visit(m, path):
        if state.get(m) == 1:
            raise AssertionError("import cycle: " + " -> ".join(path + [m]))
        if state.get(m) == 2:
            return
        state[m] = 1
        for d in sorted(GRAPH[m]):
            visit(d, path + [m])
        state[m] = 2

    for m in GRAPH:
        visit(m, [])


def test_the_cache_is_a_leaf():
    assert GRAPH["cache"] == set()


def test_no_submodule_imports_the_package_init():
    bad = []
    for name, path in sorted(FILES.items()):
        package = name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level >= 1 and node.module is None:
                    base = package[:len(package) - (node.level - 1)] if node.level > 1 else package
                    bad += [f"{path.name}: from {'.' * node.level} import {a.name}" for a in node.names
                            if ".".join(base + [a.name]) not in MODULES]
                if node.level == 0 and node.module == "leakscan":
                    bad.append(f"{path.name}: from leakscan import ...")
    assert not bad, bad


def _tool(name: str) -> str:
    exe = Path(sys.executable).parent / name
    found = str(exe) if exe.exists() else shutil.which(name)
    if not found:
        pytest.skip(f"{name} is not installed (it comes with the test extra: pip install -e '.[test]')")
    return found


def test_import_linter_contract_is_kept():
    r = subprocess.run([_tool("lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]


def test_ruff_is_clean():
    r = subprocess.run([_tool("ruff"), "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]


def test_readme_module_map_lists_every_module_once():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Development", 1)[1].split("```", 2)[1]
    listed = [line.split()[0] for line in block.splitlines() if line.startswith("  ") and line.split()[0].endswith(".py")]
    assert sorted(listed) == sorted(p.name for p in PKG.glob("*.py"))
    assert any(line.split()[0] == "sources/" for line in block.splitlines() if line.startswith("  "))


#: Distribution name -> the module it is imported as.
IMPORT_NAME = {"pillow": "PIL", "faiss-cpu": "faiss", "opencv-python-headless": "cv2", "scikit-learn": "sklearn", "dask": "dask",
               "import-linter": "importlinter"}
#: Imported only where a missing package is a clear error or a skip, never declared by us.
OPTIONAL = {"pyarrow", "pandas"}


def _third_party_imports(paths) -> set[str]:
    out = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                out |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                out.add(node.module.split(".")[0])
    local = {"leakscan", "conftest", "corpus", "test_verify"}
    return {m for m in out if m not in sys.stdlib_module_names and m not in local}


def _declared(group: str | None) -> set[str]:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] if group is None else project["optional-dependencies"][group]
    names = {r.split(">")[0].split("[")[0].split("=")[0].split("<")[0].strip().lower() for r in reqs}
    return {IMPORT_NAME.get(n, n.replace("-", "_")) for n in names}


def test_declared_dependencies_match_the_imports():
    core = _declared(None)
    used = _third_party_imports(PKG.rglob("*.py"))
    extras = (_declared("dask") | {"distributed"} | _declared("onnx") | _declared("hf") | _declared("parquet")
              | _declared("dicom") | _declared("geo") | _declared("heif"))
    assert used - core - extras - OPTIONAL == set(), "imported but not declared"
    assert core - used == set(), "declared but not imported by leakscan/"
    tests = _third_party_imports((ROOT / "tests").glob("*.py"))
    assert tests - core - _declared("test") - {"distributed"} - OPTIONAL == set(), "tests import undeclared packages"


def _release(version: str) -> tuple:
    return tuple(int(part) for part in version.split("."))


def test_the_lowest_pins_are_the_declared_lower_bounds():
    """`.ci/lowest.txt` pins each runtime dependency at the oldest release its lower bound in
    pyproject.toml allows (`make test-lowest` runs the tests on them): a bound raised or lowered
    without its pin, or a dependency added without one, fails here."""
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    bounds = {}
    for req in project["dependencies"]:
        name, _, rest = req.partition(">=")
        bounds[name.split("[")[0].strip().lower()] = rest.split(",")[0].strip()
    pins = {}
    for line in (ROOT / ".ci" / "lowest.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name.strip().lower()] = version.strip()
    assert set(pins) == set(bounds), "pinned but not a dependency, or a dependency without a pin"
    for name, bound in bounds.items():
        assert bound, f"{name} has no lower bound in pyproject.toml"
        # the pin is a release of the bound's series (opencv's 4.8 is published as 4.8.0.74)
        low = _release(bound)
        assert _release(pins[name])[:len(low)] == low, f"{name}: pinned {pins[name]}, lower bound {bound}"

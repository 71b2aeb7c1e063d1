"""The package's import structure: no submodule imports the package __init__."""

import ast

from conftest import ROOT

PKG = ROOT / "leakscan"


def _imports(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            yield node


def test_no_submodule_imports_the_package_init():
    modules = {p.stem for p in PKG.glob("*.py")}
    bad = []
    for path in sorted(PKG.glob("*.py")):
        if path.name == "__init__.py":
            continue
        for node in _imports(path):
            if node.level == 1 and node.module is None:  # from . import x: must name a module
                bad += [f"{path.name}: from . import {a.name}" for a in node.names if a.name not in modules]
            if node.level == 0 and node.module == "leakscan":
                bad.append(f"{path.name}: from leakscan import ...")
    assert not bad, bad

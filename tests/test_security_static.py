"""Static security checks over the package: no unsafe deserialisation or dynamic code,
and bandit finds nothing of medium severity or above."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys

import pytest

from .conftest import PROJECT

PACKAGE = PROJECT / "qa"
SOURCES = sorted(PACKAGE.rglob("*.py"))
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "cloudpickle"}
UNSAFE_CALLS = {"eval", "exec", "compile", "__import__"}


def _violations(source: str, name: str) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename=name)):
        where = f"{name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            found += [f"{where} imports {a.name}" for a in node.names if _unsafe(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.module and _unsafe(node.module):
            found.append(f"{where} imports from {node.module}")
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in UNSAFE_CALLS:
                found.append(f"{where} calls {func.id}()")
            if any(k.arg == "allow_pickle" and _truthy(k.value) for k in node.keywords):
                found.append(f"{where} passes allow_pickle=True")
    return found


def _unsafe(module: str) -> bool:
    return module.split(".")[0] in UNSAFE_MODULES


def _truthy(node: ast.expr) -> bool:
    return not (isinstance(node, ast.Constant) and not node.value)


def test_the_package_sources_are_found():
    assert len(SOURCES) > 10 and PACKAGE / "web" / "app.py" in SOURCES


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PROJECT)))
def test_no_pickle_marshal_shelve_eval_or_exec(path):
    assert _violations(path.read_text(), str(path.relative_to(PROJECT))) == []


def test_the_checker_catches_what_it_looks_for():
    code = (
        "import pickle\nfrom marshal import loads\nimport shelve as s\n"
        "eval('1')\nexec('x = 1')\nnp.load(f, allow_pickle=True)\n"
        "model.eval()\nnp.load(f, allow_pickle=False)\n"  # a method, and a safe call: fine
    )
    assert len(_violations(code, "sample.py")) == 6


def _bandit() -> list[str] | None:
    if shutil.which("bandit"):
        return ["bandit"]
    try:
        import bandit  # noqa: F401
    except ImportError:
        return None
    return [sys.executable, "-m", "bandit"]


def test_bandit_finds_nothing_of_medium_severity_or_above():
    command = _bandit()
    if command is None:
        if os.environ.get("CI"):
            pytest.fail("bandit is not installed, and CI must run it: pip install bandit")
        pytest.skip("bandit is not installed (pip install bandit); CI runs it")
    result = subprocess.run(
        [*command, "-r", "qa", "-ll", "-f", "json", "-q"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.stdout, result.stderr
    report = json.loads(result.stdout)
    assert not report["errors"], report["errors"]
    found = [
        f"{r['filename']}:{r['line_number']} {r['test_id']} {r['issue_text']}"
        for r in report["results"]
    ]
    assert found == [], "\n".join(found)
    assert result.returncode == 0

"""The house rules of the layout, checked on the source: one domain one place, no import cycles between
packages, settings read in one place, and a README map that matches the tree."""

import ast
import re
from pathlib import Path

from ops_platform.definitions import collect, defs, wiring_modules

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "ops_platform"
WIRING = ("assets", "jobs", "schedules", "sensors")
# The launcher and the settings themselves may read the environment; nothing else does.
ENV_READERS = {"settings.py", "runtime.py", "embedded.py", "cli.py"}


def modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def package_imports() -> dict[str, set[str]]:
    """{package: packages of ops_platform it imports at module level (TYPE_CHECKING blocks aside)}."""
    edges: dict[str, set[str]] = {}
    for path in modules():
        own = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
                node.body = []
        for node in ast.walk(tree):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                if name.startswith("ops_platform.") and name.split(".")[1] != own:
                    edges.setdefault(own, set()).add(name.split(".")[1])
    return edges


def test_no_import_cycle_between_packages():
    edges = package_imports()
    seen, on_path = set(), []

    def visit(node):
        assert node not in on_path, f"import cycle: {' → '.join([*on_path[on_path.index(node):], node])}"
        if node in seen:
            return
        on_path.append(node)
        for nxt in sorted(edges.get(node, ())):
            visit(nxt)
        on_path.pop()
        seen.add(node)

    for package in sorted(edges):
        visit(package)
    assert "notifications" not in edges["retry_queue"]  # the queue owns the interface the notifier implements


def test_init_files_hold_only_a_docstring_and_imports():
    for path in PACKAGE.rglob("__init__.py"):
        if path.parent == PACKAGE:
            continue  # the package root also silences Dagster's BetaWarning for BackfillPolicy, once
        for node in ast.parse(path.read_text()).body:
            is_doc = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            is_all = isinstance(node, ast.Assign) and [getattr(t, "id", "") for t in node.targets] == ["__all__"]
            assert is_doc or is_all or isinstance(node, ast.Import | ast.ImportFrom), f"{path}: line {node.lineno}"


def test_only_the_settings_and_the_launcher_read_the_environment():
    for path in modules():
        if path.name in ENV_READERS:
            continue
        source = path.read_text()
        assert not re.search(r"os\.environ|os\.getenv|getenv\(", source), f"{path} reads the environment"


def test_every_definition_of_the_wiring_modules_is_registered_once():
    found = collect(wiring_modules())
    repo = defs.get_repository_def()
    assert {j.name for j in found["jobs"]} <= set(repo.job_names)
    assert {s.name for s in found["schedules"]} == {s.name for s in repo.schedule_defs}
    assert {s.name for s in found["sensors"]} == {s.name for s in repo.sensor_defs}
    names = [d.name for kind in ("jobs", "schedules", "sensors") for d in found[kind]]
    assert len(names) == len(set(names))


def test_wiring_folders_hold_one_module_per_domain_and_each_domain_has_one_name():
    logic = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()} - set(WIRING)
    for folder in WIRING:
        for path in (PACKAGE / folder).glob("*.py"):
            domain = path.stem
            if domain == "__init__":
                continue
            assert domain in logic or domain in WIRING_ONLY, f"{folder}/{path.name}: no ops_platform/{domain}/"


WIRING_ONLY = {"operational"}  # the health check of the operational tables: SQL in assets/operational.py


def test_the_readme_map_matches_the_tree():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Where things are", 1)[1].split("```", 2)[1]
    mapped = set(re.findall(r"^\s{2}([a-z_]+)/", block, flags=re.M)) - set(WIRING)
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert mapped == folders - set(WIRING), (mapped ^ (folders - set(WIRING)))
    for folder in WIRING:
        assert f"{folder}/" in block

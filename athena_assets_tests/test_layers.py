"""The layers stay apart: the front ends (`cli/`, `mcp/`) import only the application layer
(`athena_assets/api/`) and the front ends themselves (`athena mcp` serves the MCP server), and
`resources/` never imports the package."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT_PACKAGES = ("athena_assets", "resources")
FRONT_ENDS = ("athena_assets.cli", "athena_assets.mcp")


def _project_imports(root: Path, folder: str) -> list[tuple[str, str]]:
    """(file:line, module) of every import of this project's packages by the modules under `folder`
    (relative imports resolved against their package)."""
    found = []
    for path in sorted((root / folder).rglob("*.py")):
        package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package.rsplit(".", node.level - 1)[0] if node.level else ""
                modules = [".".join(part for part in (base, node.module or "") if part)]
            else:
                continue
            where = f"{path.relative_to(root)}:{node.lineno}"
            found += [(where, m) for m in modules if m.split(".")[0] in PROJECT_PACKAGES]
    return found


def _below_the_api(root: Path) -> list[tuple[str, str]]:
    return [
        (where, module)
        for front in ("athena_assets/cli", "athena_assets/mcp")
        for where, module in _project_imports(root, front)
        if not module.startswith(("athena_assets.api", *FRONT_ENDS))
    ]


def test_front_ends_import_only_the_application_layer() -> None:
    assert not _below_the_api(ROOT), "a front end reaches below athena_assets/api/"


def test_resources_never_import_the_package() -> None:
    wrong = [(w, m) for w, m in _project_imports(ROOT, "resources") if m.startswith("athena_assets")]
    assert not wrong, f"resources/ imports athena_assets: {wrong}"


def test_the_guard_sees_an_import_below_the_api(tmp_path: Path) -> None:
    """Not vacuous: a front-end module importing a resource or a Dagster definition is caught, also
    through a relative import."""
    cli = tmp_path / "athena_assets" / "cli"
    cli.mkdir(parents=True)
    (cli / "ok.py").write_text("from athena_assets.api.recall import recall\nfrom . import run\n")
    (cli / "bad.py").write_text("import json\nfrom resources.memory.store import MemoryStore\n")
    (cli / "sly.py").write_text("from ..defs.resources import AthenaResources\n")
    assert _below_the_api(tmp_path) == [
        ("athena_assets/cli/bad.py:2", "resources.memory.store"),
        ("athena_assets/cli/sly.py:1", "athena_assets.defs.resources"),
    ]

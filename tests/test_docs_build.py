"""The documentation site: it builds with ``mkdocs build --strict``, and it is complete.

Complete means three things. Every page under docs/ is in the nav. Every public operator, sensor,
trigger, hook, link and log class the provider ships is named on some page. Every call shown in
pycarol's README has a row in the "from pycarol" map. The strict build is what catches broken links
and anchors; a test mutates a copy of the docs to prove that it does.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
MKDOCS_YML = REPO / "mkdocs.yml"
PACKAGE = REPO / "airflow_provider_carol"
PYCAROL_SITE = REPO / ".venv-pycarol" / "lib"


def mkdocs_build(config: Path, site_dir: Path) -> subprocess.CompletedProcess[str]:
    """``mkdocs build --strict`` with this interpreter's mkdocs; the build needs no network."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(config),
            "--site-dir",
            str(site_dir),
        ],
        cwd=config.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def nav_pages(nav: Any) -> list[str]:
    """Every page path in an mkdocs ``nav`` (nested sections flattened, external links left out)."""
    if isinstance(nav, str):
        return [] if "://" in nav else [nav]
    if isinstance(nav, list):
        return [page for item in nav for page in nav_pages(item)]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in nav_pages(value)]
    return []


def load_config() -> dict[str, Any]:
    return yaml.safe_load(MKDOCS_YML.read_text())


def docs_text() -> dict[str, str]:
    return {str(path.relative_to(DOCS)): path.read_text() for path in sorted(DOCS.rglob("*.md"))}


# ---------------------------------------------------------------------------------------- the build
def test_docs_build_strict_without_warnings(tmp_path):
    site = tmp_path / "site"
    result = mkdocs_build(MKDOCS_YML, site)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr[-4000:]}"
    assert "WARNING" not in result.stderr, result.stderr[-4000:]
    for page in nav_pages(load_config()["nav"]):
        stem = page.removesuffix(".md")
        built = site / ("index.html" if stem == "index" else f"{stem}/index.html")
        assert built.is_file(), f"{page} was not built to {built}"
    # the screenshots the connection page shows are copied into the site
    for image in (DOCS / "img").glob("*.png"):
        assert (site / "img" / image.name).is_file()


def test_strict_build_fails_on_a_broken_link_a_missing_anchor_and_a_page_outside_the_nav(tmp_path):
    """The check is not vacuous: the same config rejects each kind of breakage, naming it."""
    shutil.copy(MKDOCS_YML, tmp_path / "mkdocs.yml")
    shutil.copytree(DOCS, tmp_path / "docs")
    index = tmp_path / "docs" / "index.md"
    index.write_text(
        index.read_text()
        + "\n[gone](no-such-page.md) [bad anchor](hook.md#no-such-heading) [outside](../README.md)\n"
    )
    (tmp_path / "docs" / "orphan.md").write_text("# Not in the nav\n")

    result = mkdocs_build(tmp_path / "mkdocs.yml", tmp_path / "site")

    assert result.returncode != 0
    assert "'no-such-page.md'" in result.stderr
    assert "'#no-such-heading'" in result.stderr
    assert "'../README.md'" in result.stderr
    assert "orphan.md" in result.stderr


def test_config_uses_only_a_built_in_theme_and_no_plugins():
    config = load_config()
    assert config["strict"] is True
    assert config["theme"]["name"] in {"mkdocs", "readthedocs"}
    assert not config.get("plugins"), "plugins would need extra packages (and some reach the network)"


# ------------------------------------------------------------------------------------- completeness
def test_every_docs_page_is_in_the_nav_once_and_every_nav_entry_exists():
    pages = nav_pages(load_config()["nav"])
    duplicates = sorted({page for page in pages if pages.count(page) > 1})
    assert not duplicates, f"pages listed twice in mkdocs.yml nav: {duplicates}"
    on_disk = set(docs_text())
    assert sorted(on_disk - set(pages)) == [], "pages under docs/ missing from mkdocs.yml nav"
    assert sorted(set(pages) - on_disk) == [], "nav entries with no file under docs/"


def test_readme_links_into_docs_point_at_pages_in_the_nav():
    linked = re.findall(r"\]\(docs/([^)#\s]+)", (REPO / "README.md").read_text())
    assert linked, "README.md links to no docs page"
    pages = set(nav_pages(load_config()["nav"]))
    assert sorted(page for page in linked if page not in pages) == []


def _provider_modules(info: dict[str, Any]) -> set[str]:
    """Modules of the provider info, plus every operator/sensor/trigger module (registered or not yet)."""
    modules = {
        module
        for kind in ("hooks", "operators", "sensors", "triggers")
        for entry in info.get(kind, [])
        for module in entry["python-modules"]
    }
    for kind in ("operators", "sensors", "triggers"):
        modules |= {
            f"airflow_provider_carol.{kind}.{path.stem}"
            for path in (PACKAGE / kind).glob("*.py")
            if not path.stem.startswith("_")
        }
    return modules


def _public_components() -> dict[str, str]:
    """``{class name: dotted path}`` of every public component users put in DAGs or config."""
    from airflow.sdk import BaseHook, BaseOperator
    from airflow.triggers.base import BaseTrigger

    from airflow_provider_carol.get_provider_info import get_provider_info

    info = get_provider_info()
    found: dict[str, str] = {}
    for module_name in sorted(_provider_modules(info)):
        module = importlib.import_module(module_name)
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if (
                cls.__module__ == module_name
                and not name.startswith("_")
                and issubclass(cls, (BaseOperator, BaseHook, BaseTrigger))
            ):
                found[name] = f"{module_name}.{name}"
    classpaths = [
        *info.get("extra-links", []),
        *info.get("logging", []),
        *(entry["classpath"] for entry in info.get("remote-logging", [])),
        *(entry["hook-class-name"] for entry in info.get("connection-types", [])),
    ]
    for classpath in classpaths:
        found[classpath.rsplit(".", 1)[1]] = classpath
    return found


def test_every_public_component_is_named_in_the_docs():
    components = _public_components()
    assert {"CarolHook", "CarolApiOperator", "CarolTaskSensor", "CarolTaskTrigger"} <= set(components)
    text = "\n".join(docs_text().values())
    missing = sorted(
        path for name, path in components.items() if not re.search(rf"\b{re.escape(name)}\b", text)
    )
    assert missing == [], f"public classes no docs page names: {missing}"


# ----------------------------------------------------------------------------- the "from pycarol" map
def _pycarol_readme() -> str:
    """pycarol 2.56.15's README, as its wheel ships it (the long description in METADATA)."""
    found = sorted(PYCAROL_SITE.glob("python3*/site-packages/pycarol-2.56.15.dist-info/METADATA"))
    if not found:
        pytest.fail(
            f"pycarol 2.56.15 is not installed under {PYCAROL_SITE}: run scripts/bootstrap-pycarol.sh"
        )
    return found[0].read_text()


def _python_blocks(rst: str) -> list[str]:
    """The bodies of the ``.. code-block:: python`` directives of an RST text."""
    blocks, lines = [], rst.splitlines()
    for index, line in enumerate(lines):
        if line.strip() != ".. code-block:: python":
            continue
        body = []
        for following in lines[index + 1 :]:
            if following.strip() and not following.startswith("    "):
                break
            body.append(following[4:])
        blocks.append("\n".join(body).strip("\n"))
    return blocks


def _readme_calls(block: str) -> set[tuple[str, str]]:
    """``(receiver, name)`` of each call in a README snippet, receivers resolved to their class.

    ``staging = Staging(carol); staging.start_batch()`` gives ``("Staging", "start_batch")``;
    ``Carol(...)`` gives ``("", "Carol")``. Builtins and the stdlib ``logging`` calls are left out.
    """
    tree = ast.parse(block)
    classes = {
        target.id: node.value.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Name)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    calls = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and not hasattr(builtins, func.id):
            calls.add(("", func.id))
        elif isinstance(func, ast.Attribute):
            receiver = func.value
            if isinstance(receiver, ast.Call) and isinstance(receiver.func, ast.Name):
                calls.add((receiver.func.id, func.attr))
            elif isinstance(receiver, ast.Name) and receiver.id not in {"logging", "logger"}:
                calls.add((classes.get(receiver.id, receiver.id), func.attr))
    return calls


def test_from_pycarol_maps_every_call_of_the_pycarol_readme():
    blocks = _python_blocks(_pycarol_readme())
    assert len(blocks) >= 10, "the README's code blocks were not found"
    calls = set().union(*(_readme_calls(block) for block in blocks))
    assert {("", "track_tasks"), ("Staging", "start_batch"), ("Apps", "get_settings")} <= calls

    page = (DOCS / "from-pycarol.md").read_text()
    table = page.split("## The whole map", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]

    def mapped(receiver: str, name: str) -> bool:
        words = [word for word in (receiver, name) if word]
        return any(all(re.search(rf"\b{re.escape(word)}\b", row) for word in words) for row in rows)

    unmapped = sorted(
        f"{receiver}.{name}".lstrip(".") for receiver, name in calls if not mapped(receiver, name)
    )
    assert unmapped == [], f"pycarol README calls with no row in from-pycarol.md's map: {unmapped}"
    sections = page.split("## The whole map", 1)[1].split("\n## ", 1)[1]
    unexplained = sorted(name for _, name in calls if not re.search(rf"\b{re.escape(name)}\b", sections))
    assert unexplained == [], f"calls the map lists but no section of from-pycarol.md explains: {unexplained}"

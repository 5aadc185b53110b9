"""Check built distributions the way ``twine check`` and an installer would, without extra packages.

Usage: ``python scripts/check_dist.py dist/*`` (``make dist`` runs it); exits non-zero naming each
problem. ``tests/test_dist.py`` runs the same checks on a fresh build.

For each artifact: the file name follows the wheel/sdist naming rules for this name and version; the
core metadata has what PyPI requires and renders (name, version, summary, the README as a markdown
long description), the Airflow and Python floors, the licence; a wheel's RECORD matches every file
(hash and size) and its entry points register the provider; an sdist holds ``pyproject.toml``,
``PKG-INFO`` and nothing from outside its include list.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import re
import sys
import tarfile
import zipfile
from email.message import Message
from email.parser import BytesParser
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NAME = "airflow-provider-carol"
DIST_NAME = NAME.replace("-", "_")
PACKAGE = "airflow_provider_carol"
#: Requirements a user's install relies on: the official providers' floors (docs/compatibility.md).
REQUIRED = {
    "apache-airflow>=2.11.0",
    "apache-airflow-providers-common-compat>=1.23.0",
}
SDIST_TOP = {"PKG-INFO", "pyproject.toml", "README.md", "CHANGELOG.md", "SECURITY.md", "LICENSE",
             ".gitignore", PACKAGE, "example_dags", "docs"}  # hatchling always adds .gitignore


def version() -> str:
    """The version the package declares (``airflow_provider_carol.__version__``, read as text)."""
    text = (REPO / PACKAGE / "__init__.py").read_text()
    match = re.search(r'^__version__ = "([^"]+)"', text, re.M)
    if match is None:
        raise SystemExit("check_dist: no __version__ in the package")
    return match.group(1)


def check_metadata(meta: Message, where: str) -> list[str]:
    """What ``twine check`` and PyPI's upload checks look at, plus this provider's own floors."""
    problems = []

    def want(condition: bool, what: str) -> None:
        if not condition:
            problems.append(f"{where}: {what}")

    want(meta.get("Metadata-Version", "0") >= "2.1", f"Metadata-Version {meta.get('Metadata-Version')}")
    want(meta.get("Name") == NAME, f"Name {meta.get('Name')!r}")
    want(meta.get("Version") == version(), f"Version {meta.get('Version')!r} != {version()!r}")
    want(bool(meta.get("Summary")), "no Summary")
    want(meta.get("Requires-Python") == ">=3.11", f"Requires-Python {meta.get('Requires-Python')!r}")
    want(meta.get("License-Expression") == "Apache-2.0", "License-Expression is not Apache-2.0")
    want("LICENSE" in meta.get_all("License-File", []), "no License-File LICENSE")
    want(meta.get("Description-Content-Type") == "text/markdown", "long description is not text/markdown")
    raw = meta.get_payload(decode=True)  # the long description, as UTF-8 bytes
    body = raw.decode("utf-8") if isinstance(raw, bytes) else ""
    want(body.strip() == (REPO / "README.md").read_text().strip(), "long description is not README.md")
    requires = {r.replace(" ", "") for r in meta.get_all("Requires-Dist", []) if "extra ==" not in r}
    want(requires >= REQUIRED, f"Requires-Dist lacks {sorted(REQUIRED - requires)}")
    return problems


def check_wheel(path: Path) -> list[str]:
    problems = []
    expected = f"{DIST_NAME}-{version()}-py3-none-any.whl"
    if path.name != expected:
        problems.append(f"{path.name}: expected the name {expected}")
    info = f"{DIST_NAME}-{version()}.dist-info"
    with zipfile.ZipFile(path) as wheel:
        names = set(wheel.namelist())
        meta = BytesParser().parsebytes(wheel.read(f"{info}/METADATA"))
        problems += check_metadata(meta, path.name)
        record = list(csv.reader(io.StringIO(wheel.read(f"{info}/RECORD").decode())))
        recorded = {row[0] for row in record}
        if recorded != names:
            problems.append(f"{path.name}: RECORD and archive differ: {sorted(recorded ^ names)[:5]}")
        for name, digest, size in record:
            if not digest:  # RECORD itself
                continue
            data = wheel.read(name)
            algorithm, _, value = digest.partition("=")
            actual = base64.urlsafe_b64encode(hashlib.new(algorithm, data).digest()).rstrip(b"=").decode()
            if actual != value or int(size) != len(data):
                problems.append(f"{path.name}: {name} does not match its RECORD entry")
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
        if f"provider_info = {PACKAGE}.get_provider_info:get_provider_info" not in entry_points:
            problems.append(f"{path.name}: no apache_airflow_provider entry point")
        if "[apache_airflow_provider]" not in entry_points:
            problems.append(f"{path.name}: entry point group apache_airflow_provider missing")
        if f"{info}/licenses/LICENSE" not in names:
            problems.append(f"{path.name}: LICENSE is not in the wheel")
        source = {str(p.relative_to(REPO)) for p in (REPO / PACKAGE).rglob("*.py")}
        missing = source - names
        if missing:
            problems.append(f"{path.name}: modules missing: {sorted(missing)[:5]}")
        outside = {n for n in names if not n.startswith((f"{PACKAGE}/", f"{info}/"))}
        if outside:
            problems.append(f"{path.name}: files outside the package: {sorted(outside)[:5]}")
    return problems


def check_sdist(path: Path) -> list[str]:
    problems = []
    root = f"{DIST_NAME}-{version()}"
    if path.name != f"{root}.tar.gz":
        problems.append(f"{path.name}: expected the name {root}.tar.gz")
    with tarfile.open(path) as sdist:
        names = sdist.getnames()
        stray = {n.split("/")[1] for n in names if n.count("/") >= 1} - SDIST_TOP
        if not all(n == root or n.startswith(f"{root}/") for n in names) or stray:
            problems.append(f"{path.name}: files outside {root}/ or its include list: {sorted(stray)[:5]}")
        for needed in ("PKG-INFO", "pyproject.toml", "LICENSE", f"{PACKAGE}/__init__.py"):
            if f"{root}/{needed}" not in names:
                problems.append(f"{path.name}: {needed} is missing")
        member = sdist.extractfile(f"{root}/PKG-INFO")
        if member is not None:
            problems += check_metadata(BytesParser().parsebytes(member.read()), path.name)
    return problems


def check(path: Path) -> list[str]:
    """Every problem found in one built artifact (an empty list when it is fit to upload)."""
    if path.suffix == ".whl":
        return check_wheel(path)
    if path.name.endswith(".tar.gz"):
        return check_sdist(path)
    return [f"{path.name}: neither a wheel nor an sdist"]


def main(paths: list[str]) -> int:
    artifacts = [Path(p) for p in paths]
    kinds = {p.suffix == ".whl" for p in artifacts}
    problems = [problem for p in artifacts for problem in check(p)]
    if kinds != {True, False}:
        problems.append("expected one wheel and one sdist")
    for problem in problems:
        print(f"check_dist: {problem}", file=sys.stderr)
    if not problems:
        print(f"check_dist: {', '.join(p.name for p in artifacts)}: PASSED")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

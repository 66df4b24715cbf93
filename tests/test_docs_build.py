"""The docs build that ``dev.py test`` runs can fail: a broken link or a warning stops it."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import threadkit

ROOT = Path(__file__).resolve().parent.parent
BUILD_TIMEOUT = 240.0


def _dev() -> ModuleType:
    spec = importlib.util.spec_from_file_location("threadkit_dev", ROOT / "dev.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _build_tiny_site(tmp_path: Path, page: str) -> subprocess.CompletedProcess[str]:
    """Build a one-page site with the project's settings, as dev.py builds the real one."""
    pytest.importorskip("mkdocs")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text(page, encoding="utf-8")
    (docs / "other.md").write_text("# Other\n", encoding="utf-8")
    config = tmp_path / "mkdocs.yml"
    config.write_text(
        f"INHERIT: {ROOT / 'mkdocs.yml'}\n"
        f"docs_dir: {docs}\n"
        "nav:\n  - Home: index.md\n  - Other: other.md\n",
        encoding="utf-8",
    )
    cmd = _dev().mkdocs_build_command(sys.executable, str(tmp_path / "site"), str(config))
    return subprocess.run(
        cmd,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )


def test_the_docs_check_is_strict_and_not_quiet() -> None:
    """dev.py builds the docs with --strict and never with --quiet, which hid warnings."""
    cmd = _dev().mkdocs_build_command("python", "site")
    assert "--strict" in cmd
    assert "--quiet" not in cmd
    assert "-q" not in cmd


@pytest.mark.slow
def test_the_docs_check_fails_on_a_broken_link(tmp_path: Path) -> None:
    """A page linking to a missing page fails dev.py's docs build and names the link."""
    result = _build_tiny_site(tmp_path, "# Home\n\nSee [the missing page](missing.md).\n")
    assert result.returncode != 0, result.stdout + result.stderr
    assert "missing.md" in result.stderr


@pytest.mark.slow
def test_the_docs_check_passes_the_same_site_with_a_good_link(tmp_path: Path) -> None:
    """The same tiny site with a working link builds: the failure above is the link's."""
    result = _build_tiny_site(tmp_path, "# Home\n\nSee [the other page](other.md).\n")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_reference_page_has_every_public_name_once() -> None:
    """docs/reference/index.md renders each name of threadkit.__all__ exactly once."""
    page = (ROOT / "docs" / "reference" / "index.md").read_text(encoding="utf-8")
    entries = re.findall(r"^::: threadkit\.(\w+)$", page, flags=re.MULTILINE)
    assert sorted(entries) == sorted(threadkit.__all__)
    assert len(entries) == len(set(entries))


def test_the_reference_page_starts_with_the_pool() -> None:
    """The reference is ordered for users: the pool and Worker come first."""
    page = (ROOT / "docs" / "reference" / "index.md").read_text(encoding="utf-8")
    entries = re.findall(r"^::: threadkit\.(\w+)$", page, flags=re.MULTILINE)
    assert entries[:2] == ["WorkerPool", "Worker"]


def test_no_docstring_uses_restructuredtext_roles() -> None:
    """Docstrings are Markdown for mkdocstrings: no :meth:, :class: or literal-block ::."""
    offenders = []
    for path in sorted((ROOT / "src" / "threadkit").glob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r":(meth|class|func|attr|exc|mod|data):`", line) or (
                line.rstrip().endswith("::") and not line.lstrip().startswith("#")
            ):
                offenders.append(f"{path.name}:{number}: {line.strip()}")
    assert offenders == []

"""Every script under ``docs/examples`` runs cleanly, so no documentation sample rots."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import docs_inline

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "docs" / "examples").glob("*.py"))
# How long one example may run; the tutorial ones take well under a second.
EXAMPLE_TIMEOUT = 30.0


def test_examples_are_found() -> None:
    """The glob finds the examples, so an empty parametrization cannot pass silently."""
    assert EXAMPLES, "no docs/examples/*.py found"


@pytest.mark.parametrize("script", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_example_exits_zero(script: Path) -> None:
    """The example runs in a fresh interpreter, with warnings as errors, and exits 0."""
    result = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=EXAMPLE_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, (
        f"{script.name} exited {result.returncode}\n"
        f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    )


@pytest.mark.parametrize("script", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_example_is_shown_in_a_page(script: Path) -> None:
    """Each example is shown inline in some page, so none is orphaned."""
    shown = docs_inline.shown_sources()
    assert f"docs/examples/{script.name}" in shown, f"no page shows {script.name}"


@pytest.mark.parametrize("page", docs_inline.pages(), ids=lambda page: page.name)
def test_a_page_shows_its_examples_as_they_are(page: Path) -> None:
    """Every inline example block equals its source (run python tests/docs_inline.py)."""
    assert docs_inline.stale_blocks(page) == []


@pytest.mark.parametrize("page", docs_inline.pages(), ids=lambda page: page.name)
def test_a_page_reads_well_outside_the_site(page: Path) -> None:
    """No page includes code with --8<-- markers, which a code host shows as text."""
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"^--8<--", text, flags=re.MULTILINE)

"""Every script under ``docs/examples`` runs cleanly, so no documentation sample rots."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "docs" / "examples").glob("*.py"))
# How long one example may run; the tutorial ones take well under a second.
EXAMPLE_TIMEOUT = 30.0
_SNIPPET = re.compile(r'--8<--\s+"(docs/examples/[^":]+\.py)')


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
    """Each example is embedded in some page with ``--8<--``, so none is orphaned."""
    embedded = {
        match
        for page in (ROOT / "docs").rglob("*.md")
        for match in _SNIPPET.findall(page.read_text(encoding="utf-8"))
    }
    assert f"docs/examples/{script.name}" in embedded, f"no page embeds {script.name}"

"""Keep the example code shown in the Markdown pages identical to ``docs/examples``.

The pages show their code inline, so they read well where users open them (a code
host, an editor, the sdist), not only on the built site. Each block is announced by a
comment naming its source, a file or a ``file:section`` marked in the file with
``# --8<-- [start:section]`` and ``# --8<-- [end:section]``::

    <!-- example: docs/examples/worker_downloader.py:worker -->
    ```python
    ...the code...
    ```

``python tests/docs_inline.py`` rewrites every such block from its source;
``tests/test_docs_examples.py`` fails when a block and its source differ.
"""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# A marker comment, the fence that opens the block, the code, the closing fence.
BLOCK = re.compile(
    r"(?P<head><!-- example: (?P<source>docs/examples/[\w.]+\.py)(?::(?P<section>\w+))? -->\n"
    r"```python\n)(?P<code>.*?)(?P<tail>^```$)",
    re.MULTILINE | re.DOTALL,
)
_SECTION_LINE = re.compile(r"^\s*# --8<-- \[(start|end):\w+\]\s*$")


def source_code(source: str, section: str | None) -> str:
    """The code a block shows: the file, or one section, without the section markers."""
    lines = (ROOT / source).read_text(encoding="utf-8").splitlines()
    if section is not None:
        marks = [line.strip() for line in lines]  # a section may be indented
        start = marks.index(f"# --8<-- [start:{section}]")
        end = marks.index(f"# --8<-- [end:{section}]")
        lines = lines[start + 1 : end]
    kept = [line for line in lines if not _SECTION_LINE.match(line)]
    return textwrap.dedent("\n".join(kept)).strip("\n") + "\n"


def pages() -> list[Path]:
    """Every Markdown page that may show examples, the README included."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def stale_blocks(page: Path) -> list[str]:
    """The sources whose block in ``page`` differs from the source's code."""
    text = page.read_text(encoding="utf-8")
    return [
        f"{m['source']}{':' + m['section'] if m['section'] else ''}"
        for m in BLOCK.finditer(text)
        if m["code"] != source_code(m["source"], m["section"])
    ]


def shown_sources() -> set[str]:
    """Every example file some page shows (in full or a section of it)."""
    return {
        match["source"]
        for page in pages()
        for match in BLOCK.finditer(page.read_text(encoding="utf-8"))
    }


def rewrite(page: Path) -> bool:
    """Refresh every block of ``page`` from its source; ``True`` if the page changed."""
    text = page.read_text(encoding="utf-8")
    new = BLOCK.sub(lambda m: m["head"] + source_code(m["source"], m["section"]) + m["tail"], text)
    if new != text:
        page.write_text(new, encoding="utf-8")
    return new != text


if __name__ == "__main__":
    changed = [str(page.relative_to(ROOT)) for page in pages() if rewrite(page)]
    print("\n".join(f"rewrote {name}" for name in changed) or "every page is up to date")
    sys.exit(0)

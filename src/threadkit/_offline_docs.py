"""``threadkit docs``: the documentation, installed with the package and read offline.

threadkit has no web address for its documentation yet, so a user who installed it with
pip reaches the docs through the command they already have. The wheel carries the pages
(Markdown, with every example's code shown inline) as ``threadkit/docs``; in a checkout
of the repository the pages are read from its ``docs`` folder.

    threadkit docs                 # list the pages, with their titles
    threadkit docs backpressure    # print one page (a name, or a path such as how-to/x)
    threadkit docs reference       # the API reference: every signature and docstring
    threadkit docs --path          # the folder that holds the pages, to open elsewhere

It uses threadkit as any user does (it imports nothing private).
"""

from __future__ import annotations

import argparse
import inspect
from importlib import resources
from pathlib import Path

import threadkit

__all__ = ["add_arguments", "find_docs", "pages", "render", "run_docs"]

# The pages, in the order a reader needs them (the site's navigation order).
_SECTIONS = ("index.md", "tutorial", "how-to", "explanation", "reference")


def find_docs() -> Path | None:
    """The folder of the Markdown pages: installed with the package, or in a checkout."""
    installed = resources.files("threadkit") / "docs"
    if installed.is_dir() and isinstance(installed, Path):
        return installed
    checkout = Path(__file__).resolve().parents[2] / "docs"
    if (checkout / "index.md").is_file():
        return checkout
    return None


def pages(root: Path) -> list[tuple[str, str]]:
    """``(name, title)`` of every page under ``root``, in reading order; the name is the
    path without ``.md`` (``how-to/backpressure``)."""
    found: list[tuple[str, str]] = []
    for section in _SECTIONS:
        path = root / section
        files = [path] if path.is_file() else sorted(path.rglob("*.md"))
        for page in files:
            name = page.relative_to(root).with_suffix("").as_posix()
            found.append((name, _title(page)))
    return found


def _title(page: Path) -> str:
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return page.stem


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``docs`` sub-command's arguments to ``parser``."""
    parser.add_argument(
        "page",
        nargs="?",
        help="the page to print: its name (backpressure) or path (how-to/backpressure)",
    )
    parser.add_argument(
        "--path", action="store_true", help="print the folder that holds the pages and exit"
    )


def run_docs(page: str | None, *, show_path: bool = False) -> tuple[int, str]:
    """Run the ``docs`` sub-command: ``(exit status, text to print)``."""
    root = find_docs()
    if root is None:
        return 1, "threadkit docs: the pages are not installed with this copy of threadkit"
    if show_path:
        return 0, str(root)
    listing = pages(root)
    if page is None:
        width = max(len(name) for name, _ in listing)
        lines = [f"{name:<{width}}  {title}" for name, title in listing]
        lines.append("")
        lines.append("Print a page with: threadkit docs NAME")
        return 0, "\n".join(lines)
    wanted = page.removesuffix(".md").strip("/")
    names = [name for name, _ in listing]
    matches = [name for name in names if name in (wanted, f"{wanted}/index")]
    if not matches:  # a page's last part alone: backpressure for how-to/backpressure
        matches = [name for name in names if name.split("/")[-1] == wanted]
    if len(matches) != 1:
        known = ", ".join(name for name, _ in listing)
        what = "no page" if not matches else "more than one page"
        return 2, f"threadkit docs: {what} named {page!r}; the pages are: {known}"
    return 0, render((root / f"{matches[0]}.md").read_text(encoding="utf-8")).rstrip()


def render(text: str) -> str:
    """The page as Markdown a terminal shows well: each reference entry
    (``::: threadkit.NAME`` and its indented options, which the docs site expands) becomes
    the object's signature and docstring."""
    out: list[str] = []
    lines = iter(text.splitlines())
    for line in lines:
        if not line.startswith("::: threadkit."):
            out.append(line)
            continue
        name = line.removeprefix("::: threadkit.").strip()
        out.extend(_describe(name))
        for following in lines:  # skip the entry's options, keep what comes after
            if not following.startswith(" "):
                out.append(following)
                break
    return "\n".join(out) + "\n"


def _describe(name: str) -> list[str]:
    obj = getattr(threadkit, name, None)
    if obj is None:
        return [f"### threadkit.{name}"]
    try:
        signature = f"{name}{inspect.signature(obj)}"
    except (TypeError, ValueError):  # a callable without one
        signature = name
    kind = "class " if inspect.isclass(obj) else ""
    doc = inspect.getdoc(obj) or ""
    return [f"### threadkit.{name}", "", "```python", f"{kind}{signature}", "```", "", doc]

"""The ``threadkit`` command (also ``python -m threadkit``).

threadkit demo [--files N] [--size BYTES] [--latency SECONDS] [--workers N] [--keep]
threadkit docs [PAGE] [--path]
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn

import threadkit

from . import _demo, _offline_docs


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors take one line, so a bad value is easy to spot."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of the ``threadkit`` command and its sub-commands.

    Returns:
        The top-level parser; its ``demo`` sub-command sets ``command="demo"``.
    """
    parser = _Parser(
        prog="threadkit",
        description="threadkit runs I/O jobs concurrently with threads.",
    )
    parser.add_argument("--version", action="version", version=f"threadkit {threadkit.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="download generated files serially, with ThreadPoolExecutor and with threadkit",
        description=(
            "Start an HTTP server on 127.0.0.1 that serves generated files after a delay, "
            "download them three ways (serially, with concurrent.futures.ThreadPoolExecutor "
            "and with a threadkit WorkerPool), check their sizes and SHA-256 digests, and "
            "print the wall time and throughput of each. Needs no internet; Ctrl-C stops "
            "it cleanly."
        ),
    )
    _demo.add_arguments(demo)
    demo.set_defaults(parser=demo)
    docs = commands.add_parser(
        "docs",
        help="read the documentation offline: list its pages, or print one",
        description=(
            "List the pages of threadkit's documentation, installed with the package, or "
            "print one of them (Markdown, with the examples' code shown)."
        ),
    )
    _offline_docs.add_arguments(docs)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``threadkit`` command.

    Args:
        argv: The arguments after the program name; ``sys.argv[1:]`` by default.

    Returns:
        The exit status: 0 on success, 1 if the demo failed (or the docs are not
        installed), 2 for bad arguments or an unknown page, 130 after Ctrl-C.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command == "docs":
            status, text = _offline_docs.run_docs(args.page, show_path=args.path)
            return _print(text, status)
        options = _demo.options_from(args.parser, args)
    except SystemExit as exc:  # --help, --version or a bad argument
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return _demo.run_demo(options)
    except KeyboardInterrupt:
        # A second Ctrl-C while the first one is being handled: stop without a traceback.
        print("interrupted", file=sys.stderr)
        return _demo.EXIT_INTERRUPTED


def _print(text: str, status: int) -> int:
    """Print ``text`` (to stderr if ``status`` is not 0); a reader that stops early, as
    ``threadkit docs reference | head`` does, is not an error."""
    out = sys.stdout if status == 0 else sys.stderr
    try:
        print(text, file=out)
        out.flush()
    except BrokenPipeError:
        # Point the stream at devnull so the interpreter's own flush at exit does not
        # fail again (the recipe of the signal module's docs).
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
    return status


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""One entry point for working on threadkit: needs only python3 (3.11+) and the checkout.

    python3 dev.py demo [demo options]   set up .venv and run the downloader demo
    python3 dev.py test                  set up .venv and run lint, types and tests
    python3 dev.py test --all            the same on every CPython 3.11+ on the machine
    python3 dev.py bench [options]       run the benchmarks against the stdlib

Each virtual environment is created on first use and reused afterwards; it is
reinstalled when pyproject.toml changes.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
MINORS = range(11, 16)


def _run(cmd: list[str], **kwargs: object) -> None:
    print("+", " ".join(cmd), flush=True)
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    subprocess.run(cmd, check=True, cwd=ROOT, env=env, **kwargs)  # type: ignore[call-overload]


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _version_of(python: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    major, minor = out.split(".")
    return int(major), int(minor)


# Where ../shared/tools/install-newer-pythons puts CPython 3.14 and 3.15 by default.
NEWER_PYTHONS_ROOT = "/opt/newer-pythons"


def _listed_pythons() -> dict[int, list[str]]:
    """Interpreters named in ``THREADKIT_PYTHONS``: "3.X /path" lines, as the CI's
    install-newer-pythons tool prints them (.ci/run passes its output on)."""
    listed: dict[int, list[str]] = {}
    for line in os.environ.get("THREADKIT_PYTHONS", "").splitlines():
        parts = line.split(maxsplit=1)
        if len(parts) == 2 and parts[0].startswith("3.") and parts[0][2:].isdigit():
            listed.setdefault(int(parts[0][2:]), []).append(parts[1].strip())
    return listed


def find_pythons() -> dict[int, str]:
    """Every CPython 3.11+ listed by the CI tool, on PATH, under pyenv or under the tool's
    default root, by minor version (the first that runs and reports that version wins)."""
    found: dict[int, str] = {}
    listed = _listed_pythons()
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    newer_root = os.environ.get("NEWER_PYTHONS_ROOT", NEWER_PYTHONS_ROOT)
    for minor in MINORS:
        candidates = list(listed.get(minor, []))
        candidates += [shutil.which(f"python3.{minor}") or ""]
        candidates += sorted(glob.glob(f"{pyenv_root}/versions/3.{minor}.*/bin/python3"))
        candidates += [f"{newer_root}/usr/bin/python3.{minor}"]
        for cand in candidates:
            if cand and os.path.exists(cand) and _version_of(cand) == (3, minor):
                found[minor] = cand
                break
    return found


def ensure_venv(python: str, venv: Path, extras: str) -> Path:
    """Create (or reuse) ``venv`` with threadkit installed editable with ``extras``."""
    stamp_text = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes() + extras.encode() + python.encode()
    ).hexdigest()
    stamp = venv / ".threadkit-stamp"
    vpy = _venv_python(venv)
    if vpy.exists() and stamp.exists() and stamp.read_text() == stamp_text:
        return vpy
    if not vpy.exists():
        _run([python, "-m", "venv", str(venv)])
    _run([str(vpy), "-m", "pip", "install", "-q", "--upgrade", "pip"])
    target = f".[{extras}]" if extras else "."
    _run([str(vpy), "-m", "pip", "install", "-q", "-e", target])
    stamp.write_text(stamp_text)
    return vpy


def cmd_demo(args: list[str]) -> int:
    vpy = ensure_venv(sys.executable, ROOT / ".venv", "progress")
    return subprocess.run(
        [str(vpy), "-m", "threadkit", "demo", *args], cwd=ROOT, check=False
    ).returncode


def mkdocs_build_command(py: str, site_dir: str, config: str | None = None) -> list[str]:
    """The docs build that ``_checks`` runs: strict, and not ``--quiet``.

    ``--quiet`` hides warnings from the count that ``--strict`` turns into a failure (a
    broken link passed with it), so the build must keep its warnings visible.
    """
    cmd = [py, "-m", "mkdocs", "build", "--strict", "--site-dir", site_dir]
    return cmd if config is None else [*cmd, "--config-file", config]


def _checks(vpy: Path, *, first: bool, slow: bool) -> None:
    py = str(vpy)
    _run([py, "-m", "ruff", "check", "."])
    _run([py, "-m", "ruff", "format", "--check", "."])
    _run([py, "-m", "mypy"])
    # pyright reads [tool.pyright] in pyproject.toml. The PyPI wrapper bundles pyright's
    # JavaScript and runs it on the node found on PATH (it downloads one if there is
    # none); without this variable it also asks PyPI for a newer version on every run.
    os.environ.setdefault("PYRIGHT_PYTHON_IGNORE_WARNINGS", "1")
    _run([py, "-m", "pyright", "--pythonpath", py])
    _run([py, "-m", "pytest", "-q"])
    if first and (ROOT / "mkdocs.yml").exists():
        _run(mkdocs_build_command(py, "build/site"))
    if first and slow:
        try:
            _run([py, "-m", "pytest", "-q", "-m", "slow", "--timeout", "300"])
        except subprocess.CalledProcessError as exc:
            if exc.returncode != 5:  # 5: no test is marked slow, which is not a failure
                raise
    # Benchmarks are not part of a test run: `python3 dev.py bench` runs them.


def cmd_test(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="dev.py test")
    parser.add_argument("--all", action="store_true", help="every CPython 3.11+ found")
    parser.add_argument(
        "--slow", action="store_true", help="also run the slow tests (on every Python with --all)"
    )
    opts = parser.parse_args(argv)
    if opts.all:
        pythons = find_pythons()
        for minor in MINORS:
            if minor not in pythons:
                print(f"-- skipping Python 3.{minor}: not found on this machine", flush=True)
    else:
        minor = sys.version_info[1]
        pythons = {minor: sys.executable}
    if not pythons:
        print("no CPython 3.11+ found", file=sys.stderr)
        return 1
    first = True
    for minor, python in sorted(pythons.items()):
        started = time.monotonic()
        print(f"== Python 3.{minor} ({python})", flush=True)
        vpy = ensure_venv(python, ROOT / f".venv-3.{minor}", "dev")
        _checks(vpy, first=first, slow=opts.slow)
        if opts.slow and not first:
            # The slow tests on every Python, not only the first: CPython's own executor
            # tests (tests/test_cpython_executor.py) differ from one release to the next.
            _run([str(vpy), "-m", "pytest", "-q", "-m", "slow", "--timeout", "900"])
        print(f"== Python 3.{minor}: ok in {time.monotonic() - started:.0f} s", flush=True)
        first = False
    return 0


def cmd_bench(args: list[str]) -> int:
    vpy = ensure_venv(sys.executable, ROOT / ".venv", "progress")
    return subprocess.run([str(vpy), "benchmarks/run.py", *args], cwd=ROOT, check=False).returncode


def main() -> int:
    if sys.version_info < (3, 11):  # noqa: UP036 (dev.py may be run by an old python3)
        print("threadkit needs Python 3.11 or newer", file=sys.stderr)
        return 2
    commands = {"demo": cmd_demo, "test": cmd_test, "bench": cmd_bench}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        return commands[sys.argv[1]](sys.argv[2:])
    except subprocess.CalledProcessError as exc:
        print(f"failed ({exc.returncode}): {' '.join(map(str, exc.cmd))}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""``threadkit docs``: the documentation read offline, from a checkout or an installed wheel."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import threadkit
from threadkit.__main__ import main

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("tutorial", "how-to", "explanation", "reference")


def every_page() -> list[str]:
    names = ["index"]
    for section in SECTIONS:
        names += [
            p.relative_to(ROOT / "docs").with_suffix("").as_posix()
            for p in (ROOT / "docs" / section).rglob("*.md")
        ]
    return names


def test_docs_lists_every_page_with_its_title(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["docs"]) == 0
    out = capsys.readouterr().out
    listed = [line.split()[0] for line in out.splitlines() if line and not line.startswith("Print")]
    assert sorted(listed) == sorted(every_page())
    assert "how-to/backpressure  " in out
    assert "Bound memory with backpressure and lazy map" in out


@pytest.mark.parametrize("name", ["backpressure", "how-to/backpressure", "how-to/backpressure.md"])
def test_docs_prints_a_page_by_name_or_path(capsys: pytest.CaptureFixture[str], name: str) -> None:
    assert main(["docs", name]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Bound memory with backpressure and lazy map\n")
    assert "--8<--" not in out  # the examples' code is on the page itself


def test_the_reference_shows_every_public_name_with_its_docstring(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["docs", "reference"]) == 0
    out = capsys.readouterr().out
    assert ":::" not in out
    assert "    options:" not in out
    for name in threadkit.__all__:
        if name != "__version__":
            assert f"### threadkit.{name}\n" in out, name
    assert "class WorkerPool(max_workers" in out
    assert "A thread pool that can replace" in out


def test_an_unknown_page_is_refused_with_the_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["docs", "no-such-page"]) == 2
    err = capsys.readouterr().err
    assert "no page named 'no-such-page'" in err
    assert "how-to/backpressure" in err


def test_docs_path_names_the_folder(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["docs", "--path"]) == 0
    assert Path(capsys.readouterr().out.strip()) == ROOT / "docs"


@pytest.mark.slow
def test_an_installed_wheel_carries_the_docs(tmp_path: Path) -> None:
    """Built and installed as a pip user gets it: the pages come from the package itself."""
    wheels, target = tmp_path / "wheels", tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(wheels)],
        check=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("threadkit-*.whl")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        timeout=300,
    )
    env = {**os.environ, "PYTHONPATH": str(target)}

    def threadkit_docs(*args: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "threadkit", "docs", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=True,
            cwd=tmp_path,
        ).stdout

    assert Path(threadkit_docs("--path").strip()) == target / "threadkit" / "docs"
    page = threadkit_docs("graceful-shutdown")
    assert page.startswith("# Stop gracefully on Ctrl-C and SIGTERM")


def test_a_reader_that_stops_early_is_not_an_error() -> None:
    """``threadkit docs reference | head -1``: no BrokenPipeError traceback."""
    with subprocess.Popen(
        [sys.executable, "-m", "threadkit", "docs", "reference"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "# API reference\n"
        proc.stdout.close()
        _, err = proc.communicate(timeout=60)
    assert "BrokenPipeError" not in err
    assert "Traceback" not in err

"""The benchmark harness says plainly when a target is missed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def _bench_run() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "threadkit_bench_run", ROOT / "benchmarks" / "run.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("threadkit_bench_run", module)
    spec.loader.exec_module(module)
    return module


def test_a_missed_target_is_marked_and_listed() -> None:
    """1.53x against a 1.25x target prints MISSED and joins the run's list of misses."""
    misses: list[str] = []
    text = _bench_run().mark(1.53, 1.25, "all five hooks watched", misses)
    assert "MISSED" in text
    assert misses == ["all five hooks watched: 1.53x, target 1.25x"]


def test_a_met_target_is_marked_met() -> None:
    """A ratio within its target is marked met and adds nothing to the misses."""
    misses: list[str] = []
    text = _bench_run().mark(1.1, 1.25, "hooks", misses)
    assert "met" in text
    assert "MISSED" not in text
    assert misses == []


def test_the_test_run_does_not_run_the_benchmarks() -> None:
    """dev.py test runs tests only; the benchmarks belong to dev.py bench."""
    source = (ROOT / "dev.py").read_text(encoding="utf-8")
    checks = source[source.index("def _checks(") : source.index("def cmd_test(")]
    assert "benchmarks" not in checks.replace("# Benchmarks are not part", "")

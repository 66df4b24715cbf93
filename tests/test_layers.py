"""The package's floor plan: every import points down, and globals live in one place.

Each module of ``src/threadkit`` stands on a floor; it may import only modules on lower
floors (not even under ``TYPE_CHECKING`` or inside a function), never a private name of
another module, and only ``_process`` may hold mutable process-wide state. The demo
wing uses threadkit as a user does: through ``import threadkit`` only.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "threadkit"

# From the ground up; a module imports only from floors below its own. A new module
# must be given a floor here (the test fails until it is).
FLOORS: dict[str, int] = {
    # 0: no threadkit imports at all
    "_version": 0,
    "_errors": 0,
    "_validate": 0,
    "_waiting": 0,
    "_reports": 0,
    "_text": 0,
    "_compat": 0,
    "_locks": 0,
    # 1: process-wide state (its exit hook waits through _waiting)
    "_process": 1,
    # 2: named threads (their name counters live in _process)
    "_threads": 2,
    # 3: the primitives
    "_cancel": 3,
    "_futures": 3,
    "_places": 3,
    "_progress": 3,
    "_signals": 3,
    # 4: the vocabulary of a pool and of the limiters
    "_hooks": 4,
    "_worker": 4,
    "_limited": 4,
    "_aio": 4,
    # 5: map runs, running a task, looking at workers, and the limiters
    "_map": 5,
    "_tasks": 5,
    "_observe": 5,
    "_sync": 5,
    "_ratelimit": 5,
    # 6: the engine; 7: its face; 8: what stands on pools
    "_core": 6,
    "_pool": 7,
    "_shutdown": 8,
    "_taskgroup": 8,
    "_distribute": 8,
    # 9: the public face
    "__init__": 9,
    # 10: the command line (the demo and the offline docs), which sees only the public face
    "_demo_server": 10,
    "_demo": 10,
    "_offline_docs": 10,
    "__main__": 10,
}
DEMO = {"_demo_server", "_demo", "_offline_docs", "__main__"}

# Calls and literals that make a mutable container: at module level, outside
# ``_process``, they are a process-wide registry in the wrong place.
MUTABLE_FACTORIES = {
    "set",
    "dict",
    "list",
    "deque",
    "defaultdict",
    "OrderedDict",
    "WeakSet",
    "WeakValueDictionary",
    "WeakKeyDictionary",
    "local",
    "count",
}


def _imported_modules(node: ast.AST) -> list[tuple[str, list[str], int]]:
    """(sibling module, names taken from it, line) for each threadkit import in ``node``."""
    found: list[tuple[str, list[str], int]] = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.ImportFrom):
            names = [alias.name for alias in sub.names]
            if sub.level == 1 and sub.module is None:  # from . import _x
                found.extend((name, [], sub.lineno) for name in names)
            elif sub.level == 1 and sub.module is not None:  # from ._x import y
                found.append((sub.module.split(".")[0], names, sub.lineno))
            elif sub.level == 0 and sub.module is not None:
                parts = sub.module.split(".")
                if parts[0] == "threadkit":
                    if len(parts) == 1:  # from threadkit import y (or _x)
                        found.extend(
                            (name, [], sub.lineno)
                            if name.startswith("_")
                            else ("__init__", [name], sub.lineno)
                            for name in names
                        )
                    else:
                        found.append((parts[1], names, sub.lineno))
        elif isinstance(sub, ast.Import):
            for alias in sub.names:
                parts = alias.name.split(".")
                if parts[0] == "threadkit":
                    found.append((parts[1] if len(parts) > 1 else "__init__", [], sub.lineno))
    return found


def _is_mutable(value: ast.expr | None) -> bool:
    if isinstance(value, ast.List | ast.Dict | ast.Set | ast.ListComp | ast.DictComp | ast.SetComp):
        return True
    if isinstance(value, ast.Call):
        func = value.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        return name in MUTABLE_FACTORIES
    return False


def violations(sources: dict[str, str]) -> list[str]:
    """Every breach of the floor plan in ``sources`` (module name -> its source text)."""
    found: list[str] = []
    for module, text in sorted(sources.items()):
        if module not in FLOORS:
            found.append(f"{module}: not on the floor plan (give it a floor in FLOORS)")
            continue
        floor = FLOORS[module]
        tree = ast.parse(text)
        for target, names, line in _imported_modules(tree):
            where = f"{module}:{line}"
            if module in DEMO:
                if target not in DEMO and target != "__init__":
                    found.append(f"{where}: the demo imports {target}; use `import threadkit`")
                continue
            if target not in FLOORS:
                found.append(f"{where}: imports {target}, which is not on the floor plan")
            elif FLOORS[target] >= floor:
                found.append(
                    f"{where}: imports {target} (floor {FLOORS[target]}) from floor {floor}:"
                    " an import that does not point down"
                )
            private = [n for n in names if n.startswith("_") and not n.endswith("__")]
            if private:
                found.append(f"{where}: takes private names {private} from {target}")
        if module == "_process":
            continue
        for stmt in tree.body:
            if isinstance(stmt, ast.Assign):
                targets = [t.id for t in stmt.targets if isinstance(t, ast.Name)]
                value: ast.expr | None = stmt.value
            elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                targets, value = [stmt.target.id], stmt.value
            else:
                continue
            for name in targets:
                # ALL_CAPS names are constants by convention; __all__ is the module's face.
                if name == "__all__" or name.lstrip("_").isupper():
                    continue
                if _is_mutable(value):
                    found.append(
                        f"{module}:{stmt.lineno}: module-level mutable state {name!r}; "
                        "process-wide registries live in _process"
                    )
        found.extend(
            f"{module}:{sub.lineno}: rebinds module globals {sub.names}; "
            "process-wide state lives in _process"
            for sub in ast.walk(tree)
            if isinstance(sub, ast.Global)
        )
    return found


def _package_sources() -> dict[str, str]:
    return {path.stem: path.read_text(encoding="utf-8") for path in PACKAGE.glob("*.py")}


def test_the_package_keeps_its_floor_plan() -> None:
    """No import climbs a floor, no private name crosses a module, globals live in _process."""
    assert violations(_package_sources()) == []


def test_every_module_is_on_the_floor_plan() -> None:
    """The table names exactly the modules that exist (a stale entry hides nothing)."""
    assert set(_package_sources()) == set(FLOORS)


@pytest.mark.parametrize(
    ("module", "bad_line", "complaint"),
    [
        ("_futures", "from ._pool import WorkerPool", "does not point down"),
        ("_map", "from ._sync import Semaphore", "does not point down"),  # same floor
        ("_hooks", "if TYPE_CHECKING:\n    from ._core import Core", "does not point down"),
        ("_pool", "def f():\n    from ._shutdown import GracefulShutdown", "does not point down"),
        ("_pool", "from ._core import _STOP", "private names"),
        ("_sync", "_registry: dict[str, int] = {}", "module-level mutable state"),
        ("_threads", "_names = set()", "module-level mutable state"),
        ("_cancel", "def f():\n    global _clock", "rebinds module globals"),
        ("_demo", "from ._pool import WorkerPool", "the demo imports _pool"),
        ("_brand_new", "x = 1", "not on the floor plan"),
    ],
)
def test_the_check_fails_on_a_bad_module(module: str, bad_line: str, complaint: str) -> None:
    """Each kind of breach, added to a real module, makes the layers check fail."""
    sources = _package_sources()
    sources[module] = sources.get(module, "") + "\n" + bad_line + "\n"
    found = violations(sources)
    assert any(complaint in line for line in found), found

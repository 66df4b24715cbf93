"""Worker jobs for the process_on tests: importable by child processes and Dask workers."""

from __future__ import annotations

import os
import signal
import threading

import threadkit

# Setups and teardowns seen in this process (the in-process tests read them).
counts_lock = threading.Lock()
setups: list[str] = []
teardowns: list[str] = []

#: An item that makes Double raise ValueError(item).
BAD = -1
#: An item that kills the node process running it (SIGKILL, no cleanup).
KILL = -2


class Double(threadkit.Worker[int, int]):
    """Doubles its item; records setup/teardown; raises for BAD and dies for KILL."""

    def setup(self) -> None:
        with counts_lock:
            setups.append(self.name)

    def process(self, item: int) -> int:
        if item == BAD:
            raise ValueError(item)
        if item == KILL:
            os.kill(os.getpid(), signal.SIGKILL)
        return 2 * item

    def teardown(self) -> None:
        with counts_lock:
            teardowns.append(self.name)


class Where(threadkit.Worker[int, tuple[int, int, str]]):
    """Returns (item, pid, thread name): which node and thread ran an item."""

    def process(self, item: int) -> tuple[int, int, str]:
        return item, os.getpid(), self.name


class KillOnce(threadkit.Worker[int, int]):
    """Kills its node the first time any node sees item 0 (``marker`` remembers that).

    Made with ``functools.partial(KillOnce, marker)``: a factory with an argument.
    """

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def process(self, item: int) -> int:
        if item == 0:
            try:
                fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pass
            else:
                os.close(fd)
                os.kill(os.getpid(), signal.SIGKILL)
        return item


class FailingSetup(threadkit.Worker[int, int]):
    """A job whose setup always raises."""

    def setup(self) -> None:
        raise OSError("no connection")

    def process(self, item: int) -> int:
        return item


class Unpicklable(Exception):
    """An exception that cannot be pickled (it holds a lock)."""

    def __init__(self) -> None:
        super().__init__("holds a lock")
        self.lock = threading.Lock()


class RaisesUnpicklable(threadkit.Worker[int, int]):
    """Raises an exception that cannot travel back from a node."""

    def process(self, item: int) -> int:
        raise Unpicklable


class Recorded(threadkit.Worker[int, int]):
    """Leaves a file for each setup and each teardown in ``folder`` (any process)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def _mark(self, what: str) -> None:
        with open(os.path.join(self.folder, f"{what}-{os.getpid()}-{self.name}"), "w"):
            pass

    def setup(self) -> None:
        self._mark("setup")

    def process(self, item: int) -> int:
        return item

    def teardown(self) -> None:
        self._mark("teardown")


class Touch(threadkit.Worker[int, int]):
    """Leaves one new file in ``folder`` per item it runs: counts real runs."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def process(self, item: int) -> int:
        name = f"{item}-{os.getpid()}-{os.urandom(4).hex()}"
        with open(os.path.join(self.folder, name), "w"):
            pass
        return item

"""Run one Worker job on many cores, then on a Dask cluster, with ``process_on``.

The job counts the words of each document with a regular expression that each thread
compiles once in ``setup``: pure-Python parsing that holds the GIL, so one process's
threads share one core. ``process_on`` runs the same job on two processes (two cores),
each a pool of four threads; with ``--dask`` it runs it again on a local Dask cluster of
two worker processes (needs ``distributed``: ``pip install 'threadkit[cluster]'``).
"""

# distributed ships no type hints: pyright's strict mode would flag every call into it.
# pyright: reportUnknownMemberType=false, reportUnknownVariableType=false
# pyright: reportUnknownArgumentType=false

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

import threadkit

DOCUMENTS = 20_000


# --8<-- [start:job]
class WordCount(threadkit.Worker[str, tuple[int, int]]):
    """Counts the words of a document; returns (words, pid of the node)."""

    def setup(self) -> None:
        # Per-thread state, made once per thread on each node and kept across batches.
        self.word = re.compile(r"[a-z]+")

    def process(self, text: str) -> tuple[int, int]:
        return len(self.word.findall(text)), os.getpid()


def documents(n: int) -> Iterator[str]:
    """A generator: process_on reads it lazily, a batch at a time."""
    for i in range(n):
        yield f"document number {i} " + "lorem ipsum dolor sit " * (i % 7)


# --8<-- [end:job]


def run_on_processes() -> int:
    # --8<-- [start:processes]
    with ProcessPoolExecutor(max_workers=2) as nodes:
        results = threadkit.process_on(
            nodes, WordCount, documents(DOCUMENTS), threads=4, chunksize=500
        )
        words = 0
        pids = set()
        for count, pid in results:  # in input order, as they come back
            words += count
            pids.add(pid)
    # --8<-- [end:processes]
    print(f"processes: {words} words, counted by {len(pids)} node process(es)")
    return words


def run_on_dask() -> int | None:
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        print("dask: skipped (pip install 'threadkit[cluster]')")
        return None
    # --8<-- [start:dask]
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",
        ) as cluster,
        Client(cluster) as client,
        client.get_executor() as nodes,  # a concurrent.futures.Executor
    ):
        words = sum(
            count
            for count, _ in threadkit.process_on(
                nodes, WordCount, documents(DOCUMENTS), threads=4, chunksize=500
            )
        )
    # --8<-- [end:dask]
    print(f"dask: {words} words")
    return words


def main() -> None:
    expected = sum(len(re.findall(r"[a-z]+", text)) for text in documents(DOCUMENTS))
    assert run_on_processes() == expected
    if "--dask" in sys.argv[1:]:  # a cluster takes seconds to start: only when asked
        assert run_on_dask() in (None, expected)


if __name__ == "__main__":  # the node processes import this file: start nothing there
    main()

"""Write rows to SQLite from several threads, each with its own connection.

A ``sqlite3`` connection may only be used in the thread that opened it, so opening one in
``Worker.setup`` is the natural fit: each worker thread opens one connection, writes every
batch it is given with it, and closes it in ``teardown``. The database is in WAL mode so
readers do not block the writers; writers still take turns, and ``timeout=`` makes a
writer wait for the lock instead of failing with "database is locked".
"""

from __future__ import annotations

import functools
import sqlite3
import tempfile
from pathlib import Path

import threadkit

BATCHES = 40
ROWS_PER_BATCH = 50
WORKERS = 4


# --8<-- [start:worker]
class RowWriter(threadkit.Worker[int, int]):
    """Writes batch ``n`` (rows ``n * size`` up to the next batch) in one transaction."""

    def __init__(self, db_path: Path, batch_size: int) -> None:
        self.db_path = db_path
        self.batch_size = batch_size

    def setup(self) -> None:
        # isolation_level=None: this code says where transactions begin and end.
        # timeout=: how long to wait for another writer's lock before giving up.
        self.db = sqlite3.connect(self.db_path, timeout=10, isolation_level=None)

    def process(self, batch: int) -> int:
        first = batch * self.batch_size
        rows = [(first + i, f"row {first + i}", self.name) for i in range(self.batch_size)]
        self.db.execute("BEGIN IMMEDIATE")  # take the write lock now, waiting up to timeout
        try:
            self.db.executemany("INSERT INTO rows (id, text, thread) VALUES (?, ?, ?)", rows)
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
        return len(rows)

    def teardown(self) -> None:
        self.db.close()


# --8<-- [end:worker]


# --8<-- [start:main]
def create_database(db_path: Path) -> None:
    """Create the table, in WAL mode (a setting stored in the database file)."""
    db = sqlite3.connect(db_path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE rows (id INTEGER PRIMARY KEY, text TEXT, thread TEXT)")
    finally:
        db.close()


def count_rows(db_path: Path) -> dict[str, int]:
    """Rows per writing thread."""
    db = sqlite3.connect(db_path)
    try:
        found = db.execute("SELECT thread, count(*) FROM rows GROUP BY thread").fetchall()
    finally:
        db.close()
    return dict(found)


def write_rows(
    db_path: Path, batches: int = BATCHES, batch_size: int = ROWS_PER_BATCH, workers: int = WORKERS
) -> int:
    """Write ``batches`` batches with ``workers`` threads; return the rows written."""
    make = functools.partial(RowWriter, db_path, batch_size)
    with threadkit.WorkerPool(worker=make, max_workers=workers) as pool:
        return sum(pool.process(range(batches), ordered=False))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "rows.db"
        create_database(db_path)
        written = write_rows(db_path)
        per_thread = count_rows(db_path)
    for thread, count in sorted(per_thread.items()):
        print(f"{thread}: {count} rows")
    total = sum(per_thread.values())
    print(f"wrote {written} rows, found {total} of {BATCHES * ROWS_PER_BATCH}")
    assert total == written == BATCHES * ROWS_PER_BATCH


# --8<-- [end:main]


if __name__ == "__main__":
    main()

"""Start threads with readable names, see their stacks, and rename a thread for a while."""

from __future__ import annotations

import threading

from threadkit import dump_threads, start_thread, thread_name, thread_snapshots


def download(url: str, started: threading.Event, release: threading.Event) -> None:
    started.set()
    release.wait(5)  # stands in for a slow network read


def main() -> None:
    release = threading.Event()
    urls = ["https://example.org/a", "https://example.org/b"]
    starts = [threading.Event() for _ in urls]
    threads = [
        start_thread(download, (url, started, release), prefix="download")
        for url, started in zip(urls, starts, strict=True)
    ]
    for started in starts:
        started.wait(5)
    # Names are unique per prefix in the whole process: download_0, download_1, ...
    print("started:", ", ".join(thread.name for thread in threads))

    # What is each of our threads doing right now?
    ours = [snap for snap in thread_snapshots() if snap.name.startswith("download_")]
    print(dump_threads(ours))

    release.set()
    for thread in threads:
        thread.join()

    # Rename the current thread for one block; both names come back afterwards.
    with thread_name("import-orders"):
        print("inside the block:", threading.current_thread().name)
    print("after the block:", threading.current_thread().name)


if __name__ == "__main__":
    main()

"""Stop a polling loop from another thread, cancel a tree of tokens, and use a deadline."""

from __future__ import annotations

import threading

from threadkit import Cancelled, CancelToken, DeadlineExceeded


def watch(token: CancelToken, polled: threading.Event) -> None:
    # Poll every 10 ms; sleep() returns True the moment the token is cancelled.
    while not token.sleep(0.01):
        polled.set()
    print(f"watcher stopped: {token.reason}")


def main() -> None:
    # 1. Stop a loop running in another thread.
    token = CancelToken()
    polled = threading.Event()
    watcher = threading.Thread(target=watch, args=(token, polled))
    watcher.start()
    polled.wait(5)
    token.cancel("user pressed stop")
    watcher.join()

    # 2. Cancelling a parent cancels its children, with the parent's reason.
    job = CancelToken()
    step = job.child()
    step.add_callback(lambda t: print(f"step callback ran: {t.reason}"))
    job.cancel("job aborted")
    print(f"step cancelled: {step.cancelled}")

    # 3. A deadline: wait() returns when it passes, no timer thread needed.
    request = CancelToken(timeout=0.05)
    print(f"wait returned: {request.wait()}")
    print(f"deadline exceeded: {request.reason is DeadlineExceeded}")
    try:
        request.raise_if_cancelled()
    except Cancelled as exc:
        print(f"caught: {exc}")


if __name__ == "__main__":
    main()

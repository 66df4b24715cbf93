"""At most 2 requests in flight per host, however many threads are fetching."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from threadkit import KeyedLimiter

per_host: KeyedLimiter[str] = KeyedLimiter(2)
in_flight: dict[str, int] = {}
peak: dict[str, int] = {}
lock = threading.Lock()


def fetch(url: str) -> str:
    host = urlsplit(url).hostname or ""
    with per_host.hold(host, timeout=10):
        with lock:
            in_flight[host] = in_flight.get(host, 0) + 1
            peak[host] = max(peak.get(host, 0), in_flight[host])
        # ... the real request would go here ...
        with lock:
            in_flight[host] -= 1
    return url


urls = [f"https://{host}.example/page/{i}" for host in ("a", "b", "c") for i in range(20)]
with ThreadPoolExecutor(max_workers=16) as pool:
    assert sorted(pool.map(fetch, urls)) == sorted(urls)

assert all(n <= 2 for n in peak.values()), peak
# Hosts nobody is talking to any more are forgotten: memory follows the hosts in use.
assert per_host.statistics().keys == 0
print("peak requests in flight per host:", peak)

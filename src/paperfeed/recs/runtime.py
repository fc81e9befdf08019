"""The "for you" ranker's runtime helpers: how it keeps recent values and how many threads its
linear algebra takes.

* :class:`Recent` - a few recently used values by key (candidate lists, upvote counts, list
  features), bounded and optionally expiring, so a busy page or a digest run reads each once.
* :func:`one_blas_thread` - runs a fit or a ranking with BLAS on one thread: the products are
  small (hundreds of rows), a second thread saves no time, and idle BLAS threads spin, which
  tripled the CPU time of a ranking (bench/README.md).
"""

from __future__ import annotations

import functools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, ParamSpec, TypeVar

from threadpoolctl import ThreadpoolController

_BLAS: ThreadpoolController | None = None
_BLAS_LOCK = threading.Lock()
_P = ParamSpec("_P")
_R = TypeVar("_R")
_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")


class Recent(Generic[_K, _V]):
    """A few recently used values by key (the least recently used go first beyond ``size``),
    each reused for ``ttl`` seconds (None: until it is pushed out). The value is made outside
    the lock, so a slow read blocks nobody; two callers may both make it once."""

    def __init__(self, size: int = 8, ttl: float | None = None) -> None:
        self.size = size
        self.ttl = ttl
        self._items: OrderedDict[_K, tuple[float, _V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: _K, make: Callable[[], _V]) -> _V:
        now = time.monotonic()
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and (self.ttl is None or now - hit[0] < self.ttl):
                self._items.move_to_end(key)
                return hit[1]
        value = make()
        with self._lock:
            self._items[key] = (now, value)
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value


def one_blas_thread(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run ``fn`` with BLAS on one thread. The ranker's products are small (hundreds of rows):
    a second BLAS thread saves no time, and idle BLAS threads spin, which tripled the CPU time
    of a ranking (bench/README.md). The setting is per process; a concurrent caller elsewhere
    at worst runs its own products on fewer threads meanwhile."""

    @functools.wraps(fn)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        global _BLAS
        if _BLAS is None:
            with _BLAS_LOCK:
                _BLAS = _BLAS or ThreadpoolController()
        with _BLAS.limit(limits=1, user_api="blas"):
            return fn(*args, **kwargs)

    return run

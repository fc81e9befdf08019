"""What kind of database fault an exception is: the database is unreachable/busy, or its disk is full.

Callers above the store (the web tier's availability middleware, the command line) turn these
into an answer the user can act on - ``503`` with ``Retry-After`` while PostgreSQL restarts,
``507`` when the SQLite home's disk is full - instead of a generic 500 and a traceback. The
rules live here, next to the code that runs SQL, because they read driver details (SQLite's
result codes, PostgreSQL's SQLSTATE classes).

* ``UNAVAILABLE``: the server refused or dropped the connection, is shutting down or starting
  up (SQLSTATE classes 08, 57), has no connection slots (53300), the pool had no connection free
  in time, or SQLite stayed locked/busy past the busy timeout. Retrying later will work.
* ``FULL``: SQLite's ``SQLITE_FULL`` (the disk, or ``max_page_count``), PostgreSQL's
  ``disk_full`` (53100), or ``ENOSPC`` from writing a file in the home. Reads keep working;
  writes will not until space is freed.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import threading
import time
from enum import Enum

from sqlalchemy import exc as sa_exc

SQLITE_BUSY, SQLITE_LOCKED, SQLITE_FULL, SQLITE_CANTOPEN = 5, 6, 13, 14
PG_DISK_FULL = "53100"
PG_UNAVAILABLE_CLASSES = ("08", "57", "53")  # connection exception, operator intervention, resources


class Fault(Enum):
    UNAVAILABLE = "unavailable"
    FULL = "full"


class DatabaseBusy(TimeoutError):
    """No write slot in this process within the write timeout (SQLite's per-process writer lock)."""


def _sqlite(err: sqlite3.Error) -> Fault | None:
    code = getattr(err, "sqlite_errorcode", None)
    if code is None:  # very old sqlite3 module: fall back to SQLite's fixed messages
        text = str(err).lower()
        if "database or disk is full" in text:
            return Fault.FULL
        return Fault.UNAVAILABLE if "database is locked" in text else None
    primary = code & 0xFF
    if primary == SQLITE_FULL:
        return Fault.FULL
    if primary in (SQLITE_BUSY, SQLITE_LOCKED, SQLITE_CANTOPEN):
        return Fault.UNAVAILABLE
    return None


def _dbapi(err: sa_exc.DBAPIError) -> Fault | None:
    orig = err.orig
    if isinstance(orig, sqlite3.Error):
        return _sqlite(orig)
    state = getattr(orig, "sqlstate", None)
    if state == PG_DISK_FULL:
        return Fault.FULL
    if err.connection_invalidated:
        return Fault.UNAVAILABLE
    if isinstance(err, sa_exc.OperationalError | sa_exc.InterfaceError):
        # psycopg: a failed connect has no SQLSTATE; a server going away has class 08/57.
        if state is None or state.startswith(PG_UNAVAILABLE_CLASSES):
            return Fault.UNAVAILABLE
    return None


def _one(err: BaseException) -> Fault | None:
    if isinstance(err, sa_exc.DBAPIError):
        return _dbapi(err)
    if isinstance(err, sqlite3.Error):
        return _sqlite(err)
    if isinstance(err, sa_exc.TimeoutError | DatabaseBusy):  # pool checkout / write slot timed out
        return Fault.UNAVAILABLE
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return Fault.FULL
    return None


def classify(err: BaseException) -> Fault | None:
    """The fault behind ``err`` (looking through its causes), or None for any other error."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        found = _one(current)
        if found is not None:
            return found
        current = current.__cause__ or current.__context__
    return None


def describe(err: BaseException) -> str:
    """One line for the operator's log: the driver's own message, first line only."""
    orig = getattr(err, "orig", None) or err
    text = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {text[0] if text else ''}"


class QuietLog:
    """A warning at most once per key every ``every`` seconds, saying how many were left out: an
    outage fails every request, and the operator needs one line about it, not thousands."""

    def __init__(self, every: float = 10.0) -> None:
        self.every = every
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._quiet: dict[str, int] = {}

    def warn(self, logger: logging.Logger, key: str, message: str, *args: object) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.every:
                self._quiet[key] = self._quiet.get(key, 0) + 1
                return
            self._last[key] = now
            quiet = self._quiet.pop(key, 0)
        more = f" ({quiet} more like it since the last report)" if quiet else ""
        logger.warning(message + "%s", *args, more)

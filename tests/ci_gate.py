"""In CI (``CI=true``), a test that does not run fails the run.

Locally a test may skip when a part is missing (no PostgreSQL, no Chromium, no ``../shared/data``,
an optional module): that keeps ``pytest`` usable on a laptop. In CI the same skip would hide a
hole: the suite would stay green while a whole backend, the browser tests or the real-data
checks silently stopped running (an encoder that no longer imports skips every test that needs
it). So with ``CI`` set to ``true``/``1``/``yes`` (``.ci/run`` sets it), every skipped, xfailed
or xpassed test - and every module skipped at collection - is reported as a failure that names
the reason.

``CI_ALLOWED_SKIPS`` is the explicit allow-list of node ids that may still skip or xfail in CI,
each with a comment saying why. Nothing that needs a missing part belongs there: only a known,
tracked defect pinned by a *strict* xfail (which fails the run by itself the day it passes).

Loaded by ``tests/conftest.py``; ``tests/test_ci_gate.py`` runs a small suite through it.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

CI_ALLOWED_SKIPS: frozenset[str] = frozenset()  # empty: nothing in this suite may skip in CI


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    xfail = getattr(report, "wasxfail", None)
    if xfail is not None:
        return f"xfail ({'xpassed' if report.passed else 'xfailed'}): {xfail or 'no reason given'}"
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # (path, line, "Skipped: why")
        return f"skipped at {longrepr[0]}:{longrepr[1]}: {longrepr[2]}"
    return f"skipped: {longrepr}"


def _fail(report: pytest.TestReport | pytest.CollectReport) -> None:
    why = _reason(report)
    report.outcome = "failed"
    report.longrepr = (
        f"CI=true: a test that does not run fails the run - {why}\n"
        "Install what it needs (scripts/system-deps.sh) or fix the cause; see tests/ci_gate.py."
    )
    if hasattr(report, "wasxfail"):
        del report.wasxfail  # otherwise the terminal still files it under xfailed/xpassed


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[None, Any, Any]:
    report = yield
    if in_ci() and (report.skipped or hasattr(report, "wasxfail")) and item.nodeid not in CI_ALLOWED_SKIPS:
        _fail(report)
    return report


# A module skipped at collection has no test reports to turn into failures, and turning its
# collect report into an error would stop the whole run at collection: so it is remembered,
# listed at the end and fails the run then.
_skipped_modules: list[str] = []


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, Any]:
    report = yield
    if in_ci() and report.skipped and collector.nodeid not in CI_ALLOWED_SKIPS:
        _skipped_modules.append(f"{collector.nodeid or '.'}: {_reason(report)}")
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped_modules and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _skipped_modules:
        terminalreporter.section("CI=true: modules skipped at collection fail the run (tests/ci_gate.py)", red=True)
        for line in _skipped_modules:
            terminalreporter.write_line(line)


def pytest_report_header(config: pytest.Config) -> str | None:
    return "CI=true: skipped and xfailed tests fail this run (tests/ci_gate.py)" if in_ci() else None

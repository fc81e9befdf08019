"""Geometry for the server-drawn SVG charts (templates/charts.html draws them).

Called while a template renders (registered as Jinja globals by ``web/trends.py``), so page data
and JSON twins carry only the series, never coordinates. Charts are plain SVG in the page: no
script, no inline style (the CSP allows neither); colours come from classes in
``static/charts.css``, which follow the light/dark palette. The SVGs stretch to their box's width
(``preserveAspectRatio="none"`` with non-scaling strokes), so nothing scrolls sideways at 390 px;
text labels live in HTML around the SVG so they never stretch.

The parts a chart repeats per bucket (the bars and the rows of the data table) are written here
as escaped markup (:func:`bar_marks`, :func:`table_rows`), the frame around them by the
template: a search's timeline has ~110 weekly bars, and drawing each in Jinja cost ~25 us, about
as much as the whole rest of the page's template.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from typing import Any, TypedDict

from markupsafe import Markup, escape

BAR_STEP = 10  # viewBox units per bar; bars are drawn 8 wide with a 2-unit gap
CHART_H = 100
LINE_W = 1000
LINE_H = 300


class Bar(TypedDict):
    x: float
    y: float
    w: float
    h: float
    hit_x: float
    count: float
    label: str
    url: str | None
    selected: bool


class BarGeometry(TypedDict):
    width: int
    height: int
    bars: list[Bar]
    shade: list[dict[str, float]]
    max: float
    labels: list[str]


class LineGeometry(TypedDict):
    width: int
    height: int
    lines: list[str]
    max: float
    gridlines: list[float]
    labels: list[str]


def nice_max(value: float) -> float:
    """The smallest 1/2/2.5/5 x 10^k at or above ``value`` (1 for an all-zero series)."""
    if value <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exp + 1e-9:
            return step * exp
    return 10 * exp


def _labels(starts: Sequence[str]) -> list[str]:
    """First, middle and last bucket labels (spaced evenly under the chart)."""
    if not starts:
        return []
    if len(starts) < 3:
        return [starts[0], starts[-1]] if len(starts) == 2 else [starts[0]]
    return [starts[0], starts[(len(starts) - 1) // 2], starts[-1]]


def _day(value: Any) -> date | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def bars(
    buckets: Sequence[dict[str, Any]],
    *,
    value: str = "count",
    shade_from: Any = None,
    shade_to: Any = None,
) -> BarGeometry:
    """Bars for ``buckets`` (dicts with ``start``, ``end``, ``label``, ``value`` and maybe ``url``);
    buckets overlapping ``shade_from``..``shade_to`` are shaded (the search's date filter)."""
    lo, hi = _day(shade_from), _day(shade_to)
    top = nice_max(max((float(b[value]) for b in buckets), default=0))
    out: list[Bar] = []
    shade: list[dict[str, float]] = []
    for i, b in enumerate(buckets):
        v = float(b[value])
        h = 0.0 if v <= 0 else max(1.5, v / top * (CHART_H - 4))
        start, end = _day(b["start"]), _day(b["end"])
        selected = bool((lo or hi) and start and end and (lo is None or end >= lo) and (hi is None or start <= hi))
        if selected:
            if shade and shade[-1]["x"] + shade[-1]["w"] >= i * BAR_STEP:
                shade[-1]["w"] += BAR_STEP
            else:
                shade.append({"x": i * BAR_STEP, "w": BAR_STEP})
        out.append(
            Bar(
                x=i * BAR_STEP + 1,
                y=CHART_H - h,
                w=BAR_STEP - 2,
                h=h,
                hit_x=i * BAR_STEP,
                count=v,
                label=str(b.get("label") or b["start"]),
                url=b.get("url"),
                selected=selected,
            )
        )
    return BarGeometry(
        width=max(1, len(buckets)) * BAR_STEP,
        height=CHART_H,
        bars=out,
        shade=shade,
        max=top,
        labels=_labels([str(b.get("label") or b["start"]) for b in buckets]),
    )


def lines(labels: Sequence[str], series: Sequence[Sequence[float]]) -> LineGeometry:
    """One polyline per series over shared buckets, scaled to the largest value of all."""
    top = nice_max(max((float(v) for s in series for v in s), default=0))
    n = len(labels)
    out = []
    for values in series:
        points = []
        for i, v in enumerate(values):
            x = LINE_W / 2 if n == 1 else i * LINE_W / (n - 1)
            y = LINE_H - float(v) / top * (LINE_H - 10) - 5
            points.append(f"{x:.1f},{y:.1f}")
        out.append(" ".join(points))
    grid = [LINE_H - f * (LINE_H - 10) - 5 for f in (0.0, 0.5, 1.0)]
    return LineGeometry(width=LINE_W, height=LINE_H, lines=out, max=top, gridlines=grid, labels=_labels(list(labels)))


def fmt_value(v: float) -> str:
    """A count as an integer, a share with up to three decimals."""
    if float(v).is_integer():
        return f"{int(v):,}"
    return f"{v:,.3f}".rstrip("0").rstrip(".")


def bar_marks(g: BarGeometry, buckets: Sequence[dict[str, Any]], value_label: str) -> Markup:
    """The bars of :func:`bars`' geometry ``g`` as SVG: per bar a hit area and the filled bar (when
    not zero) with a tooltip title, inside a link to the bucket's ``url`` when it has one."""
    out = []
    height = g["height"]
    for b, bucket in zip(g["bars"], buckets, strict=True):
        selected = " selected" if b["selected"] else ""
        title = escape(f"{b['label']}: {fmt_value(b['count'])} {value_label}")
        fill = ""
        if b["h"] > 0:
            fill = f'<rect class="chart-fill" x="{b["x"]}" y="{b["y"]:.2f}" width="{b["w"]}" height="{b["h"]:.2f}"/>'
        bar = (
            f'<g class="chart-bar{selected}"><title>{title}</title>'
            f'<rect class="chart-hit" x="{b["hit_x"]}" y="0" width="10" height="{height}"/>{fill}</g>'
        )
        if b["url"]:
            start = escape(bucket["start"])
            bar = f'<a href="{escape(b["url"])}" class="chart-bar-link" data-start="{start}">{bar}</a>'
        out.append(bar)
    return Markup("\n".join(out))


def table_rows(buckets: Sequence[dict[str, Any]]) -> Markup:
    """The data table's rows under a bar chart: from, to and the count (a link when the bucket has one)."""
    out = []
    for b in buckets:
        value = escape(fmt_value(b["count"]))
        url = b.get("url")
        cell = f'<a href="{escape(url)}">{value}</a>' if url else value
        out.append(f'<tr><th scope="row">{escape(b["start"])}</th><td>{escape(b["end"])}</td><td>{cell}</td></tr>')
    return Markup("".join(out))

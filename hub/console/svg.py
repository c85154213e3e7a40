"""Pictures as inline SVG, drawn on the server from plain data: a document's timeline (one row
per recipient) and bar charts. Pure functions; every text goes through :mod:`hub.console.html`
escaping."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hub.console.html import Markup, escape, join, tag
from hub.reports import ack_verdict

RED = "#c62828"
COLOURS = {
    "queued": "#757575",
    "resent": "#6a1b9a",
    "delivered": "#1565c0",
    "done": "#2e7d32",
    "failed": RED,
    "status": "#ef6c00",
    "closed": "#2e7d32",
}


@dataclass(frozen=True)
class Mark:
    at: dt.datetime
    kind: str  # queued | resent | delivered | done | failed | status
    label: str  # short text under the mark: "01"…"06", or the kind's own


@dataclass
class Row:
    recipient: str
    delivery_id: str
    transport: str
    business: str | None
    deadline: dt.datetime
    verdict: str  # hub.reports.ack_verdict: in_time | overdue | pending
    marks: list[Mark] = field(default_factory=list)


def _time(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


def timeline_rows(trace: Mapping[str, Any], window: dt.timedelta, now: dt.datetime) -> list[Row]:
    """Every recipient of a document trace (``hub.traces.document_trace``) with its marks in
    time order and whether its acknowledgement is overdue (the ``[deadlines]`` *window* of the
    document's priority, counted from the hub's receipt, as in the monthly report)."""
    received = dt.datetime.fromisoformat(trace["document"]["received_at"])
    rows: dict[str, Row] = {}
    for r in trace["recipients"]:
        acked = _time(r["acknowledged_at"])
        row = Row(
            recipient=r["recipient"],
            delivery_id=r["delivery_id"],
            transport=r["transport"],
            business=r["business"],
            deadline=received + window,
            verdict=ack_verdict(r["transport"], acked, received + window, now),
        )
        delivered = _time(r["delivered_at"])
        if delivered is not None:
            row.marks.append(Mark(delivered, "delivered", "delivered"))
        if acked is not None:
            kind = "done" if r["transport"] == "done" else "failed"
            row.marks.append(Mark(acked, kind, kind))
        rows[r["delivery_id"]] = row
    for event in trace["events"]:
        row_of = rows.get(event["delivery_id"] or "")
        if row_of is None:
            continue
        at = dt.datetime.fromisoformat(event["at"])
        if event["kind"] in ("queued", "resent"):
            row_of.marks.append(Mark(at, event["kind"], event["kind"]))
        elif event["kind"] == "status":
            row_of.marks.append(Mark(at, "status", str(event["detail"].get("code", "?"))))
        elif event["kind"] in ("expired", "dead"):
            row_of.marks.append(Mark(at, "failed", event["kind"]))
    for row in rows.values():
        row.marks.sort(key=lambda m: m.at)
    return sorted(rows.values(), key=lambda r: r.recipient)


LEFT, RIGHT, ROW, TOP = 190, 30, 56, 34


def timeline(
    rows: Sequence[Row],
    now: dt.datetime,
    *,
    label: Callable[[str], str],
    when: Callable[[dt.datetime], str],
    width: int = 900,
) -> Markup:
    """The timeline picture: a row per recipient, a dot per mark with its label under it and
    its time in a tooltip, the acknowledgement deadline as a tick; an overdue recipient's name
    and deadline in red. *label* names a mark kind (or "overdue"), *when* formats a time."""
    times = [m.at for r in rows for m in r.marks]
    start = min(times, default=now)
    end = max([*times, now])
    end = max(end, min((r.deadline for r in rows), default=end))
    span = max((end - start).total_seconds(), 1.0)
    plot = width - LEFT - RIGHT

    def x(at: dt.datetime) -> float:
        return round(LEFT + plot * min(max((at - start).total_seconds() / span, 0), 1), 1)

    height = TOP + ROW * len(rows) + 10
    parts: list[Markup] = [
        tag("text", when(start), x=LEFT, y=14, font_size=11, fill="#555"),
        tag("text", when(end), x=width - RIGHT, y=14, font_size=11, fill="#555", text_anchor="end"),
    ]
    for index, row in enumerate(rows):
        y = TOP + ROW * index + 16
        overdue = row.verdict == "overdue"
        colour = RED if overdue else "#222"
        name = row.recipient + (f" ⚠ {label('overdue')}" if overdue else "")
        parts.append(
            tag("text", name, x=8, y=y + 4, font_size=12, fill=colour, class_="tl-recipient")
        )
        parts.append(
            Markup(f'<line x1="{LEFT}" y1="{y}" x2="{width - RIGHT}" y2="{y}" stroke="#ccc"/>')
        )
        if row.deadline <= end:
            dx = x(row.deadline)
            parts.append(
                tag(
                    "line",
                    tag("title", f"{label('deadline')}: {when(row.deadline)}"),
                    x1=dx,
                    y1=y - 14,
                    x2=dx,
                    y2=y + 14,
                    stroke=RED if overdue else "#999",
                    stroke_width=2,
                    stroke_dasharray="4 3",
                    class_="tl-deadline-overdue" if overdue else "tl-deadline",
                )
            )
        previous_x = -100.0
        below = True
        for mark in row.marks:
            mx = x(mark.at)
            # Marks close together alternate above and below the line so labels stay legible.
            below = not below if mx - previous_x < 34 else True
            previous_x = mx
            text = mark.label if mark.kind == "status" else label(mark.label)
            fill = COLOURS.get(mark.kind, "#333")
            parts.append(
                tag(
                    "g",
                    join(
                        [
                            tag("title", f"{text}: {when(mark.at)}"),
                            tag("circle", cx=mx, cy=y, r=6, fill=fill),
                            tag(
                                "text",
                                text,
                                x=mx,
                                y=y + 20 if below else y - 10,
                                font_size=10,
                                text_anchor="middle",
                                fill=fill,
                            ),
                        ]
                    ),
                    class_=f"tl-mark tl-{mark.kind}",
                )
            )
    return _svg(parts, width, height, "timeline")


def _svg(parts: Sequence[Markup], width: int, height: int, class_: str) -> Markup:
    """The picture: *parts* in an SVG of that size, described as an image."""
    return tag(
        "svg",
        join(parts),
        xmlns="http://www.w3.org/2000/svg",
        width=width,
        height=height,
        viewBox=f"0 0 {width} {height}",
        role="img",
        class_=class_,
    )


def bars(
    rows: Sequence[tuple[str, Mapping[str, int]]],
    series: Sequence[tuple[str, str, str]],
    *,
    width: int = 900,
) -> Markup:
    """Grouped horizontal bars: for each (label, values) row one bar per series, given as
    (key, name, colour), scaled to the largest value; each bar's value is written after it."""
    top = max((v.get(key, 0) for _, v in rows for key, _, _ in series), default=0) or 1
    bar, gap = 12, 14
    group = bar * len(series) + gap
    legend = 24
    height = legend + group * len(rows) + 4
    plot = width - LEFT - 60
    parts: list[Markup] = []
    for index, (_key, name, colour) in enumerate(series):
        parts.append(tag("rect", x=LEFT + index * 150, y=4, width=12, height=12, fill=colour))
        parts.append(tag("text", name, x=LEFT + index * 150 + 16, y=14, font_size=11))
    for index, (name, values) in enumerate(rows):
        y0 = legend + group * index
        parts.append(tag("text", name, x=8, y=y0 + bar * len(series) / 2 + 4, font_size=12))
        for n, (key, series_name, colour) in enumerate(series):
            value = values.get(key, 0)
            w = round(plot * value / top, 1)
            y = y0 + n * bar
            parts.append(
                tag(
                    "rect",
                    tag("title", f"{name} · {series_name}: {value}"),
                    x=LEFT,
                    y=y,
                    width=max(w, 1 if value else 0),
                    height=bar - 2,
                    fill=colour,
                    class_=f"bar bar-{key}",
                )
            )
            parts.append(tag("text", value, x=LEFT + w + 4, y=y + bar - 3, font_size=10))
    return _svg(parts, width, height, "chart")


__all__ = ["Mark", "Row", "bars", "escape", "timeline", "timeline_rows"]

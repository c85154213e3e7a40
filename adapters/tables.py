"""Plain-text tables of what the API returns, for people at a terminal. Times in Vietnam time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

VIETNAM = timezone(timedelta(hours=7))

STATUS_MEANINGS = {
    "01": "đã đến (arrived)",
    "02": "từ chối (rejected)",
    "03": "đã tiếp nhận (accepted)",
    "04": "đã phân công (assigned)",
    "05": "đang xử lý (in progress)",
    "06": "hoàn thành (finished)",
    "13": "đề nghị lấy lại (recall requested)",
    "15": "đồng ý lấy lại (recall agreed)",
    "16": "từ chối lấy lại (recall refused)",
}


def vn_time(iso: str | None) -> str:
    if not iso:
        return "-"
    return datetime.fromisoformat(iso).astimezone(VIETNAM).strftime("%Y-%m-%d %H:%M:%S")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)), line]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(line.rstrip() for line in out)


def _event_summary(event: dict[str, Any]) -> str:
    d = event["detail"]
    kind = event["kind"]
    if kind == "received":
        digest = d.get("package_sha256", "")[:12]
        text = f"{d.get('code', '')} · {d.get('size', 0)} bytes · sha256 {digest}…"
        for att in d.get("attachments", []):
            # Older events record only name and content_type; a file that could not be decoded
            # has an "error" instead of size and sha256.
            if att.get("error"):
                error = att["error"]
                code = error.get("code", "") if isinstance(error, dict) else error
                text += f" · {att.get('name', '')}: {code}"
            elif "size" in att:
                text += (
                    f" · {att.get('name', '')} ({att['size']} bytes, "
                    f"sha256 {att.get('sha256', '')[:12]}…"
                    + (", zipped" if att.get("zipped") else "")
                    + ")"
                )
            else:
                text += f" · {att.get('name', '')}"
        return text
    if kind == "validated":
        method = d.get("signature_method", "").rsplit("#", 1)[-1].rsplit("/", 1)[-1]
        return f"signature {method} ok" + (
            f" · {len(d['warnings'])} warning(s)" if d.get("warnings") else ""
        )
    if kind in ("revoked", "updated", "replaced"):
        text = f"by document {d.get('by_document', '?')}"
        if d.get("reason"):
            text += f" — {d['reason']}"
        receivers = d.get("receivers") or {}
        if receivers:
            text += " · " + ", ".join(f"{code} {why}" for code, why in receivers.items())
        return text
    if kind == "stored":
        return f"{len(d.get('recipients', []))} recipient(s)"
    if kind == "status":
        text = f"{d.get('code')} {STATUS_MEANINGS.get(d.get('code', ''), '')}"
        return text + (f" — {d['description']}" if d.get("description") else "")
    if kind in ("acknowledged", "failed"):
        return f"{d.get('kind', '')} {d.get('result', '')}" + (
            f" — {d['reason']}" if d.get("reason") else ""
        )
    if kind == "overdue":
        return _overdue_summary(d)
    if kind in ("queued", "delivered"):
        what = f"status {d['code']}" if d.get("code") else d.get("kind", "document")
        return f"{what} → {d.get('recipient', '')}" + (f" ({d['how']})" if d.get("how") else "")
    return ", ".join(f"{k}={v}" for k, v in d.items())


def _hours(seconds: float) -> str:
    hours = seconds / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} h"


def _overdue_summary(d: dict[str, Any]) -> str:
    late = f"deadline {vn_time(d.get('deadline'))}, {_hours(d.get('late_seconds', 0))} late"
    if d.get("overdue") == "ack":
        return (
            f"{d.get('recipient', '')}: not acknowledged within {d.get('window_hours', '?')} h "
            f"(priority {d.get('priority', '?')}) · {late}"
        )
    status = f"last status {d['business']}" if d.get("business") else "no status"
    return (
        f"{d.get('recipient', '')}: DueDate {d.get('due_date', '?')} without 06 ({status}) · {late}"
    )


_OVERDUE_WORDS = {"ack": "not acknowledged in time", "due_date": "DueDate missed"}


def trace_table(trace: dict[str, Any]) -> str:
    doc = trace["document"]
    head = [
        f"Document {doc['document_id']}",
        f"  {doc['code']} — {doc['subject']}",
        f"  from {doc['sender']}, received {vn_time(doc['received_at'])} (giờ Việt Nam)",
        "",
    ]
    recipients = table(
        ["recipient", "transport", "business"],
        [
            [
                r["recipient"],
                r["transport"],
                (
                    f"{r['business']} {STATUS_MEANINGS.get(r['business'], '')}"
                    if r["business"]
                    else "-"
                )
                + (" · recall pending" if r.get("recall_pending") else "")
                + "".join(
                    f" · OVERDUE: {_OVERDUE_WORDS.get(w, w)}" for w in r.get("overdue") or ()
                ),
            ]
            for r in trace["recipients"]
        ],
    )
    events = table(
        ["#", "time (UTC+7)", "event", "by", "details"],
        [
            [str(e["seq"]), vn_time(e["at"]), e["kind"], e["actor"], _event_summary(e)]
            for e in trace["events"]
        ],
    )
    return "\n".join(head) + recipients + "\n\n" + events


def documents_table(items: Sequence[dict[str, Any]]) -> str:
    if not items:
        return "(no document found)"

    def where(recipients: Sequence[dict[str, Any]]) -> str:
        return ", ".join(
            f"{r['recipient']} {r['transport']}" + (f"/{r['business']}" if r["business"] else "")
            for r in recipients
        )

    return table(
        ["document", "received (VN)", "from", "số/ký hiệu", "subject", "recipients"],
        [
            [
                i["document_id"],
                vn_time(i["received_at"]),
                i["sender"],
                i["code"],
                i["subject"][:40],
                where(i["recipients"])[:80],
            ]
            for i in items
        ],
    )


def inbox_table(items: Sequence[dict[str, Any]]) -> str:
    if not items:
        return "(inbox empty)"
    return table(
        ["delivery", "kind", "document", "from", "priority", "state", "what"],
        [
            [
                i["delivery_id"],
                i["kind"],
                i["document_id"],
                i.get("reporter") or i["sender"],
                str(i["priority"]),
                i["state"],
                (f"status {i['status_code']}" if i["kind"] == "status" else i.get("subject", ""))[
                    :60
                ],
            ]
            for i in items
        ],
    )

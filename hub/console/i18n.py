"""Every text of the web console, in Vietnamese (the default) and English.

Pages take their strings from :func:`messages` only, so the two catalogues must have the same
keys (a test checks it). Times are shown in Vietnam time with the zone named.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from hub.reports import VIETNAM

LANGUAGES = ("vi", "en")
DEFAULT = "vi"

VI: dict[str, str] = {
    "title": "Lienthong · Bảng điều khiển",
    "nav.documents": "Văn bản",
    "nav.deliveries": "Chuyển phát lỗi",
    "nav.agencies": "Danh bạ",
    "nav.audit": "Chuỗi kiểm toán",
    "nav.stats": "Thống kê",
    "signed_in_as": "Đăng nhập: {account} ({role})",
    "sign_out": "Đăng xuất",
    "role.agency": "cơ quan",
    "role.auditor": "thanh tra",
    "role.admin": "quản trị",
    "role.hub": "trục liên thông",
    "login.title": "Đăng nhập",
    "login.credential": "Mã xác thực (credential) của tài khoản",
    "login.submit": "Đăng nhập",
    "login.failed": "Mã xác thực không đúng.",
    "login.hub_account": "Tài khoản trục liên thông không dùng bảng điều khiển.",
    "login.throttled": "Quá nhiều lần đăng nhập sai. Thử lại sau {seconds} giây.",
    "error.title": "Không thực hiện được",
    "error.csrf": "Biểu mẫu đã hết hạn hoặc không hợp lệ (CSRF). Hãy tải lại trang rồi thử lại.",
    "error.not_found": "Không tìm thấy trang.",
    "error.forbidden": "Tài khoản {account} không được làm việc này.",
    "error.resend_admin": "Chỉ tài khoản quản trị được gửi lại chuyển phát.",
    "error.deliveries": "Chỉ quản trị và thanh tra xem danh sách chuyển phát.",
    "error.audit_verify": "Chỉ quản trị và thanh tra chạy kiểm tra chuỗi.",
    "search.title": "Tìm văn bản",
    "search.sender": "Nơi gửi",
    "search.recipient": "Nơi nhận",
    "search.state": "Trạng thái chuyển",
    "search.status": "Trạng thái xử lý",
    "search.since": "Từ ngày",
    "search.until": "Đến ngày",
    "search.q": "Trích yếu, số/ký hiệu",
    "search.submit": "Tìm",
    "search.any": "(tất cả)",
    "search.none": "Không có văn bản nào.",
    "search.more": "Trang sau",
    "search.admin": "Tài khoản quản trị không đọc văn bản; hãy dùng tài khoản thanh tra.",
    "col.received_at": "Hub nhận lúc",
    "col.sender": "Nơi gửi",
    "col.code": "Số/ký hiệu",
    "col.subject": "Trích yếu",
    "col.recipients": "Nơi nhận",
    "col.recipient": "Nơi nhận",
    "col.transport": "Chuyển",
    "col.business": "Xử lý",
    "col.delivered_at": "Đã nhận lúc",
    "col.acknowledged_at": "Xác nhận lúc",
    "col.deadline": "Hạn xác nhận",
    "col.state": "Trạng thái",
    "col.delivery_id": "Mã chuyển phát",
    "col.attempts": "Số lần thử",
    "col.last_error": "Lỗi gần nhất",
    "col.created_at": "Xếp hàng lúc",
    "col.document": "Văn bản",
    "col.action": "Thao tác",
    "col.at": "Lúc",
    "col.event": "Sự kiện",
    "col.actor": "Bên thực hiện",
    "col.code_or_id": "Mã",
    "col.name": "Tên",
    "col.delivery": "Cách nhận",
    "col.sent": "Đã gửi",
    "col.received": "Đã nhận",
    "col.acknowledged_in_time": "Xác nhận đúng hạn",
    "col.overdue": "Quá hạn",
    "col.pending": "Đang chờ",
    "col.finished": "Hoàn thành (06)",
    "col.median_hours_to_06": "Trung vị giờ đến 06",
    "doc.title": "Văn bản {code}",
    "doc.timeline": "Dòng thời gian",
    "doc.summary": (
        "{recipients} nơi nhận · chưa xác nhận: {not_acknowledged} · chưa xong: {not_finished}"
    ),
    "doc.events": "Nhật ký (chuỗi băm)",
    "doc.priority": "Độ khẩn",
    "doc.none": "không",
    "mark.queued": "xếp hàng",
    "mark.resent": "gửi lại",
    "mark.delivered": "đã nhận",
    "mark.done": "xác nhận",
    "mark.failed": "lỗi",
    "mark.dead": "hỏng",
    "mark.expired": "hết hạn",
    "mark.overdue": "quá hạn",
    "mark.deadline": "hạn xác nhận",
    "deliveries.title": "Chuyển phát lỗi, hỏng, hết hạn",
    "deliveries.agency": "Nơi nhận",
    "deliveries.filter": "Lọc",
    "deliveries.none": "Không có chuyển phát nào cần xử lý.",
    "deliveries.resend": "Gửi lại",
    "deliveries.resent": "Đã gửi lại chuyển phát {delivery_id} (trạng thái mới: {state}).",
    "agencies.title": "Danh bạ cơ quan",
    "agencies.groups": "Địa chỉ nhóm",
    "agencies.via": "qua {hub}",
    "audit.title": "Chuỗi kiểm toán",
    "audit.events": "Số sự kiện: {events} · sự kiện cuối: #{head}",
    "audit.checkpoint": (
        "Mốc ký gần nhất: sự kiện #{seq}, ký lúc {at} ({age} trước); chữ ký: {valid}"
    ),
    "audit.no_checkpoint": "Chưa có mốc ký nào.",
    "audit.valid": "hợp lệ",
    "audit.invalid": "KHÔNG hợp lệ",
    "audit.verify": "Kiểm tra toàn chuỗi ngay",
    "audit.running": "Đang kiểm tra… đã đọc {count} sự kiện.",
    "audit.intact": "Chuỗi nguyên vẹn: {events} sự kiện, {checkpoints} mốc ký (kiểm tra lúc {at}).",
    "audit.broken": "Chuỗi BỊ SỬA: {problem} (kiểm tra lúc {at}).",
    "stats.title": "Thống kê theo cơ quan, tháng {month}",
    "stats.month": "Tháng",
    "stats.show": "Xem",
    "stats.none": "Không có văn bản nào trong tháng này.",
    "stats.bad_month": "Tháng phải có dạng 2026-11.",
    "time.zone": "Giờ Việt Nam (UTC+7)",
    "age.seconds": "{n} giây",
    "age.minutes": "{n} phút",
    "age.hours": "{n} giờ",
    "age.days": "{n} ngày",
    "lang.switch": "English",
}

EN: dict[str, str] = {
    "title": "Lienthong · Console",
    "nav.documents": "Documents",
    "nav.deliveries": "Failed deliveries",
    "nav.agencies": "Directory",
    "nav.audit": "Audit chain",
    "nav.stats": "Statistics",
    "signed_in_as": "Signed in: {account} ({role})",
    "sign_out": "Sign out",
    "role.agency": "agency",
    "role.auditor": "auditor",
    "role.admin": "admin",
    "role.hub": "peer hub",
    "login.title": "Sign in",
    "login.credential": "Your account's credential",
    "login.submit": "Sign in",
    "login.failed": "The credential is not valid.",
    "login.hub_account": "Peer hub accounts do not use the console.",
    "login.throttled": "Too many failed sign-ins. Try again in {seconds} seconds.",
    "error.title": "Not done",
    "error.csrf": "The form expired or is not valid (CSRF). Reload the page and try again.",
    "error.not_found": "No such page.",
    "error.forbidden": "The account {account} may not do this.",
    "error.resend_admin": "Only admin accounts resend deliveries.",
    "error.deliveries": "Only admins and auditors list deliveries.",
    "error.audit_verify": "Only admins and auditors run the chain check.",
    "search.title": "Find documents",
    "search.sender": "Sender",
    "search.recipient": "Recipient",
    "search.state": "Transport state",
    "search.status": "Business state",
    "search.since": "Since",
    "search.until": "Until",
    "search.q": "Subject, number/notation",
    "search.submit": "Search",
    "search.any": "(any)",
    "search.none": "No documents.",
    "search.more": "Next page",
    "search.admin": "Admin accounts do not read documents; use an auditor account.",
    "col.received_at": "Received by the hub",
    "col.sender": "Sender",
    "col.code": "Number/notation",
    "col.subject": "Subject",
    "col.recipients": "Recipients",
    "col.recipient": "Recipient",
    "col.transport": "Transport",
    "col.business": "Business",
    "col.delivered_at": "Delivered",
    "col.acknowledged_at": "Acknowledged",
    "col.deadline": "Acknowledge by",
    "col.state": "State",
    "col.delivery_id": "Delivery",
    "col.attempts": "Attempts",
    "col.last_error": "Last error",
    "col.created_at": "Queued",
    "col.document": "Document",
    "col.action": "Action",
    "col.at": "At",
    "col.event": "Event",
    "col.actor": "Actor",
    "col.code_or_id": "Code",
    "col.name": "Name",
    "col.delivery": "Delivery",
    "col.sent": "Sent",
    "col.received": "Received",
    "col.acknowledged_in_time": "Acknowledged in time",
    "col.overdue": "Overdue",
    "col.pending": "Pending",
    "col.finished": "Finished (06)",
    "col.median_hours_to_06": "Median hours to 06",
    "doc.title": "Document {code}",
    "doc.timeline": "Timeline",
    "doc.summary": (
        "{recipients} recipients · not acknowledged: {not_acknowledged} · "
        "not finished: {not_finished}"
    ),
    "doc.events": "Events (hash chain)",
    "doc.priority": "Priority",
    "doc.none": "none",
    "mark.queued": "queued",
    "mark.resent": "resent",
    "mark.delivered": "delivered",
    "mark.done": "acknowledged",
    "mark.failed": "failed",
    "mark.dead": "dead",
    "mark.expired": "expired",
    "mark.overdue": "overdue",
    "mark.deadline": "acknowledge by",
    "deliveries.title": "Failed, dead and expired deliveries",
    "deliveries.agency": "Recipient",
    "deliveries.filter": "Filter",
    "deliveries.none": "No delivery needs attention.",
    "deliveries.resend": "Resend",
    "deliveries.resent": "Delivery {delivery_id} resent (new state: {state}).",
    "agencies.title": "Agency directory",
    "agencies.groups": "Group addresses",
    "agencies.via": "via {hub}",
    "audit.title": "Audit chain",
    "audit.events": "Events: {events} · last event: #{head}",
    "audit.checkpoint": (
        "Last signed checkpoint: event #{seq}, signed {at} ({age} ago); signature: {valid}"
    ),
    "audit.no_checkpoint": "No signed checkpoint yet.",
    "audit.valid": "valid",
    "audit.invalid": "NOT valid",
    "audit.verify": "Verify the whole chain now",
    "audit.running": "Verifying… {count} events read so far.",
    "audit.intact": (
        "The chain is intact: {events} events, {checkpoints} checkpoints (checked {at})."
    ),
    "audit.broken": "The chain was TAMPERED WITH: {problem} (checked {at}).",
    "stats.title": "Per-agency statistics, {month}",
    "stats.month": "Month",
    "stats.show": "Show",
    "stats.none": "No documents this month.",
    "stats.bad_month": "The month must look like 2026-11.",
    "time.zone": "Vietnam time (UTC+7)",
    "age.seconds": "{n} s",
    "age.minutes": "{n} min",
    "age.hours": "{n} h",
    "age.days": "{n} days",
    "lang.switch": "Tiếng Việt",
}

CATALOGUES = {"vi": VI, "en": EN}

Messages = Callable[..., str]


def messages(lang: str) -> Messages:
    """``t(key, **values)``: the text of *key* in *lang*, with ``{name}`` filled in."""
    catalogue = CATALOGUES.get(lang, VI)

    def t(key: str, **values: object) -> str:
        text = catalogue[key]
        return text.format(**values) if values else text

    return t


def vietnam_time(at: dt.datetime) -> str:
    """An instant as people in Vietnam read it, the zone named: ``2026-11-30 08:00:05 UTC+7``."""
    return at.astimezone(VIETNAM).strftime("%Y-%m-%d %H:%M:%S UTC+7")


def age(t: Messages, seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return t("age.seconds", n=seconds)
    if seconds < 7200:
        return t("age.minutes", n=seconds // 60)
    if seconds < 2 * 86400:
        return t("age.hours", n=seconds // 3600)
    return t("age.days", n=seconds // 86400)

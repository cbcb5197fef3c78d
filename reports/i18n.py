"""Language and number/date formats: Vietnamese by default, English by choice.

The language is chosen without a cookie: ``?lang=en`` / ``?lang=vi`` wins, else the first
of ``vi``/``en`` named in ``Accept-Language``, else Vietnamese. Links inside a page carry
``lang`` on so the choice sticks while browsing.

Vietnamese pages write numbers as ``1.234,5`` and dates as ``dd/mm/yyyy``; English pages as
``1,234.5`` and ``yyyy-mm-dd``. Missing values (no data, division by zero) show as ``–``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

LANGS = ("vi", "en")
DASH = "–"


def pick_lang(query: Mapping[str, str], accept_language: str = "") -> str:
    q = (query.get("lang") or "").lower()
    if q in LANGS:
        return q
    for part in accept_language.split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in LANGS:
            return tag
    return "vi"


def number(value: float | int | None, lang: str, digits: int = 0) -> str:
    if value is None:
        return DASH
    text = f"{value:,.{digits}f}"
    if lang == "vi":
        text = text.replace(",", "\0").replace(".", ",").replace("\0", ".")
    return text


def percent(value: float | None, lang: str, digits: int = 1) -> str:
    """``value`` is a ratio (0.5 → 50 %)."""
    if value is None:
        return DASH
    sep = "\u00a0" if lang == "vi" else ""
    return f"{number(value * 100, lang, digits)}{sep}%"


def delta(value: float | None, lang: str) -> str:
    """A relative change (0.25 → +25 %)."""
    if value is None:
        return DASH
    sign = "+" if value > 0 else ("−" if value < 0 else "±")
    return f"{sign}{percent(abs(value), lang)}"


def duration(seconds: float | None, lang: str) -> str:
    if seconds is None:
        return DASH
    s = int(round(seconds))
    m, s = divmod(s, 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def date(day: str | dt.date | None, lang: str) -> str:
    if not day:
        return DASH
    d = day if isinstance(day, dt.date) else dt.date.fromisoformat(str(day)[:10])
    return d.strftime("%d/%m/%Y") if lang == "vi" else d.isoformat()


def datetime_ms(ms: int | None, lang: str, offset_hours: int = 7) -> str:
    if not ms:
        return DASH
    t = dt.datetime.fromtimestamp(ms / 1000, dt.UTC) + dt.timedelta(hours=offset_hours)
    fmt = "%d/%m/%Y %H:%M" if lang == "vi" else "%Y-%m-%d %H:%M"
    return t.strftime(fmt)


# Interface strings. The key is the English text, so an untranslated string still reads.
VI: dict[str, str] = {
    "National overview": "Tổng quan toàn quốc",
    "Overview": "Tổng quan",
    "DVC services": "Dịch vụ công",
    "Compliance": "Tuân thủ",
    "Sign in": "Đăng nhập",
    "Sign out": "Đăng xuất",
    "Email or user name": "Tên đăng nhập",
    "Password": "Mật khẩu",
    "Wrong user name or password.": "Sai tên đăng nhập hoặc mật khẩu.",
    "Please sign in to see this page.": "Vui lòng đăng nhập để xem trang này.",
    "You may not see this page.": "Bạn không có quyền xem trang này.",
    "Not found": "Không tìm thấy",
    "Forbidden": "Không có quyền truy cập",
    "Visits": "Lượt truy cập",
    "Visitors": "Người truy cập",
    "Page views": "Lượt xem trang",
    "Bounce rate": "Tỷ lệ thoát",
    "Visit duration": "Thời gian truy cập TB",
    "Top pages": "Trang xem nhiều",
    "Entry pages": "Trang vào",
    "Sources": "Nguồn truy cập",
    "Campaigns": "Chiến dịch",
    "Devices": "Thiết bị",
    "Browsers": "Trình duyệt",
    "Operating systems": "Hệ điều hành",
    "Provinces": "Tỉnh, thành phố",
    "Hours of day": "Giờ trong ngày",
    "Ministries": "Bộ, cơ quan ngang bộ",
    "Page": "Trang",
    "Source": "Nguồn",
    "Campaign": "Chiến dịch",
    "Device": "Thiết bị",
    "Browser": "Trình duyệt",
    "Operating system": "Hệ điều hành",
    "Province": "Tỉnh, thành phố",
    "Hour": "Giờ",
    "Share": "Tỷ lệ",
    "Today": "Hôm nay",
    "7 days": "7 ngày",
    "30 days": "30 ngày",
    "90 days": "90 ngày",
    "This month": "Tháng này",
    "This year": "Năm nay",
    "Custom": "Tùy chọn",
    "From": "Từ ngày",
    "To": "Đến ngày",
    "Show": "Xem",
    "Period": "Kỳ báo cáo",
    "vs previous period": "so với kỳ trước",
    "Previous period": "Kỳ trước",
    "Service code": "Mã thủ tục",
    "Views": "Lượt xem",
    "Submissions": "Lượt nộp",
    "Conversion": "Tỷ lệ chuyển đổi",
    "View → submission funnel": "Phễu xem → nộp hồ sơ",
    "Procedure views": "Xem thủ tục",
    "Dossiers submitted": "Nộp hồ sơ",
    "Dossiers": "Hồ sơ",
    "Dossiers received": "Hồ sơ tiếp nhận",
    "Received online": "Tiếp nhận trực tuyến",
    "Received in person": "Tiếp nhận trực tiếp",
    "Online dossier rate": "Tỷ lệ hồ sơ trực tuyến",
    "Full-process online rate": "Tỷ lệ hồ sơ trực tuyến toàn trình",
    "Online payment rate": "Tỷ lệ thanh toán trực tuyến",
    "Results returned": "Đã trả kết quả",
    "Satisfaction": "Mức độ hài lòng",
    "Ratings": "Lượt đánh giá",
    "Dropped traffic": "Lưu lượng bị loại",
    "Reason": "Lý do",
    "Count": "Số lượng",
    "Snippet install status": "Tình trạng gắn mã giám sát",
    "Last hit": "Lượt ghi nhận gần nhất",
    "Last refused hit": "Lượt bị từ chối gần nhất",
    "Installed: hits arrive": "Đã gắn mã: có dữ liệu",
    "No hits received yet": "Chưa nhận được dữ liệu",
    "Check installation": "Kiểm tra cài đặt",
    "Embed code": "Mã nhúng",
    "Sites": "Hệ thống",
    "Site": "Hệ thống",
    "Kind": "Loại",
    "Agency": "Cơ quan",
    "Agencies": "Cơ quan",
    "Total": "Tổng",
    "Totals": "Tổng cộng",
    "Portal": "Cổng thông tin",
    "DVC portal": "Cổng dịch vụ công",
    "One-stop system": "Hệ thống một cửa",
    "Rank": "Hạng",
    "Ranking of ministries by visits": "Xếp hạng bộ, ngành theo lượt truy cập",
    "Ranking of provinces by visits": "Xếp hạng tỉnh, thành phố theo lượt truy cập",
    "Ranking of ministries by full-process online rate":
        "Xếp hạng bộ, ngành theo tỷ lệ hồ sơ trực tuyến toàn trình",
    "Ranking of provinces by full-process online rate":
        "Xếp hạng tỉnh, thành phố theo tỷ lệ hồ sơ trực tuyến toàn trình",
    "National targets": "Chỉ tiêu quốc gia",
    "Target": "Chỉ tiêu",
    "Dossiers online": "Hồ sơ trực tuyến",
    "Procedures full-process online": "Thủ tục trực tuyến toàn trình",
    "Visits per day": "Lượt truy cập theo ngày",
    "Visits per month": "Lượt truy cập theo tháng",
    "Latest scan": "Lần quét gần nhất",
    "No finding": "Không có phát hiện",
    "Not scanned yet": "Chưa quét",
    "Compliance of this site": "Tình hình tuân thủ của trang",
    "Pages": "Số trang",
    "No data for this period.": "Không có dữ liệu trong kỳ này.",
    "Download": "Tải về",
    "Language": "Ngôn ngữ",
    "Dashboard": "Bảng điều khiển",
    "Agencies with sites": "Cơ quan có hệ thống",
    "Monitored sites": "Hệ thống được giám sát",
    "Per service code across agencies": "Theo mã thủ tục, so sánh giữa các cơ quan",
    "Procedures": "Thủ tục",
    "Direct": "Truy cập trực tiếp",
    "unknown": "không xác định",
    "Signed in as": "Đăng nhập với",
    "Administrator": "Quản trị",
    "Open data: figures computed from monitoring code hits and dossier feeds.":
        "Dữ liệu mở: số liệu tính từ mã giám sát và dữ liệu hồ sơ gửi về.",
    "Request refused: the form expired or was not sent from this site. Reload and retry.":
        "Yêu cầu bị từ chối: biểu mẫu đã hết hạn hoặc không gửi từ trang này. Tải lại và thử lại.",
    "Settings": "Cài đặt",
    "Save": "Lưu",
    "Saved.": "Đã lưu.",
    "Default period": "Kỳ mặc định",
    "Dossier KPIs": "Chỉ số hồ sơ",
    "Visitors counted per day (salts rotate daily).":
        "Người truy cập được đếm theo ngày (mã ẩn danh đổi mỗi ngày).",
    "The provincial map is not drawn: no open geometry of the 34 units is bundled.":
        "Chưa vẽ bản đồ: chưa có dữ liệu hình học mở của 34 đơn vị cấp tỉnh.",
}


def translator(lang: str):  # type: ignore[no-untyped-def]
    if lang == "vi":
        return lambda s: VI.get(s, s)
    return lambda s: s


class Formats:
    """Formatters bound to one language; templates get it as ``f``."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.t = translator(lang)

    def num(self, v: float | int | None, digits: int = 0) -> str:
        return number(v, self.lang, digits)

    def pct(self, v: float | None, digits: int = 1) -> str:
        return percent(v, self.lang, digits)

    def delta(self, v: float | None) -> str:
        return delta(v, self.lang)

    def dur(self, v: float | None) -> str:
        return duration(v, self.lang)

    def date(self, v: str | dt.date | None) -> str:
        return date(v, self.lang)

    def datetime_ms(self, v: int | None) -> str:
        return datetime_ms(v, self.lang)

    def cell(self, v: object, kind: str) -> str:
        if kind == "int":
            return self.num(v)  # type: ignore[arg-type]
        if kind == "num":
            return self.num(v, 1)  # type: ignore[arg-type]
        if kind == "pct":
            return self.pct(v)  # type: ignore[arg-type]
        if kind == "dur":
            return self.dur(v)  # type: ignore[arg-type]
        if kind == "date":
            return self.date(v)  # type: ignore[arg-type]
        return DASH if v is None or v == "" else str(v)


VI.update({
    "Agencies offering it": "Số cơ quan",
    "Avg. duration": "Thời gian TB",
    "In person": "Trực tiếp",
    "Online rate": "Tỷ lệ trực tuyến",
    "Full-process rate": "Tỷ lệ toàn trình",
    "Online payment": "Thanh toán trực tuyến",
    "Received": "Tiếp nhận",
    "Online": "Trực tuyến",
    "Full-process": "Toàn trình",
    "Monitoring of government portals": "Giám sát cổng thông tin, dịch vụ công",
    "My agency": "Cơ quan của tôi",
    "Referrers": "Trang giới thiệu",
    "Search engines": "Công cụ tìm kiếm",
    "Social networks": "Mạng xã hội",
    "Government portals": "Cổng cơ quan nhà nước",
    "Desktop": "Máy tính",
    "Mobile": "Điện thoại",
    "Tablet": "Máy tính bảng",
    "Other": "Khác",
    "Bad request": "Yêu cầu không hợp lệ",
    "Error": "Lỗi",
    "Registered hosts": "Tên miền đã đăng ký",
    "Open a page of the site, then reload this page: the last hit shows once the next rollup "
    "ran (about a minute). The compliance scanner checks the pages themselves: giamsat scan":
        "Mở một trang của hệ thống rồi tải lại trang này: lượt ghi nhận gần nhất hiện ra sau "
        "lần tổng hợp kế tiếp (khoảng một phút). Trình quét tuân thủ kiểm tra chính các trang: "
        "giamsat scan",
})


SITE_KINDS = {"portal": "Portal", "dvc": "DVC portal", "onestop": "One-stop system",
              "other": "Other"}

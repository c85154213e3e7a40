"""The web console in a real headless Chromium: sign in, search, a document's timeline, a
failed delivery resent by an admin, what an auditor may not do, the English switch.

Documents are sent with the real CLI, as an agency's system would; Ba Đình's push endpoint
refuses with 400 until the test lets it accept, so its delivery dies through the real
dispatcher.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.conftest import Project, PushEndpoint, describe
from tests.acceptance.test_cli import write_package
from tests.browser.conftest import Shots
from tests.support import ADMIN, AUDITOR, BA_DINH, CITY, HOAN_KIEM

pytestmark = [pytest.mark.acceptance, pytest.mark.browser]


def credential(project: Project, code: str) -> str:
    return (project.demo_dir / "agencies" / code / "credential").read_text().strip()


def send(
    project: Project, tmp: Path, recipients: tuple[str, ...], number: str, subject: str
) -> Any:
    path = write_package(tmp, CITY, recipients, number, subject)
    result = project.run("send", str(path), "--as", CITY, "--json")
    assert result.returncode == 0, describe(result)
    return json.loads(result.stdout)


def sign_in(page: Any, project: Project, code: str, shots: Shots) -> None:
    page.goto(f"{project.url}/console/")
    page.fill("#credential", credential(project, code))
    shots.take(page, "sign-in")
    page.click("#sign-in")
    page.wait_for_load_state()


def wait_for(check: Any, seconds: float = 15) -> Any:
    deadline = time.monotonic() + seconds
    while not (found := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)
    return found


def test_sign_in_refuses_a_bad_credential_and_accepts_a_good_one(
    hub: Project, page: Any, shots: Shots
) -> None:
    page.goto(f"{hub.url}/console/")
    assert page.url.endswith("/console/login")
    page.fill("#credential", "khong-phai-ma-xac-thuc")
    page.click("#sign-in")
    assert page.locator(".error").inner_text() == "Mã xác thực không đúng."
    shots.take(page, "refused")
    sign_in(page, hub, CITY, shots)
    assert page.url.endswith("/console/documents")
    assert f"Đăng nhập: {CITY}" in page.locator("header").inner_text()
    shots.take(page, "signed-in")


def test_search_with_a_filter_and_open_the_timeline(
    hub: Project, page: Any, shots: Shots, tmp_path: Path
) -> None:
    wanted = send(hub, tmp_path, (HOAN_KIEM,), "201", "V/v kế hoạch phòng cháy chữa cháy")
    send(hub, tmp_path, (HOAN_KIEM,), "202", "V/v lịch tiếp công dân")
    sign_in(page, hub, CITY, shots)
    page.fill("#f-q", "phòng cháy")
    page.select_option("#f-state", "queued")
    page.click("#search")
    rows = page.locator("#results tr")
    assert rows.count() == 2  # the header and the one document that matches
    assert "V/v kế hoạch phòng cháy chữa cháy" in rows.nth(1).inner_text()
    shots.take(page, "search")
    rows.nth(1).locator("a").click()
    page.wait_for_load_state()
    assert wanted["document_id"] in page.url
    timeline = page.locator("svg.timeline")
    assert timeline.locator(".tl-recipient").all_text_contents() == [HOAN_KIEM]
    assert timeline.locator(".tl-mark.tl-queued").count() == 1
    assert "UTC+7" in page.locator("#recipients").inner_text()
    shots.take(page, "trace")


def test_an_admin_resends_a_dead_delivery(
    hub: Project, endpoint: PushEndpoint, page: Any, shots: Shots, tmp_path: Path
) -> None:
    receipt = send(hub, tmp_path, (BA_DINH,), "203", "V/v báo cáo tháng 11")
    (delivery,) = receipt["deliveries"]
    delivery_id = delivery["delivery_id"]
    sign_in(page, hub, ADMIN, shots)
    assert page.url.endswith("/console/deliveries")

    def listed() -> bool:
        page.reload()
        return delivery_id in page.content()

    wait_for(listed)
    resend = page.locator(f"form[action='/console/deliveries/{delivery_id}/resend']")
    row = resend.locator("xpath=../..")  # form < td < tr
    assert row.locator(".state").inner_text() == "dead"
    assert "HTTP 400" in row.inner_text()
    shots.take(page, "dead")
    endpoint.status = 200
    row.locator("button.resend").click()
    page.wait_for_load_state()
    assert "queued" in page.locator("#notice").inner_text()
    shots.take(page, "resent")

    def delivered() -> bool:
        page.goto(f"{hub.url}/console/deliveries")  # without the notice, which names it
        return delivery_id not in page.locator("main").inner_text()

    wait_for(delivered)
    shots.take(page, "after")
    trace = hub.run("trace", receipt["document_id"], "--as", CITY, "--json")
    assert json.loads(trace.stdout)["recipients"][0]["transport"] == "delivered"


def test_an_auditor_cannot_resend_even_with_a_forged_request(
    hub: Project, endpoint: PushEndpoint, page: Any, shots: Shots, tmp_path: Path
) -> None:
    endpoint.status = 400
    receipt = send(hub, tmp_path, (BA_DINH,), "204", "V/v kiểm tra công vụ")
    delivery_id = receipt["deliveries"][0]["delivery_id"]
    sign_in(page, hub, AUDITOR, shots)
    page.goto(f"{hub.url}/console/deliveries")

    def listed() -> bool:
        page.reload()
        return delivery_id in page.content()

    wait_for(listed)
    assert page.locator("button.resend").count() == 0
    shots.take(page, "no-resend")
    # A forged POST from the auditor's own signed-in browser, with its valid CSRF token.
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    answer = page.request.post(
        f"{hub.url}/console/deliveries/{delivery_id}/resend", form={"csrf": token}
    )
    assert answer.status == 403
    # And one without the token at all.
    assert page.request.post(f"{hub.url}/console/deliveries/{delivery_id}/resend").status == 403
    page.reload()
    assert delivery_id in page.content()
    shots.take(page, "still-dead")


def test_english_switch_is_remembered(hub: Project, page: Any, shots: Shots) -> None:
    sign_in(page, hub, CITY, shots)
    page.click("#lang-switch")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Find documents"
    page.goto(f"{hub.url}/console/agencies")
    assert page.locator("h1").inner_text() == "Agency directory"
    assert "Hà Nội" in page.locator("#tree").inner_text()
    shots.take(page, "english")
    page.click("#lang-switch")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Danh bạ cơ quan"


def test_a_post_without_the_form_token_is_refused(hub: Project) -> None:
    request = urllib.request.Request(
        f"{hub.url}/console/login", data=b"credential=x", method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403
    refused.value.close()

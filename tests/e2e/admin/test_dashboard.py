"""The dashboard in headless Chromium (Debian's): log in through the form, see the
enrollments that just happened, certificates by status and signal-source health; a
screenshot is kept in ``test-artifacts/dashboard.png``."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from acmegate.testkit.apple_ca import AttestationCA
from tests.e2e.admin.conftest import AdminGateway

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[3]
# Debian's chromium (.ci/run apt-installs it); Playwright's own browser builds are not used.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HOSTILE_SERIAL = '<script>document.title="pwned"</script><img src=x onerror=alert(1)>'


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def test_the_dashboard_shows_what_just_happened(
    admin: AdminGateway, attestation_ca: AttestationCA, browser: Browser
) -> None:
    issued = await admin.enroll(attestation_ca, "C02E2E00001")
    assert issued.ok, issued.problems
    serial = format(issued.certificate.serial_number, "x")
    refused = await admin.enroll(attestation_ca, "C02NOGROUP")
    assert refused.problem is not None
    # A client-controlled value that must be shown as text, never run.
    await admin.gateway.pool.execute(
        "INSERT INTO acme.enrollment_events (at, outcome, stage, order_id, account_id, "
        "device_serial, problem) "
        "VALUES ($1, 'failed', 'challenge', 'o-x', 'a-x', $2, $3::text::jsonb)",
        # Older than the enrollments above, younger than retention.enrollment_events.
        datetime.now(UTC) - timedelta(hours=1),
        HOSTILE_SERIAL,
        '{"kind": "malformed", "detail": "<b>not bold</b>"}',
    )

    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    page = await context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))

    await page.goto(admin.url + "/dashboard")
    assert page.url == admin.url + "/login"
    await page.fill("#token", "not-the-token")
    await page.click("button[type=submit]")
    assert "That is not the admin token." in await page.inner_text("body")

    await page.fill("#token", admin.token)
    await page.click("button[type=submit]")
    await page.wait_for_url(admin.url + "/dashboard")
    [cookie] = await context.cookies()
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert admin.token not in cookie["value"]

    completed = page.locator("#enrollments tr.enrollment.completed")
    failed = page.locator("#enrollments tr.enrollment.failed")
    assert await completed.count() == 1
    row = await completed.first.inner_text()
    assert "C02E2E00001" in row and serial in row
    failed_rows = [await failed.nth(i).inner_text() for i in range(await failed.count())]
    assert any(
        "C02NOGROUP" in text and "none of the groups 'Cert-Eligible'" in text
        for text in failed_rows
    ), failed_rows
    # Escaped: shown literally, nothing ran, no element was injected.
    assert any(HOSTILE_SERIAL in text for text in failed_rows)
    assert any("<b>not bold</b>" in text for text in failed_rows)
    assert await page.locator("#enrollments img, #enrollments script, #enrollments b").count() == 0
    assert await page.title() == "acmegate dashboard" and dialogs == []

    certificates = await page.inner_text("#certificates")
    assert "devices" in certificates
    cells = await page.locator("#certificates tbody tr td").all_inner_texts()
    assert cells == ["devices", "1", "0", "0", "1"]
    sources = await page.inner_text("#signal-sources")
    assert "inventory" in sources and "ok" in sources and "5 devices" in sources

    folder = ROOT / "test-artifacts"
    folder.mkdir(exist_ok=True)
    screenshot = folder / "dashboard.png"
    await page.screenshot(path=str(screenshot), full_page=True)
    data = screenshot.read_bytes()
    width, height = png_size(data)
    assert width >= 1000 and height >= 400
    assert 10_000 < len(data) < 10_000_000

    # Signing out ends the browser's session.
    await page.click("header button[type=submit]")
    await page.wait_for_url(admin.url + "/login")
    await page.goto(admin.url + "/dashboard")
    assert page.url == admin.url + "/login"
    await context.close()


async def test_a_dashboard_session_reads_but_cannot_act(
    admin: AdminGateway, browser: Browser
) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(admin.url + "/login")
    await page.fill("#token", admin.token)
    await page.click("button[type=submit]")
    await page.wait_for_url(admin.url + "/dashboard")
    # The session cookie authenticates reads of the API...
    listed = await page.request.get(admin.url + "/api/v1/enrollments")
    assert listed.status == 200
    # ...but no change: a forged form post from another site could not rotate a token.
    rotated = await page.request.post(admin.url + "/api/v1/platforms/jamf-macs/token/rotate")
    assert rotated.status == 401
    assert (await rotated.json())["type"] == "about:blank"
    await context.close()


async def test_the_dashboard_says_unknown_when_the_services_do_not_answer(
    tmp_path: Path,
    attestation_ca: AttestationCA,
    database_url: str,
    admin_token: str,
    browser: Browser,
) -> None:
    from acmegate.cli.compose import running
    from acmegate.common.config import load_config
    from tests.e2e.admin.conftest import admin_config

    files, url = admin_config(tmp_path / "alone", attestation_ca)
    config = load_config(files.config_path)
    async with running(config, ["frontend"], database=database_url, in_process=True):
        context = await browser.new_context(
            extra_http_headers={"Authorization": f"Bearer {admin_token}"}
        )
        page = await context.new_page()
        await page.goto(url + "/dashboard")
        assert "the signer service did not answer" in await page.inner_text("#certificates")
        sources = await page.inner_text("#signal-sources")
        assert "inventory" in sources and "unknown" in sources
        assert "No enrollment has finished yet." in await page.inner_text("#enrollments")
        await context.close()

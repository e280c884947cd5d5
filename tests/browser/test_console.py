"""The operator console in a real browser: sign in, find a booking and read its access, retry an
escalation and watch the call succeed against the sandbox, re-sync with a preview; refused
without a session and on a form without its CSRF token. Each page is photographed at desktop
and phone width (into docs/console/, shown in docs/operations.md, by `make screenshots`)."""

from __future__ import annotations

import re
from datetime import timedelta

from playwright.async_api import Browser, Page, expect

from ..support import ADMIN, START, Harness, event, stay
from .conftest import SCREENSHOTS

HOUR = timedelta(hours=1)
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


async def photograph(page: Page, name: str) -> None:
    """The page at desktop and at phone width, whole."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.set_viewport_size(DESKTOP)
    await page.screenshot(path=SCREENSHOTS / f"{name}-desktop.png", full_page=True)
    await page.set_viewport_size(PHONE)
    await page.screenshot(path=SCREENSHOTS / f"{name}-phone.png", full_page=True)
    # nothing wider than the phone: every table scrolls inside its own box
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{name} is {width}px wide at phone width"
    await page.set_viewport_size(DESKTOP)


async def hotel_with_a_failed_grant(h: Harness) -> None:
    """R-2002's grant refused by Inlet (escalated); R-1001 granted."""
    await h.fault(kind="success_false", retryable=False, message="Lock L-102 unknown", count=1)
    room_102 = [stay(resource_id="102", arrival=START + 2 * HOUR)]
    await h.post(event("e-2002", booking_id="R-2002", stays=room_102))
    await h.settle()
    await h.post(event("e-1001", booking_id="R-1001", arrival=START + 3 * HOUR))
    await h.settle()


async def sign_in(page: Page, base: str, token: str = ADMIN) -> None:
    await page.goto(f"{base}/console/bookings")
    await expect(page).to_have_url(f"{base}/console/sign-in")
    await photograph(page, "sign-in")
    await page.get_by_label("Operator token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(f"{base}/console/bookings")


async def test_the_person_on_call_finds_a_booking_retries_and_resyncs(
    h: Harness, browser: Browser
) -> None:
    await hotel_with_a_failed_grant(h)
    base = h.service.base_url
    context = await browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(10_000)
    page = await context.new_page()
    await sign_in(page, base)
    cookie = next(c for c in await context.cookies() if c["name"] == "inlet_bridge_console")
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Strict"
    assert not cookie["secure"]  # loopback: http; anywhere else the cookie is Secure

    # find a booking, read its access in plain words
    await page.get_by_label("Booking id (or its start)").fill("R-10")
    await page.get_by_role("button", name="Search").click()
    await expect(page.locator("#bookings tbody tr")).to_have_count(1)
    await photograph(page, "bookings")
    await page.get_by_role("link", name="demo-pms / R-1001").click()
    words = page.locator("#stay-S1 .access-words")
    await expect(words).to_have_text(
        re.compile(r"^code works on L-101, MAIN-ENTRANCE and NIGHT-ENTRANCE from .* until \d+ Nov")
    )
    masked = page.locator("#stay-S1 td.mono").first
    await expect(masked).to_have_text(re.compile(r"^<masked:"))
    await photograph(page, "booking")
    await page.get_by_role("button", name=re.compile("Reveal")).click()
    await expect(page.locator("#stay-S1 td.mono").first).to_have_text(re.compile(r"^#?\d{4}"))
    [reveal] = await h.rows("SELECT operator, action, booking_id FROM audit_log")
    assert reveal == {"operator": "ADMIN_TOKEN", "action": "reveal", "booking_id": "R-1001"}

    # the escalation: listed with its hotel and doors; retried; the call followed to success
    await page.get_by_role("link", name="Escalations").click()
    row = page.locator("#escalations tbody tr").first
    await expect(row).to_contain_text("Demo Hotel Oslo")
    await expect(row).to_contain_text("L-102")
    await expect(row).to_contain_text("Lock L-102 unknown")
    await photograph(page, "escalations")
    await row.get_by_role("link", name=re.compile(r"^#\d+")).click()
    await page.get_by_label("Note for the retry (what changed)").fill("lock added in Inlet")
    await page.get_by_role("button", name="Retry and follow the call").click()
    state = page.locator("#retry-state")
    await expect(state).to_have_text(re.compile("planning|pending"))
    await photograph(page, "escalation-retrying")
    await h.settle()  # the reconciler plans the grant again, the call worker sends it
    await expect(state).to_have_text("succeeded", timeout=10_000)  # the page reloads itself
    await expect(page.locator("#retry")).to_contain_text("grant #")
    await photograph(page, "escalation-succeeded")
    grants = {g["externalId"] for g in await h.grants()}
    assert "demo-pms:R-2002:S1" in grants

    # re-sync: choose, preview, confirm, follow to the end
    await page.get_by_role("link", name="Re-sync").click()
    await page.get_by_label("Property").select_option("oslo-1")
    await page.get_by_label("Access points (doors), separated by spaces").fill("L-101 L-102")
    await page.get_by_role("button", name="Preview").click()
    await expect(page.locator("#matched")).to_have_text("2")
    await expect(page.locator("#preview tbody tr")).to_have_count(2)
    await photograph(page, "resync-preview")
    await page.get_by_label("Note (why; goes to the audit trail)").fill("lock firmware reset")
    await page.get_by_role("button", name="Re-sync 2 grant(s)").click()
    await expect(page.locator("#resync-state")).to_contain_text("in progress")
    await h.settle()
    await expect(page.locator("#resync-state")).to_contain_text(
        "finished: 2 done, 0 pending, 0 failed", timeout=10_000
    )
    await photograph(page, "resync-progress")

    await page.get_by_role("link", name="Health").click()
    await expect(page.locator("#backlog")).to_contain_text("Pending Inlet calls")
    await photograph(page, "health")
    actions = await h.rows("SELECT operator, action, note FROM audit_log ORDER BY id")
    assert [(a["action"], a["note"]) for a in actions] == [
        ("reveal", None),
        ("retry", "lock added in Inlet"),
        ("resync", "lock firmware reset"),
    ]
    await context.close()


async def test_refused_without_a_session_and_without_the_csrf_token(
    h: Harness, browser: Browser
) -> None:
    await hotel_with_a_failed_grant(h)
    [escalation] = await h.rows("SELECT id FROM escalations")
    base = h.service.base_url
    stranger = await browser.new_context()
    page = await stranger.new_page()
    await page.goto(f"{base}/console/escalations/{escalation['id']}")
    await expect(page).to_have_url(f"{base}/console/sign-in")
    posted = await stranger.request.post(
        f"{base}/console/escalations/{escalation['id']}/resolve", form={"note": "gone"}
    )
    assert posted.status == 401
    await stranger.close()

    context = await browser.new_context()
    page = await context.new_page()
    await sign_in(page, base)
    await page.goto(f"{base}/console/escalations/{escalation['id']}")
    # a form posted from elsewhere carries no token: take it out of the page's form
    await page.evaluate(
        "document.querySelectorAll('form[action$=resolve] input[name=csrf]')"
        ".forEach(e => e.remove())"
    )
    await page.get_by_label("Note: what was done (required)").fill("revoked by hand")
    await page.get_by_role("button", name="Resolve").click()
    await expect(page.locator("#error")).to_contain_text("no valid CSRF token")
    [still] = await h.rows("SELECT resolved_at FROM escalations")
    assert still["resolved_at"] is None
    assert await h.rows("SELECT 1 FROM audit_log WHERE action = 'resolve'") == []
    # the same form with its token goes through
    await page.go_back()
    await page.reload()
    await page.get_by_label("Note: what was done (required)").fill("revoked by hand")
    await page.get_by_role("button", name="Resolve").click()
    await expect(page.locator(".facts")).to_contain_text("resolved")
    await context.close()

"""The dashboard: a read-only page of recent enrollments, certificates by status and the health
of each signal source, rendered on the server (no script, no external asset), plus its login.

Every value is escaped (``html.escape``) before it enters the page: a device serial, an
identifier or a problem detail is client-controlled. The page's Content-Security-Policy
allows nothing but its own inline style and forms posting back to itself.
"""

from __future__ import annotations

import asyncio
import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib.resources import files
from string import Template

from aiohttp import web

from acmegate.common.admin_messages import (
    AdminCertificateCounts,
    AdminCertificateList,
    AdminCheckSignalSources,
    AdminCountCertificates,
    AdminQueryCertificates,
    AdminSignalSourceStatuses,
    CertificateCount,
    CertificateSummary,
)
from acmegate.common.bus import RpcQueue
from acmegate.common.errors import AcmeError
from acmegate.common.vocabulary import CertificateState
from acmegate.frontend.admin.auth import (
    LOGIN_PATH,
    check_login,
    clear_session_cookie,
    set_session_cookie,
    token_matches,
)
from acmegate.frontend.admin.context import ADMIN
from acmegate.frontend.admin.routes.certificates import HISTORY_LIMIT, device_serial
from acmegate.frontend.admin.rpc import ask, correlation_id
from acmegate.frontend.db.enrollments import EnrollmentEvent, recent_events

DASHBOARD_PATH = "/dashboard"
# The dashboard waits this long for the signer and the policy service, each.
PANEL_TIMEOUT = 5.0
RECENT = 50
COUNT_COLUMNS = tuple(CertificateState)
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


@dataclass(frozen=True)
class Pages:
    """The page templates and style, read once when the listener starts."""

    login: Template
    dashboard: Template
    device: Template
    style: str

    @classmethod
    def load(cls) -> Pages:
        folder = files("acmegate.frontend.admin.pages")
        return cls(
            login=Template(folder.joinpath("login.html").read_text("utf-8")),
            dashboard=Template(folder.joinpath("dashboard.html").read_text("utf-8")),
            device=Template(folder.joinpath("device.html").read_text("utf-8")),
            style=folder.joinpath("style.css").read_text("utf-8"),
        )


PAGES = web.AppKey("pages", Pages)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _page(body: str, *, status: int = 200) -> web.Response:
    response = web.Response(text=body, status=status, content_type="text/html", charset="utf-8")
    response.headers["Content-Security-Policy"] = CSP
    return response


def _time(value: datetime) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}"


def _cell(value: str | None, *, mono: bool = False) -> str:
    if not value:
        return '<td class="muted">—</td>'
    return f'<td class="mono">{_e(value)}</td>' if mono else f"<td>{_e(value)}</td>"


def _table(headers: Sequence[str], rows: Iterable[str]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def render_enrollments(events: Sequence[EnrollmentEvent]) -> str:
    if not events:
        return '<p class="muted">No enrollment has finished yet.</p>'
    rows = []
    for event in events:
        badge = (
            '<span class="badge ok">completed</span>'
            if event.outcome == "completed"
            else '<span class="badge bad">failed</span>'
        )
        rows.append(
            f'<tr class="enrollment {_e(event.outcome)}">'
            f"<td>{_e(_time(event.at))}</td><td>{badge}</td>"
            + _cell(event.device_serial or event.identifier, mono=True)
            + _cell(event.platform)
            + _cell(event.enrollment_policy)
            + _cell(event.certificate_serial, mono=True)
            + _cell(event.reason)
            + "</tr>"
        )
    return _table(
        ("Time (UTC)", "Outcome", "Device serial", "Platform", "Policy", "Certificate", "Reason"),
        rows,
    )


def render_counts(counts: Sequence[CertificateCount] | None, unavailable: str | None) -> str:
    if counts is None:
        return f'<p><span class="badge unknown">unknown</span> {_e(unavailable or "")}</p>'
    if not counts:
        return '<p class="muted">No certificate has been issued yet.</p>'
    by_ca: dict[str, dict[str, int]] = {}
    for count in counts:
        by_ca.setdefault(count.ca, {})[count.status] = count.count
    rows = []
    for ca, statuses in sorted(by_ca.items()):
        cells = "".join(f"<td>{statuses.get(status, 0)}</td>" for status in COUNT_COLUMNS)
        rows.append(f"<tr><td>{_e(ca)}</td>{cells}<td>{sum(statuses.values())}</td></tr>")
    return _table(("CA", *COUNT_COLUMNS, "total"), rows)


def render_history(certificates: Sequence[CertificateSummary]) -> str:
    """A device's certificates, newest first; superseded ones say so."""
    if not certificates:
        return '<p class="muted">No certificate was issued to this device.</p>'
    rows = []
    for c in certificates:
        if c.status == "revoked":
            badge = '<span class="badge bad">revoked</span>'
        elif c.expired:
            badge = '<span class="badge unknown">expired</span>'
        else:
            badge = '<span class="badge ok">valid</span>'
        rows.append(
            '<tr class="certificate">'
            f"<td>{_e(_time(c.issued_at))}</td>"
            + _cell(c.serial, mono=True)
            + f"<td>{badge}</td>"
            + _cell(c.revocation_reason)
            + _cell(_time(c.revoked_at) if c.revoked_at else None)
            + _cell(c.ca)
            + _cell(c.template)
            + f"<td>{_e(_time(c.not_after))}</td>"
            + _cell(c.account_id, mono=True)
            + "</tr>"
        )
    return _table(
        (
            "Issued (UTC)",
            "Serial",
            "Status",
            "Reason",
            "Revoked (UTC)",
            "CA",
            "Template",
            "Not after",
            "Account",
        ),
        rows,
    )


@dataclass(frozen=True)
class SourceHealth:
    name: str
    state: str  # ok | failing | unknown
    detail: str


def render_sources(health: Sequence[SourceHealth]) -> str:
    if not health:
        return '<p class="muted">No signal source is configured.</p>'
    classes = {"ok": "ok", "failing": "bad", "unknown": "unknown"}
    rows = [
        f'<tr class="source"><td>{_e(h.name)}</td>'
        f'<td><span class="badge {classes[h.state]}">{_e(h.state)}</span></td>'
        f"<td>{_e(h.detail)}</td></tr>"
        for h in health
    ]
    return _table(("Source", "Health", "Detail"), rows)


async def _counts(request: web.Request) -> tuple[list[CertificateCount] | None, str | None]:
    try:
        reply = await ask(
            request.app[ADMIN],
            RpcQueue.SIGNER,
            AdminCountCertificates(correlation_id=correlation_id()),
            AdminCertificateCounts,
            timeout=PANEL_TIMEOUT,
        )
    except AcmeError as error:
        return None, error.detail
    return reply.counts, None


async def _health(request: web.Request) -> list[SourceHealth]:
    names = [s.name for s in request.app[ADMIN].frontend.config.signal_sources]
    try:
        reply = await ask(
            request.app[ADMIN],
            RpcQueue.POLICY,
            AdminCheckSignalSources(correlation_id=correlation_id()),
            AdminSignalSourceStatuses,
            timeout=PANEL_TIMEOUT,
        )
    except AcmeError as error:
        return [SourceHealth(name, "unknown", error.detail) for name in names]
    answered = {s.name: s for s in reply.sources}
    health = []
    for name in names:
        status = answered.get(name)
        if status is None:
            health.append(SourceHealth(name, "unknown", "the policy service did not report it"))
        else:
            health.append(SourceHealth(name, "ok" if status.ok else "failing", status.detail))
    return health


async def dashboard(request: web.Request) -> web.Response:
    """The page; the three panels are fetched at once."""
    admin = request.app[ADMIN]
    frontend = admin.frontend
    events, (counts, unavailable), health = await asyncio.gather(
        recent_events(frontend.pool, limit=RECENT), _counts(request), _health(request)
    )
    pages = request.app[PAGES]
    body = pages.dashboard.substitute(
        style=pages.style,
        gateway=_e(frontend.config.server.base_url),
        enrollments=render_enrollments(events),
        certificates=render_counts(counts, unavailable),
        sources=render_sources(health),
        generated=_e(_time(frontend.clock.now())),
    )
    return _page(body)


async def device_page(request: web.Request) -> web.Response:
    """One device's certificate history (the dashboard's lookup form asks for it)."""
    pages = request.app[PAGES]
    raw = request.query.get("serial", "").strip()
    try:
        serial = device_serial(raw)
    except AcmeError as error:
        history, serial, status = f'<p class="error">{_e(error.detail)}</p>', raw[:64], 400
    else:
        status = 200
        try:
            reply = await ask(
                request.app[ADMIN],
                RpcQueue.SIGNER,
                AdminQueryCertificates(
                    correlation_id=correlation_id(), device_serial=serial, limit=HISTORY_LIMIT
                ),
                AdminCertificateList,
                timeout=PANEL_TIMEOUT,
            )
        except AcmeError as error:
            history = f'<p><span class="badge unknown">unknown</span> {_e(error.detail)}</p>'
        else:
            history = render_history(reply.certificates)
    body = pages.device.substitute(
        style=pages.style,
        serial=_e(serial),
        history=history,
        generated=_e(_time(request.app[ADMIN].frontend.clock.now())),
    )
    return _page(body, status=status)


def _login_page(
    request: web.Request, error: str | None = None, *, status: int = 200
) -> web.Response:
    pages = request.app[PAGES]
    message = f'<p class="error" role="alert">{_e(error)}</p>' if error else ""
    return _page(pages.login.substitute(style=pages.style, error=message), status=status)


async def login_form(request: web.Request) -> web.Response:
    return _login_page(request)


async def login(request: web.Request) -> web.Response:
    """Check the posted token; on success set the session cookie and go to the dashboard."""
    try:
        form = await request.post()
    except (ValueError, LookupError):
        # Not UTF-8 (UnicodeDecodeError is a ValueError), a broken multipart body, or a
        # charset Python does not know (LookupError): the browser gets the form again.
        return _login_page(request, "The form could not be read: send it as UTF-8.", status=400)
    token = form.get("token")
    correct = isinstance(token, str) and token_matches(request.app[ADMIN], token)
    try:
        await check_login(request, correct)
    except AcmeError as error:
        if error.retry_after is None:
            raise
        minutes = math.ceil(error.retry_after / 60)
        page = _login_page(
            request,
            f"Too many failed logins from your address; try again in {minutes} min.",
            status=429,
        )
        page.headers["Retry-After"] = str(error.retry_after)
        return page
    if not correct:
        return _login_page(request, "That is not the admin token.", status=401)
    response = web.Response(status=303, headers={"Location": DASHBOARD_PATH})
    set_session_cookie(response, request, request.app[ADMIN])
    return response


async def logout(request: web.Request) -> web.Response:
    response = web.Response(status=303, headers={"Location": LOGIN_PATH})
    clear_session_cookie(response)
    return response


async def home(request: web.Request) -> web.Response:
    return web.Response(status=303, headers={"Location": DASHBOARD_PATH})

"""Who is at the console, and may they do this? Sign-in, the session cookie, CSRF, the role check.

An operator signs in with their operator token (a named operator of the properties file, or
`ADMIN_TOKEN`); the service keeps the session in PostgreSQL (`inlet_bridge/store/sessions.py`), so
any replica serves the next page. The cookie is HttpOnly, SameSite=Strict and Secure unless
the request came over loopback (a `kubectl port-forward`, a developer's machine). Each request
looks the operator up again by the digest of the token they signed in with: a changed role
applies at once, a rotated or removed token ends the session. The role check is the API's
(`inlet_bridge/api/auth.py` `refusal`).

Every form carries a CSRF token, derived from the session id (HMAC-SHA256), and every POST is
checked against it. The sign-in form, before there is a session, carries a random token that
must match a cookie set with the form (double submit).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets

import aiohttp_jinja2
from aiohttp import web

from inlet_bridge.api.auth import CREDENTIALS, OperatorIdentity, Permission, refusal, token_digest
from inlet_bridge.keys import CLOCK, DATABASE
from inlet_bridge.store.sessions import LIFETIME_SECONDS, SessionStore

COOKIE = "inlet_bridge_console"
SIGN_IN_COOKIE = "inlet_bridge_sign_in"
CSRF_FIELD = "csrf"
CONSOLE_USER: web.RequestKey[ConsoleUser] = web.RequestKey("console_user")


class ConsoleUser:
    """The signed-in operator of this request, and the session's CSRF token."""

    def __init__(self, operator: OperatorIdentity, session_id: str) -> None:
        self.operator = operator
        self.session_id = session_id
        self.csrf = csrf_token(session_id)


def csrf_token(session_id: str) -> str:
    return hmac.new(session_id.encode(), b"console csrf", hashlib.sha256).hexdigest()


def on_loopback(request: web.Request) -> bool:
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False


def set_cookie(
    request: web.Request, response: web.StreamResponse, name: str, value: str, max_age: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/console/",
        httponly=True,
        samesite="Strict",
        secure=not on_loopback(request),
    )


async def current_user(request: web.Request) -> ConsoleUser | None:
    """The operator signed in on this browser, if the session is still good."""
    if CONSOLE_USER in request:
        return request[CONSOLE_USER]
    session_id = request.cookies.get(COOKIE)
    if not session_id or len(session_id) > 128:
        return None
    stored = await SessionStore(request.app[DATABASE]).find(session_id, request.app[CLOCK].now())
    if stored is None:
        return None
    operator = request.app[CREDENTIALS].operator_by_digest(stored.token_sha256)
    if operator is None or operator.name != stored.operator:
        return None
    user = ConsoleUser(operator, session_id)
    request[CONSOLE_USER] = user
    return user


def see_other(location: str) -> web.Response:
    """A redirect after a form (303: the browser follows it with a GET)."""
    return web.Response(status=303, headers={"Location": location})


def page_error(request: web.Request, status: int, message: str) -> web.Response:
    response = aiohttp_jinja2.render_template(
        "error.html",
        request,
        {"request": request, "status": status, "message": message, "user": None},
        status=status,
    )
    return response


async def guard(
    request: web.Request, permission: Permission, what: str
) -> ConsoleUser | web.Response:
    """The signed-in operator, if their role allows `permission` and (for a POST) the form
    carries the session's CSRF token; else the page that says why not. A GET without a session
    is sent to the sign-in page."""
    user = await current_user(request)
    if user is None:
        if request.method == "GET":
            return see_other("/console/sign-in")
        return page_error(request, 401, "Sign in first: this form needs a session.")
    if request.method == "POST":
        form = await request.post()
        sent = form.get(CSRF_FIELD)
        if not isinstance(sent, str) or not hmac.compare_digest(sent, user.csrf):
            return page_error(
                request, 403, "This form has no valid CSRF token. Reload the page and try again."
            )
    refused = refusal(user.operator, permission, what)
    if refused is not None:
        return page_error(request, refused.status, refused.message)
    return user


async def sign_in_page(request: web.Request) -> web.Response:
    token = secrets.token_urlsafe(24)
    response = aiohttp_jinja2.render_template(
        "sign_in.html", request, {"request": request, "csrf": token, "error": None, "user": None}
    )
    set_cookie(request, response, SIGN_IN_COOKIE, token, 900)
    return response


async def sign_in(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    sent, expected = form.get(CSRF_FIELD), request.cookies.get(SIGN_IN_COOKIE)
    if not isinstance(sent, str) or not expected or not hmac.compare_digest(sent, expected):
        return page_error(request, 403, "The sign-in form has expired. Open it again.")
    token = form.get("token")
    digest = token_digest(token.strip()) if isinstance(token, str) else None
    operator = None if digest is None else request.app[CREDENTIALS].operator_by_digest(digest)
    if operator is None or digest is None:
        response = aiohttp_jinja2.render_template(
            "sign_in.html",
            request,
            {
                "request": request,
                "csrf": expected,
                "error": "That token is not an operator's token.",
                "user": None,
            },
            status=401,
        )
        return response
    session_id = await SessionStore(request.app[DATABASE]).create(
        operator=operator.name, token_sha256=digest, now=request.app[CLOCK].now()
    )
    response = see_other("/console/bookings")
    set_cookie(request, response, COOKIE, session_id, LIFETIME_SECONDS)
    response.del_cookie(SIGN_IN_COOKIE, path="/console/")
    return response


async def sign_out(request: web.Request) -> web.StreamResponse:
    user = await guard(request, "read", "sign out")
    if isinstance(user, web.Response):
        return user
    await SessionStore(request.app[DATABASE]).end(user.session_id)
    response = see_other("/console/sign-in")
    response.del_cookie(COOKIE, path="/console/")
    return response

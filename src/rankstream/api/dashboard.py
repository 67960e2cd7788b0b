"""``GET /``: the live dashboard, a static page served from the package.

The page (``api/dashboard/index.html``, ``app.js``, ``style.css``, package data) is public:
it holds no data. Everything it shows comes from the read operations (``/leaderboards``,
``/views/top-k``, ``/status``, ``/metrics``...), which it polls every 2 s with the read
token the user typed into it, if any (kept in ``sessionStorage``, sent as
``Authorization: Bearer``, never put in a URL). See docs/DASHBOARD.md.

The files are read once, when the operations are declared, so a request costs no file I/O.
Every answer carries a Content-Security-Policy allowing only this origin: the browser itself
refuses any script, style, image or connection elsewhere.
"""

from __future__ import annotations

from importlib import resources

from starlette.responses import Response

from rankstream.api.operations import Answer, Call, Endpoint, Operation

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
"""Only this origin: no CDN, font, script or beacon elsewhere can load."""

_FILES = {
    "/": ("index.html", "text/html", "The dashboard page"),
    "/dashboard/app.js": ("app.js", "text/javascript", "The dashboard's script"),
    "/dashboard/style.css": ("style.css", "text/css", "The dashboard's styles"),
}


def _read(name: str) -> bytes:
    """One file of the page from the installed package (a wheel carries them as data)."""
    return resources.files("rankstream.api").joinpath("dashboard", name).read_bytes()


def _serve(body: bytes, media_type: str) -> Endpoint:
    async def endpoint(call: Call) -> Response:
        del call  # the same bytes for everyone
        return Response(
            body,
            media_type=media_type,
            headers={
                "Cache-Control": "no-cache",
                "Content-Security-Policy": CONTENT_SECURITY_POLICY,
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
            },
        )

    return endpoint


def operations() -> list[Operation]:
    """The page and its two assets: public ``GET`` operations without parameters."""
    declared = []
    for path, (name, media_type, description) in _FILES.items():
        declared.append(
            Operation(
                "GET",
                path,
                _serve(_read(name), media_type),
                summary=f"{description} (the live dashboard; no data of its own)",
                access="public",
                answers={200: Answer(description, {"type": "string"}, media_type)},
            )
        )
    return declared

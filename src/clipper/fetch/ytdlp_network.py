"""yt-dlp's only way to the network. Every request it makes (the page, the APIs and manifests
its extractors ask for, every redirect hop) passes the SSRF guard and goes, over httpx, to the
address the guard vetted, as the downloader's do: a host that answers a public address to
the guard and a private one to a second lookup (DNS rebinding) gets no second lookup."""

from __future__ import annotations

import io
import logging
import re
import time
import urllib.request
from collections.abc import Collection, Iterable
from email.message import Message
from http.cookiejar import CookieJar
from typing import Any, cast

import httpx
from yt_dlp.networking.common import Request, RequestHandler, Response
from yt_dlp.networking.exceptions import HTTPError, TransportError

from .download import MAX_REDIRECTS, pinned_request
from .guard import Destination, ForbiddenUrlError, Resolver, check_url

logger = logging.getLogger("clipper.fetch")

# The most yt-dlp may read of one answer. Pages, API answers and manifests are far smaller;
# a video served as if it were a page must not be read into memory.
MAX_RESPONSE_BYTES = 32 << 20

# A query or fragment, in a URL or in what yt-dlp makes of one (a video id from the path).
_QUERY = re.compile(r"[?#][^\s'\"<>]+")


def redacted(text: str) -> str:
    """`text` with every URL's query and fragment cut off: signed media URLs and API calls
    carry their tokens there."""
    return _QUERY.sub("?...", text)


class Deadline:
    """One extraction's time limit, shared by all its requests and reads. `expire` ends it at
    once: the caller was cancelled, and the thread yt-dlp runs in cannot be."""

    def __init__(self, seconds: float) -> None:
        self._at = time.monotonic() + seconds

    def expire(self) -> None:
        self._at = 0.0

    def remaining(self) -> float:
        left = self._at - time.monotonic()
        if left <= 0:
            raise TransportError("the time limit for reading the page has passed")
        return left


class GuardRefusedError(TransportError):  # type: ignore[misc]  # yt-dlp has no type hints
    """The guard refuses a URL yt-dlp asked for. A transport error to yt-dlp, as a request
    that cannot get through: its extractors then handle it as any failed request."""


class GuardedRH(RequestHandler):  # type: ignore[misc]
    """A yt-dlp request handler (yt_dlp.networking) that follows redirects itself, vetting
    and pinning every hop. A request that names a proxy is refused: this handler connects
    only the way the downloader does."""

    _SUPPORTED_URL_SCHEMES = ("http", "https")
    _SUPPORTED_PROXY_SCHEMES = ()
    _SUPPORTED_FEATURES = ()

    def __init__(
        self,
        *,
        allowlist: Collection[str],
        resolve: Resolver,
        deadline: Deadline,
        refusals: list[str],
        **options: Any,
    ) -> None:
        """`refusals` collects every URL the guard refused: an extractor may treat a failed
        request as optional, and its final error then no longer says why."""
        super().__init__(**options)
        self._allowlist = allowlist
        self._resolve = resolve
        self._deadline = deadline
        self._refusals = refusals
        self._client = httpx.Client()

    def close(self) -> None:
        self._client.close()

    def _check_extensions(self, extensions: dict[str, Any]) -> None:
        super()._check_extensions(extensions)
        extensions.pop("cookiejar", None)
        extensions.pop("timeout", None)

    def _send(self, request: Request) -> Response:
        url: str = request.url
        method: str = request.method
        headers = httpx.Headers(self._get_headers(request))
        content = _content(request.data)
        jar: CookieJar = self._get_cookiejar(request)
        for _ in range(MAX_REDIRECTS + 1):
            destination = self._vetted(url)
            response = self._exchange(destination, method, headers, content, jar, request)
            if not (response.is_redirect and "location" in response.headers):
                answer = _adapted(response, destination, self._deadline)
                if response.status_code >= 400:
                    raise HTTPError(answer)
                return answer
            response.close()
            url = str(destination.url.join(response.headers["location"]))
            if _redirected_method(method, response.status_code) != method:
                method, content = "GET", None
                headers.pop("content-type", None)
                headers.pop("content-length", None)
            if httpx.URL(url).host != destination.url.host:  # as browsers do
                headers.pop("authorization", None)
        raise TransportError(f"more than {MAX_REDIRECTS} redirects")

    def _vetted(self, url: str) -> Destination:
        try:
            return check_url(url, self._allowlist, self._resolve)
        except ForbiddenUrlError as exc:
            logger.warning("yt-dlp asked for %s, which the guard refuses: %s", redacted(url), exc)
            self._refusals.append(url)
            raise GuardRefusedError(f"the guard refuses this URL: {exc}") from None

    def _exchange(
        self,
        destination: Destination,
        method: str,
        headers: httpx.Headers,
        content: bytes | None,
        jar: CookieJar,
        request: Request,
    ) -> httpx.Response:
        """One hop, its cookies taken from and given to yt-dlp's jar by the host's name (the
        request itself names the pinned address)."""
        # Never opened (S310): only the cookie jar reads it, for the URL the guard vetted.
        named = urllib.request.Request(str(destination.url), method=method)  # noqa: S310
        outgoing = dict(headers)
        if "cookie" not in headers:
            jar.add_cookie_header(named)
            outgoing.update(named.unredirected_hdrs)
        pinned = pinned_request(
            self._client, destination, method, headers=outgoing, content=content
        )
        timeout = min(self._calculate_timeout(request), self._deadline.remaining())
        pinned.extensions["timeout"] = httpx.Timeout(timeout).as_dict()
        try:
            response = self._client.send(pinned, stream=True)
        except httpx.HTTPError as exc:
            raise TransportError(cause=exc) from exc
        jar.extract_cookies(_CookieSource(response), named)  # type: ignore[arg-type]
        return response


class _Body(io.RawIOBase):
    """An httpx response's decoded body as the file yt-dlp reads, within the time limit and
    at most MAX_RESPONSE_BYTES of it."""

    def __init__(self, response: httpx.Response, deadline: Deadline) -> None:
        self._response = response
        self._chunks = response.iter_bytes()
        self._deadline = deadline
        self._pending = b""
        self._total = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            self._deadline.remaining()
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._total += len(chunk)
            if self._total > MAX_RESPONSE_BYTES:
                raise TransportError(f"the answer is over {MAX_RESPONSE_BYTES} bytes")
            self._pending = chunk
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def close(self) -> None:
        self._response.close()
        super().close()


class _CookieSource:
    """What http.cookiejar reads Set-Cookie headers from."""

    def __init__(self, response: httpx.Response) -> None:
        self._headers = Message()
        for name, value in response.headers.multi_items():
            self._headers[name] = value

    def info(self) -> Message:
        return self._headers


def _adapted(response: httpx.Response, destination: Destination, deadline: Deadline) -> Any:
    answer = Response(
        fp=io.BufferedReader(_Body(response, deadline)),
        url=str(destination.url),  # the named host's URL: relative links resolve against it
        headers={},
        status=response.status_code,
        reason=response.reason_phrase or None,
    )
    for name, value in response.headers.multi_items():  # every Set-Cookie, not just one
        answer.headers.add_header(name, value)
    return answer


def _content(data: object) -> bytes | None:
    """yt-dlp's request body (bytes, a file or chunks) as bytes: a 307 or 308 sends it again."""
    if data is None or isinstance(data, bytes):
        return data
    if isinstance(data, io.IOBase):
        read: bytes = data.read()
        return read
    return b"".join(cast(Iterable[bytes], data))


def _redirected_method(method: str, status: int) -> str:
    """As browsers and yt-dlp's own handlers: a 303 turns into GET, and so does a POST
    redirected by a 301 or 302."""
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        return "GET"
    return method

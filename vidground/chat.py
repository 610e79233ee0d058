"""Shared plumbing of the OpenAI-compatible backends (both stages): building or adopting a
client, mapping SDK errors to :class:`ProviderError`, transport retries, usage.

Retries are owned here, once: every client we use is set to ``max_retries=0`` (an injected
client is copied with ``with_options(max_retries=0)``), and :func:`call_with_retries` retries
429 (honouring ``Retry-After``/``retry-after-ms``), 408/409, 5xx, timeouts and dropped
connections with exponential backoff and full jitter, except a timeout of a server on this machine
(127.0.0.1, localhost): that server is still working on the request, so it is not sent again (the
error says so, and to give a longer ``timeout``); the backends' ``timeout_retries`` option sets how often a
timeout is sent again (a localhost tunnel to a remote server wants it). Invalid *output* is a different cause,
re-asked by :mod:`temporal_reasoner.structured`, never retried here. Each retry is logged at INFO
(``vidground --verbose`` shows it) with its cause and wait; a retryable failure that outlives its
retries names the endpoint, the number of attempts and the time spent.

The API key never leaves the client: it is not stored on our objects, not in ``settings()``
or reprs, and any error text is scrubbed of it before it is raised.
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import os
import random
import re
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from .errors import ConfigurationError, MissingDependencyError, ProviderError
from .types import Usage

T = TypeVar("T")

log = logging.getLogger(__name__)

#: Placeholder key for servers that need none (llama.cpp, vLLM, Ollama): the SDK insists on one.
NO_KEY = "sk-no-key-required"
MAX_RETRY_AFTER_S = 60.0
RETRYABLE_STATUSES = frozenset({408, 409, 429})
CHAT_PATH = "/chat/completions"


def _openai() -> Any:
    try:
        import openai
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError("openai", "openai", "The OpenAI-compatible backends") from exc
    return openai


def check_timeout(timeout: Any) -> None:
    """A request timeout must be a positive, finite number of seconds (a socket cannot wait forever)."""
    if isinstance(timeout, bool) or not (isinstance(timeout, (int, float)) and 0 < timeout < float("inf")):
        raise ConfigurationError(f"timeout must be a positive, finite number of seconds, got {timeout!r}")


def elsewhere_options(options: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI backend's ``options`` as a check on a machine that does not build it (a Ray run's driver: the
    workers build it, with their environment and disks) builds one: a placeholder key, the given ``base_url`` or a
    placeholder one, and no ``prices=`` file (a path is the workers'), so no key, variable or file is looked up."""
    prices = options.get("prices")
    return {**options, "api_key": NO_KEY, "base_url": options.get("base_url") or "http://workers.invalid/v1",
            "prices": prices if isinstance(prices, (dict, bool)) else None}


def check_by_building(backend: Any, arg: str | None, options: dict[str, Any], *, local: bool) -> None:
    """An OpenAI backend's ``check_options``: one built from the spec's argument and ``options`` and closed, nothing
    sent (an eval's check before its run, a session's when it is made; its HTTP client is made, no server contacted),
    its rate limits checked without tightening the process's shared limiter (:func:`vidground.ratelimit.detached`).
    ``local=False`` (built on other machines, e.g. Ray workers, with their environment and disks): the API key, the
    base URL and a ``prices=`` file are the workers', so none is looked up here (:func:`elsewhere_options`)."""
    from .ratelimit import detached

    with detached():
        backend.from_spec(arg, **(options if local else elsewhere_options(options))).close()


#: the schemes an HTTP client can request
URL_SCHEMES = ("http", "https")
#: the example of a base URL given in errors
EXAMPLE_BASE_URL = "http://localhost:8000/v1"


def check_base_url(url: Any, option: str = "base_url") -> None:
    """A server's base URL must be an ``http://`` or ``https://`` URL with a host: anything else (``localhost:8000/v1``,
    ``ftp://...``, ``not a url``) was accepted, then every request failed as a dropped connection, retried 5 times,
    with the URL garbled in the error (``.../8000/v1/chat/completions``). ``option`` names where it came from
    (``base_url``, ``OPENAI_BASE_URL``, ``client.base_url``); the error shows the URL as given (:func:`public_url`)."""
    from urllib.parse import urlsplit

    if not isinstance(url, str):
        raise ConfigurationError(f"{option} must be a URL string such as {EXAMPLE_BASE_URL!r}, "
                                 f"got {type(url).__name__}")
    shown = public_url(url)
    text = url
    try:
        parts = urlsplit(text)
        host, _ = parts.hostname, parts.port  # a port that is not a number raises here
    except ValueError as exc:
        raise ConfigurationError(f"{option} {shown!r} cannot be read as a URL ({exc}): give the server's URL, "
                                 f"e.g. {EXAMPLE_BASE_URL!r}") from None
    if parts.scheme.lower() in URL_SCHEMES and host and not any(c.isspace() for c in text):
        return
    if "://" not in text and text and not any(c.isspace() for c in text):
        hint = f"did you mean {public_url('http://' + text)!r}? (the scheme, http:// or https://, is needed)"
    elif parts.scheme and parts.scheme.lower() not in URL_SCHEMES and "://" in text:
        hint = (f"only http:// and https:// servers are supported, not {parts.scheme}://; "
                f"e.g. {EXAMPLE_BASE_URL!r}")
    else:
        hint = f"give the server's URL, e.g. {EXAMPLE_BASE_URL!r}"
    raise ConfigurationError(f"{option} {shown!r} is not an http:// or https:// URL with a host: {hint}")


def build_client(*, client: Any = None, base_url: str | None = None, api_key: str | None = None,
                 timeout: float = 60.0) -> Any:
    """An ``openai.OpenAI`` client with ``max_retries=0`` and ``timeout``.

    An injected client is adopted (copied with our retry/timeout settings); otherwise one is
    built from ``base_url``/``api_key`` or the SDK's ``OPENAI_BASE_URL``/``OPENAI_API_KEY``.
    A custom ``base_url`` with no key anywhere gets a placeholder key (local servers need none).
    The base URL, whichever gives it, is checked (:func:`check_base_url`) before anything is sent.
    """
    check_timeout(timeout)
    openai = _openai()
    if client is not None:
        if not isinstance(client, openai.OpenAI):
            raise ConfigurationError(f"client must be an openai.OpenAI, got {type(client).__name__}")
        if base_url is not None or api_key is not None:
            raise ConfigurationError("give either a client or base_url/api_key, not both")
        check_base_url(str(client.base_url), "client.base_url")
        return client.with_options(max_retries=0, timeout=timeout)
    if base_url is not None and base_url != "":
        check_base_url(base_url)
    elif os.environ.get("OPENAI_BASE_URL"):
        check_base_url(os.environ["OPENAI_BASE_URL"], "OPENAI_BASE_URL")
    base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
    api_key = api_key or os.environ.get("OPENAI_API_KEY") or None
    if api_key is None:
        if base_url is None:
            raise ConfigurationError(  # one message for Python callers and the command line alike
                "no API key: set OPENAI_API_KEY, or give one (Python: api_key=; command line: --api-key KEY, or "
                "--describer-opt/--reasoner-opt api_key=KEY for one stage); for a local server give its URL instead "
                "(base_url= / --base-url URL, or OPENAI_BASE_URL)")
        api_key = NO_KEY
    try:
        return openai.OpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0,
                             http_client=openai.DefaultHttpxClient(verify=ssl_context()))
    except openai.OpenAIError as exc:
        raise ConfigurationError(redact(f"could not configure the OpenAI client: {exc}", api_key)) from None


_SSL_CONTEXTS: dict[tuple[str | None, str | None], Any] = {}
_SSL_LOCK = threading.Lock()


def ssl_context() -> Any:
    """The TLS context the SDK would build by default (system CAs, or ``SSL_CERT_FILE``/
    ``SSL_CERT_DIR``), built once per process and shared by every client vidground builds:
    loading the CA store was most of a client's construction."""
    key = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    with _SSL_LOCK:
        ctx = _SSL_CONTEXTS.get(key)
        if ctx is None:
            try:  # the HTTP library of the installed SDK: httpx2 (openai 3) or httpx (earlier)
                import httpx2 as httpx
            except ImportError:  # pragma: no cover - depends on the SDK version
                import httpx
            ctx = _SSL_CONTEXTS[key] = httpx.create_ssl_context()
        return ctx


#: query parameters whose values are credentials (``?api_key=...``, ``&sig=...``, ``?access_token=...``)
_SECRET_PARAM = re.compile(r"([?&;][^=&;#]*(?:key|token|secret|sig|pass|auth|credential)[^=&;#]*=)[^&;#]*", re.I)


def public_url(url: Any) -> str | None:
    """A URL fit for settings, caches, logs and error messages: any ``user:password@`` part removed (also at the start
    of one given without a scheme, as :func:`check_base_url` shows it)
    and the values of query parameters that carry credentials replaced by ``REDACTED``."""
    if url is None:
        return None
    return _SECRET_PARAM.sub(r"\1REDACTED", re.sub(r"(^|//)[^/@]*@", r"\1", str(url)))


def _request_url(exc: BaseException) -> str | None:
    """The URL of the request an SDK exception is about (without credentials), or None."""
    try:
        request = getattr(exc, "request", None)  # the SDK's APIError.request; raises when unset
        return public_url(request.url) if request is not None else None
    except Exception:
        return None


def redact(text: str, secret: str | None) -> str:
    if secret and secret != NO_KEY and len(secret) >= 4:
        text = text.replace(secret, "***")
    return text


def _retry_after(headers: Any) -> float | None:
    """Seconds the server asks us to wait (``retry-after-ms``, then ``Retry-After`` as seconds or
    an HTTP date); None when absent or unreadable. A header sent twice reaches us joined with a
    comma (``"5, 5"``): its first value counts."""
    if headers is None:
        return None
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(str(value).split(",")[0]) / divisor
            return max(0.0, seconds) if math.isfinite(seconds) else None
        except ValueError:
            pass
        if name == "retry-after":
            try:  # an HTTP date holds a comma itself ("Wed, 21 Oct 2015 07:28:00 GMT")
                parsed = email.utils.parsedate_to_datetime(str(value))
            except (TypeError, ValueError, OverflowError, IndexError):
                parsed = None
            if parsed is not None:
                return max(0.0, parsed.timestamp() - time.time())
    return None


#: httpx's (and httpx2's) errors for a URL it cannot request at all: not retryable
_INVALID_URL_ERRORS = frozenset({"UnsupportedProtocol", "InvalidURL"})


def _invalid_url(exc: BaseException) -> bool:
    cause: BaseException | None = exc
    while cause is not None:
        if type(cause).__name__ in _INVALID_URL_ERRORS:
            return True
        cause = cause.__cause__ or cause.__context__
        if cause is exc:
            break
    return False


def map_error(exc: BaseException, *, provider: str, secret: str | None = None) -> BaseException:
    """An SDK/transport exception as a :class:`ProviderError` (others are returned unchanged).

    The result has ``status``, ``retryable`` and ``retry_after`` (seconds or None).
    """
    openai = _openai()
    status: int | None = None
    retry_after = None
    timed_out = isinstance(exc, openai.APITimeoutError)
    if timed_out:
        msg, retryable = "the request timed out", True
    elif isinstance(exc, openai.APIConnectionError) and _invalid_url(exc):
        # a URL the HTTP client cannot request (an injected client's, or a transport's): sending it again fails alike
        cause = exc.__cause__ or exc
        retryable = False
        msg = (f"connection failed ({type(cause).__name__}: {str(cause)[:200]}): the URL cannot be requested; give "
               f"the server's base URL as http:// or https://, e.g. {EXAMPLE_BASE_URL}")
    elif isinstance(exc, openai.APIConnectionError):
        msg, retryable = f"connection failed ({type(exc.__cause__ or exc).__name__})", True
    elif isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        retryable = status in RETRYABLE_STATUSES or status >= 500
        retry_after = _retry_after(exc.response.headers)
        body = exc.body
        detail = body.get("message") if isinstance(body, dict) else None
        msg = f"HTTP {status}: {str(detail or exc.message)[:300]}"
        if status == 404:
            msg += _not_found_hint(_request_url(exc))
    elif isinstance(exc, openai.APIResponseValidationError):
        status, retryable, msg = exc.status_code, False, f"malformed response: {exc.message}"
    elif isinstance(exc, openai.OpenAIError):
        status, retryable, msg = None, False, str(exc)
    elif isinstance(exc, json.JSONDecodeError):  # the SDK parses bodies lazily: a garbled reply
        msg, retryable = f"the server sent a malformed response body ({exc.msg})", True
    else:
        return exc
    err = ProviderError(redact(f"{provider}: {msg}", secret), status=status, retryable=retryable,
                        provider=provider, url=_request_url(exc))
    err.retry_after = retry_after  # type: ignore[attr-defined]
    err.timed_out = timed_out  # type: ignore[attr-defined]
    return err


#: the endpoints vidground posts to, below a base URL
_ENDPOINTS = (CHAT_PATH, "/embeddings", "/models")


def _not_found_hint(url: str | None) -> str:
    """For a 404: the URL asked, and, when its base has no ``/v1`` (``--base-url http://127.0.0.1:8080``, which a
    llama.cpp, vLLM or Ollama server answers with 404), the base URL probably meant."""
    if not url:
        return ""
    from urllib.parse import urlsplit

    path = urlsplit(url).path
    base = url.split("?")[0]
    for endpoint in _ENDPOINTS:
        if base.endswith(endpoint):
            base = base[:-len(endpoint)]
            break
    hint = f" (the URL was {url}"
    if "/v1" not in path:
        hint += f"; did you mean the base URL {base.rstrip('/')}/v1? OpenAI-compatible servers answer under /v1"
    return hint + ")"


def is_local(url: Any) -> bool:
    """Whether ``url`` is a server on this machine (``localhost``, a loopback address such as 127.0.0.1 or ::1, or
    0.0.0.0): a timeout there means the server is still working, not that a request was lost on the way."""
    import ipaddress
    from urllib.parse import urlsplit

    try:
        host = urlsplit(str(url)).hostname
    except ValueError:
        return False
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def backoff(attempt: int, *, base: float = 0.5, cap: float = 20.0, retry_after: float | None = None) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): the server's Retry-After when it
    gave one (capped), else full-jitter exponential backoff ``uniform(0, min(cap, base * 2**attempt))``."""
    if retry_after is not None and math.isfinite(retry_after):
        return min(retry_after, MAX_RETRY_AFTER_S)
    return random.uniform(0, min(cap, base * 2 ** attempt))


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, ProviderError) and exc.retryable


def _wait(base: float, cap: float) -> Callable[[RetryCallState], float]:
    """Tenacity's wait for the attempts after the first (made before tenacity, see below): its
    attempt 1 is the call's attempt 2."""
    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        return backoff(state.attempt_number + 1, base=base, cap=cap, retry_after=getattr(exc, "retry_after", None))
    return wait


def _log_retry(exc: BaseException | None, retry: int, max_retries: int, wait: float) -> None:
    log.info("%s; retry %d of %d in %.2f s", exc, retry, max_retries, wait)


def _before_sleep(max_retries: int) -> Callable[[RetryCallState], None]:
    def note(state: RetryCallState) -> None:  # tenacity's attempt n is the call's attempt n + 1
        exc = state.outcome.exception() if state.outcome else None
        _log_retry(exc, state.attempt_number + 1, max_retries, state.next_action.sleep if state.next_action else 0.0)
    return note


def _gave_up(exc: ProviderError, attempts: int, started: float, url: str | None, note: str = "") -> ProviderError:
    """``exc`` (a retryable failure whose retries are spent) naming the endpoint, the attempts and
    the time from the first attempt to now, then ``note``; other failures are returned unchanged."""
    if not exc.retryable or exc.attempts is not None:
        return exc
    elapsed = time.monotonic() - started
    url = exc.url or public_url(url)
    where = f" at {url}" if url else ""
    err = ProviderError(f"{exc}{where}: gave up after {attempts} attempt{'s' if attempts != 1 else ''} "
                        f"in {elapsed:.1f} s{note}", status=exc.status, retryable=True, provider=exc.provider, url=url,
                        attempts=attempts, elapsed=elapsed)
    err.retry_after = getattr(exc, "retry_after", None)  # type: ignore[attr-defined]
    err.timed_out = getattr(exc, "timed_out", False)  # type: ignore[attr-defined]
    return err


#: why a timeout of a server on this machine is not sent again, said in the error
LOCAL_TIMEOUT_NOTE = ("; a timeout of a server on this machine is not sent again (it is most likely still working on "
                      "the request, and the same prompt would queue behind it): give it a longer timeout "
                      "(timeout= / --reasoner-opt timeout=SECONDS / --describer-opt timeout=SECONDS), or, for a "
                      "tunnel or proxy to a remote server, resend it (timeout_retries=N)")


def call_with_retries(fn: Callable[[], T], *, provider: str, secret: str | None = None, max_retries: int = 4,
                      base_delay: float = 0.5, max_delay: float = 20.0,
                      retry_if: Callable[[ProviderError], bool] | None = None,
                      sleep: Callable[[float], None] = time.sleep, url: str | None = None,
                      timeout_retries: int | None = None) -> T:
    """``fn()``, retrying transport faults up to ``max_retries`` times; SDK errors become ProviderError.

    A timeout is retried at most ``timeout_retries`` times (within ``max_retries``); by default as often as any
    fault, except on a server on this machine (``url`` local, see :func:`is_local`), where it is not retried: a
    local server that timed out is still computing the answer, and sending the same long prompt again only queues
    it behind the first (a slow CPU server got the same prompt 5 times, 120 s each); the error says so and how to
    give it more time. Each retry is logged at INFO with its wait; a retryable failure that is given up on is raised
    naming ``url`` (the endpoint, when the error does not carry its own), the attempts and the time spent.
    """
    check_timeout_retries(timeout_retries)
    check_retry_delay(base_delay)  # a backend that did not check it when built still gets a typed error
    check_retry_delay(max_delay, "max_delay")
    local = url is not None and is_local(url)
    if timeout_retries is None:
        timeout_retries = 0 if local else max_retries
    started, attempts, timeouts = time.monotonic(), 0, 0

    def once() -> T:
        nonlocal attempts
        attempts += 1
        try:
            return fn()
        except Exception as exc:
            mapped = map_error(exc, provider=provider, secret=secret)
            if mapped is exc:
                raise
            raise mapped from None

    def timeouts_left(e: BaseException) -> bool:
        nonlocal timeouts
        if not getattr(e, "timed_out", False):
            return True
        timeouts += 1
        return timeouts <= timeout_retries

    def should(e: BaseException) -> bool:
        return _retryable(e) and (retry_if is None or retry_if(e)) and timeouts_left(e)  # type: ignore[arg-type]

    def note(e: BaseException) -> str:
        return LOCAL_TIMEOUT_NOTE if local and getattr(e, "timed_out", False) and timeout_retries == 0 else ""
    # The first attempt outside tenacity: almost every call succeeds at once, and setting up a
    # Retrying per call (one per frame) is CPU spent for nothing.
    try:
        return once()
    except ProviderError as exc:
        if max_retries <= 0 or not should(exc):
            raise _gave_up(exc, attempts, started, url, note(exc)) from None
        wait = backoff(1, base=base_delay, cap=max_delay, retry_after=getattr(exc, "retry_after", None))
        _log_retry(exc, 1, max_retries, wait)
        sleep(wait)
    try:
        return Retrying(stop=stop_after_attempt(max_retries), wait=_wait(base_delay, max_delay), sleep=sleep,
                        retry=retry_if_exception(should), before_sleep=_before_sleep(max_retries), reraise=True)(once)
    except ProviderError as exc:
        raise _gave_up(exc, attempts, started, url, note(exc)) from None


def post_chat(client: Any, body: dict[str, Any], *, provider: str) -> dict[str, Any]:
    """``POST /chat/completions`` with a body already in wire form; the reply as decoded JSON.

    The same request as ``client.chat.completions.create(**body)`` (the client's base URL, auth,
    headers, timeout and SDK error types) through the SDK's public low-level ``client.post``,
    without the per-call parameter transform and response-model construction, CPU held under the
    GIL that decoding needs too (see docs/benchmarks.md). Read the reply with :func:`first_choice`
    and :func:`usage_of`.
    """
    return _json_reply(client.post(CHAT_PATH, body=body, cast_to=dict), provider)


def _json_reply(reply: Any, provider: str) -> dict[str, Any]:
    if not isinstance(reply, dict):  # the SDK hands back the text of a non-JSON reply
        raise ProviderError(f"{provider}: the server's reply is not a JSON object: {str(reply)[:120]!r}",
                            retryable=False, provider=provider)
    return reply


def _field(obj: Any, name: str) -> Any:
    """``obj[name]`` of a decoded JSON reply or ``obj.name`` of an SDK model; None when absent."""
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _count(value: Any) -> int:
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


def usage_of(completion: Any, *, sent: int = 1) -> Usage:
    """Usage of one chat completion (an SDK object or its decoded JSON; image tokens where the
    server reports them), obtained with ``sent`` requests (the ones before the last were retried after a
    transport fault). Missing or malformed counts are 0: usage is a report, not the answer (and
:func:`vidground.pricing.with_cost` leaves a request with no token counted unpriced: its cost is unknown)."""
    retried = max(0, sent - 1)
    u = _field(completion, "usage")
    if u is None or isinstance(u, (str, int, float, list)):
        return Usage(requests=1, retried=retried)
    details = _field(u, "prompt_tokens_details")
    image = _field(details, "image_tokens") if details is not None and not isinstance(details, (str, list)) else None
    return Usage(requests=1, prompt_tokens=_count(_field(u, "prompt_tokens")), retried=retried,
                 completion_tokens=_count(_field(u, "completion_tokens")), image_tokens=_count(image))


def first_choice(completion: Any, provider: str, *, usage: Usage | None = None) -> tuple[str, str | None]:
    """(text, finish_reason) of the first choice of a completion (an SDK object or its decoded
    JSON); a reply with no choice, or one shaped unlike a chat completion, is a ProviderError carrying
    ``usage``, the completion's own (:func:`usage_of`, priced): it was answered, so billed (a provider's safety
    block answers ``choices: []`` with the prompt's tokens counted)."""
    choices = _field(completion, "choices")
    if not choices or not isinstance(choices, (list, tuple)):
        raise ProviderError(f"{provider}: the server returned no choices", retryable=False, provider=provider,
                            usage=usage)
    choice = choices[0]
    message = _field(choice, "message") if not isinstance(choice, (str, list)) else None
    content = _field(message, "content") if message is not None and not isinstance(message, (str, list)) else None
    finish = _field(choice, "finish_reason") if message is not None else None
    if message is None or not isinstance(content, (str, type(None))) or not isinstance(finish, (str, type(None))):
        raise ProviderError(f"{provider}: the server's reply is not a chat completion (choice: {str(choice)[:120]})",
                            retryable=False, provider=provider, usage=usage)
    return (content or ""), finish


def check_timeout_retries(timeout_retries: Any, max_retries: int | None = None) -> None:
    """``timeout_retries`` is None (the default: 0 for a server on this machine, ``max_retries`` otherwise) or a
    non-negative integer, at most ``max_retries`` when that is given (timeouts are resent within it)."""
    if timeout_retries is None:
        return
    if isinstance(timeout_retries, bool) or not isinstance(timeout_retries, int) or timeout_retries < 0:
        raise ConfigurationError(f"timeout_retries must be a non-negative integer (how often a timed-out request is "
                                 f"sent again) or None (the default: 0 for a server on this machine, max_retries "
                                 f"otherwise), got {timeout_retries!r}")
    if max_retries is not None and timeout_retries > max_retries:
        raise ConfigurationError(f"timeout_retries={timeout_retries} is more than max_retries={max_retries}: a timeout "
                                 f"is sent again within max_retries; raise max_retries too")


def check_retry_delay(value: Any, name: str = "retry_base_delay") -> None:
    """A backoff delay is a finite, non-negative number of seconds (``0`` retries at once): a negative one would
    reach ``time.sleep`` only when a request fails, as an internal error, and NaN a TypeError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 <= value < float("inf")):
        raise ConfigurationError(f"{name} must be a non-negative, finite number of seconds (the first retry's "
                                 f"backoff, doubled for each further one), got {value!r}")


def check_temperature(value: Any) -> None:
    """A sampling temperature is None (the server's default) or a finite number from 0 to 2 (the OpenAI API's
    range), checked when the backend is built, not sent unchecked with every request."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 <= value <= 2):
        raise ConfigurationError(f"temperature must be a number from 0 to 2 (0: the most likely reply) or None "
                                 f"(the server's default), got {value!r}")


def check_retry_options(max_retries: int, concurrency: int | None = None, timeout_retries: int | None = None,
                        *, retry_base_delay: Any = 0.5) -> None:
    """A backend's retry options, checked when it is built (a session's and an eval's check, before any request):
    ``max_retries`` and ``timeout_retries`` (:func:`check_timeout_retries`), ``concurrency`` when given, and
    ``retry_base_delay`` (:func:`check_retry_delay`)."""
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ConfigurationError(f"max_retries must be a non-negative integer, got {max_retries!r}")
    if concurrency is not None and (isinstance(concurrency, bool) or not isinstance(concurrency, int)
                                    or concurrency < 1):
        raise ConfigurationError(f"concurrency must be a positive integer, got {concurrency!r}")
    check_timeout_retries(timeout_retries, max_retries)
    check_retry_delay(retry_base_delay)


__all__ = ["build_client", "check_by_building", "elsewhere_options",
           "check_timeout", "redact", "map_error", "backoff", "call_with_retries", "is_local",
           "post_chat", "ssl_context", "public_url", "usage_of", "first_choice", "check_retry_options",
           "check_retry_delay", "check_temperature",
           "check_timeout_retries", "NO_KEY"]

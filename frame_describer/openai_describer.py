"""Describe frames with an OpenAI-compatible vision chat model (OpenAI, vLLM, Ollama, LM Studio, ...).

One frame per request (single frames describe best), sent as a JPEG data URL at a bounded
size with the image ``detail`` you choose (both are cost levers). Requests run concurrently
(``concurrency``), overlapped with decoding: a feeder thread pulls frames from the (lazy)
iterable and starts each request as soon as its frame arrives, so decoding goes on while
replies are awaited or the caller handles earlier results; at most ``2 * concurrency`` frames
are held in memory, and the descriptions come back in the order the frames came in (time
order for sampled frames), a decoding error after the descriptions before it.
Every request goes through the ``openai`` SDK; transport faults are retried once, in
:mod:`vidground.chat` (the SDK's own retries are switched off). Optional ``rpm``/``tpm`` limits
and the ``concurrency`` bound hold per endpoint and API key across every describer of the
process (:func:`vidground.ratelimit.shared_limiter`), each describer's until it is closed or collected.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import CancelledError, Future
from typing import Any, Literal

import prompts

from .base import PROMPT_MODES, BaseDescriber, DescriptionStream, PromptMode, StreamState
from vidground.errors import ConfigurationError, IncompleteOutputError, InputError, VidgroundError, keep_paid
from .images import DEFAULT_JPEG_QUALITY, DEFAULT_MAX_SIDE, bounded, check_image_options, to_data_url
from vidground.chat import (
    CHAT_PATH,
    build_client,
    call_with_retries,
    check_by_building,
    check_retry_options,
    check_temperature,
    first_choice,
    post_chat,
    public_url,
    usage_of,
)
from vidground.interrupts import wait_all
from vidground.interrupts import wait_all as _wait_for_answer  # each frame's, in the stream (the end's is wait_all)
from vidground.ratelimit import Reservation, release_limits, shared_limiter
from vidground.types import Frame, FrameDescription, Usage

log = logging.getLogger(__name__)

Detail = Literal["low", "high", "auto"]
DETAILS = ("low", "high", "auto")
#: the field of a description whose reply had no text: the reply's finish_reason (``content_filter``...) or "empty"
EMPTY_REPLY = "empty_reply"
_END = object()


def image_token_estimate(width: int, height: int, detail: str) -> int:
    """OpenAI's published image-token rule (85 base + 170 per 512-px tile at high detail)."""
    if detail == "low":
        return 85
    scale = min(1.0, 2048 / max(width, height))
    w, h = width * scale, height * scale
    scale = min(1.0, 768 / min(w, h))
    w, h = w * scale, h * scale
    return 85 + 170 * math.ceil(w / 512) * math.ceil(h / 512)


def served_by(completion: Any) -> dict[str, str]:
    """What the server says answered (its ``model`` as ``served_model``, and its ``system_fingerprint`` when it sends
    one), kept with the description and in the description cache: a server swapped behind the same URL and model
    name is not told apart by the cache's key (base URL, model name, prompt, settings), but its descriptions say
    which checkpoint wrote them."""
    if not isinstance(completion, dict):
        return {}
    out = {"served_model": completion.get("model"), "system_fingerprint": completion.get("system_fingerprint")}
    return {k: v for k, v in out.items() if isinstance(v, str) and v}


class OpenAIDescriber(BaseDescriber):
    """``openai:MODEL`` - a vision chat model behind any OpenAI-compatible endpoint.

    ``base_url``/``api_key`` default to the SDK's ``OPENAI_BASE_URL``/``OPENAI_API_KEY``; or
    inject ``client=openai.OpenAI(...)``. ``prices`` estimates ``Usage.cost_usd`` (see
    :mod:`vidground.pricing`; ``False`` disables). ``concurrency`` bounds the requests in flight
    to this endpoint with this key, shared with the other describers of the process that have
    the same limits, as ``rpm``/``tpm`` are.

    Frames are sent at the size they come: a session's sampling (``--max-side``, 512 px by default) has bounded
    them as they were decoded, and so does :func:`~frame_describer.sampling.sample_frames`. ``max_side`` bounds them
    again here, only when it is given (it was 512 whatever the session's: a larger ``--max-side`` had no effect).

    Transport faults are retried ``max_retries`` times (:func:`vidground.chat.call_with_retries`). A timeout is
    sent again at most ``timeout_retries`` times (within ``max_retries``); by default (``None``) never to a server on
    this machine (``localhost``, 127.0.0.1: it is still working on the frame) and ``max_retries`` times to any
    other. Give it for a localhost tunnel or proxy to a remote server (``ssh -L 8000:gpu-box:8000``):
    ``timeout_retries=4`` / ``--describer-opt timeout_retries=4``.
    """

    def __init__(self, model: str, *, client: Any = None, base_url: str | None = None, api_key: str | None = None,
                 mode: PromptMode = "agnostic", detail: Detail = "low", max_side: int | None = None,
                 jpeg_quality: int = DEFAULT_JPEG_QUALITY, concurrency: int = 8, rpm: float | None = None,
                 tpm: float | None = None, max_tokens: int = 200,
                 max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = "max_tokens",
                 temperature: float | None = 0.0, timeout: float = 60.0, max_retries: int = 4, retry_base_delay: float = 0.5,
                 prompt_version: int | None = None, prices: Any = None, timeout_retries: int | None = None,
                 empty_retries: int = 1):
        if not isinstance(model, str) or not model.strip():
            raise ConfigurationError("the openai describer needs a model name, e.g. 'openai:gpt-4o-mini'")
        if mode not in PROMPT_MODES:
            raise ConfigurationError(f"unknown describer mode {mode!r}; choose one of: {', '.join(PROMPT_MODES)}")
        if detail not in DETAILS:
            raise ConfigurationError(f"unknown image detail {detail!r}; choose one of: {', '.join(DETAILS)}")
        if max_tokens_param not in ("max_tokens", "max_completion_tokens"):
            raise ConfigurationError("max_tokens_param must be 'max_tokens' or 'max_completion_tokens'")
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise ConfigurationError(f"max_tokens must be a positive integer, got {max_tokens!r}")
        check_image_options(max_side, jpeg_quality)
        check_retry_options(max_retries, concurrency, timeout_retries, retry_base_delay=retry_base_delay)
        check_temperature(temperature)  # before any request (nan or 5 were sent with every one)
        if temperature is not None:  # a whole number (--describer-opt temperature=0) is the float the cache key hashes
            temperature = float(temperature)
        if isinstance(empty_retries, bool) or not isinstance(empty_retries, int) or not 0 <= empty_retries <= 10:
            raise ConfigurationError(f"empty_retries must be an integer from 0 to 10 (how often a frame whose reply "
                                     f"has no text is asked again), got {empty_retries!r}")
        from vidground.pricing import check_prices

        check_prices(prices)  # a price file that cannot be read fails here, not after each paid description
        self.model = model.strip()
        self.name = f"openai:{self.model}"
        self.mode = mode
        self.detail, self.max_side, self.jpeg_quality = detail, max_side, jpeg_quality
        self.concurrency, self.max_tokens, self.max_tokens_param = concurrency, max_tokens, max_tokens_param
        self.temperature, self.timeout, self.max_retries = temperature, timeout, max_retries
        self.retry_base_delay, self.timeout_retries = retry_base_delay, timeout_retries
        self.empty_retries = empty_retries
        self.prices = prices
        self.prompt = prompts.load(f"describe_{mode}", prompt_version)
        self._owns_client = client is None
        self._client = build_client(client=client, base_url=base_url, api_key=api_key, timeout=timeout)
        self.limiter = shared_limiter(self._client.base_url, self._client.api_key, rpm=rpm, tpm=tpm,
                                      max_in_flight=concurrency, owner=self)  # held until close() or collection

    @classmethod
    def check_options(cls, arg: str | None, *, local: bool = True, **options: Any) -> None:
        """Built and closed, nothing sent, the shared rate limits left as they are
        (:func:`vidground.chat.check_by_building`)."""
        check_by_building(cls, arg, options, local=local)

    @classmethod
    def from_spec(cls, arg: str | None, **options: Any) -> "OpenAIDescriber":
        if not arg:
            raise ConfigurationError("the openai describer needs a model: 'openai:MODEL', e.g. 'openai:gpt-4o-mini'")
        return cls(arg, **options)

    @property
    def base_url(self) -> str | None:
        return public_url(self._client.base_url)

    @property
    def _endpoint(self) -> str:
        """The chat-completions URL requests go to (for error messages; no credentials)."""
        return f"{(self.base_url or '').rstrip('/')}{CHAT_PATH}"

    def __repr__(self) -> str:
        return f"OpenAIDescriber(model={self.model!r}, base_url={self.base_url!r}, mode={self.mode!r})"

    @property
    def image_max_side(self) -> int | None:
        """The longest side this describer shrinks frames to before sending them (``max_side`` when given), or
        ``None`` when it sends them as they come: a description cache keys the image sent by it
        (:class:`~frame_describer.cache.CachedDescriber`)."""
        return self.max_side

    def settings(self) -> dict[str, Any]:
        # max_side: 512 when none is given, as when 512 was the default bound (the keys of existing caches stay):
        # the frames' own size is keyed by the cache (CachedDescriber's max_side)
        return {"name": self.name, "model": self.model, "mode": self.mode, "base_url": self.base_url, "detail":
                self.detail, "max_side": DEFAULT_MAX_SIDE if self.max_side is None else self.max_side,
                "jpeg_quality": self.jpeg_quality,
                "max_tokens": self.max_tokens, "temperature": self.temperature,
                "prompt": f"{self.prompt.name}.v{self.prompt.version}", "prompt_hash": self.prompt.hash}

    def close(self) -> None:
        """Close the connection pool of the client this describer built (an injected client is
        the caller's to close), and release the rate limits it holds on the process's shared limiter
        (:func:`vidground.ratelimit.release_limits`), as the openai: reasoner does."""
        release_limits(self)
        if self._owns_client:
            self._client.close()

    # --- requests -----------------------------------------------------------------------------

    def _text(self, query: str | None) -> str:
        if self.mode == "aware":
            if not query or not query.strip():
                raise InputError("the query-aware describer needs the query")
            return self.prompt.render(query=" ".join(query.split()))
        return self.prompt.render()

    def request(self, frame: Frame, text: str) -> dict[str, Any]:
        """The exact chat-completion arguments for one frame (pure; no I/O)."""
        image: dict[str, Any] = {"url": to_data_url(frame.image, max_side=self.max_side, quality=self.jpeg_quality)}
        if self.detail != "auto":
            image["detail"] = self.detail
        kw: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "user", "content": [{"type": "text", "text": text},
                                                       {"type": "image_url", "image_url": image}]}],
            self.max_tokens_param: self.max_tokens,
        }
        if self.temperature is not None:
            kw["temperature"] = self.temperature
        return kw

    def _estimate(self, frame: Frame, text: str) -> int:
        h, w = bounded(frame.image, self.max_side).shape[:2] if self.detail != "low" else (1, 1)
        return len(text) // 4 + image_token_estimate(w, h, self.detail) + self.max_tokens

    def _result(self, frame: Frame, completion: Any, reservation: Reservation | None, sent: int = 1) -> FrameDescription:
        usage = self._priced(usage_of(completion, sent=sent))  # answered, so paid, whatever its choices
        if reservation is not None and usage.total_tokens:
            reservation.settle(usage.total_tokens)
        text, finish = first_choice(completion, self.name, usage=usage)
        if not text.strip() and finish == "length":
            raise IncompleteOutputError(
                f"{self.name}: the description of the frame at {frame.t:g}s was cut off before any text "
                f"(max_tokens={self.max_tokens}; raise it)", raw_outputs=[text], attempts=1, usage=usage)
        # a reply with no text (a content filter's refusal, a server that answered nothing) says so: it is not
        # cached, and the session warns with its time (pipelines.session)
        empty = {} if text.strip() else {EMPTY_REPLY: finish or "empty"}
        return FrameDescription(t=frame.t, text=text, usage=usage, **served_by(completion), **empty)

    def _priced(self, usage: Usage) -> Usage:
        if self.prices is False:
            return usage
        from vidground.pricing import with_cost

        return with_cost(usage, self.model, self.prices)

    def describe_frame(self, frame: Frame, *, query: str | None = None) -> FrameDescription:
        """Describe one frame (blocking)."""
        return self._describe_one(frame, self._text(query))

    def _describe_one(self, frame: Frame, text: str, stopped: threading.Event | None = None) -> FrameDescription:
        """One frame's request; ``stopped`` is the stream's end: once it is set, nobody will read
        the answer, so the frame is not encoded, paced or sent, nor a failed request retried
        (a backoff wait ends at once). Each attempt takes its own place in the shared limiter."""
        def check() -> None:
            if stopped is not None and stopped.is_set():
                raise CancelledError("the stream was closed: this frame's request is not sent")
        check()
        kw = self.request(frame, text)
        tokens = self._estimate(frame, text) if self.limiter.tpm is not None else 0
        paid = Usage()  # the replies with no text before this one, asked again (paid)
        for asked in range(self.empty_retries + 1):
            reservation: Reservation | None = None
            sent = 0

            def attempt() -> dict[str, Any]:
                nonlocal reservation, sent
                check()
                with self.limiter.slot(tokens, cancel=stopped) as reservation:
                    sent += 1
                    return post_chat(self._client, kw, provider=self.name)

            try:
                completion = call_with_retries(attempt, provider=self.name, secret=self._client.api_key,
                                               max_retries=self.max_retries, base_delay=self.retry_base_delay,
                                               timeout_retries=self.timeout_retries,
                                               sleep=stopped.wait if stopped is not None else time.sleep,
                                               url=self._endpoint)
                described = self._result(frame, completion, reservation, sent)
            except VidgroundError as exc:  # the empty replies before it were paid too
                if not paid.is_empty():
                    exc.usage = paid + exc.usage if isinstance(exc.usage, Usage) else paid
                raise
            except CancelledError:
                if paid.is_empty():
                    raise
                break  # the stream ended while an empty reply was to be asked again: that reply is the answer
            if described.usage is not None:
                paid = paid + described.usage
            if described.text.strip() or asked == self.empty_retries or (stopped is not None and stopped.is_set()):
                break
            log.info("%s: the reply for the frame at %gs has no text (finish_reason %s): asking again", self.name,
                     frame.t, (described.model_extra or {}).get(EMPTY_REPLY))
        return described.model_copy(update={"usage": paid})

    # --- streams ------------------------------------------------------------------------------

    def describe(self, frames: Iterable[Frame], *, query: str | None = None) -> Iterator[FrameDescription]:
        """The frames' descriptions in frame order (see the module). A stream that ends early (its reader closes
        it, or a Ctrl-C is raised in it while it waits) sends no more frames and waits for the requests in flight,
        paid once sent: their descriptions are kept in the stream's ``unread``
        (:class:`~frame_describer.base.DescriptionStream`), which a description cache in front stores. A second
        Ctrl-C during that wait ends it at once. An error that ends it (a frame's request failed) carries the usage
        of those answers too (``VidgroundError.usage``): paid, cached, and never handed to the reader, who counts
        only what it was handed."""
        return DescriptionStream(lambda stream: self._paid_stream(frames, query, stream))

    def _paid_stream(self, frames: Iterable[Frame], query: str | None,
                     out: StreamState) -> Generator[FrameDescription, None, None]:
        """:meth:`_stream`, whose error carries the usage of the requests in flight it waited for as it ended: those
        kept in ``out.unread`` and those that failed with a usage (billed: a reply cut off at max_tokens, one with
        no choices), the error raised itself left out (it carries its own)."""
        billed: list[Usage] = []  # filled as the stream ends

        def paid() -> Usage:
            return sum((d.usage for d in out.unread if d.usage is not None), Usage()) + sum(billed, Usage())

        with keep_paid(paid):
            yield from self._stream(frames, query, out, billed)

    def _stream(self, frames: Iterable[Frame], query: str | None, out: StreamState,
                billed: list[Usage]) -> Generator[FrameDescription, None, None]:
        text = self._text(query)
        pool = _RequestPool(self.concurrency, "vidground-describe")
        handles: queue.SimpleQueue[Any] = queue.SimpleQueue()
        stopped = threading.Event()
        # a Ctrl-C (the command line's; an eval's video workers see it only this way) sends none of the frames
        # decoded and waiting for a request, here or for a place in the endpoint's limit: those under way are answered
        from .sampling import stop_on_interrupt

        stop_on_interrupt(stopped)
        feeder = _Feeder(frames, 2 * self.concurrency,
                         submit=lambda frame: handles.put(pool.submit(self._describe_one, frame, text, stopped)),
                         finish=handles.put)
        waiting: Future | None = None  # taken from the queue, its description not yet handed over
        try:
            while (item := handles.get()) is not _END:
                if isinstance(item, _Failure):
                    raise item.exc
                waiting = item
                try:
                    _wait_for_answer([item])  # not Future.result()'s wait: a Condition's, which a Ctrl-C can end in a lock error
                    result = item.result()
                except CancelledError:
                    if stopped.is_set():  # not sent: the Ctrl-C stopped the stream (it is over, as its frames are)
                        raise KeyboardInterrupt("interrupted: the frames not yet sent are not") from None
                    raise
                feeder.taken()
                out.handed = result
                waiting = None
                yield result
        finally:
            stopped.set()  # nothing more is sent; a request under way is answered
            raised = waiting  # when the stream ends with its error, that error carries its own usage
            in_flight: list[Future] = [] if waiting is None else [waiting]
            waited = False
            try:
                _take_in_flight(handles, in_flight)
                feeder.stop()
                _take_in_flight(handles, in_flight)  # what the feeder submitted meanwhile (not sent: stopped)
                if in_flight:
                    log.info("%s: waiting for the %d request(s) in flight, paid: their answers are kept (a second "
                             "Ctrl-C stops at once)", self.name, len(in_flight))
                wait_all(in_flight)  # a second Ctrl-C here ends the wait at once (a KeyboardInterrupt, not a lock error)
                waited = True
            finally:  # every answer that came, in frame order: paid, so kept for the cache
                for future in in_flight:
                    if future.done() and not future.cancelled():
                        exc = future.exception()
                        if exc is None:
                            out.unread.append(future.result())
                        elif future is not raised and isinstance(usage := getattr(exc, "usage", None), Usage):
                            billed.append(usage)  # failed, but answered and paid: on the stream's error
                        else:  # not sent after the stop, or failed unpaid: nothing to keep
                            log.debug("%s: a request in flight at the stream's end gave no description: %s",
                                      self.name, exc)
                pool.shutdown(wait=waited, cancel_futures=True)


class _RequestPool:
    """``concurrency`` threads that run the stream's requests, as a ``ThreadPoolExecutor`` would, but as daemon
    threads: the stream waits for them (``shutdown(wait=True)``) except after a second Ctrl-C, which leaves the
    requests still under way behind, and the process may then exit without joining them (Python joins every
    ``ThreadPoolExecutor`` thread at exit: a hanging request held the interrupted command open until it ended)."""

    def __init__(self, workers: int, name: str):
        self._workers = workers
        self._name = name
        self._work: queue.SimpleQueue[tuple[Future, Callable[..., Any], tuple] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._shut = False

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        future: Future = Future()
        with self._lock:
            if self._shut:
                raise RuntimeError("cannot schedule new requests after the stream ended")
            self._work.put((future, fn, args))
            if len(self._threads) < self._workers:
                thread = threading.Thread(target=self._run, name=f"{self._name}_{len(self._threads)}", daemon=True)
                thread.start()
                self._threads.append(thread)
        return future

    def _run(self) -> None:
        while (item := self._work.get()) is not None:
            future, fn, args = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args)
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)
            del item, future  # not kept alive while the thread waits for the next request

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """No more requests; with ``cancel_futures`` those not begun are cancelled; with ``wait`` the threads are
        joined once the requests under way end."""
        with self._lock:
            self._shut = True
            threads = list(self._threads)
        if cancel_futures:
            while True:
                try:
                    item = self._work.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item[0].cancel()
        for _ in threads:
            self._work.put(None)
        if wait:
            for thread in threads:
                thread.join()


def _take_in_flight(handles: queue.SimpleQueue[Any], in_flight: list[Future]) -> None:
    """Empty the stream's queue at its end: a frame whose request has not begun is dropped, one under way is
    added to ``in_flight`` (its answer is awaited and kept)."""
    while not handles.empty():
        item = handles.get()
        if isinstance(item, Future) and not item.cancel():
            in_flight.append(item)


class _Failure:
    """The frame iterable's exception, handed over in frame order."""

    def __init__(self, exc: BaseException):
        self.exc = exc


class _Feeder:
    """Pulls frames from an iterable in a background thread and starts each one's description
    at once (``submit(frame)``, which queues a handle for the consumer in frame order), so
    decoding runs on while the caller waits for replies or is busy with earlier results. At the
    end ``finish`` receives ``_END``, or a :class:`_Failure` when the iterable (or ``submit``) raises.

    At most ``window`` frames are between being pulled and their result being taken
    (:meth:`taken`), the one being decoded included, which bounds memory (each holds one
    image) and how far work runs ahead of a slow consumer or a slow first request.
    """

    def __init__(self, frames: Iterable[Frame], window: int, *, submit: Callable[[Frame], Any],
                 finish: Callable[[Any], Any]):
        self._it = iter(frames)
        self._permits = threading.Semaphore(window)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(submit, finish), name="vidground-decode",
                                        daemon=True)
        self._thread.start()

    def _run(self, submit: Callable[[Frame], Any], finish: Callable[[Any], Any]) -> None:
        try:
            while True:
                self._permits.acquire()
                if self._stopped.is_set():
                    return
                frame = next(self._it, _END)
                if self._stopped.is_set():
                    return
                if frame is _END:
                    finish(_END)
                    return
                submit(frame)
        except BaseException as exc:  # the iterable's (decoding) error, raised to the consumer in order
            if not self._stopped.is_set():
                finish(_Failure(exc))

    def taken(self) -> None:
        """One result was handed to the caller: one more frame may be pulled."""
        self._permits.release()

    def stop(self, timeout: float = 10.0) -> None:
        """Pull no more frames; waits (up to ``timeout``) for a frame being decoded."""
        self._stopped.set()
        self._permits.release()
        self._thread.join(timeout)


__all__ = ["OpenAIDescriber", "image_token_estimate", "public_url", "DETAILS"]

"""OpenAIDescriber against the local fake server: exact requests, order, overlap, bounds, faults."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import math
import threading
import time
from concurrent.futures import CancelledError

import cv2
import numpy as np
import openai
import pytest
from PIL import Image

import prompts
from frame_describer import get_describer
from vidground.errors import (
    ConfigurationError,
    IncompleteOutputError,
    InputError,
    ProviderError,
    VideoDecodeError,
)
from frame_describer.images import bounded, encode_jpeg, to_data_url
from frame_describer.openai_describer import OpenAIDescriber, image_token_estimate
from vidground.ratelimit import RateLimiter
from vidground.types import Frame

from _helpers_openai_server import FakeOpenAIServer, Reply, openai_server  # noqa: F401

KEY = "sk-test-SECRET-describer-42"


def frame(i: int, h: int = 480, w: int = 640) -> Frame:
    return Frame(t=i * 0.5, index=i, image=np.full((h, w, 3), 10 * i % 250, np.uint8))


def decode_url(url: str) -> np.ndarray:
    head, b64 = url.split(",", 1)
    assert head == "data:image/jpeg;base64"
    return cv2.imdecode(np.frombuffer(base64.b64decode(b64), np.uint8), cv2.IMREAD_COLOR)


def echo_brightness(req) -> Reply:
    """Answers with the brightness of the frame sent, so order can be checked end to end."""
    img = decode_url(req.json["messages"][0]["content"][1]["image_url"]["url"])
    return Reply.chat(f"level {round(float(img.mean()) / 10)}", delay=float(np.random.uniform(0, 0.05)),
                      image_tokens=85, prompt_tokens=120, completion_tokens=8)


def make(server, **kw) -> OpenAIDescriber:
    kw.setdefault("retry_base_delay", 0.01)
    return OpenAIDescriber("gpt-4o-mini", base_url=server.base_url, api_key=KEY, **kw)


TRANSPORTS = pytest.mark.parametrize("transport", ["auto", "sdk"], ids=["lean", "sdk"])


@TRANSPORTS
def test_exact_request(openai_server, transport):
    openai_server.script(Reply.chat("A person opens a door.", image_tokens=85))
    desc = make(openai_server, detail="low", max_side=256, transport=transport)
    assert desc.transport_in_use == ("lean" if transport == "auto" else "sdk")
    (d,) = list(desc.describe([frame(1, 600, 900)]))
    body = openai_server.requests[0].json
    assert body["model"] == "gpt-4o-mini" and body["max_tokens"] == 200 and body["temperature"] == 0.0
    (msg,) = body["messages"]
    text, image = msg["content"]
    assert msg["role"] == "user" and text == {"type": "text", "text": prompts.load("describe_agnostic").render()}
    assert image["type"] == "image_url" and image["image_url"]["detail"] == "low"
    assert decode_url(image["image_url"]["url"]).shape == (171, 256, 3)  # longest side bounded, aspect kept
    assert d.t == 0.5 and d.text == "A person opens a door."
    assert d.usage.image_tokens == 85 and d.usage.requests == 1 and d.usage.cost_usd > 0


def test_aware_mode_prompt_and_missing_query(openai_server):
    desc = make(openai_server, mode="aware", detail="high")
    list(desc.describe([frame(0)], query="  the door   opens "))
    body = openai_server.requests[0].json
    assert body["messages"][0]["content"][0]["text"] == prompts.load("describe_aware").render(query="the door opens")
    assert body["messages"][0]["content"][1]["image_url"]["detail"] == "high"
    with pytest.raises(InputError, match="needs the query"):
        list(desc.describe([frame(0)]))


def test_order_concurrency_bound_and_overlap_with_decoding(openai_server):
    openai_server.responder = echo_brightness
    yielded_at: list[float] = []

    def decode(n):
        for i in range(n):
            time.sleep(0.02)  # decoding takes time
            yielded_at.append(time.monotonic())
            yield frame(i)

    out = list(make(openai_server, concurrency=3).describe(decode(16)))
    assert [d.text for d in out] == [f"level {i}" for i in range(16)]
    assert [d.t for d in out] == sorted(d.t for d in out)
    assert openai_server.max_in_flight <= 3 and openai_server.max_in_flight >= 2
    assert openai_server.requests[0].t < yielded_at[-1]  # the first request left before the last frame was decoded


def test_async_twin_streams_in_order(openai_server):
    openai_server.responder = echo_brightness

    async def run():
        return [d async for d in make(openai_server, concurrency=4).adescribe(frame(i) for i in range(10))]

    out = asyncio.run(run())
    assert [d.text for d in out] == [f"level {i}" for i in range(10)]
    assert openai_server.max_in_flight <= 4
    assert sum(d.usage.image_tokens for d in out) == 850


def test_async_with_only_a_sync_client_uses_a_thread(openai_server):
    openai_server.responder = echo_brightness
    desc = OpenAIDescriber("m", client=openai.OpenAI(base_url=openai_server.base_url, api_key=KEY))

    async def run():
        return [d.text async for d in desc.adescribe([frame(1), frame(2)])]

    assert asyncio.run(run()) == ["level 1", "level 2"]


@TRANSPORTS
def test_faults_retried_once_per_layer(openai_server, transport):
    openai_server.script(Reply.error(429, "rate", headers={"retry-after-ms": "150"}), Reply.error(500, "oops"),
                         Reply(drop=True), Reply.chat("fine"))
    (d,) = list(make(openai_server, concurrency=1, transport=transport).describe([frame(0)]))
    assert d.text == "fine" and len(openai_server.requests) == 4
    assert openai_server.requests[1].t - openai_server.requests[0].t >= 0.14


@TRANSPORTS
def test_timeout_and_exhaustion_raise_typed_errors_without_the_key(openai_server, transport):
    openai_server.script(Reply.chat("late", delay=1.0))
    with pytest.raises(ProviderError, match="timed out") as info:
        list(make(openai_server, timeout=0.2, max_retries=0, transport=transport).describe([frame(0)]))
    assert info.value.retryable
    openai_server.script(Reply.error(403, f"key {KEY} may not use this model"))
    desc = make(openai_server, transport=transport)
    with pytest.raises(ProviderError) as info:
        list(desc.describe([frame(0)]))
    assert info.value.status == 403 and not info.value.retryable
    for text in (str(info.value), repr(info.value), repr(desc), json.dumps(desc.settings())):
        assert KEY not in text


def test_empty_cut_description_is_incomplete(openai_server):
    openai_server.script(Reply.chat("", finish_reason="length"))
    with pytest.raises(IncompleteOutputError, match="raise it"):
        list(make(openai_server).describe([frame(0)]))


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_stopping_early_cancels_the_rest(openai_server, use_async):
    """Closing the stream after the first description sends nothing more: frames queued are
    dropped, and frames whose encoding was under way when it closed are not sent either."""
    openai_server.responder = echo_brightness
    desc = make(openai_server, concurrency=2)
    frames = (frame(i) for i in range(100))
    encode, gate = desc.request, threading.Event()

    def held_encode(f, text):  # frames after the first are still being encoded when the stream closes
        if f.index:
            assert gate.wait(10)
        return encode(f, text)
    desc.request = held_encode
    # the encodings end 0.3 s after the first result: once the close is under way (the sync close
    # waits for them; the async one does not)
    release = lambda: threading.Timer(0.3, gate.set).start()  # noqa: E731
    if use_async:
        async def first_then_stop():
            gen = desc.adescribe(frames)
            first = await anext(gen)
            release()
            await gen.aclose()
            await asyncio.sleep(0.6)
            return first
        first = asyncio.run(first_then_stop())
    else:
        gen = desc.describe(frames)
        first = next(gen)
        release()
        gen.close()
        time.sleep(0.3)
    assert first.text == "level 0"
    assert len(openai_server.requests) == 1
    assert not [t for t in threading.enumerate() if t.name == "vidground-decode"]  # the feeder thread is gone


def describe_all(desc: OpenAIDescriber, frames, use_async: bool) -> list:
    if not use_async:
        return list(desc.describe(frames))

    async def run():
        return [d async for d in desc.adescribe(frames)]
    return asyncio.run(run())


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("decode_s, latency", [(0.012, 0.004), (0.001, 0.08)], ids=["decode-bound", "request-bound"])
def test_decoding_and_requests_overlap_within_the_bound(openai_server, use_async, decode_s, latency):
    """The benchmark's property in small: describing N frames with concurrency C takes at most
    1.2 x max(decode time, ceil(N / C) x L). Decoding without overlap would take about 1.6x
    (decode-bound case), requests without concurrency 4x (request-bound case)."""
    n, c = 40, 4
    openai_server.responder = lambda req: Reply.chat("a frame", delay=latency)

    def decode():
        for i in range(n):
            time.sleep(decode_s)  # like PyAV, decoding releases the GIL
            yield frame(i, 96, 128)

    desc = make(openai_server, concurrency=c, prices=False)
    t0 = time.perf_counter()
    out = describe_all(desc, decode(), use_async)
    wall = time.perf_counter() - t0
    ideal = max(n * decode_s, math.ceil(n / c) * latency)
    assert len(out) == n and openai_server.max_in_flight <= c
    assert wall <= 1.2 * ideal, f"{wall:.3f}s is {wall / ideal:.2f}x the ideal {ideal:.3f}s"


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_frames_held_stay_within_twice_the_concurrency(openai_server, use_async):
    openai_server.responder = lambda req: Reply.chat("x", delay=0.005)
    pulled = 0
    ahead: list[int] = []

    def decode():
        nonlocal pulled
        for i in range(24):
            pulled += 1
            yield frame(i, 64, 64)

    async def slow_async_consumer(desc):
        async for d in desc.adescribe(decode()):
            ahead.append(pulled - len(ahead) - 1)
            await asyncio.sleep(0.01)

    desc = make(openai_server, concurrency=2)
    if use_async:
        asyncio.run(slow_async_consumer(desc))
    else:
        for _ in desc.describe(decode()):
            ahead.append(pulled - len(ahead) - 1)
            time.sleep(0.01)  # a slow consumer: decoding runs ahead of it, but boundedly
    assert len(ahead) == 24
    assert 3 <= max(ahead) <= 4  # frames decoded but not yet handed over: up to 2 x concurrency


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_a_decoding_error_comes_after_the_frames_before_it(openai_server, use_async):
    openai_server.responder = echo_brightness
    got: list[str] = []

    def decode():
        yield frame(1)
        yield frame(2)
        raise VideoDecodeError("clip.mp4", "decoding failed at 1.5s")

    async def run(desc):
        async for d in desc.adescribe(decode()):
            got.append(d.text)

    desc = make(openai_server, concurrency=2)
    with pytest.raises(VideoDecodeError, match="clip.mp4"):
        if use_async:
            asyncio.run(run(desc))
        else:
            for d in desc.describe(decode()):
                got.append(d.text)
    assert got == ["level 1", "level 2"]


@TRANSPORTS
def test_a_reply_unlike_a_chat_completion_is_a_provider_error(openai_server, transport):
    openai_server.script(Reply(body={"choices": [{"index": 0, "text": "legacy completion"}]}))
    with pytest.raises(ProviderError, match="not a chat completion"):
        list(make(openai_server, transport=transport).describe([frame(0)]))
    openai_server.script(Reply(body={"choices": [{"index": 0, "finish_reason": "stop",
                                                  "message": {"role": "assistant", "content": "ok"}}],
                                     "usage": {"prompt_tokens": "n/a", "completion_tokens": 4}}))
    (d,) = list(make(openai_server, prices=False, transport=transport).describe([frame(0)]))
    assert d.text == "ok" and d.usage.prompt_tokens == 0 and d.usage.completion_tokens == 4
    openai_server.script(Reply(body="{'choices': [", headers={}), Reply(body="{'choices': ["))
    with pytest.raises(ProviderError, match="malformed"):  # garbled JSON: retried, then reported
        list(make(openai_server, max_retries=1, transport=transport).describe([frame(0)]))
    assert len(openai_server.requests) == 4


def test_spec_env_injected_client_and_errors(openai_server, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    desc = get_describer("openai:gpt-4o", detail="auto", mode="agnostic")
    assert desc.name == "openai:gpt-4o" and desc.settings()["base_url"].startswith("http://127.0.0.1")
    list(desc.describe([frame(0)]))
    assert "detail" not in openai_server.requests[0].json["messages"][0]["content"][1]["image_url"]
    assert openai_server.requests[0].headers["authorization"] == f"Bearer {KEY}"
    with pytest.raises(ConfigurationError, match="openai:MODEL"):
        get_describer("openai")
    with pytest.raises(ConfigurationError, match="choose one of: low, high, auto"):
        get_describer("openai:m", detail="ultra")
    with pytest.raises(ConfigurationError, match="choose one of: agnostic, aware"):
        get_describer("openai:m", mode="smart")
    with pytest.raises(ConfigurationError, match="concurrency"):
        get_describer("openai:m", concurrency=0)
    for timeout in (0, float("inf"), float("nan")):  # no request may wait forever (nor fail to set its timeout)
        with pytest.raises(ConfigurationError, match="positive, finite"):
            get_describer("openai:m", timeout=timeout)
    client = openai.AsyncOpenAI(base_url=openai_server.base_url, api_key=KEY, max_retries=3)
    only_async = OpenAIDescriber("m", async_client=client)
    assert only_async._async_client.max_retries == 0 and only_async.base_url == openai_server.base_url + "/"
    with pytest.raises(ConfigurationError, match="use adescribe"):
        list(only_async.describe([frame(0)]))


# --- images and pacing ------------------------------------------------------------------------

def test_images_bounded_never_enlarged():
    small = np.zeros((100, 50, 3), np.uint8)
    assert bounded(small, 512) is small
    assert bounded(np.zeros((1080, 1920, 3), np.uint8), 512).shape == (288, 512, 3)
    assert encode_jpeg(small)[:2] == b"\xff\xd8" and to_data_url(small).startswith("data:image/jpeg;base64,")
    with pytest.raises(ConfigurationError, match="quality"):
        encode_jpeg(small, quality=0)
    with pytest.raises(ConfigurationError, match="65500"):
        encode_jpeg(small, max_side=80000)
    with pytest.raises(InputError, match="RGB uint8"):
        bounded(np.zeros((10, 10), np.uint8))
    assert image_token_estimate(512, 288, "low") == 85 and image_token_estimate(512, 288, "high") == 255


@pytest.fixture(params=["simplejpeg", "pillow"])
def jpeg_encoder(request, monkeypatch):
    """Each JPEG test runs through simplejpeg (the openai extra's encoder) and through the Pillow
    fallback used without it."""
    from frame_describer import images

    if request.param == "pillow":
        monkeypatch.setattr(images, "_simplejpeg", None)
    elif images._simplejpeg is None:
        pytest.skip("simplejpeg is not installed (test_the_openai_extra_brings_simplejpeg says so)")
    return request.param


def test_the_openai_extra_brings_simplejpeg():
    """The fast encoder is part of the extra the remote describer needs, and this environment (set
    up with the test extra, which includes it) has it, so the tests exercise the default path."""
    import tomllib
    from pathlib import Path

    from frame_describer import images

    extras = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert any(r.startswith("simplejpeg") for r in extras["project"]["optional-dependencies"]["openai"])
    assert images._simplejpeg is not None, "simplejpeg is missing: pip install -e '.[openai]'"


def test_jpeg_keeps_colours_and_takes_any_layout(jpeg_encoder):
    """RGB in, RGB out (a channel swap would turn red to blue), at the requested quality, for
    contiguous and strided (rotated, flipped) frames alike; the same image as libjpeg through OpenCV."""
    import cv2

    img = np.zeros((90, 160, 3), np.uint8)
    img[:, :80] = (220, 30, 30)   # red left half
    img[:, 80:] = (30, 30, 220)   # blue right half
    back = cv2.cvtColor(cv2.imdecode(np.frombuffer(encode_jpeg(img, quality=90), np.uint8), 1), cv2.COLOR_BGR2RGB)
    assert back.shape == img.shape and np.abs(back.astype(int) - img).mean() < 3
    assert back[45, 20, 0] > 180 and back[45, 20, 2] < 70 and back[45, 140, 2] > 180
    rotated = np.rot90(img)  # a strided view
    back = cv2.cvtColor(cv2.imdecode(np.frombuffer(encode_jpeg(rotated), np.uint8), 1), cv2.COLOR_BGR2RGB)
    assert back.shape == (160, 90, 3) and back[10, 45, 2] > 180 and back[150, 45, 0] > 180
    crop = img[10:80, 40:120]  # rows at a longer stride: encoded as they are
    back = cv2.cvtColor(cv2.imdecode(np.frombuffer(encode_jpeg(crop), np.uint8), 1), cv2.COLOR_BGR2RGB)
    assert back.shape == (70, 80, 3) and back[35, 10, 0] > 180 and back[35, 70, 2] > 180
    assert encode_jpeg(crop) == encode_jpeg(np.ascontiguousarray(crop))
    flipped = img[::-1, ::-1]  # negative strides
    back = cv2.cvtColor(cv2.imdecode(np.frombuffer(encode_jpeg(flipped), np.uint8), 1), cv2.COLOR_BGR2RGB)
    assert back.shape == img.shape and back[45, 20, 2] > 180 and back[45, 140, 0] > 180
    assert len(encode_jpeg(img, quality=20)) < len(encode_jpeg(img, quality=95))
    rng = np.random.default_rng(0)
    frame_ = cv2.GaussianBlur(rng.integers(0, 255, (288, 512, 3), dtype=np.uint8), (5, 5), 0)
    ok, ref = cv2.imencode(".jpg", cv2.cvtColor(frame_, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    ours = cv2.cvtColor(cv2.imdecode(np.frombuffer(encode_jpeg(frame_), np.uint8), 1), cv2.COLOR_BGR2RGB)
    theirs = cv2.cvtColor(cv2.imdecode(ref, 1), cv2.COLOR_BGR2RGB)
    assert ok and _psnr(frame_, ours) > _psnr(frame_, theirs) - 0.2  # libjpeg-turbo at quality 85 both
    jfif = encode_jpeg(frame_)
    assert jfif[:2] == b"\xff\xd8" and jfif[-2:] == b"\xff\xd9"
    with pytest.raises(InputError, match="must have pixels"):
        encode_jpeg(np.zeros((0, 10, 3), np.uint8))
    with pytest.raises(InputError, match="65500 pixels"):
        encode_jpeg(np.zeros((2, 65501, 3), np.uint8), max_side=None)
    assert len(encode_jpeg(np.zeros((2, 70000, 3), np.uint8))) > 0  # bounded first: fine


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255 ** 2 / np.mean((a.astype(float) - b.astype(float)) ** 2)))


def _jpeg_segments(data: bytes, markers: tuple[int, ...]) -> dict[int, list[bytes]]:
    """The payloads of the segments with these markers, in order, up to the start of the scan."""
    out: dict[int, list[bytes]] = {m: [] for m in markers}
    i = 2  # after SOI
    while data[i] == 0xFF and data[i + 1] != 0xDA:
        marker, length = data[i + 1], int.from_bytes(data[i + 2:i + 4], "big")
        if marker in out:
            out[marker].append(data[i + 4:i + 2 + length])
        i += 2 + length
    return out


def test_jpeg_encoders_agree(monkeypatch):
    """simplejpeg and Pillow write the same JPEG layout (quantisation and Huffman tables, 4:2:0
    sampling) at the same fidelity to the frame and about the same size, so having the extra or
    not changes the CPU cost, not what the model sees. (The entropy-coded data differ slightly:
    libjpeg-turbo builds of different versions.)"""
    import cv2
    from frame_describer import images

    if images._simplejpeg is None:
        pytest.skip("simplejpeg is not installed (test_the_openai_extra_brings_simplejpeg says so)")
    rng = np.random.default_rng(1)
    img = cv2.GaussianBlur(rng.integers(0, 255, (288, 512, 3), dtype=np.uint8), (7, 7), 0)
    fast = encode_jpeg(img)
    monkeypatch.setattr(images, "_simplejpeg", None)
    slow = encode_jpeg(img)
    tables = [_jpeg_segments(x, (0xDB, 0xC4, 0xC0)) for x in (fast, slow)]  # DQT, DHT, SOF0
    assert tables[0] == tables[1] and len(tables[0][0xC0]) == 1  # same tables, same baseline frame header
    assert tables[0][0xC0][0][-9:] == bytes([1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1])  # Y 2x2 (4:2:0), Cb, Cr 1x1
    assert abs(len(fast) - len(slow)) < 0.03 * len(slow)
    a, b = (np.asarray(Image.open(io.BytesIO(x)).convert("RGB")) for x in (fast, slow))
    assert abs(_psnr(img, a) - _psnr(img, b)) < 0.2


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, s):
        self.now += s


def test_rate_limiter_rpm_and_tpm(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr("vidground.ratelimit.time.sleep", clock.sleep)
    rpm = RateLimiter(rpm=2, clock=clock)
    rpm.acquire(), rpm.acquire()
    rpm.acquire()
    assert 60.0 <= clock.now < 61.5  # the third request of the minute waited for the window
    clock.now = 0.0
    tpm = RateLimiter(tpm=1000, clock=clock)
    first = tpm.acquire(800)
    first.settle(300)  # the server said it used fewer tokens than estimated
    tpm.acquire(600)
    assert clock.now == 0.0
    tpm.acquire(500)
    assert clock.now >= 60.0
    with pytest.raises(ConfigurationError, match="rpm"):
        RateLimiter(rpm=0)


def test_rpm_limit_paces_real_requests(openai_server, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(RateLimiter, "_pause", staticmethod(lambda s, cancel: clock.sleep(s)))
    desc = make(openai_server, rpm=3, concurrency=1)
    desc.limiter._clock = clock
    list(desc.describe(frame(i) for i in range(4)))
    assert len(openai_server.requests) == 4 and clock.now >= 60.0


def test_a_wait_for_the_rate_limit_ends_when_cancelled_and_an_unsent_slot_is_given_back():
    limiter = RateLimiter(rpm=1)
    first = limiter.acquire()
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    t0 = time.monotonic()
    with pytest.raises(CancelledError):
        limiter.acquire(cancel=cancel)  # would wait a minute for the window
    assert time.monotonic() - t0 < 2
    limiter.release(first)
    limiter.release(first)  # twice is harmless
    t0 = time.monotonic()
    limiter.acquire()  # the slot given back is free at once
    assert time.monotonic() - t0 < 0.5


@TRANSPORTS
@pytest.mark.parametrize("case", ["backoff", "rate-limit"])
def test_closing_the_sync_stream_stops_retries_and_waits_for_the_rate_limit(openai_server, transport, case):
    """A frame whose request is backing off after a 500 (here for 5 s), or that waits for the
    rate limit (here a minute), when the stream closes is neither retried nor sent, and close()
    returns at once instead of waiting it out."""
    if case == "backoff":  # frame 1 fails and backs off; frame 2 waits for the only worker
        openai_server.responder = lambda req: Reply.error(500, "busy")
        openai_server.script(Reply.chat("first"))
        desc = make(openai_server, concurrency=1, retry_base_delay=5.0, transport=transport)
    else:  # frames 0 and 1 take the minute's two slots; frame 2 waits for the window
        desc = make(openai_server, concurrency=2, rpm=2, transport=transport)
    gen = desc.describe(frame(i) for i in range(3))
    assert next(gen).text in ("first", "ok")
    deadline = time.monotonic() + 10
    while len(openai_server.requests) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # frame 1 has its answer (a 500: now in the backoff wait), frame 2 is waiting
    t0 = time.monotonic()
    gen.close()
    assert time.monotonic() - t0 < 2
    time.sleep(0.2)
    assert len(openai_server.requests) == 2  # frame 1 sent once and not retried, frame 2 never sent
    desc.close()


@TRANSPORTS
def test_close_releases_only_the_clients_it_built(openai_server, transport):
    own = make(openai_server, transport=transport)
    list(own.describe([frame(0)]))
    own.close()
    assert own._client.is_closed()
    if own._lean is not None:
        assert not own._lean._idle

    async def use():
        clients = {}
        async for _ in own.adescribe([frame(1)]):
            clients.update(own._async_clients)  # the loop's SDK client, while in use
        return clients
    clients = asyncio.run(use())  # when adescribe ends, what it opened on the loop is closed
    assert len(clients) == (transport == "sdk") and all(c.is_closed() for c in clients.values())
    assert not own._async_clients and (own._lean is None or not own._lean._apools)
    injected = openai.OpenAI(base_url=openai_server.base_url, api_key=KEY)
    borrowed = OpenAIDescriber("m", client=injected)
    borrowed.close()
    assert not injected.is_closed()


# --- the lean transport against the SDK ------------------------------------------------------

def test_lean_transport_sends_what_the_sdk_sends(openai_server, monkeypatch):
    monkeypatch.setenv("OPENAI_ORG_ID", "org-test")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-test")
    for transport in ("sdk", "auto"):
        list(make(openai_server, transport=transport, concurrency=1).describe([frame(3)]))
    desc = make(openai_server, concurrency=1)

    async def run():
        return [d async for d in desc.adescribe([frame(3)])]
    asyncio.run(run())
    sdk, lean, lean_async = openai_server.requests
    assert lean.path == sdk.path == lean_async.path == "/v1/chat/completions"
    assert lean.json == sdk.json == lean_async.json
    per_request = {"x-stainless-retry-count", "x-stainless-read-timeout", "content-length", "accept-encoding",
                   "connection", "host"}  # set per request or per HTTP library, not by the client's settings
    for other in (lean, lean_async):
        assert {k: v for k, v in other.headers.items() if k not in per_request} == \
            {k: v for k, v in sdk.headers.items() if k not in per_request}
    assert lean.headers["accept-encoding"] == lean_async.headers["accept-encoding"] == "identity"
    assert lean.headers["authorization"] == f"Bearer {KEY}" and lean.headers["openai-organization"] == "org-test"


def test_a_proxy_or_an_injected_client_keeps_the_sdk(openai_server, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    desc = make(openai_server)
    assert desc.transport_in_use == "sdk"  # httpx decides what NO_PROXY means
    assert [d.text for d in desc.describe([frame(0)])] == ["ok"]
    monkeypatch.setenv("NO_PROXY", "*")
    assert make(openai_server).transport_in_use == "lean"
    monkeypatch.setenv("OPENAI_CUSTOM_HEADERS", "Authorization: Bearer gateway-token")
    list(make(openai_server, transport="sdk").describe([frame(0)]))
    list(make(openai_server).describe([frame(0)]))  # custom headers win over the key, as in the SDK
    assert [r.headers["authorization"] for r in openai_server.requests[-2:]] == ["Bearer gateway-token"] * 2
    injected = OpenAIDescriber("m", client=openai.OpenAI(base_url=openai_server.base_url, api_key=KEY))
    assert injected.transport_in_use == "sdk"
    with pytest.raises(ConfigurationError, match="choose one of: auto, sdk"):
        make(openai_server, transport="curl")


@TRANSPORTS
def test_one_describer_serves_several_event_loops(openai_server, transport):
    """Each asyncio.run() has its own loop; connections opened on a finished loop are not reused."""
    desc = make(openai_server, transport=transport, concurrency=2)

    async def run(i):
        return [d.text async for d in desc.adescribe([frame(i), frame(i + 1)])]
    assert asyncio.run(run(0)) == ["ok", "ok"]
    assert asyncio.run(run(2)) == ["ok", "ok"]
    assert list(d.text for d in desc.describe([frame(5)])) == ["ok"]
    assert len(openai_server.requests) == 5


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_lean_connections_are_kept_alive_and_replaced_when_the_server_closes_them(openai_server, use_async):
    desc = make(openai_server, concurrency=2, max_retries=0)
    assert len(describe_all(desc, [frame(i) for i in range(8)], use_async)) == 8
    assert len({r.client_port for r in openai_server.requests}) <= 2  # two workers, two connections
    if use_async:
        assert not desc._lean._apools  # closed while their event loop still ran

    def spaced(n):  # frames 50 ms apart: each request finds its connection idle and closed by the server
        for i in range(n):
            time.sleep(0.05)
            yield frame(i)
    # the server answers and then closes every connection, as an idle keep-alive timeout does: with
    # no retries allowed, every request must still go out on a live connection, and only once
    openai_server.requests.clear()
    openai_server.responder = lambda req: Reply(body=Reply.chat("ok").body, close_after=True)
    desc = make(openai_server, concurrency=1, max_retries=0)
    assert [d.text for d in describe_all(desc, spaced(5), use_async)] == ["ok"] * 5
    assert len(openai_server.requests) == 5 and len({r.client_port for r in openai_server.requests}) == 5


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_a_redirect_moves_the_describer_to_the_sdk(openai_server, use_async):
    """httpx (the SDK) follows redirects; the lean client hands such a server over to it for good."""
    moved = {"Location": openai_server.base_url + "/chat/completions"}
    openai_server.script(Reply(status=307, body="", headers=moved), Reply(status=307, body="", headers=moved),
                         Reply.chat("followed"))
    desc = make(openai_server, concurrency=1)
    assert [d.text for d in describe_all(desc, [frame(0), frame(1)], use_async)] == ["followed", "ok"]
    assert desc.transport_in_use == "sdk" and len(openai_server.requests) == 4


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_a_frame_that_cannot_be_encoded_fails_in_its_turn(openai_server, use_async):
    """A frame too wide for JPEG (no max_side) raises InputError after the frames before it have
    been described, as a decoding error does, and no request is sent for it."""
    openai_server.responder = echo_brightness
    wide = Frame(t=2.0, index=4, image=np.zeros((2, 65501, 3), np.uint8))
    frames = [frame(1), frame(2), frame(3, 64, 64), wide, frame(5)]
    got: list[str] = []

    async def run(desc):
        async for d in desc.adescribe(frames):
            got.append(d.text)

    desc = make(openai_server, concurrency=4, max_side=None)
    with pytest.raises(InputError, match="65500 pixels"):
        if use_async:
            asyncio.run(run(desc))
        else:
            for d in desc.describe(frames):
                got.append(d.text)
    assert got == ["level 1", "level 2", "level 3"]
    assert all(decode_url(r.json["messages"][0]["content"][1]["image_url"]["url"]).shape[1] < 1000
               for r in openai_server.requests)


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_with_one_request_at_a_time_requests_leave_in_frame_order(openai_server, use_async):
    openai_server.responder = echo_brightness
    # even frames are large (slow to shrink and encode), odd ones small: encodings finish out of order
    frames = [frame(i, 2160, 3840) if i % 2 == 0 else frame(i, 96, 128) for i in range(12)]
    out = describe_all(make(openai_server, concurrency=1), frames, use_async)
    assert [d.text for d in out] == [f"level {i}" for i in range(12)]
    sent = [round(float(decode_url(r.json["messages"][0]["content"][1]["image_url"]["url"]).mean()) / 10)
            for r in openai_server.requests]
    assert sent == list(range(12))


def test_retry_layer_counts_attempts_and_waits_like_its_contract(monkeypatch):
    """The first attempt runs outside tenacity; the rest keep the numbering: max_retries=N is at
    most N+1 calls, backoff attempt k before call k+1, Retry-After honoured, no wait after the last."""
    from frame_describer import openai_client as oc

    def failing(times: int, *, retryable: bool = True, retry_after: float | None = None):
        calls = []

        def fn():
            calls.append(1)
            if len(calls) <= times:
                err = ProviderError("boom", status=500 if retryable else 400, retryable=retryable, provider="p")
                err.retry_after = retry_after
                raise err
            return "ok"
        return fn, calls

    asked: list[int] = []
    monkeypatch.setattr(oc, "backoff", lambda attempt, **kw: (asked.append(attempt), kw["retry_after"] or 0.0)[1])
    slept: list[float] = []
    fn, calls = failing(2)
    assert oc.call_with_retries(fn, provider="p", max_retries=3, sleep=slept.append) == "ok"
    assert len(calls) == 3 and asked[:2] == [1, 2] and len(slept) == 2  # (tenacity may also price a wait it skips)
    asked.clear(); slept.clear()
    fn, calls = failing(9, retry_after=1.5)
    with pytest.raises(ProviderError, match="boom"):
        oc.call_with_retries(fn, provider="p", max_retries=3, sleep=slept.append)
    assert len(calls) == 4 and asked[:3] == [1, 2, 3] and slept == [1.5, 1.5, 1.5]
    fn, calls = failing(9, retryable=False)
    with pytest.raises(ProviderError):
        oc.call_with_retries(fn, provider="p", max_retries=3, sleep=slept.append)
    assert len(calls) == 1
    for none in (0, -1):
        fn, calls = failing(9)
        with pytest.raises(ProviderError):
            oc.call_with_retries(fn, provider="p", max_retries=none, sleep=slept.append)
        assert len(calls) == 1

    async def afailing(times: int):
        fn, calls = failing(times)

        async def afn():
            return fn()
        return afn, calls

    async def scenario():
        asked.clear()
        afn, calls = await afailing(2)
        assert await oc.acall_with_retries(afn, provider="p", max_retries=3) == "ok"
        assert len(calls) == 3 and asked[:2] == [1, 2]
        asked.clear()
        afn, calls = await afailing(9)
        with pytest.raises(ProviderError):
            await oc.acall_with_retries(afn, provider="p", max_retries=2)
        assert len(calls) == 3 and asked[:2] == [1, 2]
    asyncio.run(scenario())


def _closed_port() -> int:
    """A local port nothing listens on: bound, then closed (connections to it are refused)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("transport", ["auto", "sdk"])
def test_refused_connection_names_url_attempts_and_time_and_logs_each_retry(transport, caplog):
    port = _closed_port()
    d = OpenAIDescriber("m", base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_retries=2,
                       retry_base_delay=0.001, transport=transport)
    with caplog.at_level(logging.INFO, logger="vidground.chat"):
        with pytest.raises(ProviderError) as info:
            d.describe_frame(frame(0))
    err = info.value
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    assert err.url == url and err.attempts == 3 and err.elapsed is not None and err.elapsed >= 0
    assert str(err).startswith("openai:m: connection failed (")
    assert f" at {url}: gave up after 3 attempts in " in str(err) and str(err).endswith(" s")
    assert KEY not in str(err)
    retries = [r.getMessage() for r in caplog.records if r.name == "vidground.chat"]
    assert len(retries) == 2, retries
    for n, line in enumerate(retries, 1):
        assert "connection failed" in line and f"retry {n} of 2 in " in line and line.endswith(" s")


def test_a_non_retryable_error_is_raised_as_it_was(openai_server):
    openai_server.script(Reply.error(400, "bad request"))
    d = OpenAIDescriber("m", base_url=openai_server.base_url, api_key=KEY, max_retries=3)
    with pytest.raises(ProviderError) as info:
        d.describe_frame(frame(0))
    assert info.value.status == 400 and info.value.attempts is None and "gave up" not in str(info.value)
    assert len(openai_server.requests) == 1

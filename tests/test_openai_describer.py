"""OpenAIDescriber against the local fake server: exact requests, order, overlap, bounds, faults.

No assertion here bounds wall time: overlap and concurrency are shown by counting requests in
flight at the server or by gates the test opens, and pacing by a fake clock."""

from __future__ import annotations

import base64
import io
import json
import logging
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
from vidground import ratelimit
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


@pytest.fixture(autouse=True)
def fresh_shared_limiters(monkeypatch):
    """Each test starts with no shared limiter (a later test's server may reuse a port)."""
    monkeypatch.setattr(ratelimit, "_SHARED", {})
    monkeypatch.setattr(ratelimit, "_RECENT", {})  # nor the windows of closed limiters (24c919f)


def test_exact_request(openai_server):
    openai_server.script(Reply.chat("A person opens a door.", image_tokens=85))
    desc = make(openai_server, detail="low", max_side=256)
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


def test_faults_retried_once_per_layer(openai_server):
    openai_server.script(Reply.error(429, "rate", headers={"retry-after-ms": "150"}), Reply.error(500, "oops"),
                         Reply(drop=True), Reply.chat("fine"))
    (d,) = list(make(openai_server, concurrency=1).describe([frame(0)]))
    assert d.text == "fine" and len(openai_server.requests) == 4
    assert (d.usage.requests, d.usage.retried) == (1, 3)  # what the server received: 4, the three faults too
    assert openai_server.requests[1].t - openai_server.requests[0].t >= 0.14


def test_timeout_and_exhaustion_raise_typed_errors_without_the_key(openai_server):
    openai_server.script(Reply.chat("late", delay=1.0))
    with pytest.raises(ProviderError, match="timed out") as info:
        list(make(openai_server, timeout=0.2, max_retries=0).describe([frame(0)]))
    assert info.value.retryable
    openai_server.script(Reply.error(403, f"key {KEY} may not use this model"))
    desc = make(openai_server)
    with pytest.raises(ProviderError) as info:
        list(desc.describe([frame(0)]))
    assert info.value.status == 403 and not info.value.retryable
    for text in (str(info.value), repr(info.value), repr(desc), json.dumps(desc.settings())):
        assert KEY not in text


def test_empty_cut_description_is_incomplete(openai_server):
    openai_server.script(Reply.chat("", finish_reason="length"))
    with pytest.raises(IncompleteOutputError, match="raise it"):
        list(make(openai_server).describe([frame(0)]))


def test_stopping_early_cancels_the_rest(openai_server):
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
    gen = desc.describe(frames)
    first = next(gen)
    threading.Timer(0.3, gate.set).start()  # the encodings end once the close is under way (it waits for them)
    gen.close()
    assert first.text == "level 0"
    assert len(openai_server.requests) == 1
    assert not [t for t in threading.enumerate() if t.name == "vidground-decode"]  # the feeder thread is gone


def test_requests_overlap_with_decoding(openai_server):
    """The first request reaches the server while frames are still being decoded: the decoder
    stops at its fourth frame until the server has seen a request (it would wait in vain if the describer
    decoded everything before sending)."""
    first_request = threading.Event()

    def answer(req):
        first_request.set()
        return Reply.chat("a frame")
    openai_server.responder = answer
    seen_midway: list[bool] = []

    def decode():
        for i in range(20):
            if i == 3:
                seen_midway.append(first_request.wait(30))
            yield frame(i, 96, 128)

    out = list(make(openai_server, concurrency=4, prices=False).describe(decode()))
    assert len(out) == 20 and seen_midway == [True]


def test_concurrency_requests_are_in_flight_together_and_never_more(openai_server):
    """The server holds each reply until ``concurrency`` requests are in flight at once (or 30 s
    pass): the describer reaches that count and never exceeds it."""
    c, full = 4, threading.Event()
    lock, seen = threading.Lock(), []

    def answer(req):
        with lock:
            seen.append(openai_server.in_flight)
            if openai_server.in_flight >= c:
                full.set()
        full.wait(30)
        return Reply.chat("a frame")
    openai_server.responder = answer
    out = list(make(openai_server, concurrency=c, prices=False).describe(frame(i, 96, 128) for i in range(40)))
    assert len(out) == 40 and full.is_set()
    assert openai_server.max_in_flight == c and max(seen) == c


def test_frames_held_stay_within_twice_the_concurrency(openai_server):
    openai_server.responder = lambda req: Reply.chat("x", delay=0.005)
    pulled = 0
    ahead: list[int] = []

    def decode():
        nonlocal pulled
        for i in range(24):
            pulled += 1
            yield frame(i, 64, 64)

    for _ in make(openai_server, concurrency=2).describe(decode()):
        ahead.append(pulled - len(ahead) - 1)
        time.sleep(0.01)  # a slow consumer: decoding runs ahead of it, but boundedly
    assert len(ahead) == 24
    assert 3 <= max(ahead) <= 4  # frames decoded but not yet handed over: up to 2 x concurrency


def test_a_decoding_error_comes_after_the_frames_before_it(openai_server):
    openai_server.responder = echo_brightness
    got: list[str] = []

    def decode():
        yield frame(1)
        yield frame(2)
        raise VideoDecodeError("clip.mp4", "decoding failed at 1.5s")

    with pytest.raises(VideoDecodeError, match="clip.mp4"):
        for d in make(openai_server, concurrency=2).describe(decode()):
            got.append(d.text)
    assert got == ["level 1", "level 2"]


def test_a_reply_unlike_a_chat_completion_is_a_provider_error(openai_server):
    openai_server.script(Reply(body={"choices": [{"index": 0, "text": "legacy completion"}]}))
    with pytest.raises(ProviderError, match="not a chat completion"):
        list(make(openai_server).describe([frame(0)]))
    openai_server.script(Reply(body={"choices": [{"index": 0, "finish_reason": "stop",
                                                  "message": {"role": "assistant", "content": "ok"}}],
                                     "usage": {"prompt_tokens": "n/a", "completion_tokens": 4}}))
    (d,) = list(make(openai_server, prices=False).describe([frame(0)]))
    assert d.text == "ok" and d.usage.prompt_tokens == 0 and d.usage.completion_tokens == 4
    openai_server.script(Reply(body="{'choices': [", headers={}), Reply(body="{'choices': ["))
    with pytest.raises(ProviderError, match="malformed"):  # garbled JSON: retried, then reported
        list(make(openai_server, max_retries=1).describe([frame(0)]))
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
    injected = OpenAIDescriber("m", client=openai.OpenAI(base_url=openai_server.base_url, api_key=KEY, max_retries=3))
    assert injected._client.max_retries == 0 and injected.base_url == openai_server.base_url + "/"
    for gone in ("transport", "async_client"):  # options that no longer exist are refused, not ignored
        with pytest.raises(ConfigurationError, match=f"no option {gone}"):
            get_describer("openai:m", **{gone: "sdk"})


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
    """Time that passes only when someone sleeps."""

    def __init__(self):
        self.now = 0.0
        self.lock = threading.Lock()

    def __call__(self):
        return self.now

    def sleep(self, s):
        with self.lock:
            self.now += s


def test_rate_limiter_rpm_and_tpm():
    clock = FakeClock()
    rpm = RateLimiter(rpm=2, clock=clock, sleep=clock.sleep)
    rpm.acquire(), rpm.acquire()
    rpm.acquire()
    assert 60.0 <= clock.now < 61.5  # the third request of the minute waited for the window
    clock.now = 0.0
    tpm = RateLimiter(tpm=1000, clock=clock, sleep=clock.sleep)
    first = tpm.acquire(800)
    first.settle(300)  # the server said it used fewer tokens than estimated
    tpm.acquire(600)
    assert clock.now == 0.0
    tpm.acquire(500)
    assert clock.now >= 60.0
    for bad in (dict(rpm=0), dict(rpm=0.5), dict(max_in_flight=0), dict(max_in_flight=1.5), dict(tpm=True)):
        with pytest.raises(ConfigurationError, match=">= 1"):
            RateLimiter(**bad)
    clock.now = 0.0
    fractional = RateLimiter(rpm=1.5, clock=clock, sleep=clock.sleep)  # whole requests: 1 a minute, not 2
    fractional.acquire(), fractional.acquire()
    assert clock.now >= 60.0


def test_rpm_limit_paces_real_requests(openai_server):
    clock = FakeClock()
    desc = make(openai_server, rpm=3, concurrency=1)
    desc.limiter._clock, desc.limiter._sleep = clock, clock.sleep
    list(desc.describe(frame(i) for i in range(4)))
    assert len(openai_server.requests) == 4 and 60.0 <= clock.now < 61.5


def test_a_wait_for_the_rate_limit_or_a_slot_ends_when_cancelled():
    clock, cancel = FakeClock(), threading.Event()

    def sleep(s):  # the wait is cancelled while it sleeps, before the minute is over
        clock.sleep(s)
        cancel.set()
    limiter = RateLimiter(rpm=1, clock=clock, sleep=sleep)
    limiter.acquire()
    with pytest.raises(CancelledError):
        limiter.acquire(cancel=cancel)  # would wait a minute for the window
    assert clock.now < 60
    one = RateLimiter(max_in_flight=1)
    with one.slot():
        cancelled = threading.Event()
        threading.Timer(0.1, cancelled.set).start()
        with pytest.raises(CancelledError, match="slot"):
            with one.slot(cancel=cancelled):  # the only slot is taken
                pass
    with one.slot():  # given back when its block ended
        pass


def test_one_limiter_per_endpoint_and_key_shared_by_describers(openai_server):
    a, b = make(openai_server, rpm=60, concurrency=2), make(openai_server, rpm=60, concurrency=2)
    assert a.limiter is b.limiter and a.limiter.max_in_flight == 2
    c = make(openai_server, rpm=30, concurrency=4)  # other limits: the same budget, the tightest of each
    assert c.limiter is a.limiter and (a.limiter.rpm, a.limiter.max_in_flight) == (30, 2)
    other_key = OpenAIDescriber("m", base_url=openai_server.base_url, api_key="sk-other", rpm=60, concurrency=2)
    assert other_key.limiter is not a.limiter
    assert not [k for k in ratelimit._SHARED if KEY in repr(k)]  # keyed by a hash of the key, never the key


def test_describers_sharing_an_endpoint_share_the_in_flight_bound(openai_server):
    """Three describers (as three eval workers build them), each with concurrency=2, streaming at
    the same time: the server never sees more than 2 requests at once, and sees 2 (it holds each
    reply until two are in flight, or 30 s pass)."""
    full = threading.Event()

    def answer(req):
        if openai_server.in_flight >= 2:
            full.set()
        full.wait(30)
        return Reply.chat("x")
    openai_server.responder = answer
    describers = [make(openai_server, concurrency=2, prices=False) for _ in range(3)]
    results: list[int] = []

    def run(desc):
        results.append(len(list(desc.describe(frame(i, 64, 64) for i in range(8)))))
    threads = [threading.Thread(target=run, args=(d,)) for d in describers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [8, 8, 8] and full.is_set() and openai_server.max_in_flight == 2


def test_a_shared_rpm_limit_holds_across_describers(openai_server):
    """Two describers of one endpoint, rpm=5 between them, describing 5 frames each on a fake
    clock: the sixth request waits for the first to leave the minute."""
    clock = FakeClock()
    a, b = make(openai_server, rpm=5, concurrency=1), make(openai_server, rpm=5, concurrency=1)
    a.limiter._clock, a.limiter._sleep = clock, clock.sleep
    list(a.describe(frame(i, 64, 64) for i in range(5)))
    assert clock.now == 0.0
    list(b.describe(frame(i, 64, 64) for i in range(5)))
    assert 60.0 <= clock.now < 61.5 and len(openai_server.requests) == 10


@pytest.mark.parametrize("case", ["backoff", "rate-limit"])
def test_closing_the_stream_stops_retries_and_waits_for_the_rate_limit(openai_server, case):
    """A frame whose request is backing off after a 500 (the server asks for 30 s), or that waits
    for the rate limit (a minute), when the stream closes is neither retried nor sent: close()
    joins the workers, so had either wait been served, the server would have seen a third request."""
    limit_wait = threading.Event()  # frame 2 is waiting for the minute's window

    def frames():
        yield frame(0)
        yield frame(1)
        if case == "rate-limit":  # frame 2 comes once frames 0 and 1 have taken the minute's two places: it
            # cannot overtake a slow frame 0 (a worker starved under load; CI saw frames 1, 2, then 0 a minute on)
            deadline = time.monotonic() + 30
            while len(openai_server.requests) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
        yield frame(2)

    if case == "backoff":  # frame 1 fails and backs off; frame 2 waits for the only worker
        openai_server.responder = lambda req: Reply.error(500, "busy", headers={"retry-after": "30"})
        openai_server.script(Reply.chat("first"))
        desc = make(openai_server, concurrency=1)
    else:  # frames 0 and 1 take the minute's two slots; frame 2 waits for the window
        desc = make(openai_server, concurrency=2, rpm=2)
        pause = desc.limiter._pause

        def noted(seconds, cancel):
            limit_wait.set()
            return pause(seconds, cancel)
        desc.limiter._pause = noted
    gen = desc.describe(frames())
    assert next(gen).text in ("first", "ok")
    deadline = time.monotonic() + 30
    while len(openai_server.requests) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    if case == "rate-limit":
        assert limit_wait.wait(30)  # closed while frame 2 waits for the window, not before it got there
    else:
        time.sleep(0.2)  # frame 1 has most likely had its answer (a 500: now in the backoff wait)
    gen.close()
    sent = [round(float(decode_url(r.json["messages"][0]["content"][1]["image_url"]["url"]).mean()) / 10)
            for r in openai_server.requests]
    assert sorted(sent) == [0, 1]  # frame 1 sent once and not retried, frame 2 never sent
    desc.close()


def test_close_releases_only_the_client_it_built(openai_server):
    own = make(openai_server)
    list(own.describe([frame(0)]))
    own.close()
    assert own._client.is_closed()
    injected = openai.OpenAI(base_url=openai_server.base_url, api_key=KEY)
    borrowed = OpenAIDescriber("m", client=injected)
    borrowed.close()
    assert not injected.is_closed()


def test_connections_are_kept_alive_and_replaced_when_the_server_closes_them(openai_server):
    desc = make(openai_server, concurrency=2, max_retries=0)
    assert len(list(desc.describe([frame(i) for i in range(8)]))) == 8
    assert len({r.client_port for r in openai_server.requests}) <= 2  # two workers, two connections

    def spaced(n):  # frames 50 ms apart: each request finds its connection idle and closed by the server
        for i in range(n):
            time.sleep(0.05)
            yield frame(i)
    # the server answers and then closes every connection, as an idle keep-alive timeout does: with
    # no retries allowed, every request must still go out on a live connection, and only once
    openai_server.requests.clear()
    openai_server.responder = lambda req: Reply(body=Reply.chat("ok").body, close_after=True)
    desc = make(openai_server, concurrency=1, max_retries=0)
    assert [d.text for d in desc.describe(spaced(5))] == ["ok"] * 5
    assert len(openai_server.requests) == 5 and len({r.client_port for r in openai_server.requests}) == 5


def test_a_redirect_is_followed(openai_server):
    moved = {"Location": openai_server.base_url + "/chat/completions"}
    openai_server.script(Reply(status=307, body="", headers=moved), Reply.chat("followed"))
    desc = make(openai_server, concurrency=1)
    assert [d.text for d in desc.describe([frame(0), frame(1)])] == ["followed", "ok"]
    assert len(openai_server.requests) == 3


def test_a_frame_that_cannot_be_encoded_fails_in_its_turn(openai_server):
    """A frame too wide for JPEG (no max_side) raises InputError after the frames before it have
    been described, as a decoding error does, and no request is sent for it."""
    openai_server.responder = echo_brightness
    wide = Frame(t=2.0, index=4, image=np.zeros((2, 65501, 3), np.uint8))
    frames = [frame(1), frame(2), frame(3, 64, 64), wide, frame(5)]
    got: list[str] = []
    with pytest.raises(InputError, match="65500 pixels"):
        for d in make(openai_server, concurrency=4, max_side=None).describe(frames):
            got.append(d.text)
    assert got == ["level 1", "level 2", "level 3"]
    assert all(decode_url(r.json["messages"][0]["content"][1]["image_url"]["url"]).shape[1] < 1000
               for r in openai_server.requests)


def test_with_one_request_at_a_time_requests_leave_in_frame_order(openai_server):
    openai_server.responder = echo_brightness
    # even frames are large (slow to shrink and encode), odd ones small
    frames = [frame(i, 2160, 3840) if i % 2 == 0 else frame(i, 96, 128) for i in range(12)]
    out = list(make(openai_server, concurrency=1).describe(frames))
    assert [d.text for d in out] == [f"level {i}" for i in range(12)]
    sent = [round(float(decode_url(r.json["messages"][0]["content"][1]["image_url"]["url"]).mean()) / 10)
            for r in openai_server.requests]
    assert sent == list(range(12))


def test_retry_layer_counts_attempts_and_waits_like_its_contract(monkeypatch):
    """The first attempt runs outside tenacity; the rest keep the numbering: max_retries=N is at
    most N+1 calls, backoff attempt k before call k+1, Retry-After honoured, no wait after the last."""
    from vidground import chat as oc

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



def _closed_port() -> int:
    """A local port nothing listens on: bound, then closed (connections to it are refused)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_refused_connection_names_url_attempts_and_time_and_logs_each_retry(caplog):
    port = _closed_port()
    d = OpenAIDescriber("m", base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_retries=2,
                       retry_base_delay=0.001)
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

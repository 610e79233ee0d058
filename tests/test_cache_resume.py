"""A describer that compares each frame with the one before (``cv``) is shown, behind a description cache, the
frame before a miss that follows cached frames: a resumed run stores what a fresh run would."""

from __future__ import annotations

import pytest

from frame_describer.cache import CachedDescriber, DescriptionCache, settings_key
from vidground.types import FrameDescription, Usage

from _helpers_eval import FakeDescriber, make_frames


class PreviousFrameDescriber(FakeDescriber):
    """Says which frame it saw before each one, as ``cv`` measures motion and cuts against it."""

    uses_previous_frame = True


def fresh_texts(times):
    return [d.text for d in PreviousFrameDescriber().describe(make_frames(times))]


@pytest.mark.parametrize("cached", [[0.0, 1.0], [0.0, 1.0, 3.0], [2.0], [1.0, 2.0, 3.0, 4.0]])
def test_a_resumed_run_stores_what_a_fresh_run_would(tmp_path, cached):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"video bytes")
    cache = DescriptionCache(tmp_path / "c.sqlite")
    times = [0.0, 1.0, 2.0, 3.0, 4.0]
    expected = dict(zip(times, fresh_texts(times)))
    key = settings_key(PreviousFrameDescriber())
    # what an earlier run (interrupted, or another one sharing the cache) stored: the fresh texts
    cache.store(CachedDescriber(PreviousFrameDescriber(), cache, video).fingerprint, key,
                [FrameDescription(t=t, text=expected[t], usage=Usage()) for t in cached])
    inner = PreviousFrameDescriber()
    run = CachedDescriber(inner, cache, video)
    out = list(run.describe(make_frames(times)))
    assert [d.t for d in out] == times
    assert [d.text for d in out] == [expected[t] for t in times]
    missed = [t for t in times if t not in cached]
    # each miss right after a hit had that hit's frame sent before it, and its description dropped
    primes = sum(1 for i, t in enumerate(times) if t in missed and i > 0 and times[i - 1] in cached)
    assert (run.calls, run.saved, run.primed, inner.calls) == (len(missed), len(cached), primes, len(missed) + primes)
    again = CachedDescriber(PreviousFrameDescriber(), cache, video)
    assert [d.text for d in again.describe(make_frames(times))] == [expected[t] for t in times]
    assert (again.calls, again.primed) == (0, 0)


def test_a_describer_without_a_previous_frame_is_sent_only_the_misses(tmp_path):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"video bytes")
    cache = DescriptionCache(tmp_path / "c.sqlite")
    list(CachedDescriber(FakeDescriber(), cache, video).describe(make_frames([0.0, 1.0])))
    inner = FakeDescriber()
    run = CachedDescriber(inner, cache, video)
    list(run.describe(make_frames([0.0, 1.0, 2.0])))
    assert (run.calls, run.primed, inner.calls) == (1, 0, 1)


def test_the_cv_describer_resumed_after_cached_frames_writes_the_fresh_texts(tmp_path):
    from frame_describer.classical import ClassicalDescriber
    import numpy as np
    from vidground.types import Frame

    rng = np.random.default_rng(3)
    base = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    # a picture sliding right: each frame's motion is measured against the one before
    frames = [Frame(t=float(i), index=i, image=np.roll(base, 12 * i, axis=1)) for i in range(6)]
    frames[3] = Frame(t=3.0, index=3, image=np.full((120, 160, 3), 230, np.uint8))  # a cut
    fresh = [d.text for d in ClassicalDescriber().describe(frames)]
    video = tmp_path / "v.mp4"
    video.write_bytes(b"video bytes")
    cache = DescriptionCache(tmp_path / "c.sqlite")
    first = CachedDescriber(ClassicalDescriber(), cache, video)
    stream = first.describe(frames)
    [next(stream) for _ in range(4)]  # interrupted after the cut's frame
    stream.close()
    resumed = CachedDescriber(ClassicalDescriber(), cache, video)
    assert [d.text for d in resumed.describe(frames)] == fresh
    assert resumed.primed == 1

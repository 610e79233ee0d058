"""Two runs sharing one description cache pay for each frame once: a frame is claimed before it is
described, and a claim left by a killed run lapses."""

from __future__ import annotations

import threading
import time

from frame_describer.cache import CachedDescriber, DescriptionCache

from _helpers_eval import FakeDescriber, make_frames


class _Slow(FakeDescriber):
    """Counts the frames it describes, across instances; a little slow, so two streams overlap."""

    described: list[float] = []

    def describe(self, frames, *, query=None):
        for d in super().describe(frames, query=query):
            _Slow.described.append(d.t)
            time.sleep(0.01)
            yield d


def test_two_runs_sharing_a_cache_describe_each_frame_once(tmp_path):
    """Two streams over the same frames at the same time (two evals, two sessions): a frame one of them
    is describing is claimed, so the other waits for its description instead of paying for it again."""
    cache = DescriptionCache(tmp_path / "c.sqlite")
    frames = make_frames([i * 0.5 for i in range(40)])
    _Slow.described = []
    out: dict[int, list[str]] = {}
    streams = [CachedDescriber(_Slow(), cache, fingerprint="fp") for _ in range(2)]

    def run(i):
        out[i] = [d.text.split(" after")[0] for d in streams[i].describe(frames)]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert sorted(_Slow.described) == [f.t for f in frames]  # each frame described once in all
    assert out[0] == out[1] == [f"frame at {f.t:.1f}" for f in frames]  # both streams whole, in order
    assert sum(s.calls for s in streams) == 40 and sum(s.saved for s in streams) == 40


def test_a_claim_left_by_a_killed_run_lapses(tmp_path):
    cache = DescriptionCache(tmp_path / "c.sqlite")
    frames = make_frames([0.0, 1.0])
    describer = FakeDescriber()
    cached = CachedDescriber(describer, cache, fingerprint="fp", claim_ttl=0.2)
    assert cache.claim("fp", cached.key, 0.0, "a run that was killed", ttl=0.2) is None
    assert cache.claim("fp", cached.key, 0.0, "someone else", ttl=0.2) == "a run that was killed"
    assert len(list(cached.describe(frames))) == 2  # waited for the claim to lapse, then described it
    assert describer.calls == 2 and cached.waited == 0
    assert cache.claim("fp", cached.key, 1.0, "later", ttl=1) is None  # no claim left behind

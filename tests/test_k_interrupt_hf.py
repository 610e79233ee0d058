"""The transformers describer keeps the rest of a batch a Ctrl-C stopped (task K): a batch's descriptions are
written together by one ``generate``; a Ctrl-C while the reader took the first of them dropped the others,
written and never cached, so a rerun generated them again. Counted on a tiny random LLaVA (the words do not matter)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("PIL")

from _helpers_tiny_models import build_tiny_llava  # noqa: E402

from frame_describer import get_describer  # noqa: E402
from frame_describer.cache import CachedDescriber, DescriptionCache  # noqa: E402
from vidground.types import Frame  # noqa: E402


def frames(n: int) -> list[Frame]:
    rng = np.random.default_rng(7)
    return [Frame(t=float(i), index=i, image=rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)) for i in range(n)]


def counted(describer) -> list[int]:
    """How many frames each generate() call took (the real generate still runs)."""
    sizes: list[int] = []
    real = describer.model.generate

    def generate(**kwargs):
        sizes.append(int(kwargs["input_ids"].shape[0]))
        return real(**kwargs)

    describer.model.generate = generate
    return sizes


@pytest.mark.slow
def test_a_ctrl_c_in_a_batch_keeps_the_rest_of_the_batch_and_a_rerun_does_not_generate_it(tmp_path):
    path = build_tiny_llava(tmp_path / "llava")
    d = get_describer(f"hf:{path}", batch_size=4, max_new_tokens=3)
    sizes = counted(d)
    cache = DescriptionCache(tmp_path / "c.sqlite")
    got = 0
    with pytest.raises(KeyboardInterrupt):
        for _ in CachedDescriber(d, cache, fingerprint="v").describe(frames(10)):
            got += 1
            if got == 1:
                raise KeyboardInterrupt  # the Ctrl-C while the reader takes the batch's first description
    assert sizes == [4] and cache.count() == 4  # the whole batch written is kept (HEAD: 1)
    again = list(CachedDescriber(d, cache, fingerprint="v").describe(frames(10)))
    assert [x.t for x in again] == [float(i) for i in range(10)]
    assert sizes == [4, 4, 2]  # the rerun generates frames 4-9 only

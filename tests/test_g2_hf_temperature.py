"""The ``hf:`` describer's ``temperature``: checked before any model load (a negative, NaN or non-number value, and 0
with sampling on, failed inside ``generate`` after the load as an internal error), and keyed as a float, so
``temperature=0`` (as ``--describer-opt temperature=0`` parses it) and ``0.0`` share cache entries. The default key
is pinned: caches written before stay warm."""

from __future__ import annotations

import math

import pytest

from frame_describer.cache import settings_key
from vidground.errors import ConfigurationError

pytest.importorskip("torch")
pytest.importorskip("transformers")

from test_cache_keys import loads  # noqa: E402,F401  (the fixture: fake loads, counted)


@pytest.mark.parametrize("value", [-0.5, math.nan, math.inf, "0.7", True, [1.0]])
def test_a_bad_temperature_is_a_configuration_error_before_any_model_load(loads, value):
    from frame_describer.hf_describer import TransformersDescriber

    with pytest.raises(ConfigurationError, match="temperature must be a finite number >= 0"):
        TransformersDescriber("org/vlm", do_sample=True, temperature=value)
    with pytest.raises(ConfigurationError, match="temperature must be a finite number >= 0"):
        TransformersDescriber.check_options("org/vlm", local=False, temperature=value)  # a session's and an eval's
    assert loads == []


def test_a_zero_temperature_with_sampling_is_refused_before_the_load_and_allowed_without(loads):
    from frame_describer.hf_describer import TransformersDescriber

    for zero in (0, 0.0):
        with pytest.raises(ConfigurationError, match="above 0 with do_sample=True"):
            TransformersDescriber("org/vlm", do_sample=True, temperature=zero)
        with pytest.raises(ConfigurationError, match="above 0 with do_sample=True"):
            TransformersDescriber.check_options("org/vlm", local=False, do_sample=True, temperature=zero)
    assert loads == []
    greedy = TransformersDescriber("org/vlm", temperature=0)  # unused without sampling: nothing to refuse
    assert greedy.temperature == 0.0 and isinstance(greedy.temperature, float)


def test_whole_number_temperatures_key_as_their_floats_and_the_default_key_is_unchanged(loads, monkeypatch):
    from frame_describer import hf_describer
    from frame_describer.hf_describer import TransformersDescriber

    monkeypatch.setattr(hf_describer, "hub_commit", lambda *a, **k: "c0")  # one commit for every load here

    def key(**options):
        return settings_key(TransformersDescriber("org/vlm", **options), {"max_side": 512})

    assert key(temperature=0) == key(temperature=0.0)
    assert key(do_sample=True, temperature=1) == key(do_sample=True, temperature=1.0)
    assert key(do_sample=True, temperature=1) != key(do_sample=True, temperature=0.7)
    # computed on the code before this check (b18d386's tree): a default describer's key must not move
    assert key() == "c75b7ecb37d2e060542f8d5afc9be3d7"


def test_a_whole_number_temperature_reaches_generate_as_the_float_transformers_takes(loads):
    """transformers' sampling refuses an int temperature ('has to be a strictly positive float'): ``--describer-opt
    temperature=2`` (parsed as int 2) failed at the first batch, after the load."""
    import numpy as np

    from frame_describer.hf_describer import TransformersDescriber
    from vidground.types import Frame

    describer = TransformersDescriber("org/vlm", do_sample=True, temperature=2)
    sent: list[dict] = []
    generate = describer.model.generate
    describer.model.generate = lambda **kw: sent.append(kw) or generate(**kw)
    list(describer.describe([Frame(t=0.0, index=0, image=np.zeros((8, 8, 3), np.uint8))]))
    assert [type(kw["temperature"]) for kw in sent] == [float] and sent[0]["temperature"] == 2.0

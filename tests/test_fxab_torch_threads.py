"""RV-P on 14bb351: a bad ``$VIDGROUND_TORCH_THREADS`` was a ConfigurationError for every embedding reasoner made,
also on a GPU or with a caller's own encoder, where it is never applied. Now it is refused where it would be applied
(the built-in encoder on the CPU) and warned about, once, elsewhere."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from temporal_reasoner import embedding
from temporal_reasoner.embedding import EmbeddingReasoner
from vidground.errors import ConfigurationError


class _Encoder:
    def encode(self, texts):
        return np.ones((len(texts), 4), dtype=np.float32)


@pytest.fixture(autouse=True)
def bad(monkeypatch):
    monkeypatch.setenv("VIDGROUND_TORCH_THREADS", "abc")
    monkeypatch.setattr(embedding, "_threads_said", set(), raising=False)  # said once a process


@pytest.mark.parametrize("device, encoder", [("cuda", None), ("cuda:1", None), ("mps", None), ("cpu", _Encoder()),
                                             (None, _Encoder())])
def test_where_it_is_never_applied_it_is_warned_about_once(caplog, device, encoder):
    with caplog.at_level(logging.WARNING, logger="temporal_reasoner"):
        made = [EmbeddingReasoner(device=device, encoder=encoder) for _ in range(2)]
    assert [r.device for r in made] == [device, device]
    said = [r.getMessage() for r in caplog.records if "VIDGROUND_TORCH_THREADS" in r.getMessage()]
    assert len(said) == 1 and "'abc'; ignored" in said[0]


def test_on_the_cpu_with_the_built_in_encoder_it_is_refused():
    with pytest.raises(ConfigurationError, match="VIDGROUND_TORCH_THREADS must be a whole number.*'abc'"):
        EmbeddingReasoner(device="cpu")

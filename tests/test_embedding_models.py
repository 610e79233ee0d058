"""Another sentence-transformers model than the bundled one, loaded from a local folder: the code path
a user takes with a stronger encoder they downloaded (``embedding:/path/to/model``). Tested on a tiny
randomly initialised model built here, so no weights are fetched; its answers are random, so the
tests assert on what the path does (which model encodes, where vectors are cached, which errors)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from vidground.errors import ConfigurationError  # noqa: E402
from temporal_reasoner import get_reasoner  # noqa: E402
from temporal_reasoner.embedding import get_encoder  # noqa: E402
from temporal_reasoner.embedding_store import model_fingerprint  # noqa: E402
from _helpers_text import transcript  # noqa: E402
from _helpers_tiny_models import build_tiny_sentence_encoder  # noqa: E402

pytest.importorskip("sentence_transformers")

TR = transcript((4, "A person opens the door."), (4, "A person is holding a cup."), (4, "The kitchen is empty."))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_sentence_encoder(tmp_path_factory.mktemp("tiny-encoder"), dim=16)


@pytest.mark.parametrize("spec", ["embedding", "vtggpt"])
def test_a_local_model_folder_is_the_encoder_of_both_embedding_reasoners(tiny, spec):
    r = get_reasoner(f"{spec}:{tiny}")
    result = r.ground("a person opens the door", TR)
    assert result.intervals and all(0 <= iv.start < iv.end <= TR.duration for iv in result.intervals)
    assert result.settings["model"] == str(tiny)
    assert r.encoder.encode(["a cup"]).shape == (1, 16)  # the tiny model's width, not the bundled 384
    assert r.encoder is get_encoder(str(tiny), None)  # one loaded copy per folder, shared by reasoners


def test_its_vectors_are_cached_under_its_own_content_key_never_the_bundled_models(tiny):
    enc = get_encoder(str(tiny), None)
    texts = ["someone waves from a boat"]
    mine = enc.encode(texts)
    assert enc.store is not None and enc.model_id == model_fingerprint(tiny)
    default = get_encoder(None, None)
    assert default.model_id != enc.model_id
    assert set(enc.store.lookup(enc.model_id, texts)) == set(texts)
    assert not enc.store.lookup(default.model_id, texts)
    np.testing.assert_allclose(np.linalg.norm(mine, axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("damage", ["empty folder", "truncated weights", "a file, not a folder"])
def test_a_folder_that_is_not_a_loadable_model_is_a_configuration_error_naming_it(tiny, tmp_path, damage):
    if damage == "empty folder":
        bad = tmp_path / "empty"
        bad.mkdir()
    elif damage == "truncated weights":
        bad = tmp_path / "truncated"
        shutil.copytree(tiny, bad)
        weights = bad / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:100])
    else:
        bad = tiny / "modules.json"
    for spec in ("embedding", "vtggpt"):
        with pytest.raises(ConfigurationError, match="cannot load a sentence-transformers model") as err:
            get_reasoner(f"{spec}:{bad}").ground("a person opens the door", TR)
        assert str(bad) in str(err.value) and "SentenceTransformer.save()" in str(err.value)


def test_a_load_failure_that_is_not_the_folders_keeps_its_own_type(tmp_path, monkeypatch):
    """Out of memory or a bug while loading is not a bad folder: it is not reported as one."""
    import sentence_transformers

    from temporal_reasoner import embedding

    class Boom(RuntimeError):
        pass

    def explode(*args, **kwargs):
        raise Boom("CUDA out of memory")

    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", explode)
    with pytest.raises(Boom, match="out of memory"):
        embedding._load_model(str(tmp_path), "cpu")

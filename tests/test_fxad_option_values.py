"""FX-AD (U17): a describer's or reasoner's option value that is not plainly of its kind is a ConfigurationError
naming the option, its value and what is valid, when the backend is made.

Before: ``--describer-opt detect_faces=False`` (the text 'False', since it is not JSON) recorded detect_faces: True,
in the cache key too; ``person_score=abc`` or ``--reasoner-opt rel_level=abc`` was "internal error: TypeError";
``max_side=-3`` and ``person_score=-1`` were taken; ``device=bogus`` passed until torch loaded the model (never on
a warm embedding cache).
"""

from __future__ import annotations

import math
import sys

import pytest

from frame_describer import FrameDescription, get_describer, write_descriptions
from pipelines.cli import main
from pipelines.eval_cli import parse_option
from temporal_reasoner import get_reasoner
from vidground.errors import ConfigurationError
from vidground.options import device, flag, number


@pytest.mark.parametrize("text", ["False", "no", "off", "n", "maybe", "True", "yes", "2", "0.5"])
@pytest.mark.parametrize("option", ["detect_faces", "motion"])
def test_cv_on_off_options_take_true_or_false_only(option, text):
    key, value = parse_option(f"{option}={text}")  # as the command line hands it on
    with pytest.raises(ConfigurationError, match=rf"^{option} must be true or false, got {value!r}$"):
        get_describer("cv", **{key: value})


@pytest.mark.parametrize("option", ["detect_faces", "motion"])
def test_cv_on_off_options_do_what_is_asked(option):
    for text, want in (("false", False), ("true", True)):
        made = get_describer("cv", **dict([parse_option(f"{option}={text}")]))
        assert getattr(made, option) is want
    assert get_describer("cv", detect_faces=False).settings()["detect_faces"] is False
    assert get_describer("cv", motion=False).settings()["motion"] is False


@pytest.mark.parametrize("option", ["detect_faces", "motion"])
def test_cv_on_off_options_take_json_0_and_1_as_before(option):
    """RV-S: detect_faces=0 worked at 754fd6f and was refused by the checks; JSON's 0/1 are not ambiguous. Kept as
    True/False, as 754fd6f stored them, so the cache keys of descriptions made with them stay what they were."""
    for value, on in ((0, False), (1, True)):
        made = get_describer("cv", **dict([parse_option(f"{option}={value}")]))
        assert getattr(made, option) is on  # as 754fd6f stored it (bool()), so its cache keys are unchanged


def test_a_whole_number_given_as_a_float_of_one_is_taken_as_given():
    """RV-S: cv max_side=512.0 and vtggpt top_k=2.0 worked at 754fd6f, and a run started with top_k=2.0 could not be
    resumed after the checks (refused with it, 'other settings' without it)."""
    assert number("top_k", 2.0, low=1, whole=True) == 2.0
    assert number("top_k", 2, low=1, whole=True) == 2
    with pytest.raises(ConfigurationError):
        number("top_k", 2.5, low=1, whole=True)
    assert get_describer("cv", max_side=512.0).settings()["max_side"] in (512, 512.0)


@pytest.mark.parametrize("option, value, rule", [
    ("person_score", "abc", "a number >= 0"), ("person_score", -1, "a number >= 0"),
    ("cut_threshold", "abc", r"a number in \(0, 1\)"), ("cut_threshold", 1, r"a number in \(0, 1\)"),
    ("dark_luma", "abc", r"a number in \[0, 255\)"), ("dim_luma", "abc", r"a number in \(0, 255\]"),
    ("max_side", "abc", "a whole number of pixels >= 16 or None"), ("max_side", -3, "a whole number of pixels >= 16 or None"),
    ("max_side", 2.5, "a whole number of pixels >= 16 or None"), ("person_score", math.nan, "a number >= 0"),
    ("person_score", True, "a number >= 0"),
])
def test_cv_numbers_are_checked(option, value, rule):
    with pytest.raises(ConfigurationError, match=rf"^{option} must be {rule}, got {value!r}$"):
        get_describer("cv", **{option: value})


def test_cv_says_every_fault_at_once():
    with pytest.raises(ConfigurationError, match="person_score must .*'abc'; detect_faces must .*'no'; max_side must"):
        get_describer("cv", person_score="abc", detect_faces="no", max_side=-3)


def test_cv_valid_values_keep_their_settings():
    made = get_describer("cv", person_score=1, max_side=64, dark_luma=10, dim_luma=200)
    got = made.settings()
    assert (got["person_score"], got["max_side"], got["dark_luma"], got["dim_luma"]) == (1.0, 64, 10.0, 200.0)
    assert get_describer("cv", max_side=None).max_side is None


EMBEDDING = [("rel_level", "abc", r"a number in \(0, 1\) or None"), ("top_k", "abc", "a whole number >= 1"),
             ("top_k", 2.5, "a whole number >= 1"), ("feedback", "abc", r"a number in \[0, 1\)"),
             ("smooth_samples", "abc", "a number of samples >= 0"), ("nms_iou", "abc", r"a number in \(0, 1\]"),
             ("top_percentile", "abc", "a number"), ("base_percentile", "abc", "a number from 0 to 100 or None"),
             ("spike_margin", "abc", "a number >= 0"), ("polarity", "abc", "a number from 0 to 2"),
             ("raw_edges", "abc", "a whole number of samples >= 0"), ("median", "abc", "a number of seconds >= 0")]


@pytest.mark.parametrize("option, value, rule", EMBEDDING)
def test_embedding_numbers_are_checked(option, value, rule):
    with pytest.raises(ConfigurationError, match=rf"^{option} must be {rule}, got {value!r}$"):
        get_reasoner("embedding", **{option: value})


@pytest.mark.parametrize("option, value, rule", [
    ("smooth", "abc", "a number of seconds >= 0"), ("plateau", "abc", "a number from 0 to 100 or None"),
    ("min_prominence", "abc", "a number from 0 to 1"), ("bridge", "False", "true or false")])
def test_embedding_peaks_options_are_checked(option, value, rule):
    with pytest.raises(ConfigurationError, match=rf"^{option} must be {rule}, got {value!r}$"):
        get_reasoner("embedding", spans="peaks", **{option: value})


@pytest.mark.parametrize("option", ["bins", "top_k", "gap", "length_weight", "nms_iou", "max_intervals"])
def test_vtggpt_numbers_are_checked(option):
    with pytest.raises(ConfigurationError, match=rf"^{option} must be a .*, got 'abc'$"):
        get_reasoner("vtggpt", **{option: "abc"})


@pytest.mark.parametrize("name", ["embedding", "naive", "vtggpt"])
@pytest.mark.parametrize("value", ["bogus", "cuda:x", "gpu", "", 0])
def test_a_bad_device_is_refused_when_the_reasoner_is_made(name, value):
    with pytest.raises(ConfigurationError, match=rf"^device must be a torch device .*, got {value!r}$"):
        get_reasoner(name, device=value)


@pytest.mark.parametrize("value", ["cpu", "cuda", "cuda:1", "mps", "xpu:0", None])
def test_torch_device_forms_pass(value, monkeypatch):
    assert device(value) == value
    monkeypatch.delitem(sys.modules, "torch", raising=False)  # the form check, without torch
    assert device(value) == value
    with pytest.raises(ConfigurationError):
        device("bogus")


def test_the_helpers_return_the_values_checked():
    assert flag("x", False) is False
    assert number("x", 3, whole=True) == 3 and number("x", 3, low=0) == 3.0
    assert number("x", None, allow_none=True) is None
    with pytest.raises(ConfigurationError, match=r"^x must be a number <= 1, got 2$"):
        number("x", 2, high=1)


@pytest.fixture()
def desc_file(tmp_path):
    path = tmp_path / "k.descriptions.jsonl"
    write_descriptions(path, [FrameDescription(t=float(t), text=f"frame {t}") for t in range(4)])
    return path


@pytest.mark.parametrize("opt, said", [("rel_level=abc", "rel_level must be a number in (0, 1) or None, got 'abc'"),
                                       ("top_k=abc", "top_k must be a whole number >= 1, got 'abc'"),
                                       ("device=bogus", "device must be a torch device")])
def test_the_command_line_says_the_option_not_internal_error(desc_file, capsys, opt, said):
    assert main(["ground", "--descriptions", str(desc_file), "q", "--reasoner-opt", opt]) == 1
    err = capsys.readouterr().err
    assert said in err and "internal error" not in err


def test_the_command_line_refuses_detect_faces_False(demo_video, capsys):
    assert main(["ground", str(demo_video[0]), "q", "--describer", "cv", "--describer-opt", "detect_faces=False",
                 "--num-frames", "2", "--no-cache"]) == 1
    err = capsys.readouterr().err
    assert "detect_faces must be true or false, got 'False'" in err and "internal error" not in err


@pytest.mark.parametrize("opt, said", [("device=bogus", "device must be a torch device"),
                                       ("rel_level=abc", "rel_level must be a number in (0, 1) or None, got 'abc'")])
def test_eval_fails_once_before_the_run_not_every_query(tmp_path, capsys, opt, said):
    """HEAD: device=bogus was taken without a word where torch never loads (here: 4 of 4 queries run, exit 0), else
    every query failed ('Expected one of cpu, cuda...'), exit 0; rel_level=abc was 'internal error: TypeError'."""
    from _helpers_eval import write_toy_dataset

    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=2, per_video=2)
    assert main(["eval", "jsonl", "--dataset-file", str(ds), "--descriptions", str(desc), "--reasoner", "embedding",
                 "--reasoner-opt", opt, "--out", str(tmp_path / "run"), "--no-report", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert said in err and err.startswith("vidground: error: ")
    assert not (tmp_path / "run").exists()

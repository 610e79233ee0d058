"""Oracle descriptions from the Charades annotations, and the dev/check subsets of the stage-2 benchmark."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from frame_describer.descriptions_io import description_metadata, read_descriptions
from vidground.errors import InputError
from pipelines.datasets import data_root

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from oracle import (IDLE_TEXT, Action, CharadesVideo, load_split, oracle_descriptions, read_classes,  # noqa: E402
                    write_oracle_folder)
from oracle_prose import ProseWriter, action_clause, action_variants, third_person  # noqa: E402

try:
    DATA = data_root() / "charades-sta"
except Exception:  # noqa: BLE001 - no shared data folder on this machine
    DATA = None
needs_data = pytest.mark.skipif(DATA is None or not (DATA / "Charades_v1_train.csv").is_file(),
                                reason="the shared Charades annotations are not here")

CLASSES = {"c006": "Closing a door", "c008": "Opening a door", "c015": "Holding a phone/camera",
           "c148": "Someone is dressing", "c121": "Wash a dish/dishes"}
VIDEO = CharadesVideo("TEST1", 6.5, "Home Office / Study (A room in a house used for work)", ("door", "phone"),
                      (Action("c008", 1.2, 3.0), Action("c015", 2.0, 6.5), Action("c006", 4.4, 5.0)))


def test_one_description_per_second_naming_the_actions_active_at_that_time():
    d = oracle_descriptions(VIDEO, CLASSES)
    assert [x.t for x in d] == [0, 1, 2, 3, 4, 5, 6]
    assert d[0].text == d[1].text == IDLE_TEXT  # the door opens at 1.2 s: after the frame sampled at 1 s
    assert d[2].text == "The person is opening a door; holding a phone or camera."
    assert d[3].text == d[4].text == d[6].text == "The person is holding a phone or camera."  # opening ended at 3.0
    # closing (4.4-5.0) falls between two samples: a 1 fps describer never sees it
    assert all("closing" not in x.text for x in d)


def test_class_names_become_clauses_and_variants():
    assert action_clause("Someone is dressing") == "dressing"
    assert action_clause("Wash a dish/dishes") == "washing a dish or dishes"
    assert action_clause("Holding a towel/s") == "holding a towel"
    assert set(action_variants("Holding a phone/camera")) == {"holding a phone", "holding a camera"}
    assert third_person("opening a door") == "opens a door"


@needs_data
def test_every_charades_class_has_prose_forms():
    classes = read_classes(DATA / "charades_classes.txt")
    assert len(classes) == 157
    for name in classes.values():
        for v in action_variants(name):
            assert third_person(v).split()[0].endswith("s")


def test_prose_is_varied_mentions_the_facts_and_is_reproducible():
    a = oracle_descriptions(VIDEO, CLASSES, style="prose", seed=3)
    b = oracle_descriptions(VIDEO, CLASSES, style="prose", seed=3)
    c = oracle_descriptions(VIDEO, CLASSES, style="prose", seed=4)
    assert [x.text for x in a] == [x.text for x in b] and [x.text for x in a] != [x.text for x in c]
    assert all(("phone" in x.text or "camera" in x.text) for x in a[2:])
    assert any("door" in x.text and ("open" in x.text) for x in a[1:3])
    writer = ProseWriter(random.Random(0), scene="Kitchen", objects=["cup"])
    frames = [writer.frame(["Opening a door", "Holding a phone/camera"]) for _ in range(30)]
    assert len(set(frames)) > 20 and max(f.count(".") for f in frames) >= 3


def test_unknown_style_is_an_input_error():
    with pytest.raises(InputError, match="oracle, prose"):
        oracle_descriptions(VIDEO, CLASSES, style="poetry")  # type: ignore[arg-type]


def test_folder_of_descriptions_files_round_trips(tmp_path):
    paths = write_oracle_folder(tmp_path, [VIDEO], CLASSES)
    d = read_descriptions(paths["TEST1"])
    assert paths["TEST1"].name == "TEST1.descriptions.jsonl" and len(d) == 7
    assert description_metadata(d, "duration") == 6.5 and description_metadata(d, "video") == "TEST1"


def test_bad_class_file_is_an_input_error(tmp_path):
    bad = tmp_path / "classes.txt"
    bad.write_text("not a class line\n")
    with pytest.raises(InputError, match="cNNN"):
        read_classes(bad)


@pytest.mark.slow
@needs_data
def test_subsets_on_the_shared_annotations_are_disjoint_and_reproducible():
    split = load_split(n_dev=1000, n_check=1000, seed=0)
    assert len(split.dev) == 1000 and len(split.check) == 1000
    dev_videos, check_videos = {q.video for q in split.dev}, {q.video for q in split.check}
    assert not dev_videos & check_videos
    assert set(split.videos) == dev_videos | check_videos
    assert len({q.qid for q in split.dev + split.check}) == 2000
    again = load_split(n_dev=1000, n_check=1000, seed=0)
    assert [q.qid for q in again.dev] == [q.qid for q in split.dev]
    assert [q.qid for q in again.check] == [q.qid for q in split.check]
    other = load_split(n_dev=1000, n_check=1000, seed=1)
    assert [q.qid for q in other.dev] != [q.qid for q in split.dev]
    # the oracle is faithful: every STA moment is one of its video's annotated actions
    q = split.dev[0]
    assert any(abs(a.start - q.windows[0][0]) < 0.05 and abs(a.end - q.windows[0][1]) < 0.05
               for a in split.videos[q.video].actions)
    d = oracle_descriptions(split.videos[q.video], split.classes)
    assert len(d) == int(split.videos[q.video].length) + 1 or len(d) == int(split.videos[q.video].length)


@needs_data
@pytest.mark.slow
def test_benchmark_scores_the_embedding_reasoner_above_the_trivial_baselines(tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "charades_oracle.py"
    spec = importlib.util.spec_from_file_location("charades_oracle", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rows = bench.run(["embedding"], subsets=["dev"], styles=["oracle"], n=60, seed=0, workdir=tmp_path)
    by = {r["method"]: r for r in rows}
    assert set(by) == {"whole video", "prior span", "embedding"}
    assert by["embedding"]["mIoU"] > by["whole video"]["mIoU"] + 30
    assert (tmp_path / "oracle").is_dir() and len(list((tmp_path / "oracle").glob("*.descriptions.jsonl"))) >= 10
    assert "| dev | oracle | embedding |" in bench.format_table(rows)


@pytest.mark.slow
@needs_data
def test_an_oracle_descriptions_file_grounds_through_the_public_api(tmp_path):
    from pipelines import ground

    split = load_split(n_dev=20, n_check=20, seed=0)
    q = split.dev[0]
    path = write_oracle_folder(tmp_path, [split.videos[q.video]], split.classes)[q.video]
    res = ground(query=q.query, descriptions=path, reasoner="embedding")
    assert res.duration == pytest.approx(split.videos[q.video].length, abs=0.01)
    assert res.best.iou(q.windows[0]) >= 0.5


def _bench():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "charades_oracle.py"
    spec = importlib.util.spec_from_file_location("charades_oracle_opts", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


@needs_data
def test_benchmark_reasoners_take_options_as_real_captions_does(tmp_path, monkeypatch, capsys):
    # SPEC@KEY=VALUE was an unknown backend here while benchmarks/real_captions.py accepted it
    from types import SimpleNamespace

    from temporal_reasoner import Interval

    bench = _bench()
    made: list[tuple[str, dict]] = []

    def fake_get_reasoner(spec, **options):
        made.append((spec, options))
        return SimpleNamespace(ground=lambda query, transcript: SimpleNamespace(intervals=[Interval(start=0, end=1)]))

    monkeypatch.setattr(bench, "get_reasoner", fake_get_reasoner)
    assert bench.main(["--reasoners", "embedding", "embedding@spans=peaks", "embedding@spans=ranked,top_k=3",
                       "-n", "3", "--subsets", "dev", "--styles", "oracle", "--json", str(tmp_path / "rows.json")]) == 0
    assert made == [("embedding", {}), ("embedding", {"spans": "peaks"}), ("embedding", {"spans": "ranked", "top_k": 3})]
    out = capsys.readouterr().out
    assert "| dev | oracle | embedding@spans=peaks |" in out and "| dev | oracle | embedding@spans=ranked,top_k=3 |" in out


@needs_data
def test_benchmark_reasoner_option_without_a_value_is_a_clear_error(capsys):
    bench = _bench()
    assert bench.main(["--reasoners", "embedding@spans=peaks,oops", "-n", "3", "--subsets", "dev",
                       "--styles", "oracle"]) == 1
    err = capsys.readouterr().err
    assert "error: reasoner row 'embedding@spans=peaks,oops'" in err

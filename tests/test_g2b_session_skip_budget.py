"""A session's search under skip-unchanged tells coarse_to_fine that its reuses are free (pipelines/session.py,
``reuses=``): a calls budget that covers the usual sparse pass then describes it as the search without a budget does, where it
widened the pass as if every frame would count, and it runs no round past the planned ones."""

from __future__ import annotations

from _helpers_eval import FakeDescriber, register_fakes
from pipelines import Session

from test_search_session import static_video  # noqa: F401 (a fixture)

register_fakes()


def test_a_budget_covering_the_usual_pass_is_the_search_without_one(static_video):  # noqa: F811
    runs = []
    for budget in (None, 10):  # 20 grid frames: the usual pass is every 2nd, 10 frames
        describer = FakeDescriber()
        search = {"strategy": "coarse-to-fine", **({"budget": budget} if budget else {})}
        with Session(describer=describer, reasoner="fake-reasoner", cache=False, search=search,
                     skip_unchanged=3.0) as s:
            runs.append((s.ground(static_video, "frame at 12.0").settings["search"], describer.calls))
    (free, free_calls), (capped, capped_calls) = runs
    assert capped["coarse"] == free["coarse"] == 2  # before: 3 (ten frames' budget kept a sixth for refining)
    sparse = [[t, p, why] for t, p, why in free["frames"] if p == 0]
    assert [[t, p, why] for t, p, why in capped["frames"] if p == 0] == sparse  # the usual pass, as without one
    assert capped["skipped"] > 0 and capped_calls <= capped["used"] <= 10
    assert capped["rounds_done"] <= capped["rounds"] == 4

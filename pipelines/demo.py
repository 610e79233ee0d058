"""``vidground demo``: ground queries about known events in a video rendered on the spot.

Everything runs offline on the default backends; the printed IoU compares each prediction with
the event's true interval, which the renderer knows because it drew the event.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from vidground.files import printable



def run_demo(keep: str | Path | None = None, *, describer: Any = None, reasoner: Any = None) -> dict[str, Any]:
    from frame_describer.synthetic import render_demo_video
    from pipelines.session import Session

    with tempfile.TemporaryDirectory(prefix="vidground-demo-") as tmp:
        folder = Path(keep) if keep else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        video = folder / "demo.mp4"
        t0 = time.perf_counter()
        events = render_demo_video(video)
        render_s = time.perf_counter() - t0
        # cache=False: the video is rendered anew each time and deleted after, so the default description cache
        # would only grow with descriptions of a file nobody has
        with Session(describer=describer, reasoner=reasoner, cache=False) as session:
            described = session.describe(video)
            if keep:
                described.write(folder / "demo.descriptions.jsonl")
            rows = [_row(ev, session.ground(described, ev.query)) for ev in events]
            reasoner_name = session.reasoner.name
        return {
            "video": str(video) if keep else "(temporary)",
            "duration": round(described.duration, 2),
            "frames": len(described.descriptions),
            "describer": described.describer,
            "reasoner": reasoner_name,
            "seconds": {"render": round(render_s, 2), "describe": round(described.seconds, 2)},
            "events": rows,
            "found": sum(r["iou"] >= 0.5 for r in rows),
        }


def _row(event: Any, result: Any) -> dict[str, Any]:
    best = result.best
    return {"event": event.name, "query": event.query, "truth": [event.start, event.end],
            "prediction": [best.start, best.end] if best else None,
            "score": best.score if best else None, "iou": round(best.iou((event.start, event.end)) if best else 0.0, 3)}


def format_demo(report: dict[str, Any]) -> str:
    queries = [printable(r["query"]) for r in report["events"]]
    width = max([5, *map(len, queries)])  # whole queries: the column fits the longest
    lines = [
        f"demo video: {report['video']}, {report['duration']} s, {report['frames']} frames described "
        f"by {report['describer']} in {report['seconds']['describe']} s; reasoner: {report['reasoner']}",
        "",
        f"{'query':<{width}} {'truth':>13} {'predicted':>13} {'IoU':>6}",
    ]
    for r, query in zip(report["events"], queries):
        truth = f"{r['truth'][0]:.1f}-{r['truth'][1]:.1f}"
        pred = f"{r['prediction'][0]:.1f}-{r['prediction'][1]:.1f}" if r["prediction"] else "none"
        lines.append(f"{query:<{width}} {truth:>13} {pred:>13} {r['iou']:>6.2f}")
    lines.append("")
    lines.append(f"{report['found']} of {len(report['events'])} events found with IoU >= 0.5")
    return "\n".join(lines)

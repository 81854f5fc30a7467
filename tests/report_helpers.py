"""Hand-written report inputs (results rows, per-image predictions, curves) and readers of the Markdown it writes."""
import os
import warnings
from dataclasses import asdict

from ablations import report
from ablations.results import append_row
from ablations.vdl import VisualDLSink
from paddle_cnns import VARIANTS, get_spec
from paddle_cnns.errors import CNNsError

# The trick CNN's recorded stage shapes at 32 px: the last map is 1 x 1.
BLOCKS_32 = [["stage1", [64, 16, 16], 5120, 4915200], ["stage2", [128, 8, 8], 205440, 52428800],
             ["stage3", [256, 4, 4], 820480, 52428800], ["stage4", [512, 2, 2], 3279360, 52428800],
             ["stage5", [1024, 1, 1], 13112320, 52428800], ["stage6", [1024, 1, 1], 26219520, 26214400],
             ["head", [16], 1066000, 1064960]]
BLOCKS_64 = [["stage1", [64, 32, 32], 5120, 1], ["stage2", [128, 16, 16], 1, 1], ["stage3", [256, 8, 8], 1, 1],
             ["stage4", [512, 4, 4], 1, 1], ["stage5", [1024, 2, 2], 1, 1], ["stage6", [1024, 2, 2], 1, 1],
             ["head", [16], 1, 1]]


def revision(name: str) -> int:
    """Today's revision of a model, so hand-written rows describe today's networks."""
    try:
        return get_spec(name).revision
    except CNNsError:  # a model this checkout does not have yet
        return 1


def md_table(md: str, heading: str) -> list:
    """The first Markdown table after `heading`, as a list of {column: cell}."""
    lines = md[md.index(heading):].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip().strip("|").split(" | ")])
    header, body = rows[0], rows[2:]
    return [dict(zip(header, r)) for r in body]


def row_of(table: list, column: str, value: str) -> dict:
    matches = [r for r in table if r[column] == value]
    assert len(matches) == 1, (value, [r[column] for r in table])
    return matches[0]


def claims_of(md: str) -> dict:
    """Claim number -> its row of the claims table."""
    return {int(r["#"]): r for r in md_table(md, "## 4. Against the article")}


def build(results, logdir, out):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        done = report.build_report(str(results), str(logdir), str(out))
    glyphs = [str(w.message) for w in caught if "missing from font" in str(w.message) or "Glyph" in str(w.message)]
    assert not glyphs, glyphs
    with open(done["paths"]["report.md"], encoding="utf-8") as f:
        md = f.read()
    return done, md


def row(run_id_name, seed, test_acc, **kw):
    """A complete hand-written results row of a trick variant on a 10-class dataset at 32 px."""
    variant = run_id_name.split("~")[0].split("+")[0]
    size = kw.get("image_size", 32)
    r = {"run_id": f"synthetic/{size}px/{run_id_name}/seed{seed}", "name": run_id_name,
         "tag": run_id_name.split("~", 1)[1] if "~" in run_id_name else "", "model_revision": revision(variant),
         "finished_at": f"2030-01-01T00:{seed:02d}:00Z",
         "status": "finished", "error": "", "variant": variant, "family": "trick", **asdict(VARIANTS[variant]),
         "dataset": "synthetic", "image_size": 32, "in_channels": 3, "num_classes": 10, "train_size": 320,
         "eval_size": 80, "test_size": 80, "recipe": "cpu", "epochs": 3, "batch_size": 64, "optimizer": "momentum",
         "lr": 0.01, "momentum": 0.9, "weight_decay": 0.0, "lr_decay": "+lrdecay" in run_id_name,
         "decay_epochs": [2] if "+lrdecay" in run_id_name else [], "augment": False, "max_per_class": None,
         "seed": seed, "best_eval_acc": None if test_acc is None else test_acc + 0.01, "best_epoch": 2,
         "final_eval_acc": test_acc,
         "final_eval_loss": 1.0, "final_train_acc": 0.95, "final_train_loss": 0.5, "epochs_done": 3,
         "test_split": "test", "test_acc": test_acc, "test_top5": 0.9, "test_balanced_acc": test_acc,
         "test_loss": 1.2, "params": 44_708_240, "macs": 241_909_760, "train_time_s": 30.0 + seed,
         "wall_time_s": 40.0, "images_per_s": 11.0, "paddle_version": "3.3.1", "device": "cpu", "threads": 2,
         "layers": "fast", "layers_used": "fast", "logdir": f"nowhere/{run_id_name}/seed{seed}",
         "class_names": [f"c{i}" for i in range(10)], "test_per_class_acc": [test_acc] * 10,
         "test_confusion": [[8 if i == j else 0 for j in range(10)] for i in range(10)]}
    r.update(kw)
    return r


def classic_row(name, seed, test_acc, **kw):
    """A hand-written results row of a classic network (no trick columns)."""
    r = row("baseline", seed, test_acc)
    for t in VARIANTS["baseline"].names():
        r.pop(t)
    size = kw.get("image_size", 32)
    r.update(run_id=f"synthetic/{size}px/{name}/seed{seed}", name=name, variant=name, family="classic",
             model_revision=revision(name), params=1_000_000, macs=2_000_000, logdir=f"nowhere/{name}/seed{seed}")
    r.update(kw)
    return r


def write_predictions(results, run_id, labels, predicted):
    """A run's predictions file in the documented format (index,label,predicted,top5), written by hand."""
    path = os.path.join(os.path.dirname(str(results)), "predictions", *run_id.split("/")) + ".csv"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("index,label,predicted,top5\n")
        for i, (y, p) in enumerate(zip(labels, predicted)):
            f.write(f"{i},{y},{p},{p} {(p + 1) % 10}\n")
    return path


def run_with_predictions(results, maker, name, seed, labels, predicted, **kw):
    """Append a row whose test accuracy is the one its (hand-written) predictions give, and those predictions."""
    acc = sum(int(y == p) for y, p in zip(labels, predicted)) / len(labels)
    r = maker(name, seed, acc, test_size=len(labels), **kw)
    append_row(str(results), r)
    write_predictions(results, r["run_id"], labels, predicted)
    return r


def write_curves(logdir, run_id, epochs):
    """VisualDL scalars of one run: epochs = [(train_loss, eval_loss), ...] from epoch 1."""
    sink = VisualDLSink(os.path.join(str(logdir), *run_id.split("/")))
    for e, (train_loss, eval_loss) in enumerate(epochs, start=1):
        sink({"epoch": e, "train_loss": train_loss, "eval_loss": eval_loss, "eval_acc": 0.5, "train_acc": 0.9})
    sink.close()

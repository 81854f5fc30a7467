"""The benchmark harness runs end to end on a tiny case, without PyTorch, and writes its tables."""
import csv
import json
import os
import subprocess
import sys

import paddle
import pytest

import paddle_cnns as pc
from ablations.bench import __main__ as bench_cli
from ablations.bench import common, train
from ablations.bench.torch_models import describe

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_tiny_train_benchmark_writes_csv_and_markdown_with_the_expected_columns(tmp_path):
    out = str(tmp_path / "train")
    rows = train.main(["--cases", "all_tricks:32:4", "--reps", "1", "--steps", "1", "--no-torch",
                       "--compare-plain", "--compare-fast", "--out", out])
    assert len(rows) == 1
    with open(out + ".csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    for key in ("model", "px", "batch", "ours", "bare", "hapi", "plain", "eval", "ours/bare", "ours/hapi",
                "ours/plain", "fast", "ours/fast", "eval/train", "mmacs", "gflops", "peak_pct", "rss_ours_mb",
                "gemm_peak_gflops", "layers", "cpu_flags"):
        assert row[key] not in ("", None), key
    assert row["model"] == "all_tricks" and row["px"] == "32" and row["batch"] == "4"
    assert row["layers"] == "onednn"  # auto, on a CPU whose paddle can (tests run with the CLIs' flags)
    assert float(row["ours"]) > 0 and float(row["rss_ours_mb"]) > 0
    text = open(out + ".md").read()
    header = next(line for line in text.splitlines() if line.startswith("| model"))
    for column in ("ours img/s", "bare img/s", "hapi img/s", "ours/bare", "ours/hapi", "eval img/s",
                   "eval/train", "MACs/img (M)", "GFLOP/s", "% of GEMM peak", "plain img/s", "ours/plain",
                   "fast img/s", "ours/fast", "ours' layers"):
        assert f"| {column} |" in header, column
    assert "torch" not in header  # --no-torch leaves its columns out
    assert "Targets (issues 6 and 12)" in text


def test_bench_cli_rejects_unknown_commands_and_bad_cases(capsys):
    assert bench_cli.main(["nonsense"]) == 2
    assert "known: train, data, sweep" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        train.main(["--cases", "lenet:16", "--no-torch"])
    assert e.value.code == 2
    assert "needs at least 28 px" in capsys.readouterr().err


@pytest.mark.parametrize("name,size", [("googlenet", 64), ("googlenet_bn_aux", 64), ("all_tricks", 64),
                                       ("vgg13_bn", 32), ("alexnet", 96), ("nin", 96), ("lenet", 32)])
def test_torch_mirror_description_covers_every_layer_and_counts_trainable_parameters(name, size):
    model = pc.create_model(name, num_classes=16, image_size=size)
    spec = json.loads(json.dumps(describe(model)))  # what the torch worker receives
    assert spec["params"] == sum(int(p.size) for p in model.parameters() if not p.stop_gradient)

    def leaves(s):
        kids = s.get("children", []) + [s[k] for k in ("blocks", "aux1", "aux2") if k in s]
        return [s] if not kids else [leaf for k in kids for leaf in leaves(k)]
    convs = [s for s in leaves(spec) if s["type"] == "conv"]
    assert len(convs) == sum(isinstance(m, paddle.nn.Conv2D) for m in model.sublayers())
    assert sum(c["out"] * (c["in"] * c["kernel"][0] * c["kernel"][1] + c["bias"]) for c in convs) == \
        sum(int(m.weight.size) + (int(m.bias.size) if m.bias is not None else 0)
            for m in model.sublayers() if isinstance(m, paddle.nn.Conv2D))


def test_interleave_rotates_the_order_and_drops_the_warmup():
    calls = []
    systems = {name: (lambda name=name: calls.append(name) or 1.0) for name in "abc"}
    times = common.interleave(systems, reps=2, warmup=1, settle=0)
    assert calls == list("abcbcacab")
    assert times == {"a": [1.0, 1.0], "b": [1.0, 1.0], "c": [1.0, 1.0]}


def test_torch_is_never_imported_by_the_harness_modules(tmp_path):
    # A `torch` that fails loudly on import stands first on the path: importing every harness
    # module must not touch it (PyTorch runs only in the separate --torch-python process).
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text("raise ImportError('the harness imported torch')\n")
    code = ("import ablations.bench, ablations.bench.common, ablations.bench.train, ablations.bench.data, "
            "ablations.bench.sweep, ablations.bench.torch_models, ablations.bench.__main__; import sys; print('torch' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), ROOT])}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "False", proc.stderr[-2000:]


def test_sweep_compares_each_runs_results_between_the_two_ways():
    from ablations.bench.sweep import compare

    seq = {"a": {"final_train_loss": "0.5", "test_acc": "0.9"}, "b": {"final_train_loss": "1.0", "test_acc": ""}}
    packed = {"a": {"final_train_loss": "0.5", "test_acc": "0.85"}, "b": {"final_train_loss": "1.0", "test_acc": ""}}
    worst, missing = compare(seq, packed)
    assert abs(worst - 0.05) < 1e-12 and missing == []
    assert compare(seq, {"a": seq["a"]}) == (0.0, ["b"])

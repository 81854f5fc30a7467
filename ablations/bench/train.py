"""Training-speed benchmark: our loop vs a bare paddle step vs paddle.Model.fit vs PyTorch eager.

    python -m ablations.bench train                          # default cases, a few minutes on 2 cores
    python -m ablations.bench train --cases issue            # the issue's table, plus all-tricks at 224 px
    python -m ablations.bench train --cases googlenet:64:32,vgg13_bn:64 --reps 7 --compare-plain
    python -m ablations.bench train --compare-fast --torch-python /work/venv-bench/bin/python

For each case (model, image size, batch) every system trains the same architecture on the same
random batch: `ours` is paddle_cnns.engine.fit (reseeding, loss check, accuracy, scheduler);
`bare` is forward + cross-entropy + backward + Momentum step, nothing else; `hapi` is
paddle.Model.fit; these three (and `eval`) train the very same network in one worker process,
so their ratios measure the loop alone. `torch` is PyTorch eager on a mirror of the model
(ablations/bench/torch_models.py, same parameter count); `eval` is paddle_cnns.engine.evaluate
over the same batches. `ours` builds its model with --layers (default auto: oneDNN convs on a CPU
where paddle can, see paddle_cnns.impl). With --compare-plain, `plain` is `ours` with paddle's own
layers and `hapi_plain` is paddle.Model.fit with paddle's own layers (the standard paddle way),
both in a second worker; with --compare-fast, `fast` is `ours` with paddle_cnns.fast's layers
(no oneDNN: the default before issue 12) in a third. Repetitions of all
systems are interleaved and every ratio is a ratio of medians from this one run. Peak RSS is
each worker's (VmHWM): ours covers ours, bare, hapi and eval on one network.
Training GFLOP/s count 3 x 2 x MACs per image (forward, and a backward of twice the forward).
"""
from __future__ import annotations
import argparse
import os
import sys
import time

from ablations import cli

cli.paddle_environment("train")  # before paddle is imported: ours trains through oneDNN
from ablations.cli import main_guard, quiet_paddle_logs

from . import common

PRESETS = {
    "default": "googlenet:64,alexnet:96,vgg13_bn:64,all_tricks:64",
    # The rows of issue 6's table, and all-tricks at 224 px for its memory target.
    "issue": "googlenet:64,googlenet:224,alexnet:96,vgg13_bn:64,all_tricks:64,all_tricks:224",
}
NUM_CLASSES = 16
# Systems that train the same network in the same worker process, so their ratios measure the
# loop alone (two processes running the same work differ by up to ~8% in medians here).
NET_OF = {"ours": "ours", "bare": "ours", "hapi": "ours", "eval": "ours", "plain": "plain", "hapi_plain": "plain",
          "fast": "fast"}
# The layers each worker's network is built with ("ours": --layers).
LAYERS_OF = {"plain": "plain", "fast": "fast"}
LR = 0.001  # speed does not depend on it; small enough that 50 steps on noise stay finite

# Issues 6 and 12's targets, each a ratio measured in one run (issue 12: ours/torch >= 0.9 at 224 px).
TARGETS = {"ours/bare": 0.97, "ours/hapi": 1.2, "ours/hapi_plain": 1.2, "ours/torch": 1.0, "peak_pct": 50.0, "eval/train": 2.0,
           "rss ours/torch": 1.2}

COLUMNS = [("model", "model", 0), ("px", "px", 0), ("batch", "batch", 0),
           ("ours img/s", "ours", 1), ("bare img/s", "bare", 1), ("hapi img/s", "hapi", 1),
           ("ours/bare", "ours/bare", 2), ("ours/hapi", "ours/hapi", 2),
           ("torch img/s", "torch", 1), ("ours/torch", "ours/torch", 2),
           ("eval img/s", "eval", 1), ("eval/train", "eval/train", 2),
           ("MACs/img (M)", "mmacs", 0), ("GFLOP/s", "gflops", 1), ("% of GEMM peak", "peak_pct", 1),
           ("peak RSS ours/torch (MiB)", "rss_pair", 0), ("RSS ours/torch", "rss ours/torch", 2)]
PLAIN_COLUMNS = [("plain img/s", "plain", 1), ("ours/plain", "ours/plain", 2),
                 ("hapi plain img/s", "hapi_plain", 1), ("ours/hapi plain", "ours/hapi_plain", 2)]
FAST_COLUMNS = [("fast img/s", "fast", 1), ("ours/fast", "ours/fast", 2), ("peak RSS fast (MiB)", "rss_fast_mb", 0)]


# ---------------------------------------------------------------- paddle worker

class PaddleWorker:
    """Builds the case's models in this process and times one system per request."""

    def setup(self, model, px, batch, threads, layers, systems, describe_model=False):
        import paddle
        import paddle.nn as nn

        from paddle_cnns import create_model, runtime
        from paddle_cnns.engine import make_optimizer, piecewise_decay
        from paddle_cnns.summary import count_params, summarize_model

        runtime.set_threads(threads)
        paddle.set_device("cpu")
        self.batch = batch
        paddle.seed(0)
        self.x = paddle.randn([batch, 3, px, px])
        self.y = paddle.randint(0, NUM_CLASSES, [batch])
        self.nets, self.opts, self.scheds, self.hapi = {}, {}, {}, {}
        info = {}
        for system in systems:
            key = NET_OF[system]
            if key in self.nets:
                continue
            paddle.seed(0)
            net = create_model(model, num_classes=NUM_CLASSES, image_size=px, layers=LAYERS_OF.get(key, layers))
            sched = piecewise_decay(LR, 1, 10**9)
            self.nets[key], self.scheds[key] = net, sched
            self.opts[key] = make_optimizer("momentum", net.parameters(), sched)
            # paddle.Model.fit on the very same network and optimizer: only the loop differs.
            self.hapi[key] = paddle.Model(net)
            self.hapi[key].prepare(self.opts[key], nn.CrossEntropyLoss())
            if not info:
                info = {"params": count_params(net), "layers": net.layers,
                        "macs": sum(r.macs for r in summarize_model(net, 3, px))}
                if describe_model:
                    from .torch_models import describe
                    info["spec"] = describe(net)
        return info

    def run(self, system, steps):
        return getattr(self, "_" + system)(steps)

    def _fit(self, key, steps):
        from paddle_cnns.engine import TrainState, fit

        net, batches = self.nets[key], [(self.x, self.y)] * steps
        last = [None]
        start = time.perf_counter()
        for _ in fit(net, self.opts[key], self.scheds[key], lambda epoch: batches,
                     [(self.x[:2], self.y[:2])], 1, NUM_CLASSES, TrainState(), seed=0,
                     on_step=lambda state: last.__setitem__(0, time.perf_counter())):
            pass  # the epoch-end evaluation of 2 images is outside the timed steps
        return last[0] - start

    def _ours(self, steps):
        return self._fit("ours", steps)

    def _plain(self, steps):
        return self._fit("plain", steps)

    def _fast(self, steps):
        return self._fit("fast", steps)

    def _bare(self, steps):
        import paddle.nn.functional as F

        net, opt = self.nets["ours"], self.opts["ours"]
        net.train()
        start = time.perf_counter()
        for _ in range(steps):
            out = net(self.x)
            logits = out[0] if isinstance(out, (tuple, list)) else out
            F.cross_entropy(logits, self.y).backward()
            opt.step()
            opt.clear_grad()
        return time.perf_counter() - start

    def _hapi(self, steps, key="ours"):
        batches = [(self.x, self.y.reshape([-1, 1]))] * steps
        start = time.perf_counter()
        self.hapi[key].fit(batches, epochs=1, verbose=0)
        return time.perf_counter() - start

    def _hapi_plain(self, steps):
        return self._hapi(steps, "plain")

    def _eval(self, steps):
        from paddle_cnns.engine import evaluate

        start = time.perf_counter()
        evaluate(self.nets["ours"], [(self.x, self.y)] * steps, NUM_CLASSES)
        return time.perf_counter() - start

    def rss(self):
        return {"peak_rss_mb": common.peak_rss_mb()}


def worker_main() -> None:
    quiet_paddle_logs()
    import warnings
    warnings.filterwarnings("ignore")
    w = PaddleWorker()
    common.serve({"setup": lambda **a: w.setup(**a),
                  "run": lambda **a: {"seconds": w.run(**a)},
                  "rss": w.rss})


# ---------------------------------------------------------------- coordinator

def cpu_flags() -> str:
    """The CPU features that decide bf16 speed (AMX, AVX512-BF16): machines differ, tables say which."""
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        return "unknown"
    flags = sorted({w for w in text.split() if w.startswith("amx") or w == "avx512_bf16"})
    return " ".join(flags) or "no amx, no avx512_bf16"


def parse_cases(text: str, batch: int) -> list[tuple[str, int, int]]:
    from paddle_cnns import get_spec
    from paddle_cnns.errors import UsageError

    cases = []
    for item in PRESETS.get(text, text).split(","):
        parts = item.strip().split(":")
        if not parts[0]:
            continue
        try:
            px = int(parts[1]) if len(parts) > 1 else 64
            b = int(parts[2]) if len(parts) > 2 else batch
        except ValueError:
            raise UsageError(f"--cases: expected model:px[:batch], got {item!r}")
        spec = get_spec(parts[0])
        if px < spec.min_size:
            raise UsageError(f"--cases {item}: {spec.name} needs at least {spec.min_size} px")
        cases.append((spec.name, px, b))
    if not cases:
        raise UsageError("--cases is empty")
    return cases


def measure_case(model, px, batch, args, torch_python) -> dict:
    systems = (["ours", "bare", "hapi", "eval"] + (["plain", "hapi_plain"] if args.compare_plain else [])
               + (["fast"] if args.compare_fast else []))
    owner = {s: NET_OF[s] for s in systems}
    workers = {name: common.Worker(name, "ablations.bench.train") for name in dict.fromkeys(owner.values())}
    if torch_python:
        workers["torch"] = common.Worker("torch", "ablations.bench.torch_models", python=torch_python)
        owner.update(torch="torch", torch_eval="torch")
        systems += ["torch", "torch_eval"]
    try:
        setup = dict(model=model, px=px, batch=batch, threads=args.threads, layers=args.layers)
        info = workers["ours"].call("setup", systems=[s for s in systems if owner[s] == "ours"],
                                    describe_model=bool(torch_python), **setup)
        for name in ("plain", "fast"):
            if name in workers:
                workers[name].call("setup", systems=[s for s in systems if owner[s] == name], **setup)
        if torch_python:
            workers["torch"].call("setup", spec=info["spec"], px=px, batch=batch, threads=args.threads)

        def runner(system):
            return lambda: workers[owner[system]].call("run", system=system, steps=args.steps)["seconds"]

        times = common.interleave({s: runner(s) for s in systems}, args.reps, warmup=1)
        rss = {name: w.call("rss")["peak_rss_mb"] for name, w in workers.items()}
    finally:
        for w in workers.values():
            w.close()
    ips = {s: batch * args.steps / common.median(t) for s, t in times.items()}
    row = {"model": model, "px": px, "batch": batch, "layers": info["layers"], **ips,
           "ours/bare": ips["ours"] / ips["bare"], "ours/hapi": ips["ours"] / ips["hapi"],
           "eval/train": ips["eval"] / ips["ours"],
           "params": info["params"], "mmacs": info["macs"] / 1e6,
           "gflops": 6 * info["macs"] * ips["ours"] / 1e9, "rss_ours_mb": rss["ours"]}
    row["peak_pct"] = 100 * row["gflops"] / args.peak
    if "plain" in ips:
        row["ours/plain"] = ips["ours"] / ips["plain"]
        row["ours/hapi_plain"] = ips["ours"] / ips["hapi_plain"]
    if "fast" in ips:
        row["ours/fast"] = ips["ours"] / ips["fast"]
        row["rss_fast_mb"] = rss["fast"]
    if torch_python:
        row["ours/torch"] = ips["ours"] / ips["torch"]
        row["torch_gflops"] = 6 * info["macs"] * ips["torch"] / 1e9
        row["rss_torch_mb"] = rss["torch"]
        row["rss ours/torch"] = rss["ours"] / rss["torch"]
        row["rss_pair"] = f"{rss['ours']:,.0f} / {rss['torch']:,.0f}"
    else:
        row["rss_pair"] = f"{rss['ours']:,.0f} / -"
    for s, t in times.items():  # the raw repetitions, for anyone who doubts a median
        row[f"{s}_s"] = " ".join(f"{v:.3f}" for v in t)
    return row


def targets_text(rows: list[dict]) -> str:
    lines = []
    for key, goal in TARGETS.items():
        values = [(r["model"], r["px"], r.get(key)) for r in rows if r.get(key) is not None]
        if not values:
            continue
        op = "<=" if key.startswith("rss") else ">="
        met = [v for v in values if (v[2] <= goal if op == "<=" else v[2] >= goal)]
        worst = min(values, key=lambda v: v[2]) if op == ">=" else max(values, key=lambda v: v[2])
        lines.append(f"- {key} {op} {goal:g}: met in {len(met)} of {len(values)} cases "
                     f"(worst {worst[2]:.2f}, {worst[0]} at {worst[1]} px)")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = cli.Parser(prog="python -m ablations.bench train", description="\n\n".join(__doc__.split("\n\n")[:2]))
    p.add_argument("--cases", default="default",
                   help="model:px[:batch],... or a preset: " + "; ".join(f"{k} = {v}" for k, v in PRESETS.items()))
    p.add_argument("--batch", type=int, default=32, help="batch size where a case gives none")
    p.add_argument("--steps", type=int, default=2, help="training steps per timed repetition")
    p.add_argument("--reps", type=int, default=5, help="interleaved repetitions per system (medians reported)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads per system (default: every core)")
    p.add_argument("--layers", default="auto", choices=["auto", "plain", "fast", "onednn"],
                   help="conv and pool implementation of `ours` (paddle_cnns.impl)")
    p.add_argument("--plain-layers", action="store_true", help="same as --layers plain")
    p.add_argument("--compare-plain", action="store_true",
                   help="also time our loop with paddle's own layers (columns plain img/s, ours/plain)")
    p.add_argument("--compare-fast", action="store_true",
                   help="also time our loop with paddle_cnns.fast's layers, no oneDNN (columns fast img/s, ours/fast)")
    p.add_argument("--torch-python", default=sys.executable,
                   help="python with torch installed (pip install -r requirements-bench.txt) for the PyTorch columns")
    p.add_argument("--no-torch", action="store_true", help="leave out the PyTorch columns")
    p.add_argument("--out", default=f"{common.BENCH_DIR}/train", help="writes OUT.csv and OUT.md")
    return p


@main_guard
def main(argv=None) -> list[dict]:
    args = build_parser().parse_args(argv)
    if args.plain_layers:
        args.layers = "plain"
    quiet_paddle_logs()
    import paddle

    from paddle_cnns import runtime
    from paddle_cnns.errors import UsageError

    for name in ("steps", "reps", "batch"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name} must be at least 1")
    cases = parse_cases(args.cases, args.batch)
    args.threads = runtime.set_threads(args.threads)
    torch_python = None
    if not args.no_torch:
        if common.python_has(args.torch_python, "torch"):
            torch_python = args.torch_python
        else:
            print(f"PyTorch is not installed for {args.torch_python}: the torch columns stay empty. "
                  "Install it with pip install -r requirements-bench.txt, or pass --torch-python "
                  "/path/to/a/python/with/torch (or --no-torch to silence this).", file=sys.stderr)
    args.peak = common.gemm_peak_gflops(args.threads)
    info = common.machine()
    print(f"{info['cpu']}, {info['cores']} cores, {args.threads} threads; paddle {paddle.__version__}; "
          f"fp32 GEMM peak (paddle.matmul 2048^3, best of 15): {args.peak:.0f} GFLOP/s; "
          f"--layers {args.layers}; MKL_CBWR={os.environ.get('MKL_CBWR', '(unset)')}; CPU flags: {cpu_flags()}",
          flush=True)
    rows = []
    for model, px, batch in cases:
        started = time.time()
        row = measure_case(model, px, batch, args, torch_python)
        row.update(threads=args.threads, steps=args.steps, reps=args.reps, cpu_flags=cpu_flags(),
                   gemm_peak_gflops=round(args.peak, 1), paddle=paddle.__version__, cpu=info["cpu"],
                   date=time.strftime("%Y-%m-%d %H:%M"))
        rows.append(row)
        print(f"{model} {px} px batch {batch}: ours {row['ours']:.1f} img/s, ours/bare {row['ours/bare']:.2f}, "
              f"ours/hapi {row['ours/hapi']:.2f}"
              + (f", ours/torch {row['ours/torch']:.2f}" if "ours/torch" in row else "")
              + f", eval/train {row['eval/train']:.2f} ({time.time() - started:.0f} s)", flush=True)
    columns = (COLUMNS + (PLAIN_COLUMNS if args.compare_plain else []) + (FAST_COLUMNS if args.compare_fast else [])
               + [("ours' layers", "layers", 0)])
    if not torch_python:
        columns = [c for c in columns if "torch" not in c[0]] + [("peak RSS ours (MiB)", "rss_ours_mb", 0)]
    header = (f"Training images/s, {info['cpu']}, {args.threads} threads, paddle {paddle.__version__}, "
              f"--layers {args.layers}; CPU flags {cpu_flags()}; medians of {args.reps} interleaved "
              f"repetitions of {args.steps} steps; fp32 GEMM peak {args.peak:.0f} GFLOP/s (paddle.matmul); "
              f"{time.strftime('%Y-%m-%d %H:%M')}.")
    text = "\n\n".join([header, common.markdown_table(rows, columns), "Targets (issues 6 and 12):\n" + targets_text(rows)])
    common.write_csv(rows, args.out + ".csv")
    common.write_text(text + "\n", args.out + ".md")
    print("\n" + text + f"\n\nwritten: {args.out}.csv, {args.out}.md")
    return rows


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        worker_main()
    else:
        main()

"""Sweep benchmark: the wall time of N training runs one after another vs packed one process per core.

    python -m ablations.bench sweep                      # 4 trick variants, synthetic data, 64 px, 3 epochs
    python -m ablations.bench sweep --variants all_tricks,baseline --seeds 0,1 --epochs 2 --reps 2

Both ways run `python -m ablations.run` on the same runs into fresh folders: sequentially with
--jobs 1 (every thread to one run at a time) and packed with --jobs N (N runs at once, threads
split). Repetitions alternate the two. Each run's results (losses, accuracies) are compared
between the two ways. MKL sums in another order with another thread count, and training
amplifies that (a 3-epoch run's loss can move by 0.2) unless MKL_CBWR=AUTO,STRICT makes MKL
thread-count invariant: then they are bitwise equal. ablations.run sets that by default; --mkl-cbwr
(or MKL_CBWR in the environment) chooses another value, e.g. COMPATIBLE, to see the drift.
"""
from __future__ import annotations
import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time

from ablations import cli
from ablations.cli import main_guard

from . import common

COMPARED = ("final_train_loss", "final_eval_loss", "final_eval_acc", "best_eval_acc", "test_acc")
TARGET = 1.6  # issue 6: packed >= 1.6x faster than sequential on 2 cores


def build_parser() -> argparse.ArgumentParser:
    p = cli.Parser(prog="python -m ablations.bench sweep", description="\n\n".join(__doc__.split("\n\n")[:2]))
    p.add_argument("--variants", default="sigmoid,baseline,gap,all_tricks", help="variants to train")
    p.add_argument("--seeds", default="0", help="comma-separated seeds (runs = variants x seeds)")
    p.add_argument("--dataset", default="synthetic", help="as ablations.run --dataset")
    p.add_argument("--data-dir", default=None, metavar="PATH", help="as ablations.run --data-dir")
    p.add_argument("--image-size", type=int, default=64, metavar="PX", help="input size of every run")
    p.add_argument("--epochs", type=int, default=3, metavar="N", help="epochs of every run")
    p.add_argument("--batch-size", type=int, default=32, metavar="N", help="batch size of every run")
    p.add_argument("--max-per-class", type=int, default=None, metavar="N",
                   help="as ablations.run --max-per-class (default: all images)")
    p.add_argument("--jobs", type=int, default=None, help="packed runs at once (default: one per core)")
    p.add_argument("--threads", type=int, default=None, help="threads in all (default: every core)")
    p.add_argument("--reps", type=int, default=1, help="repetitions of each way (alternating; medians)")
    p.add_argument("--mkl-cbwr", default=None, metavar="VALUE",
                   help="set MKL_CBWR for every run (e.g. AUTO,STRICT: MKL's results then do not depend on the "
                        "thread count, so packed runs give bitwise the sequential results); default: MKL_CBWR "
                        f"from the environment, else ablations.run's {cli.MKL_CBWR_DEFAULT}")
    p.add_argument("--tolerance", type=float, default=1e-3,
                   help="largest difference in a run's losses/accuracies that still counts as the same result")
    p.add_argument("--out", default=f"{common.BENCH_DIR}/sweep", help="writes OUT.csv and OUT.md")
    p.add_argument("--keep", action="store_true", help="keep the runs' folders (printed) instead of deleting them")
    return p


def run_sweep(args, jobs: int, threads: int, folder: str) -> tuple[float, dict]:
    """Train the sweep with --jobs `jobs` into `folder`; wall seconds and results rows by run id."""
    cmd = [sys.executable, "-m", "ablations.run", "--variants", args.variants, "--seeds", args.seeds,
           "--dataset", args.dataset, "--image-size", str(args.image_size), "--epochs", str(args.epochs),
           "--batch-size", str(args.batch_size), "--jobs", str(jobs), "--threads", str(threads),
           "--logdir", os.path.join(folder, "logs"), "--checkpoint-dir", os.path.join(folder, "ckpt"),
           "--results", os.path.join(folder, "results.csv")]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    if args.max_per_class:
        cmd += ["--max-per-class", str(args.max_per_class)]
    env = dict(os.environ)
    if args.mkl_cbwr:
        env["MKL_CBWR"] = args.mkl_cbwr
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    with open(os.path.join(folder, "results.csv"), newline="") as f:
        rows = {r["run_id"]: r for r in csv.DictReader(f)}
    return seconds, rows


def compare(a: dict, b: dict) -> tuple[float, list[str]]:
    """Largest absolute difference of the compared metrics over runs, and runs missing on one side."""
    missing = sorted(set(a) ^ set(b))
    worst = 0.0
    for run_id in set(a) & set(b):
        for key in COMPARED:
            x, y = a[run_id].get(key), b[run_id].get(key)
            if x in (None, "") and y in (None, ""):
                continue
            worst = max(worst, abs(float(x) - float(y)))
    return worst, missing


@main_guard
def main(argv=None) -> list[dict]:
    args = build_parser().parse_args(argv)
    from paddle_cnns.errors import UsageError
    from paddle_cnns.runtime import available_cores

    threads = args.threads or available_cores()
    jobs = args.jobs or threads
    if jobs < 2:
        raise UsageError(f"packing needs at least 2 jobs; this machine gives {threads} core(s) "
                         "(pass --jobs and --threads to force it)")
    if args.reps < 1:
        raise UsageError("--reps must be at least 1")
    n_runs = len([v for v in args.variants.split(",") if v.strip()]) * len([s for s in args.seeds.split(",") if s.strip()])
    os.makedirs(common.BENCH_DIR, exist_ok=True)
    root = tempfile.mkdtemp(prefix="sweep-", dir=common.BENCH_DIR)
    print(f"{n_runs} runs ({args.variants}; seeds {args.seeds}; {args.dataset} {args.image_size} px, "
          f"{args.epochs} epochs): sequential (--jobs 1, {threads} threads) vs packed (--jobs {jobs}, "
          f"{max(1, threads // jobs)} thread(s) each), {args.reps} repetition(s) each", flush=True)
    seq_times, packed_times, worst, missing = [], [], 0.0, []
    train_s = {"seq": [], "packed": []}  # the runs' own training seconds (steps only), summed
    try:
        for r in range(args.reps):
            # Sequential first in odd repetitions and packed first in even ones.
            for way in (("seq", "packed") if r % 2 == 0 else ("packed", "seq")):
                folder = os.path.join(root, f"{way}{r}")
                seconds, rows = run_sweep(args, 1 if way == "seq" else jobs, threads, folder)
                (seq_times if way == "seq" else packed_times).append(seconds)
                train_s[way].append(sum(float(r["train_time_s"] or 0) for r in rows.values()))
                if way == "seq":
                    seq_rows = rows
                else:
                    packed_rows = rows
                print(f"  {way}: {seconds:.1f} s", flush=True)
            w, m = compare(seq_rows, packed_rows)
            worst, missing = max(worst, w), sorted(set(missing) | set(m))
    finally:
        if args.keep:
            print(f"runs kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    seq, packed = common.median(seq_times), common.median(packed_times)
    row = {"runs": n_runs, "variants": args.variants, "seeds": args.seeds, "dataset": args.dataset,
           "image_size": args.image_size, "epochs": args.epochs, "batch_size": args.batch_size,
           "threads": threads, "jobs": jobs, "reps": args.reps, "sequential_s": seq, "packed_s": packed,
           "speedup": seq / packed, "seq_train_s": common.median(train_s["seq"]),
           "packed_train_s": common.median(train_s["packed"]), "max_result_diff": worst, "same_results": worst <= args.tolerance and not missing,
           "missing_runs": " ".join(missing),
           "mkl_cbwr": args.mkl_cbwr or os.environ.get("MKL_CBWR", cli.MKL_CBWR_DEFAULT),  # what the runs used
           "date": time.strftime("%Y-%m-%d %H:%M")}
    columns = [("runs", "runs", 0), ("threads", "threads", 0), ("jobs", "jobs", 0),
               ("sequential (s)", "sequential_s", 1), ("packed (s)", "packed_s", 1), ("speedup", "speedup", 2),
               ("training steps, seq (s)", "seq_train_s", 1), ("training steps, packed (s)", "packed_train_s", 1),
               ("largest result difference", "max_result_diff", 6), ("same results", "same_results", 0)]
    text = (f"Sweep wall time, {row['runs']} runs of {args.variants} (seeds {args.seeds}) on {args.dataset} "
            f"{args.image_size} px, {args.epochs} epochs, batch {args.batch_size}; median of {args.reps}; "
            f"MKL_CBWR={row['mkl_cbwr'] or '(unset)'}; {row['date']}.\n\n" + common.markdown_table([row], columns)
            + f"\n\nTarget of issue 6: packed >= {TARGET:g}x faster: {'met' if row['speedup'] >= TARGET else 'not met'}"
            + f" ({row['speedup']:.2f}x); results compared: {', '.join(COMPARED)} (tolerance {args.tolerance:g}).")
    common.write_csv([row], args.out + ".csv")
    common.write_text(text + "\n", args.out + ".md")
    print("\n" + text + f"\n\nwritten: {args.out}.csv, {args.out}.md")
    return [row]


if __name__ == "__main__":
    main()

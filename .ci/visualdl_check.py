"""Does VisualDL's run list tell runs apart? A screenshot check with headless Chromium.

    python .ci/visualdl_check.py [OUT_PREFIX]      # writes OUT_PREFIX.png and OUT_PREFIX-runs.png

Four runs of one variant (all_tricks, seeds 0 and 1, with and without --lr-decay) get their
VisualDL logs at the folders ablations.run gives them (RunConfig.run_id; the curves are made-up
numbers: only the names are checked). `python -m ablations.visualdl` serves them as the README
says, Chromium takes a 1400x900 screenshot of the scalar page, and the run list's rows are
compared pixel by pixel: rows that look the same at VisualDL's default width (it cuts a name
after about 28 characters) cannot be told apart, and the check fails. Look at OUT_PREFIX-runs.png
to see what a user sees. Exit code 0 when the rows differ, 1 when not, 2 when Chromium is missing
(install it: apt-get install chromium). Not part of CI (Chromium is a large install); run it
after changing how run folders are named. About 30 s.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1400,900", "--virtual-time-budget=5000"]


def write_logs(logdir: str) -> list:
    """VisualDL logs of four all_tricks runs at their real folder names; returns their run ids."""
    from ablations.config import Recipe, RunConfig, Session
    from ablations.runfolder import paths_for
    from ablations.vdl import VisualDLSink

    session, run_ids = Session(logdir=logdir), []
    for lr_decay in (False, True):
        for seed in (0, 1):
            cfg = RunConfig("all_tricks", Recipe("cpu", 32, 3, 64, "momentum", 0.01), seed=seed, lr_decay=lr_decay)
            sink = VisualDLSink(paths_for(cfg, session).logdir)
            for epoch in (1, 2, 3):
                loss = 2.8 - 0.4 * epoch - 0.1 * seed - 0.05 * lr_decay * epoch
                acc = 0.18 * epoch + 0.02 * seed + 0.01 * lr_decay * epoch
                sink({"epoch": epoch, "train_loss": loss, "eval_loss": loss + 0.1, "train_acc": acc + 0.05,
                      "eval_acc": acc, "lr": 0.01})
            sink.finish(cfg.identity(), {"test_acc": 0.5})  # as a real run: its HParams view too
            sink.close()
            run_ids.append(cfg.run_id)
    return run_ids


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def screenshot(chromium: str, url: str, out: str, attempts: int = 3) -> None:
    """Chromium's screenshot of url; tried again when Chromium hangs (seen once on a loaded machine)."""
    for attempt in range(attempts):
        profile = tempfile.mkdtemp(prefix="chromium-")
        try:
            subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={out}", url],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=90, check=True)
            return
        except subprocess.TimeoutExpired:
            if attempt == attempts - 1:
                raise
        finally:
            shutil.rmtree(profile, ignore_errors=True)


def run_rows(png: str) -> tuple:
    """The run list's rows as grayscale text strips (after each row's checkbox and colour dot), and its box."""
    import numpy as np
    from PIL import Image

    rgb = np.asarray(Image.open(png).convert("RGB")).astype(int)
    panel = rgb[:, rgb.shape[1] * 3 // 4:]  # the right-hand settings column
    r, g, b = panel[..., 0], panel[..., 1], panel[..., 2]
    checked = (b > 200) & (r < 90) & (g < 100)  # a ticked checkbox is a solid blue square
    rows, y = [], 0
    while y < panel.shape[0]:
        cols = np.where(checked[y])[0]
        # the leftmost solid blue segment of the row: a checkbox is 12-20 px wide (a blue dot or
        # button further right does not count)
        end = cols[0] if len(cols) else 0
        while end + 1 in set(cols):
            end += 1
        if len(cols) and 12 <= end - cols[0] + 1 <= 20:
            top, left = y, cols[0]
            while y < panel.shape[0] and checked[y, left:end + 1].mean() > 0.5:
                y += 1
            if 12 <= y - top <= 20:
                rows.append((top, y, end))
        y += 1
    strips = []
    for top, bottom, box_right in rows[1:]:  # the first ticked box is "Select All"
        band = panel[top - 3:bottom + 3, box_right + 1:]
        colour = (band.max(axis=2) - band.min(axis=2)) > 60  # the run's colour dot
        start = np.where(colour.any(axis=0))[0][-1] + 3 if colour.any() else 0
        strips.append(band[:, start:].mean(axis=2).round().astype(np.uint8))
    x0 = rgb.shape[1] * 3 // 4
    box = (x0, rows[0][0] - 10, rgb.shape[1], rows[-1][1] + 10) if rows else None
    return strips, box


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    prefix = os.path.abspath(argv[0] if argv else "visualdl-check")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if chromium is None:
        print("chromium not found: install it (apt-get install chromium) to run this check", file=sys.stderr)
        return 2
    work = tempfile.mkdtemp(prefix="visualdl-check-")
    try:
        run_ids = write_logs(os.path.join(work, "logs"))
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "ablations.visualdl", "--logdir", "logs", "--port", str(port)],
                                  cwd=work, env={**os.environ, "PYTHONPATH": ROOT}, stdout=subprocess.PIPE, text=True)
        try:
            line = server.stdout.readline()  # printed once VisualDL answers
            if "http" not in line:
                print(f"ablations.visualdl did not start: {line.strip()}", file=sys.stderr)
                return 1
            screenshot(chromium, line.split()[-1], prefix + ".png")
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
        with socket.socket() as s:
            freed = s.connect_ex(("127.0.0.1", port)) != 0
    finally:
        shutil.rmtree(work, ignore_errors=True)
    strips, box = run_rows(prefix + ".png")
    if box is not None:
        from PIL import Image
        Image.open(prefix + ".png").crop(box).save(prefix + "-runs.png")
    print("runs: " + ", ".join("logs/" + r for r in run_ids))
    print(f"screenshot: {prefix}.png; run list: {prefix}-runs.png; port freed after stop: {freed}")
    same = [(i, j) for i in range(len(strips)) for j in range(i + 1, len(strips))
            if strips[i].shape == strips[j].shape and (strips[i] == strips[j]).all()]
    if len(strips) != len(run_ids):
        print(f"FAIL: found {len(strips)} rows in the run list, expected {len(run_ids)}")
        return 1
    if same or not freed:
        print(f"FAIL: rows that look the same: {same}" if same else "FAIL: the port is still taken")
        return 1
    print(f"OK: the {len(strips)} rows of the run list look different at VisualDL's default width")
    return 0


if __name__ == "__main__":
    sys.exit(main())

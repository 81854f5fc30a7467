"""The results store: one CSV row per finished (or diverged, or failed) run, safe to append concurrently.

A row is {run, **config.identity(), model facts, data facts, metrics, environment}; the columns
derive from RunConfig and the groups below, so a new setting is a new column without a second edit.

Every row is one physical line, written with one write under an exclusive lock. A run's final
row is appended once: (run_id, attempt, status) already in the store means it is there. A row
torn by a full disk never glues onto the next one (the next append starts a new line), and
reading names a torn or malformed row and keeps every good one.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
import sys

from paddle_cnns.errors import CNNsError
from paddle_cnns.models.tricks import Tricks

from . import faults
from .config import identity_columns
from .schemas import upgrade_rows

try:
    import fcntl
except ImportError:  # Windows: appends are then not protected against concurrent writers
    fcntl = None

SCHEMA = 5  # bump when COLUMNS change; read_results upgrades older files it knows

RUN = ("schema", "run_id", "attempt", "name", "finished_at", "status", "error")
MODEL = ("family", "model_revision", *Tricks.names())
DATA = ("in_channels", "num_classes", "train_size", "eval_size", "test_size")
METRICS = ("best_eval_acc", "best_epoch", "final_eval_acc", "final_eval_loss", "final_train_acc",
           "final_train_loss", "epochs_done", "test_split", "test_acc", "test_top5", "test_balanced_acc",
           "test_loss", "params", "macs", "train_time_s", "wall_time_s", "images_per_s")
# world_size: processes (devices) that trained the run together; per_device_batch: the largest
# slice of a global batch one of them saw; sync_bn: BatchNorm statistics over the global batch.
ENVIRONMENT = ("paddle_version", "device", "threads", "layers_used", "world_size", "per_device_batch", "sync_bn",
               "logdir")
# Lists and tables, stored as JSON text; `blocks` is [[name, [C, H, W], params, MACs], ...] per block.
DETAILS = ("class_names", "test_per_class_acc", "test_confusion", "blocks")
COLUMNS = [*RUN, *identity_columns(), *MODEL, *DATA, *METRICS, *ENVIRONMENT, *DETAILS]
JSON_COLUMNS = ("decay_epochs", *DETAILS)
HEADER = ",".join(COLUMNS)
FINAL_STATUSES = ("finished", "diverged")  # a run's last word: recorded once per attempt
_ROW_START = re.compile(r"\d+,")  # every row starts with its schema number


def _format(value):
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, float):
        return repr(value)  # full precision: the report must reproduce the numbers exactly
    if isinstance(value, str):
        return " ".join(value.splitlines())  # one physical line per row: a torn row stays findable
    return "" if value is None else value


def format_row(row: dict) -> str:
    """One CSV line (with its newline) holding `row` in COLUMNS order; unknown keys are a bug."""
    unknown = set(row) - set(COLUMNS)
    if unknown:
        raise ValueError(f"unknown result columns: {sorted(unknown)}")
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(
        [_format(row.get(c, SCHEMA if c == "schema" else None)) for c in COLUMNS])
    return buf.getvalue()


OTHER_COLUMNS = "has other columns (not a results file of paddle-cnns)"


def _current_header(first: str) -> bool:
    """Whether `first`, a store's first line (with its newline if it has one), needs no upgrade:
    empty, today's header, or today's header torn by a full disk (rewritten on the next append)."""
    header = first.rstrip("\r\n")
    return not first or header == HEADER or (not first.endswith("\n") and HEADER.startswith(header))


def store_problem(path: str) -> str | None:
    """Why rows cannot be appended to the store at path (its header is another one), or None."""
    try:
        with open(path, newline="") as f:
            if _current_header(f.readline()):
                return None
            f.seek(0)
            upgraded_text(f.read())
    except FileNotFoundError:
        return None
    except CNNsError:
        return OTHER_COLUMNS
    return None  # an earlier paddle-cnns' store: upgraded in place by the next append


def _records(text: str):
    """(line number, text) of each row; a quoted newline of an older store stays inside its row,
    but a row whose quote never closes before the next row starts is cut off there (torn)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    buf, start, quotes = [], 0, 0
    for number, line in enumerate(lines, 1):
        if buf and quotes % 2 and _ROW_START.match(line):
            yield start, "\n".join(buf)
            buf, quotes = [], 0
        if not buf:
            start = number
        buf.append(line)
        quotes += line.count('"')
        if quotes % 2 == 0:
            yield start, "\n".join(buf)
            buf, quotes = [], 0
    if buf:
        yield start, "\n".join(buf)


def _problem(text: str, header: list) -> tuple[list | None, str]:
    """The row's fields, or None and what is wrong with it."""
    try:
        rows = list(csv.reader(io.StringIO(text), strict=True))
    except csv.Error as e:
        return None, f"unreadable ({e})"
    if len(rows) != 1 or len(rows[0]) != len(header):
        n = sum(len(r) for r in rows)
        return None, f"torn or malformed: {n} fields, the header has {len(header)}"
    fields = rows[0]
    for name, value in zip(header, fields):
        if name in JSON_COLUMNS and value:
            try:
                json.loads(value)
            except ValueError:
                return None, f"torn or malformed: column {name} is not valid JSON"
    return fields, ""


def parse_store(text: str) -> tuple[list, list, list]:
    """(header, good rows as field lists, [(line number, problem)] of the bad ones)."""
    records = iter(_records(text))
    first = next(records, None)
    if first is None:
        return [], [], []
    header = next(csv.reader([first[1]]))
    good, bad = [], []
    for number, record in records:
        fields, problem = _problem(record, header)
        if fields is None:
            bad.append((number, problem))
        else:
            good.append(fields)
    return header, good, bad


def _present(text: str, row: dict) -> bool:
    """Whether the store's text already holds this attempt's final row."""
    if not row.get("attempt") or row.get("status") not in FINAL_STATUSES:
        return False
    header, good, _ = parse_store(text)
    if not {"run_id", "attempt", "status"} <= set(header):
        return False
    at = [header.index(c) for c in ("run_id", "attempt", "status")]
    key = (row["run_id"], row["attempt"], row["status"])
    return any(tuple(r[i] for i in at) == key for r in good)


def append_row(path: str, row: dict) -> bool:
    """Append one row under an exclusive lock: concurrent runs never interleave or lose rows.

    Returns False (and writes nothing) when this attempt's final row is already there. A failed
    write is cut back off; a torn row left anyway (by an older version, say) ends on its own line.
    """
    line = format_row(row)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    while True:
        written = _append_once(path, row, line)
        if written is not None:
            return written


def _append_once(path: str, row: dict, line: str):
    """append_row's work under the lock; None when the file was replaced meanwhile (try again)."""
    with open(path, "a+", newline="") as f:
        if fcntl is not None:
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            if not os.path.exists(path) or not os.path.samestat(os.fstat(f.fileno()), os.stat(path)):
                return None  # another process upgraded the store while this one waited for the lock
            f.seek(0)
            text = f.read()
            first, newline, _ = text.partition("\n")
            if not _current_header(first + newline):
                try:
                    backup = upgrade_store(path, text)
                except CNNsError:
                    raise CNNsError(f"results file {path} {OTHER_COLUMNS}; move it away or write to a new "
                                    "results file") from None
                print(f"results file {path}: written by an earlier paddle-cnns, now in today's columns "
                      f"(schema {SCHEMA}); the old file is kept as {backup}", file=sys.stderr, flush=True)
                return None  # append to the upgraded file
            if _present(text, row):
                return False
            out = line
            if "\n" not in text:  # empty, or only our header torn by a full disk: start over
                f.truncate(0)
                text, out = "", HEADER + "\n" + line
            elif not text.endswith("\n"):
                out = "\n" + line  # a torn last row: it stays on its own line, found and named by readers
            f.seek(0, os.SEEK_END)
            size = f.tell()
            try:
                faults.limit_writes(f.write, "results")(out)  # one write of one whole line
                f.flush()
                os.fsync(f.fileno())
            except OSError:
                try:  # cut the partial row back off, so the disk-full leaves no trace
                    f.truncate(size)
                except OSError:
                    pass
                raise
            return True
        finally:
            if fcntl is not None:
                fcntl.flock(f, fcntl.LOCK_UN)


def recorded_final(path: str | None, run_id: str, identity: dict) -> dict | None:
    """The store's last final row (finished or diverged) of this run with exactly these settings.

    Cells are compared as they are written. The data's fingerprint counts only when both sides
    have it (before the data is loaded a run's is not known yet); None when the store is missing,
    unreadable or not ours: the caller then knows nothing of the run.
    """
    try:
        with open(path, newline="", encoding="utf-8") as f:
            text = f.read()
        if not _current_header(text.partition("\n")[0] + "\n"):
            text = upgraded_text(text)[0]
    except (OSError, TypeError, UnicodeDecodeError, CNNsError):
        return None
    header, good, _ = parse_store(text)
    wanted = {k: str(_format(v)) for k, v in identity.items() if k != "data_dir"}
    found = None
    for fields in good:
        row = dict(zip(header, fields))
        if row.get("run_id") != run_id or row.get("status") not in FINAL_STATUSES:
            continue
        both = row.get("data_fingerprint") and wanted.get("data_fingerprint")  # else not compared
        if all(row.get(k, v) == v for k, v in wanted.items() if both or k != "data_fingerprint"):
            found = row
    return found


def upgraded_text(text: str) -> tuple[str, str]:
    """(today's CSV text of an earlier schema's store, the schema it had); CNNsError if it is not ours.

    Cells are carried over as they were written (read as text, not numbers), new columns get
    the values their upgrade gives; a torn or malformed row is dropped, as readers drop it.
    """
    import pandas as pd

    header, good, _ = parse_store(text)
    if not good or header[:2] != ["schema", "run_id"]:
        raise CNNsError("not a results store")
    df = pd.DataFrame(good, columns=header, dtype=str)
    old = set(df["schema"])
    df = upgrade_rows(df)
    if len(old) != 1 or any(c not in df.columns for c in COLUMNS):
        raise CNNsError("not a results store")
    rows = [{c: (None if v == "" else v) for c, v in zip(COLUMNS, values)}
            for values in df[COLUMNS].astype(str).itertuples(index=False)]
    return HEADER + "\n" + "".join(format_row(r) for r in rows), old.pop()


def upgrade_store(path: str, text: str | None = None) -> str | None:
    """Rewrite an earlier paddle-cnns' store in today's columns; returns the copy of the old file.

    The old file is kept beside it (<path>.schema<N>.bak), the new one replaces it atomically, so
    a kill or a full disk at any moment leaves the old store or the new one, never a mix. Call it
    with the store's lock held (append_row does), or before any run writes (ablations.run does).
    """
    if text is None:
        with open(path, newline="", encoding="utf-8") as f:
            text = f.read()
    if text.split("\n", 1)[0].rstrip("\r") == HEADER:
        return None
    new, schema = upgraded_text(text)
    backup, staged = f"{path}.schema{schema}.bak", f"{path}.upgrading"
    for target, content in ((backup, text), (staged, new)):
        with open(target, "w", newline="", encoding="utf-8") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
    os.replace(staged, path)
    return backup


def read_results(path: str):
    """The store as a pandas DataFrame (JSON columns decoded). Raises CNNsError if unreadable.

    A torn or malformed row is named on stderr and left out; every good row is kept (the
    DataFrame's attrs["skipped_rows"] lists (line number, problem) of the ones left out).
    """
    import pandas as pd

    if not os.path.exists(path):
        raise CNNsError(f"no results at {path} yet; train first: python -m ablations.run --variant all")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            header, good, bad = parse_store(f.read())
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows([header] + good)
        df = pd.read_csv(io.StringIO(buf.getvalue()))
    except Exception as e:
        raise CNNsError(f"cannot read results file {path} ({type(e).__name__}: {e})") from e
    for number, problem in bad:
        print(f"warning: results file {path} line {number}: {problem}; row left out", file=sys.stderr)
    df = upgrade_rows(df)
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise CNNsError(f"results file {path} lacks columns {', '.join(missing[:5])} "
                        "(written by an older paddle-cnns?); re-run the study into a new results file")
    for c in JSON_COLUMNS:
        df[c] = df[c].map(lambda v: json.loads(v) if isinstance(v, str) and v else None)
    df = df[COLUMNS + [c for c in df.columns if c not in COLUMNS]]
    df.attrs["skipped_rows"] = bad
    return df

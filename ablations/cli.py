"""What every command line shares: one-line errors with exit code 2, never a traceback, and flag hints."""
from __future__ import annotations

import argparse
import functools
import os
import sys

from paddle_cnns.errors import CNNsError

EXIT_USAGE = 2


def fail(message: str, code: int = EXIT_USAGE):
    """Print one line to stderr and exit: for problems the user can fix."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """--help that reads cleanly: descriptions keep their line breaks (one example per line), and an
    option's help ends with its real default from the parser, unless it states one itself or has none."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("%(default)" in text or "default:" in text or not action.option_strings
                or action.default in (None, False, "", argparse.SUPPRESS)):
            return text
        return f"{text} (default: %(default)s)" if text else "default: %(default)s"


class Parser(argparse.ArgumentParser):
    """Every command's parser: HelpFormatter, and a bad flag gives one line and exit 2, not a usage dump."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        fail(f"{message} (see {self.prog} --help)")


# The library's errors name what to change in its own terms (CNNsError.fix); these say it in flags.
HINTS = {
    "lr": "lower --lr",
    "image_size": "use --image-size {minimum} or more",
    "threads": "pass --threads 1 or more",
    "device": "use --device cpu, or install paddlepaddle-gpu for --device gpu",
    "batch_size": "check --max-per-class and --batch-size",
    "restart": "delete it, or start the run over with --force",
    "data_dir": "or pass --data-dir FOLDER",
    "source": "pass it with --source",
    "cache": "leave out --cache off",
    "workers": "pass --loader-workers 0 or more",
}


def prepare_hint(details: dict) -> str:
    """The command that prepares a dataset, as a user types it."""
    dataset, where = details.get("dataset", "caltech16"), details.get("data_dir")
    out = "" if where is None or os.path.normpath(where) == os.path.join("data", dataset) else f" --out {where}"
    return (f"run: python -m ablations.prepare {dataset}{out} --source PATH/TO/101_ObjectCategories.tar.gz "
            "(or without --source to download it), or pass --data-dir PATH/TO/THE/ARCHIVE")


def explain(error: CNNsError) -> str:
    """The error's message with the command-line fix appended, when it names one."""
    fix = getattr(error, "fix", None)
    if fix == "prepare":
        return f"{error}; {prepare_hint(error.details)}"
    if fix in HINTS:
        return f"{error}; {HINTS[fix].format(**error.details)}"
    return str(error)


def main_guard(fn):
    """Wrap a CLI main: CNNsError and unreadable/unwritable paths become one line and exit 2."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except CNNsError as e:
            fail(explain(e))
        except PermissionError as e:
            fail(f"permission denied: {e.filename or e}; choose a path you can write to")
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise SystemExit(130)
    return wrapper


# MKL sums in an order that depends on the thread count unless MKL_CBWR=AUTO,STRICT, and training
# amplifies that: the same run with 2 threads or packed at 1 thread moved its 3-epoch loss by 0.18
# (bench/sweep). Strict mode makes a run's numbers independent of --threads/--jobs (measured
# bitwise equal) at no visible cost (209.7 s vs 204.3 s for the same 4-run sweep). Runs compute in
# float32 only: with MKL_CBWR set to anything but COMPATIBLE (3x slower), this paddle's MKL dies of
# SIGILL on float64 GEMMs on AMD CPUs (seen on an EPYC), so it is set for run processes alone,
# never when the package is imported as a library.
MKL_CBWR_DEFAULT = "AUTO,STRICT"


def process_env() -> dict:
    """The environment every training process starts with (set before paddle is imported; a value
    the user set wins)."""
    return {
        "GLOG_minloglevel": os.environ.get("GLOG_minloglevel", "2"),  # paddle's C++ INFO/WARNING lines
        "MKL_CBWR": os.environ.get("MKL_CBWR", MKL_CBWR_DEFAULT),
    }


def prepare_process() -> dict:
    """Apply process_env() to this process: call it at an entry point, before paddle is imported.
    Children inherit it. Returns what is in force."""
    env = process_env()
    os.environ.update(env)
    return env


def quiet_paddle_logs() -> None:
    """Silence glog INFO/WARNING lines paddle prints from C++ (e.g. dtype promotion notes)."""
    os.environ.setdefault("GLOG_minloglevel", "2")

"""What every command line shares: paddle's environment, one-line errors with exit code 2 (1 for a full
disk), never a traceback, and flag hints.

Imports no paddle (nor paddle_cnns, which imports paddle): paddle_environment() must run before it.
"""
from __future__ import annotations

import argparse
import errno
import functools
import os
import sys

EXIT_USAGE = 2
EXIT_FAILED = 1  # the machine, not the command: a full disk
DISK_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


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
    """Wrap a CLI main: CNNsError and unreadable/unwritable paths become one line and exit 2, a full
    disk one line and exit 1."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from paddle_cnns.errors import CNNsError  # here, not at the top: see the module docstring

        try:
            return fn(*args, **kwargs)
        except CNNsError as e:
            fail(explain(e))
        except PermissionError as e:
            fail(f"permission denied: {e.filename or e}; choose a path you can write to")
        except OSError as e:
            if e.errno not in DISK_FULL:
                raise
            where = f" writing {e.filename}" if e.filename else ""
            fail(f"no space left on device{where}; free space there and run the same command again "
                 "(what was written before is kept as it was)", EXIT_FAILED)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise SystemExit(130)
    return wrapper


# MKL sums in an order that depends on the thread count unless MKL_CBWR=AUTO,STRICT, and training
# amplifies that: the same run with 2 threads or packed at 1 thread moved its 3-epoch loss by 0.18
# (bench/sweep, an Intel Xeon). Strict mode made a run's numbers independent of --threads/--jobs
# there (bitwise equal) at no visible cost. It does not reach oneDNN (whose convs run on the CPU by
# default), nor, on an AMD EPYC, MKL itself: there only equal thread counts give equal numbers.
# With MKL_CBWR set to anything but COMPATIBLE (3x slower), this paddle's MKL dies of SIGILL on
# float64 GEMMs on AMD CPUs; runs compute in float32 only (the float64 tests reset it).
MKL_CBWR_DEFAULT = "AUTO,STRICT"


def quiet_paddle_logs() -> None:
    """Silence glog INFO/WARNING lines paddle prints from C++ (e.g. dtype promotion notes)."""
    os.environ.setdefault("GLOG_minloglevel", "2")


# Paddle runs convs through oneDNN only in its static-graph executor, with these flags, and reads
# them once, when it is imported (set later, the first backward segfaults): see paddle_cnns.onednn.
ONEDNN_FLAGS = {"FLAGS_use_mkldnn": "1", "FLAGS_enable_pir_api": "0"}


def _paddle_gpu_build() -> bool:
    """Whether the installed paddle is the GPU wheel (asked of the package metadata, not of paddle)."""
    try:
        from importlib import metadata
    except ImportError:  # Python < 3.8 has no importlib.metadata
        return False
    try:
        metadata.version("paddlepaddle-gpu")
        return True
    except metadata.PackageNotFoundError:
        return False


def paddle_environment(role: str = "library") -> dict:
    """Set what paddle and MKL read at start-up, unless the user did; returns the values in force.

    The one place for it. ablations/__init__.py calls it for every process ("library": quiet logs,
    MKL_CBWR); before they import paddle, the entry points that train call it with "train" (run,
    worker, bench: the oneDNN flags too, left out for the GPU wheel, whose path stays paddle's own)
    and those that export or explain with "export": paddle 3.3.1's jit.save fails on sigmoid and
    leaky_relu nets under the legacy IR those flags select, and Paddle Inference computed wrong
    logits in a process started with FLAGS_use_mkldnn=1 (max |diff| 1.87 on all_tricks), so they
    are taken out of the environment an exporting process inherits from a training one.
    Child processes inherit the result.
    """
    if role not in ("library", "train", "export"):
        raise ValueError(f"unknown role {role!r}")
    quiet_paddle_logs()
    os.environ.setdefault("MKL_CBWR", MKL_CBWR_DEFAULT)
    names = ["GLOG_minloglevel", "MKL_CBWR"]
    if role == "train" and not _paddle_gpu_build():
        for name, value in ONEDNN_FLAGS.items():
            os.environ.setdefault(name, value)
    if role == "export":
        for name, value in ONEDNN_FLAGS.items():
            if os.environ.get(name) == value:
                del os.environ[name]
    return {name: os.environ.get(name) for name in names + list(ONEDNN_FLAGS)}

"""What every command line shares: paddle's environment, one-line errors with exit code 2, never a traceback.

Imports no paddle (nor paddle_cnns, which imports paddle): paddle_environment() must run before it.
"""
import functools
import os
import sys

EXIT_USAGE = 2


def fail(message: str, code: int = EXIT_USAGE):
    """Print one line to stderr and exit: for problems the user can fix."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def main_guard(fn):
    """Wrap a CLI main: CNNsError and unreadable/unwritable paths become one line and exit 2."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from paddle_cnns.errors import CNNsError  # here, not at the top: see the module docstring

        try:
            return fn(*args, **kwargs)
        except CNNsError as e:
            fail(str(e))
        except PermissionError as e:
            fail(f"permission denied: {e.filename or e}; choose a path you can write to")
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise SystemExit(130)
    return wrapper


# MKL sums in an order that depends on the thread count unless MKL_CBWR=AUTO,STRICT, and training
# amplifies that: the same run with 2 threads or packed at 1 thread moved its 3-epoch loss by 0.18
# (bench/sweep). Strict mode makes a run's numbers independent of --threads/--jobs (measured
# bitwise equal) at no visible cost (209.7 s vs 204.3 s for the same 4-run sweep).
MKL_CBWR_DEFAULT = "AUTO,STRICT"


def reproducible_mkl() -> str:
    """Set MKL_CBWR (unless the user did) before MKL loads, i.e. before paddle is imported; children
    inherit it. Returns the value in force."""
    return os.environ.setdefault("MKL_CBWR", MKL_CBWR_DEFAULT)


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


def paddle_environment() -> dict:
    """Set what paddle and MKL read at start-up, unless the user did: quiet logs, MKL_CBWR, oneDNN flags.

    The one place for it: ablations/__init__.py calls it, so every entry point (python -m
    ablations.X) and every worker process (they are started as python -m ablations....) has it
    before paddle is imported; child processes inherit it. The oneDNN flags are left out for the
    GPU wheel, whose path stays paddle's own. Returns the values in force.
    """
    quiet_paddle_logs()
    reproducible_mkl()
    names = ["GLOG_minloglevel", "MKL_CBWR"]
    if not _paddle_gpu_build():
        for name, value in ONEDNN_FLAGS.items():
            os.environ.setdefault(name, value)
        names += list(ONEDNN_FLAGS)
    return {name: os.environ.get(name) for name in names}

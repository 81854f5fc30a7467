"""What every command line shares: one-line errors with exit code 2, never a traceback."""
import functools
import os
import sys

from paddle_cnns.errors import CNNsError

EXIT_USAGE = 2


def fail(message: str, code: int = EXIT_USAGE):
    """Print one line to stderr and exit: for problems the user can fix."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def main_guard(fn):
    """Wrap a CLI main: CNNsError and unreadable/unwritable paths become one line and exit 2."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
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

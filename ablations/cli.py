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


def quiet_paddle_logs() -> None:
    """Silence glog INFO/WARNING lines paddle prints from C++ (e.g. dtype promotion notes)."""
    os.environ.setdefault("GLOG_minloglevel", "2")

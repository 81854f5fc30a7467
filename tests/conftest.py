"""Shared test set-up: paddle's environment as the CLIs have it, every core, and the real-data switch."""
import os
import shutil
import warnings

import ablations  # noqa: F401  first: paddle's environment as a library user has it (logs, MKL_CBWR)

warnings.filterwarnings("ignore", message="No ccache found")
warnings.filterwarnings("ignore", message="When training, we now always track global mean and variance")

import paddle  # noqa: E402
import pytest  # noqa: E402

from paddle_cnns.runtime import set_threads  # noqa: E402

set_threads()
paddle.set_device("cpu")
# MKL reads MKL_CBWR once, at its first call. Importing ablations sets MKL_CBWR=AUTO,STRICT for
# runs (float32 only); with it, MKL's float64 GEMM dies of SIGILL on AMD CPUs (seen on an EPYC),
# and some tests compare in float64. So MKL starts here without it; the subprocesses the tests
# start still get it.
_cbwr = os.environ.pop("MKL_CBWR", None)
paddle.matmul(paddle.ones([2, 2], dtype="float64"), paddle.ones([2, 2], dtype="float64"))
if _cbwr is not None:
    os.environ["MKL_CBWR"] = _cbwr


@pytest.fixture
def real_archive():
    """Path to the official 101_ObjectCategories.tar.gz from $CALTECH101_ARCHIVE.

    Skips when unset, unless PADDLE_CNNS_REQUIRE_REAL_DATA=1 (CI), where it fails instead.
    """
    path = os.environ.get("CALTECH101_ARCHIVE")
    if path and os.path.exists(path):
        return path
    if os.environ.get("PADDLE_CNNS_REQUIRE_REAL_DATA") == "1":
        pytest.fail(f"CALTECH101_ARCHIVE={path!r} does not point at the Caltech-101 archive")
    pytest.skip("set CALTECH101_ARCHIVE to the official 101_ObjectCategories.tar.gz to run this test")


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory, request):
    """module_dir(name): a fresh directory for runs a module's tests share, removed after its last
    test unless a test failed meanwhile. The article's models make checkpoints of 100-350 MB; kept
    to the session's end, as tmp_path_factory's are, they once took 6 GB of disk, more than CI had."""
    failed_before = request.session.testsfailed
    made = []

    def make(name):
        made.append(tmp_path_factory.mktemp(name))
        return made[-1]

    yield make
    if request.session.testsfailed == failed_before:
        for path in made:
            shutil.rmtree(path, ignore_errors=True)

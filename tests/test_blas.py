"""The fast path's matmul library (tinyae/fast/blas.py): NumPy's, or MKL with tinyae[mkl].

The MKL checks run in a fresh process with TINYAE_MATMUL=mkl: MKL brings its own
OpenMP runtime, kept out of the test process (PyTorch's export tests load another).
"""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tinyae as ta
from tinyae.fast import blas
from tinyae.train import fit

CASES = [(ta_, tb, acc) for ta_ in (False, True) for tb in (False, True) for acc in (False, True)]


def operands(dtype, trans_a, trans_b, rng):
    A = rng.standard_normal((5, 7) if trans_a else (7, 5)).astype(dtype)
    B = rng.standard_normal((3, 5) if trans_b else (5, 3)).astype(dtype)
    return A, B, rng.standard_normal((7, 3)).astype(dtype)


def expected(A, B, C, trans_a, trans_b, accumulate):
    product = (A.T if trans_a else A) @ (B.T if trans_b else B)
    return C + product if accumulate else product


@pytest.fixture
def numpy_matmuls(monkeypatch):
    monkeypatch.setattr(blas.MATMULS, "choice", "numpy")     # put back as it was after the test


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a, trans_b, accumulate", CASES)
def test_gemm_on_numpy_is_the_product(dtype, trans_a, trans_b, accumulate, numpy_matmuls):
    A, B, C = operands(dtype, trans_a, trans_b, np.random.default_rng(0))
    want = expected(A, B, C, trans_a, trans_b, accumulate)
    got = blas.gemm(A, B, C.copy(), trans_a, trans_b, accumulate)
    np.testing.assert_allclose(got, want, rtol=1e-6 if dtype == np.float32 else 1e-12)


def test_bad_choices_are_refused(monkeypatch):
    matmuls = blas.Matmuls(find=lambda: None)                 # as where MKL is not installed
    with pytest.raises(ValueError, match="'auto', 'mkl' or 'numpy'"):
        matmuls.use("openblas")
    assert matmuls.use("numpy") is None
    with pytest.raises(RuntimeError, match=r"MKL is not installed: pip install 'tinyae\[mkl\]'"):
        matmuls.use("mkl")
    assert matmuls.library() == "numpy"                       # the refusal changed nothing
    assert matmuls.use("auto") == "numpy"
    assert matmuls.library() == "numpy"                       # auto without MKL: NumPy's
    assert matmuls.use(None) == "numpy" and matmuls.choice is None
    monkeypatch.setenv("TINYAE_MATMUL", "fast")
    with pytest.raises(ValueError, match="TINYAE_MATMUL must be auto, mkl or numpy"):
        matmuls.library()


def test_auto_takes_mkl_only_on_intel_processors(tmp_path):
    broken = tmp_path / "libmkl_rt.so.2"                      # "installed": find returns a path
    broken.write_text("not a shared library")
    looked = []

    def find():
        looked.append(True)
        return str(broken)

    for vendor in ("AuthenticAMD", None):                   # AMD's, or a CPU that says nothing
        matmuls = blas.Matmuls(find=find, vendor=lambda: vendor)
        assert matmuls.use("auto") is None and matmuls.library() == "numpy"
        assert looked == []                                  # MKL was not even loaded
        with pytest.raises(RuntimeError, match="does not load"):
            matmuls.use("mkl")                               # asked for by name: tried, and refused
        looked.clear()
    intel = blas.Matmuls(find=find, vendor=lambda: "GenuineIntel")
    with pytest.warns(UserWarning, match="MKL is installed but does not load"):
        intel.use("auto")                                    # on Intel's, auto tries MKL
    assert looked == [True]


def test_the_cpu_vendor_is_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\n"
                    "processor\t: 1\nvendor_id\t: AuthenticAMD\n")
    assert blas.cpu_vendor(info) == "AuthenticAMD"
    info.write_text("processor\t: 0\nBogoMIPS\t: 50.00\n")         # an Arm board names none
    assert blas.cpu_vendor(info) is None
    assert blas.cpu_vendor(tmp_path / "absent") is None


def test_a_broken_mkl_install_falls_back_with_a_warning(tmp_path):
    broken = tmp_path / "libmkl_rt.so.2"
    broken.write_text("not a shared library")
    matmuls = blas.Matmuls(find=lambda: str(broken), vendor=lambda: "GenuineIntel")
    with pytest.warns(UserWarning, match="MKL is installed but does not load"):
        matmuls.use("auto")
    assert matmuls.library() == "numpy"
    with pytest.raises(RuntimeError, match="does not load .*TINYAE_MATMUL=numpy"):
        matmuls.use("mkl")


def test_the_package_and_its_fast_path_share_one_choice(numpy_matmuls):
    from tinyae.fast import engine
    assert blas.library() == "numpy" and engine.gemm.__self__ is blas.MATMULS


def test_each_epoch_records_the_matmul_library(numpy_matmuls):
    X = np.random.default_rng(0).random((64, 12), dtype=np.float32)
    fast = fit(ta.dense_autoencoder((12, 4, 2)), X, epochs=1, batch_size=16, progress=False)
    plain = fit(ta.dense_autoencoder((12, 4, 2)), X, epochs=1, batch_size=16, progress=False,
                backend="numpy")
    assert fast.records[0].matmul == "numpy" and plain.records[0].matmul is None


MKL_CHECK = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tinyae as ta
    from tinyae.fast import blas
    from tinyae.train import fit
    from tinyae.train.threads import BlasPool
    sys.path.insert(0, sys.argv[1])
    from test_blas import CASES, expected, operands
    assert blas.library() == "mkl", blas.library()
    worst = 0.0
    for dtype in (np.float32, np.float64):
        for trans_a, trans_b, accumulate in CASES:
            A, B, C = operands(dtype, trans_a, trans_b, np.random.default_rng(1))
            want = expected(A, B, C, trans_a, trans_b, accumulate)
            got = blas.gemm(A, B, C.copy(), trans_a, trans_b, accumulate)
            worst = max(worst, float(np.abs(got - want).max() / np.abs(want).max()))
    X = np.random.default_rng(0).random((512, 64), dtype=np.float32)
    losses = {}
    for lib in ("mkl", "numpy"):
        blas.use(lib)
        model = ta.dense_autoencoder((64, 32, 2), rng=np.random.default_rng(0))
        h = fit(model, X, epochs=2, batch_size=64, progress=True)
        losses[lib] = [r.loss for r in h.records]
        matmuls = [r.matmul for r in h.records]
        assert matmuls == [lib, lib], matmuls
    libs = [lib.internal_api for lib in BlasPool()._libs]
    print(json.dumps({"worst": worst, "losses": losses, "libs": libs}))
""")


def test_mkl_runs_the_fast_path_when_installed(tmp_path):
    if blas.find_mkl() is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI must test the MKL extra; .ci/run installs it (pip install mkl)")
        pytest.skip("MKL is not installed (pip install -e '.[mkl]')")
    env = {**os.environ, "TINYAE_MATMUL": "mkl"}
    out = subprocess.run([sys.executable, "-c", MKL_CHECK, os.path.dirname(__file__)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["worst"] < 1e-6                          # float32 sums in another order
    np.testing.assert_allclose(result["losses"]["mkl"], result["losses"]["numpy"], rtol=1e-3)
    assert "mkl" in result["libs"]                          # fit's thread chooser sets MKL's too
    assert out.stderr.count(", MKL)") == 2                  # each epoch line names it
    assert out.stderr.count("BLAS threads)") + out.stderr.count("BLAS thread)") == 2

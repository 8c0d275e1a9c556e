"""tests/gpu/test_bundle.py — the GPU device bundle is self-contained (issue: ready for the first GPU).

Makes the bundle from this build ($GAND_BUILD_ROOT) with scripts/gpu-bundle.sh into a
temporary directory and runs it in a stripped environment (env -i: no LD_LIBRARY_PATH,
PATH only /usr/bin:/bin): its programs run through the bundle's own loader, every
library but CUDA's must resolve inside the bundle, and without a GPU the check stops
at the first CUDA stage saying no device answered. Then the bundle's gand serve stage
(serve-smoke.py) runs on the CPU through the same loader.
"""
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import unittest

SOURCE = os.environ.get("GAND_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ["GAND_BUILD_ROOT"]
STRIPPED = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"}


class Bundle(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="gand-bundle-test-")
        cls.bundle = os.path.join(cls.tmp, "bundle")
        r = subprocess.run(["bash", os.path.join(SOURCE, "scripts", "gpu-bundle.sh"), "--build",
                            BUILD, cls.bundle], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_contents_and_size(self):
        for name in ("device-check.sh", "serve-smoke.py", "lib.tar.gz", "MANIFEST"):
            self.assertTrue(os.path.isfile(os.path.join(self.bundle, name)), name)
        for prog in ("gand", "test_ops", "test_ops_training", "test_gpu_parity", "bench_train"):
            self.assertTrue(os.access(os.path.join(self.bundle, "bin", prog), os.X_OK), prog)
        with tarfile.open(os.path.join(self.bundle, "lib.tar.gz")) as t:
            libs = {os.path.basename(n) for n in t.getnames() if ".so" in n}
        self.assertIn("libopenblas.so.0", libs)
        self.assertIn("libmicrohttpd.so.12", libs)
        self.assertTrue(any(n.startswith("ld-linux") for n in libs), libs)
        self.assertFalse([n for n in libs if n.startswith(("libcudart", "libcublas", "libcuda."))],
                         "CUDA's libraries are the GPU machine's")
        size = sum(os.path.getsize(os.path.join(d, f))
                   for d, _, fs in os.walk(self.bundle) for f in fs)
        self.assertLess(size, 64 << 20, "the bundle must travel (64 MiB at most)")

    def test_check_runs_stripped_as_far_as_the_device(self):
        out = os.path.join(self.tmp, "out")
        env = dict(STRIPPED, OUT=out)
        r = subprocess.run(["bash", os.path.join(self.bundle, "device-check.sh")], env=env,
                           capture_output=True, text=True, timeout=300)
        text = r.stdout + r.stderr
        self.assertRegex(text, r"\| bundle libraries \(\d+;[^|]*\) \| PASS \|")
        self.assertRegex(text, r"\| gand runs from the bundle \(gand [^|]*\) \| PASS \|")
        if shutil.which("nvidia-smi") and subprocess.run(["nvidia-smi"], capture_output=True).returncode == 0:
            self.assertEqual(r.returncode, 0, text)  # a GPU: every stage must pass
        else:
            self.assertIn("| GPU | FAIL: no device answered", text)
            self.assertEqual(r.returncode, 1, text)
            self.assertNotIn("op tables", text)  # it stops there
        self.assertTrue(os.path.isfile(os.path.join(out, "device-check.log")))

    def test_serve_stage_on_the_cpu_through_the_bundle(self):
        lib = os.path.join(self.tmp, "lib")
        os.makedirs(lib, exist_ok=True)
        with tarfile.open(os.path.join(self.bundle, "lib.tar.gz")) as t:
            t.extractall(lib)
        loader = [os.path.join(lib, n) for n in os.listdir(lib) if n.startswith("ld-linux")][0]
        out = os.path.join(self.tmp, "smoke")
        os.makedirs(out, exist_ok=True)
        env = dict(STRIPPED, GAND_DATADIR=os.path.join(self.bundle, "data"))
        r = subprocess.run([sys.executable, os.path.join(self.bundle, "serve-smoke.py"), "--device",
                            "cpu", "--out", out, "--", loader, "--library-path",
                            lib + ":/usr/local/cuda/lib64", os.path.join(self.bundle, "bin", "gand")],
                           env=env, capture_output=True, text=True, timeout=200)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + open(os.path.join(out, "serve-smoke.log")).read())
        self.assertEqual(r.stdout.count("PASS "), 4, r.stdout)


if __name__ == "__main__":
    unittest.main()

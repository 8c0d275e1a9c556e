"""tests/integration/test_readme.py — README.md's API examples run as written.

Every ```sh block of the README's "## API" section is run, in order, by one
`bash -euo pipefail` against a fresh `gand serve`, with only GAND (the base URL,
which the README itself uses) set in the environment. A failing curl (-f) or a
missing file fails the test; so does an endpoint of the API without an example.
"""
import gzip
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gandtest  # noqa: E402

README = os.path.join(gandtest.SOURCE_ROOT, "README.md")


def api_blocks():
    with open(README) as f:
        text = f.read()
    m = re.search(r"^## API\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert m, "README.md has no '## API' section"
    return re.findall(r"^```sh\n(.*?)^```", m.group(1), re.S | re.M)


class Readme(gandtest.DaemonTest):
    def test_every_endpoint_has_an_example(self):
        script = "\n".join(api_blocks())
        for pattern in [r'GAND/healthz', r'GAND/metrics', r'GAND/api/v1/openapi\.json',
                        r'GAND/api/v1/datasets', r'GAND/api/v1/presets', r'-X POST "\$GAND/api/v1/runs"',
                        r'curl -fsS "\$GAND/api/v1/runs"', r'curl -fsS "\$GAND\$RUN"',
                        r'-X PATCH "\$GAND\$RUN2?"', r'-X DELETE "\$GAND\$RUN2?"',
                        r'-X POST "\$GAND\$RUN2?/pause"', r'-X POST "\$GAND\$RUN2?/resume"',
                        r'-X POST "\$GAND\$RUN2?/stop"', r'\$GAND\$RUN/metrics',
                        r'\$GAND\$RUN/events', r'\$GAND\$RUN/samples\.png',
                        r'\$GAND\$RUN/samples/\d+\.png', r'\$GAND\$RUN/checkpoint',
                        r'\$GAND\$RUN/checkpoint\?which=best', r'"watch": \[',
                        r'-X POST "\$GAND\$RUN/evaluations"', r'curl -fsS "\$GAND\$EVAL"',
                        r'curl -fsS "\$GAND\$RUN/evaluations"', r'\$GAND\$RUN/samples\?',
                        r'-X POST "\$GAND\$RUN/generate', r'\$GAND\$RUN/interpolate\?']:
            self.assertRegex(script, pattern)

    def test_examples_run_as_written(self):
        blocks = api_blocks()
        self.assertGreaterEqual(len(blocks), 10)
        # "mnist" is the 10,000-digit set here, as it was when these examples were written:
        # the full MNIST would make every epoch and evaluation of them ten times longer
        # (with the 10,000-digit set's classifier, so that the watch examples have metrics)
        classifier = os.path.join(gandtest.SOURCE_ROOT, "data", "mnist-10k-classifier.safetensors")
        d = self.daemon(config=self.conf("[datasets]\nmnist = %s\nmnist.holdout = 2000\n"
                                         "mnist.classifier = %s\n"
                                         % (gandtest.BUNDLED_IMAGES, classifier))).start()
        work = os.path.join(self.dir, "cwd")
        os.makedirs(work)
        script = "".join('echo "### README API example %d" >&2\n%s' % (i + 1, b)
                         for i, b in enumerate(blocks))
        env = dict(os.environ, GAND=d.base)
        t0 = time.time()
        p = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=work, env=env,
                           capture_output=True, text=True, timeout=300)
        out = p.stdout + p.stderr
        self.assertEqual(p.returncode, 0, "the README's examples failed:\n" + out[-4000:])
        self.assertLess(time.time() - t0, 240)
        # what the examples say they make
        pngs = {}
        for n in ("samples.png", "epoch-3.png", "generated.png", "interpolation.png"):
            with open(os.path.join(work, n), "rb") as f:
                pngs[n] = f.read()
        self.assertEqual(gandtest.png_size(pngs["samples.png"]), gandtest.grid_size(64, 2))
        gandtest.png_size(pngs["epoch-3.png"])
        self.assertEqual(gandtest.png_size(pngs["generated.png"]), gandtest.grid_size(2, 3))
        self.assertEqual(gandtest.png_size(pngs["interpolation.png"]), ((10 * 29 + 1) * 2, 30 * 2))
        with open(os.path.join(work, "pixels.json")) as f:
            self.assertEqual([len(im) for im in json.load(f)["images"]], [784])
        exported = [n for n in os.listdir(work) if n.endswith("-samples-1000-seed0-idx3-ubyte.gz")]
        self.assertEqual(len(exported), 1, os.listdir(work))
        with gzip.open(os.path.join(work, exported[0])) as f:
            self.assertEqual(f.read(8), b"\x00\x00\x08\x03\x00\x00\x03\xe8")
        self.assertIn('"state":"done"', p.stdout)
        self.assertIn('"parzen_ll":', p.stdout)
        self.assertTrue([n for n in os.listdir(work) if n.endswith(".safetensors")],
                        os.listdir(work))
        self.assertIn("304", p.stdout.splitlines(), p.stdout[-3000:])
        self.assertIn('"status":422', p.stdout)
        self.assertIn("event: epoch", p.stdout)
        # the examples clean up after themselves: both runs deleted
        self.assertEqual(d.get_json("/api/v1/runs")["runs"], [])
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    gandtest.main()

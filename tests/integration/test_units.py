"""tests/integration/test_units.py — the generated systemd units pass `systemd-analyze verify`.

The units under test are the ones meson generated into the build directory
($GAND_UNIT_DIR). `verify` insists that ExecStart's binary exists, and the install
prefix's does not before `meson install`, so the copies checked here have that one
path (@bindir@/gand) replaced by the built binary; nothing else is changed.
`verify` exits 0 on many problems (an unknown key is a warning), so any output at
all is a failure. Without systemd-analyze the test is skipped (exit 77: SKIP).
"""
import os
import shutil
import subprocess
import sys
import tempfile

UNIT_DIR = os.environ.get("GAND_UNIT_DIR", "")
BINDIR = os.environ.get("GAND_INSTALL_BINDIR", "")
GAND = os.environ.get("GAND_BIN", "")
UNITS = ["gand.service", "gand.socket", "gand@.service"]


def main():
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        print("SKIP: systemd-analyze is not installed (apt-get install systemd)")
        return 77
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for unit in UNITS:
            with open(os.path.join(UNIT_DIR, unit)) as f:
                text = f.read()
            exec_start = os.path.join(BINDIR, "gand")
            if "@bindir@" in text or "@sysconfdir@" in text:
                print("FAIL: %s still holds an unsubstituted @name@" % unit)
                failures += 1
            if unit.endswith(".service") and "ExecStart=%s serve " % exec_start not in text:
                print("FAIL: %s does not run %s serve" % (unit, exec_start))
                failures += 1
            with open(os.path.join(tmp, unit), "w") as f:
                f.write(text.replace(exec_start, GAND))
        # the template also as an instance, as systemctl would start it
        shutil.copy(os.path.join(tmp, "gand@.service"), os.path.join(tmp, "gand@0.service"))
        for unit in UNITS + ["gand@0.service"]:
            p = subprocess.run([analyze, "verify", "--man=no", os.path.join(tmp, unit)],
                               capture_output=True, text=True, cwd=tmp)
            out = (p.stdout + p.stderr).strip()
            status = "ok" if p.returncode == 0 and not out else "FAIL"
            print("%s: systemd-analyze verify %s (exit %d)%s" %
                  (status, unit, p.returncode, ("\n" + out) if out else ""))
            failures += status != "ok"
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# Builds gand and runs the whole test suite twice: a release-like build with
# -Werror, then an AddressSanitizer + UndefinedBehaviorSanitizer build. Then the
# tests that must give the same figures on any CPU under each other OpenBLAS
# kernel this CPU can execute, the fast unit tests of the first build under
# valgrind's memcheck, and each fuzz target of tests/fuzz for 30 s in a build of
# its own. Installs what it needs first (scripts/deps.sh test). Ends with
# "N passed, N failed, N skipped", counting every test run of this invocation
# (each step's own meson test log); only the GPU tests may skip.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test

logs=() # "label=path" of each meson test log this run wrote
# run again under each forced OpenBLAS kernel (see below)
kernel_tests=(generate parzen sample_metrics ops trainer graph_replay classifier integration_evaluate)

run_suite() { # build dir, extra meson options...
    local dir=$1
    shift
    if [ -f "$dir/build.ninja" ]; then
        meson configure "$dir" "$@" >/dev/null
    else
        meson setup "$dir" "$@" >/dev/null
    fi
    ninja -C "$dir"
    rm -f "$dir/meson-logs/testlog.json"
    meson test -C "$dir" --print-errorlogs --num-processes 2 || true
    logs+=("$dir=$dir/meson-logs/testlog.json")
}

step_start=$SECONDS
step_done() { # name
    echo "== $1: $((SECONDS - step_start)) s"
    step_start=$SECONDS
}

run_suite build-test -Dwerror=true -Dbuildtype=debugoptimized
step_done build-test
# -O1, as AddressSanitizer's documentation advises: at -O0 the tests that train (the
# trainer's, the Slurm jobs') ran 3-5x slower, a third of the whole suite.
run_suite build-asan -Dwerror=true -Doptimization=1 -Ddebug=true -Db_sanitize=address,undefined \
    -Db_lundef=false
step_done build-asan

# The tests of what must not depend on the CPU (the pixels of a latent vector,
# and every test whose figures come from OpenBLAS), again under other OpenBLAS
# kernels than the one this CPU picks: each one the CPU can execute.
cpu_flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
for core in Prescott Sandybridge Haswell Zen SkylakeX; do
    case $core in
    Prescott) need="pni" ;;
    Sandybridge) need="avx" ;;
    Haswell | Zen) need="avx2 fma" ;;
    SkylakeX) need="avx512f avx512dq avx512bw avx512vl" ;;
    esac
    ok=true
    for f in $need; do
        [[ " $cpu_flags " == *" $f "* ]] || ok=false
    done
    if [ $ok = false ]; then
        echo "== OPENBLAS_CORETYPE=$core: not run (this CPU lacks one of: $need)"
        continue
    fi
    rm -f "build-test/meson-logs/testlog-$core.json"
    OPENBLAS_CORETYPE=$core meson test -C build-test --logbase "testlog-$core" --print-errorlogs \
        --num-processes 2 "${kernel_tests[@]}" || true
    logs+=("build-test (OpenBLAS kernel $core)=build-test/meson-logs/testlog-$core.json")
done
step_done openblas-kernels

# Memcheck over the fast unit tests (not trainer: minutes under valgrind; not cpu_machine:
# valgrind does not emulate the flush-to-zero modes that test checks). Definite
# and indirect leaks fail a test; tests/valgrind.supp holds system-library noise only.
# With a wrapper, meson names the log after it: testlog-valgrind.json.
valgrind_tests=(config idx png_grid safetensors parzen ops generate)
rm -f build-test/meson-logs/testlog-valgrind.json
meson test -C build-test --suite unit --print-errorlogs --num-processes 2 \
    --wrapper "valgrind --error-exitcode=1 --leak-check=full \
--errors-for-leak-kinds=definite,indirect --track-origins=no \
--suppressions=$PWD/tests/valgrind.supp" "${valgrind_tests[@]}" || true
logs+=("build-test (valgrind)=build-test/meson-logs/testlog-valgrind.json")
step_done valgrind

# libFuzzer targets, when clang can link one (clang + libclang-rt-dev).
have_libfuzzer() {
    command -v clang >/dev/null || return 1
    local d ok=1
    d=$(mktemp -d)
    printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
        'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return d && n; }' >"$d/probe.c"
    if clang -fsanitize=fuzzer,address,undefined "$d/probe.c" -o "$d/probe" 2>/dev/null; then
        ok=0
    fi
    rm -rf "$d"
    return $ok
}
if have_libfuzzer; then
    fuzz_opts=(-Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false -Dtests=true)
    if [ -f build-fuzz/build.ninja ]; then
        meson configure build-fuzz "${fuzz_opts[@]}" >/dev/null
    else
        CC=clang meson setup build-fuzz "${fuzz_opts[@]}" >/dev/null
    fi
    # meson test builds just what the fuzz suite needs, not the whole tree.
    rm -f build-fuzz/meson-logs/testlog.json
    meson test -C build-fuzz --suite fuzz --print-errorlogs --num-processes 2 || true
    logs+=("build-fuzz=build-fuzz/meson-logs/testlog.json")
    step_done fuzz
else
    echo "== fuzz: skipped (no clang with libFuzzer: apt-get install clang libclang-rt-14-dev)"
fi

# Only the GPU tests may skip (without a device). The browser test may skip
# only where scripts/deps.sh wrote down why its packages cannot be installed.
python3 - "${logs[@]}" <<'PY'
import json, os, sys
unavailable = None
if os.path.exists("tests/browser/UNAVAILABLE"):
    unavailable = open("tests/browser/UNAVAILABLE").read().strip()
passed = failed = skipped = 0
for arg in sys.argv[1:]:
    label, path = arg.split("=", 1)
    try:
        f = open(path)
    except FileNotFoundError:
        failed += 1
        print(f"FAILED: {label}: no test log ({path}): the build or meson test failed")
        continue
    with f:
        for line in f:
            r = json.loads(line)
            if r["result"] in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif r["result"] == "SKIP" and r["name"].startswith("gand:gpu /"):
                skipped += 1
            elif r["result"] == "SKIP" and r["name"].startswith("gand:browser /") and unavailable:
                skipped += 1
                print(f"SKIPPED: {label}: {r['name']}: {unavailable}")
            elif r["result"] == "SKIP":
                failed += 1
                why = (r.get("stdout") or "").strip().splitlines()[-1:] or ["no reason given"]
                print(f"FAILED: {label}: {r['name']} skipped ({why[0]}): "
                      "only the GPU tests may skip; scripts/deps.sh test installs what the rest need")
            else:
                failed += 1
                print(f"FAILED: {label}: {r['name']} ({r['result']})")
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
PY

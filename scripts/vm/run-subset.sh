#!/bin/sh
# run-subset.sh DIR: runs the tests listed in DIR/subset.txt, each alone,
# with the test binaries in DIR/tests and flameprof and the examples in
# DIR/target/release; ends with `N passed, M failed` (exit 0 only when none
# failed). POSIX sh: it runs in the guest (busybox) and on this machine.
dir=${1:?usage: run-subset.sh DIR}
# Not root, every test would skip itself and look passed.
if [ "$(id -u)" != 0 ]; then
    echo "run-subset.sh: needs root (BPF): run it with sudo" >&2
    exit 1
fi
# The tests find flameprof and the examples through CARGO_TARGET_DIR.
export CARGO_TARGET_DIR="$dir/target"
# Each test has its own time limits; this one only catches a hang.
limit=${FLAMEPROF_VM_TEST_TIMEOUT:-600}
log=${TMPDIR:-/tmp}/flameprof-subset.$$.log
passed=0
failed=0
while read -r binary name; do
    case $binary in '' | '#'*) continue ;; esac
    start=$(date +%s)
    timeout "$limit" "$dir/tests/$binary" --exact --test-threads=1 "$name" </dev/null >"$log" 2>&1
    seconds=$(($(date +%s) - start))
    # A test passed only when libtest says so: a crash, a hang or a
    # misspelled name count as failures.
    if grep -q "^test $name \.\.\. ok$" "$log"; then
        passed=$((passed + 1))
        echo "PASS $binary::$name (${seconds} s)"
    else
        failed=$((failed + 1))
        echo "FAIL $binary::$name (${seconds} s)"
        sed 's/^/    /' "$log"
    fi
done <"$dir/subset.txt"
rm -f "$log"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# The table `make test` ends with: one row per suite (tests run, skipped and why, failed), so
# that a run that did nothing cannot look green. Rows are tab-separated lines in FILE:
#   suite  run  skipped  failed  why
#
# usage:
#   summary.sh reset FILE
#   summary.sh ctest FILE SUITE BUILD_DIR STATUS   row from BUILD_DIR's last ctest log
#   summary.sh row FILE SUITE RUN SKIPPED FAILED WHY
#   summary.sh ensure FILE SUITE                   a suite that wrote no row did not finish
#   summary.sh print FILE                          the table; exit 1 on failures or 0 tests run
set -euo pipefail

cmd="${1:-}"
file="${2:-}"
if [ -z "$cmd" ] || [ -z "$file" ]; then
    echo "usage: $0 reset|ctest|row|ensure|print FILE ..." >&2
    exit 2
fi

row() { # suite run skipped failed why
    mkdir -p "$(dirname "$file")"
    printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >>"$file"
}

case "$cmd" in
reset)
    mkdir -p "$(dirname "$file")"
    : >"$file"
    ;;
ctest)
    suite="$3" dir="$4" status="$5"
    log="$dir/Testing/Temporary/LastTest.log"
    if [ ! -f "$log" ]; then
        row "$suite" 0 0 1 "no ctest log in $dir (ctest did not run)"
        exit 0
    fi
    # ctest tests, the cmocka cases inside them, skipped cmocka cases (each name once) and
    # the reasons the tests printed ("SKIP: ..."), failed ctest tests
    run=$(grep -c '^[0-9]*/[0-9]* Testing:' "$log" || true)
    cases=$(grep -c '^\[ RUN      \]' "$log" || true)
    skipped=$(grep '^\[  SKIPPED \] ' "$log" | grep -v 'test(s), listed below' | sort -u | wc -l)
    why=$(grep -o 'SKIP: .*' "$log" | sed 's/^SKIP: //' | sort -u | paste -sd ';' - | cut -c1-200 || true)
    failed=$(grep -c '^Test Failed' "$log" || true)
    if [ "$status" != 0 ] && [ "$failed" = 0 ]; then failed=1; why="ctest exit $status${why:+; $why}"; fi
    [ "$run" != 0 ] || { failed=1; why="no tests ran${why:+; $why}"; }
    row "$suite" "$run ($cases cases)" "$skipped" "$failed" "${why:--}"
    ;;
row)
    [ $# -eq 7 ] || { echo "usage: $0 row FILE SUITE RUN SKIPPED FAILED WHY" >&2; exit 2; }
    row "$3" "$4" "$5" "$6" "$7"
    ;;
ensure)
    suite="$3"
    if ! cut -f1 "$file" 2>/dev/null | grep -qx "$suite"; then
        row "$suite" 0 0 1 "did not finish (a build or setup step failed: see above)"
    fi
    ;;
print)
    [ -s "$file" ] || { echo "test summary: no suite ran"; exit 1; }
    bad=0 total=0
    printf '\n%-10s %-16s %-8s %-7s %s\n' suite "tests run" skipped failed "why skipped / notes"
    printf '%-10s %-16s %-8s %-7s %s\n' ---------- ---------------- -------- ------- -------------------
    while IFS=$'\t' read -r suite run skipped failed why; do
        printf '%-10s %-16s %-8s %-7s %s\n' "$suite" "$run" "$skipped" "$failed" "$why"
        [ "$failed" = 0 ] || bad=1
        total=$((total + ${run%% *}))
    done <"$file"
    if [ "$total" = 0 ]; then
        echo "test summary: FAILED (no test ran in any suite)"
        exit 1
    fi
    if [ "$bad" != 0 ]; then
        echo "test summary: FAILED"
        exit 1
    fi
    echo "test summary: passed ($total tests run; skipped suites and tests are listed above)"
    ;;
*)
    echo "summary.sh: unknown command $cmd" >&2
    exit 2
    ;;
esac

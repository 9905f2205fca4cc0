#!/usr/bin/env bash
# Mutation smoke: applies each one-line mutation of tests/mutation/mutations.tsv to a
# throw-away copy of the tree, rebuilds it incrementally (plain -O1, no sanitizers, only the
# targets the mutation's tests need), runs those tests with a timeout and says whether they
# caught it. Prints one line per mutation, the survivors, the score and the wall time.
#
# A mutation whose pattern no longer matches exactly once, or that does not compile, is an
# ERROR (never counted as caught). Mutations marked equivalent must survive; they are left
# out of the score. Before any mutation the same tests must pass on the unmutated copy.
#
# usage: tests/mutation/run.sh [--check] [--only REGEX] [--timeout SECONDS] [--jobs N]
#   --check     only verify that every pattern still matches exactly once (no build)
#   --only RE   run the mutations whose id matches the extended regex RE
# env: BN_MUTATION_DIR (the copy; default ${TMPDIR:-/tmp}/bitnet-mutation.<uid>.<tree name>),
#      BN_SHARED_DIR (reference material, default ../shared).
# exit: 0 when every non-equivalent mutation was caught and nothing was an error, else 1.
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
list="$root/tests/mutation/mutations.tsv"
work="${BN_MUTATION_DIR:-${TMPDIR:-/tmp}/bitnet-mutation.$(id -u).$(basename "$root")}"
shared="$(cd "${BN_SHARED_DIR:-$root/../shared}" 2>/dev/null && pwd || echo "$root/../shared")"
timeout=300
jobs=2
only=""
check_only=0
# programs that tests start (bin/bitnet-run, bin/bootstrap, tools): relinked after each change
programs="bitnet-run bootstrap bitnet-server gguf-inspect bitnet-make-model"

while [ $# -gt 0 ]; do
    case "$1" in
    --check) check_only=1 ;;
    --only) only="$2"; shift ;;
    --timeout) timeout="$2"; shift ;;
    --jobs) jobs="$2"; shift ;;
    -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

# The mutations: id module file tests pattern replacement equivalent (tab-separated).
ids=() modules=() files=() tests=() patterns=() replacements=() equivalents=()
while IFS=$'\t' read -r id module file tst pattern replacement equivalent; do
    case "$id" in '' | '#'*) continue ;; esac
    if [ -z "$equivalent" ]; then
        echo "mutations.tsv: $id: expected 7 tab-separated columns" >&2
        exit 2
    fi
    if [ -n "$only" ] && ! [[ $id =~ $only ]]; then continue; fi
    ids+=("$id") modules+=("$module") files+=("$file") tests+=("$tst")
    patterns+=("$pattern") replacements+=("$replacement") equivalents+=("$equivalent")
done <"$list"
n=${#ids[@]}
[ "$n" -gt 0 ] || { echo "run.sh: no mutation selected" >&2; exit 2; }

# Occurrences of the text $2 in the text $1 (0, 1 or 2 = "more than one").
count_in() {
    local text="$1" pat="$2" rest
    case "$text" in *"$pat"*) ;; *) echo 0; return ;; esac
    rest="${text#*"$pat"}"
    case "$rest" in *"$pat"*) echo 2 ;; *) echo 1 ;; esac
}

# Checks the pattern of mutation $1 against the file in tree $2; prints a reason when bad.
pattern_problem() {
    local i="$1" tree="$2" text c
    [ -f "$tree/${files[$i]}" ] || { echo "file ${files[$i]} does not exist"; return; }
    text=$(<"$tree/${files[$i]}")
    c=$(count_in "$text" "${patterns[$i]}")
    [ "$c" = 1 ] || echo "pattern occurs $([ "$c" = 0 ] && echo "nowhere" || echo "more than once") in ${files[$i]}: ${patterns[$i]}"
}

errors=0
for ((i = 0; i < n; i++)); do
    p=$(pattern_problem "$i" "$root")
    if [ -n "$p" ]; then
        echo "ERROR    ${ids[$i]}: $p"
        errors=$((errors + 1))
    fi
done
if [ "$check_only" = 1 ]; then
    echo "mutation check: $n mutations, $errors with a pattern that does not match exactly once"
    [ "$errors" = 0 ]
    exit
fi

start=$(date +%s)
# ---------------------------------------------------------------- the throw-away copy
# Files of the tree (tracked and new, not ignored) copied when their content differs, so an
# unchanged file keeps its time stamp and the build stays incremental; files gone from the
# tree are removed from the copy (the CMake globs would still build them).
mkdir -p "$work/tree"
(cd "$root" && git ls-files -co --exclude-standard -- CMakeLists.txt README.md cmake kernels src tests tools bench) \
    >"$work/files.txt"
while IFS= read -r f; do
    [ -f "$root/$f" ] || continue
    if ! cmp -s "$root/$f" "$work/tree/$f"; then
        mkdir -p "$(dirname "$work/tree/$f")"
        cp "$root/$f" "$work/tree/$f"
    fi
done <"$work/files.txt"
(cd "$work/tree" && find CMakeLists.txt README.md cmake kernels src tests tools bench -type f 2>/dev/null) |
    while IFS= read -r f; do
        grep -qxF "$f" "$work/files.txt" || rm -f "$work/tree/$f"
    done

build="$work/build"
log="$work/log"
mkdir -p "$log"
echo "mutation: copy in $work/tree, build in $build"
cmake -S "$work/tree" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-O1" \
    -DBITNET_SHARED_DIR="$shared" >"$log/configure.txt" 2>&1 ||
    { tail -20 "$log/configure.txt"; echo "mutation: configure failed" >&2; exit 1; }

# Builds the targets of test list $1 (+ the programs); runs those tests. 0 = all passed.
build_and_test() {
    local tst="$1" out="$2" regex
    # shellcheck disable=SC2086 # word splitting of the target lists is intended
    cmake --build "$build" -j "$jobs" --target $tst $programs >"$out.build" 2>&1 || return 3
    regex="^($(echo "$tst" | tr ' ' '|'))\$"
    (cd "$build" && ctest --no-tests=error --stop-on-failure -R "$regex" --timeout "$timeout" \
        -j "$jobs" --output-on-failure) >"$out.test" 2>&1
}

# ---------------------------------------------------------------- baseline
all_tests=$(printf '%s\n' "${tests[@]}" | tr ' ' '\n' | sort -u | tr '\n' ' ')
echo "mutation: baseline (unmutated) build and tests: $all_tests"
if ! build_and_test "$all_tests" "$log/baseline"; then
    tail -40 "$log/baseline.build" "$log/baseline.test" 2>/dev/null
    echo "mutation: the tests fail without any mutation; fix that first" >&2
    exit 1
fi
echo "mutation: baseline passed in $(($(date +%s) - start)) s"

# ---------------------------------------------------------------- each mutation
caught=0 survived=0 equivalent=0
survivors=()
for ((i = 0; i < n; i++)); do
    id="${ids[$i]}" f="${files[$i]}"
    p=$(pattern_problem "$i" "$work/tree")
    [ -z "$p" ] || continue # reported above
    t0=$(date +%s)
    cp "$work/tree/$f" "$work/pristine"
    text=$(<"$work/tree/$f")
    rep="${replacements[$i]}"
    [ "$rep" = "<delete>" ] && rep=""
    printf '%s\n' "${text/"${patterns[$i]}"/"$rep"}" >"$work/tree/$f"
    build_and_test "${tests[$i]}" "$log/$id"
    rc=$?
    cp "$work/pristine" "$work/tree/$f" # a fresh time stamp: the next build recompiles it
    dt=$(($(date +%s) - t0))
    eq="${equivalents[$i]}"
    if [ "$rc" = 3 ]; then
        echo "ERROR    $id: does not compile (see $log/$id.build)"
        errors=$((errors + 1))
    elif [ "$rc" != 0 ]; then
        if [ "$eq" != "-" ]; then
            echo "ERROR    $id: marked equivalent but caught (${dt} s): the reason is wrong: $eq"
            errors=$((errors + 1))
        else
            failed=$(sed -n 's/^[[:space:]]*[0-9]* - \([^ ]*\) .*/\1/p' "$log/$id.test" | paste -sd, -)
            echo "caught   $id (${dt} s; ${failed:-timeout})"
            caught=$((caught + 1))
        fi
    elif [ "$eq" != "-" ]; then
        echo "equiv    $id (${dt} s): $eq"
        equivalent=$((equivalent + 1))
    else
        echo "SURVIVED $id (${dt} s): ${f}: ${patterns[$i]} -> ${replacements[$i]}"
        survived=$((survived + 1))
        survivors+=("$id")
    fi
done

total=$((caught + survived))
elapsed=$(($(date +%s) - start))
echo
echo "mutation: $caught caught, $survived survived, $equivalent equivalent, $errors errors" \
     "of $n mutations in ${elapsed} s"
[ "$survived" = 0 ] || echo "mutation: survivors: ${survivors[*]}"
if [ "$total" -gt 0 ]; then
    echo "mutation score: $caught/$total = $((100 * caught / total))% caught (equivalent mutants excluded)"
fi
[ "$survived" = 0 ] && [ "$errors" = 0 ]

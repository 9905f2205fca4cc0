#!/usr/bin/env bash
# Prints the loader (PT_INTERP) and every shared library that ELF files need, recursively, one
# absolute path per line as seen from inside ROOT; exits 1 naming each one that ROOT lacks.
# Libraries are looked up the way glibc's ld.so does without an ld.so.cache: DT_RUNPATH, then
# /lib/<triplet>, /usr/lib/<triplet>, /lib, /usr/lib, skipping files of another machine type.
# Symbolic links inside ROOT are followed as the loader in ROOT would (absolute targets stay
# inside ROOT). Works for any target architecture: it only reads headers (readelf).
#
# The Dockerfile copies what it prints (ROOT /) into the image; tests/container/run.sh checks
# the exported image with --root.
#
# usage: tools/elf-deps.sh [--root DIR] ELF...      (ELF paths are host paths)
set -euo pipefail
export LC_ALL=C

ROOT=""
if [ "${1:-}" = --root ]; then
    [ $# -ge 2 ] || { echo "elf-deps: --root needs a directory" >&2; exit 2; }
    ROOT="${2%/}"
    shift 2
fi
[ $# -ge 1 ] || { echo "usage: tools/elf-deps.sh [--root DIR] ELF..." >&2; exit 2; }
command -v readelf >/dev/null || { echo "elf-deps: needs readelf (binutils)" >&2; exit 2; }

# The host path of PATH resolved inside ROOT (symlinks followed, at most 40), or nothing.
in_root() {
    local rest="${1#/}" done="" comp target links=0
    while [ -n "$rest" ]; do
        comp="${rest%%/*}"
        if [ "$comp" = "$rest" ]; then rest=""; else rest="${rest#*/}"; fi
        case "$comp" in
            "" | .) continue ;;
            ..) done="${done%/*}"; continue ;;
        esac
        if [ -L "$ROOT$done/$comp" ]; then
            links=$((links + 1))
            [ "$links" -le 40 ] || return 0
            target=$(readlink "$ROOT$done/$comp")
            case "$target" in
                /*) done=""; rest="${target#/}${rest:+/$rest}" ;;
                *) rest="$target${rest:+/$rest}" ;;
            esac
        else
            done="$done/$comp"
        fi
    done
    if [ -f "$ROOT$done" ]; then printf '%s\n' "$ROOT$done"; fi
}

# The ELF machine name of $1 as readelf prints it; empty for a file that is not ELF.
machine() {
    readelf -h "$1" 2>/dev/null | sed -n 's/^ *Machine: *//p' || true
}

triplet() {
    case "$1" in
        AArch64) echo aarch64-linux-gnu ;;
        "Advanced Micro Devices X86-64") echo x86_64-linux-gnu ;;
        *) echo "unknown" ;;
    esac
}

status=0
declare -A seen=()
queue=("$@")
for f in "${queue[@]}"; do
    [ -f "$f" ] || { echo "elf-deps: $f: no such file" >&2; exit 2; }
done

i=0
while [ "$i" -lt "${#queue[@]}" ]; do
    file="${queue[$i]}"
    i=$((i + 1))
    mach=$(machine "$file")
    [ -n "$mach" ] || { echo "elf-deps: $file: not an ELF file" >&2; exit 2; }
    dirs=()
    while read -r rp; do
        IFS=: read -ra parts <<<"$rp"
        for d in "${parts[@]}"; do
            case "$d" in *'$'*) ;; ?*) dirs+=("$d") ;; esac
        done
    done < <(readelf -dW "$file" | sed -n 's/.*(RUNPATH).*\[\(.*\)\]$/\1/p')
    t=$(triplet "$mach")
    dirs+=("/lib/$t" "/usr/lib/$t" /lib /usr/lib)

    interp=$(readelf -lW "$file" | sed -n 's/.*Requesting program interpreter: \(.*\)\]$/\1/p')
    if [ -n "$interp" ] && [ -z "${seen[$interp]:-}" ]; then
        seen[$interp]=1
        host=$(in_root "$interp")
        if [ -z "$host" ]; then
            echo "elf-deps: $file: loader $interp is missing from ${ROOT:-/}" >&2
            status=1
        else
            echo "$interp"
            queue+=("$host")
            seen[$mach:${interp##*/}]=1 # libc's NEEDED entry for the loader is the loader itself
        fi
    fi

    while read -r name; do
        [ -n "${seen[$mach:$name]:-}" ] && continue
        seen[$mach:$name]=1
        found=""
        if [[ "$name" == */* ]]; then
            host=$(in_root "$name")
            [ -n "$host" ] && found="$name"
        else
            for d in "${dirs[@]}"; do
                host=$(in_root "$d/$name")
                if [ -n "$host" ] && [ "$(machine "$host")" = "$mach" ]; then
                    found="$d/$name"
                    break
                fi
            done
        fi
        if [ -z "$found" ]; then
            echo "elf-deps: $file needs $name ($mach), not found in ${ROOT:-/} (${dirs[*]})" >&2
            status=1
            continue
        fi
        if [ -z "${seen[$found]:-}" ]; then
            seen[$found]=1
            echo "$found"
            queue+=("$host")
        fi
    done < <(readelf -dW "$file" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p')
done
exit "$status"

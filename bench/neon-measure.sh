#!/usr/bin/env bash
# neon-measure.sh - what each NEON kernel path costs per weight without ARM hardware:
# executed instructions per weight (qemu-aarch64 + an instruction-counting TCG plugin) and
# llvm-mca cycles per weight of the hottest loops on Neoverse N1 / V1 / V2 (Graviton 2/3/4).
#
# usage: bench/neon-measure.sh [-p PATHS] [-s SHAPES] [-r ROWS] [-m MCA_CPUS] [-o OUT.md]
#   -p  comma-separated paths (default neon,neon-dotprod,neon-dotprod-rp,neon-lut,lmhead,lmhead-i8;
#       neon-i8mm only differs from neon-dotprod for >= 4 rows: -r 64 -p neon-dotprod,neon-i8mm)
#   -s  comma-separated KxM shapes (default 2560x2560,2560x640,2560x6912,6912x2560)
#   -r  activation rows per call (default 1 = decode; e.g. 64 for prefill)
#   -m  llvm-mca cores (default neoverse-n1,neoverse-v1,neoverse-v2)
#   -o  also write the markdown table to this file
#
# It drives ../shared/arm/neon_measure.sh (set NEON_MEASURE=/path/to/neon_measure.sh to use
# another copy), which cross-compiles bench/neon_harness.c with the kernel sources, checks the
# results against the scalar twin under qemu, counts the instructions each kernel function
# executes and feeds the hottest blocks to llvm-mca. Needs: that script and its
# qemu_insn_count.c, qemu-user (qemu-aarch64 with -plugin), gcc-aarch64-linux-gnu, python3,
# llvm-mca / llvm-mc (llvm-19 for a Neoverse V2 model: apt-get install llvm-19).
# Without ../shared it prints what is missing and exits 0 (nothing to measure).
#
# A path's figure is the sum over the functions it spends its time in (bench/neon_harness.c
# lists them): instructions over the whole run; cycles over the hottest blocks of each
# function (>= 90% of its instructions), i.e. the in-core (L1-resident) bound of the loops.
# neon-i8mm runs on qemu's "max" core (graviton3 flags); the others on neoverse-n1. The LM
# head row ("lmhead") is per f16 weight, 2048 rows x K of the 128256-row matrix; "lmhead-i8" is
# the screened head's int8 pass (per int8 weight, same shape).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
paths="neon,neon-dotprod,neon-dotprod-rp,neon-lut,lmhead,lmhead-i8"
shapes="2560x2560,2560x640,2560x6912,6912x2560"
rows=1
cpus="neoverse-n1,neoverse-v1,neoverse-v2"
out=""
while getopts "p:s:r:m:o:h" o; do
  case $o in
    p) paths=$OPTARG ;; s) shapes=$OPTARG ;; r) rows=$OPTARG ;; m) cpus=$OPTARG ;;
    o) out=$OPTARG ;; *) sed -n '2,26p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done

measure=${NEON_MEASURE:-$root/../shared/arm/neon_measure.sh}
if [[ ! -x $measure ]]; then
  echo "neon-measure: SKIPPED: $measure not found."
  echo "  It needs ../shared/arm/neon_measure.sh and qemu_insn_count.c (the measuring tools),"
  echo "  or NEON_MEASURE=/path/to/neon_measure.sh."
  exit 0
fi
missing=""
for t in qemu-aarch64 aarch64-linux-gnu-gcc python3; do
  command -v "$t" >/dev/null 2>&1 || missing+=" $t"
done
if [[ -n $missing ]]; then
  echo "neon-measure: SKIPPED: missing$missing (apt-get install qemu-user gcc-aarch64-linux-gnu python3)"
  exit 0
fi
if ! command -v llvm-mca-19 >/dev/null 2>&1; then
  echo "neon-measure: note: llvm-mca-19 not found; an older llvm-mca has no Neoverse V2 model" \
       "(apt-get install llvm-19)" >&2
fi

srcs=("$root/bench/neon_harness.c" "$root"/kernels/neon/*.c "$root"/kernels/scalar/*.c
      "$root/kernels/dispatch.c")
export CFLAGS="-I$root/kernels -I$root/src -D_GNU_SOURCE"
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

IFS=, read -r -a cpu_list <<<"$cpus"
header="| path | K x M | rows | instructions / weight |"
sep="|---|---|---|---|"
for c in "${cpu_list[@]}"; do header+=" $c cycles / weight |"; sep+="---|"; done
table="$header"$'\n'"$sep"$'\n'

IFS=, read -r -a path_list <<<"$paths"
IFS=, read -r -a shape_list <<<"$shapes"
for p in "${path_list[@]}"; do
  gen=graviton2
  [[ $p == neon-i8mm ]] && gen=graviton3
  plist=("${shape_list[@]}")
  [[ $p == lmhead || $p == lmhead-i8 ]] && plist=("2560x2048")
  for s in "${plist[@]}"; do
    k=${s%x*} m=${s#*x}
    f="$log/$p-$s.txt"
    echo "== $p $s rows=$rows ($gen)" >&2
    if ! "$measure" -g "$gen" -m "$cpus" -n 2 "${srcs[@]}" -- "$p" "$k" "$m" "$rows" 1 >"$f" 2>&1; then
      echo "neon-measure: $p $s failed:" >&2
      tail -5 "$f" >&2
      table+="| $p | $s | $rows | failed |"$'\n'
      continue
    fi
    # instructions per unit, summed over the path's functions
    ipw=$(awk '/^-- .* instructions +=/ { for (i = 1; i <= NF; i++) if ($i == "per") s += $(i - 1) }
               END { printf "%.4f", s }' "$f")
    row="| $p | $s | $rows | $ipw |"
    for c in "${cpu_list[@]}"; do
      cyc=$(awk -v c="$c:" '$1 == c && /these blocks alone/ { for (i = 1; i <= NF; i++) if ($i == "cycles") s += $(i - 1); n++ }
                            END { if (n) printf "%.4f", s; else printf "n/a" }' "$f")
      row+=" $cyc |"
    done
    table+="$row"$'\n'
    echo "$row" >&2
  done
done
printf '\n%s' "$table"
if [[ -n $out ]]; then
  printf '%s' "$table" >"$out"
fi

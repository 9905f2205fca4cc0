#!/usr/bin/env python3
"""Differential check of the hand-written pre-tokenizers against a regex engine.

Random strings over characters chosen to hit every branch (contractions incl. U+017F,
letters, marks, Unicode digits, White_Space incl. U+0085 and not U+FEFF/U+200B, CR/LF,
punctuation, symbols) are split by bin/pretokenize-split and by Python's third-party
`regex` module (the engine of the shared tokenizer README's own reference), with:
  llama3:  Llama 3's split pattern;
  default: llama.cpp's four passes, each splitting the previous pieces.
Developer-run (needs `pip install regex`); not part of the CI.

Usage: python3 tools/check_pretokenize.py BUILD_DIR/bin/pretokenize-split [N]
"""
import random
import subprocess
import sys

import regex

LLAMA3 = regex.compile(
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
DEFAULT = [
    regex.compile(r"[\p{P}\$\+<=>\^~\|]+"),
    regex.compile(r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"),
    regex.compile(r"\p{N}+"),
    regex.compile(r"[0-9][0-9][0-9]"),
]
# Only characters assigned in Unicode 15.0 (the committed tables' version).
CHARS = list("abcXYZSTLERVDM019 '\t\r\n\v\f.,!?-_()<|>$+=~`^\"@#") + [
    "\u0085", "\u00a0", "\u3000", "\u2009", "\u1680", "\u2028", "\u001c", "\u017f", "\u0301",
    "\u4e2d", "\u6587", "\u0663", "\u00bd", "\u2163", "\ufeff", "\u200b", "\u2019", "\u00ab",
    "\U0001F600", "\u200d", "\u0438", "\u0645", "\u0e01", "\u0e34", "\u20ac", "re", "ll", "ve"]


def split_all(pieces, pat):
    out = []
    for p in pieces:
        last = 0
        for m in pat.finditer(p):
            if m.start() > last:
                out.append(p[last:m.start()])
            out.append(m.group())
            last = m.end()
        if last < len(p):
            out.append(p[last:])
    return out


def reference(mode, s):
    if mode == "llama3":
        return LLAMA3.findall(s)
    pieces = [s]
    for pat in DEFAULT:
        pieces = split_all(pieces, pat)
    return pieces


def main():
    tool = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    rng = random.Random(1)
    cases = ["".join(rng.choice(CHARS) for _ in range(rng.randint(1, 16))) for _ in range(n)]
    inp = "".join(c.encode("utf-8").hex() + "\n" for c in cases)
    bad = 0
    for mode in ("llama3", "default"):
        out = subprocess.run([tool, mode], input=inp, capture_output=True, text=True,
                             check=True).stdout.split("\n")
        for case, got in zip(cases, out):
            want = " ".join(p.encode("utf-8").hex() for p in reference(mode, case))
            if got.strip() != want:
                bad += 1
                if bad <= 10:
                    print(f"{mode} {case!r}: got {got.strip()} want {want}")
        print(f"{mode}: {n} strings checked")
    print("mismatches:", bad)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()

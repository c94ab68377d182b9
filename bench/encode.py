"""`bertcli tokenize encode` against sentencepiece's own batch encode of the same lines.

    PYTHONPATH=src python bench/encode.py TOKENIZER_DIR TEXT_FILE [--repeats 3]

Both sides are whole processes that read the file, encode every line with the same model and
write the ids, one line of space-separated ids per input line, to a file; they are timed from
outside, interleaved (A, B, A, B, ...), and the medians compared. The outputs must be identical.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# sentencepiece used directly, as its documentation shows: one batch call over all lines
REFERENCE = """
import sys, sentencepiece as spm
sp = spm.SentencePieceProcessor(model_file=sys.argv[1])
lines = open(sys.argv[2], encoding="utf-8").read().split("\\n")
if lines[-1] == "":
    lines.pop()
ids = sp.encode(lines)
with open(sys.argv[3], "w") as out:
    out.write("\\n".join(" ".join(map(str, x)) for x in ids) + "\\n")
"""


def timed(command: list[str], stdout=None, env=None) -> float:
    started = time.perf_counter()
    subprocess.run(command, stdout=stdout, env=env, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("tokenizer")
    parser.add_argument("text")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-encode-"))
    script = work / "reference.py"
    script.write_text(REFERENCE)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    model = str(Path(args.tokenizer) / "spm.model")
    times: dict[str, list[float]] = {"sentencepiece batch encode": [], "bertcli tokenize encode": []}
    for _ in range(args.repeats):
        times["sentencepiece batch encode"].append(
            timed([sys.executable, str(script), model, args.text, str(work / "reference.txt")]))
        with open(work / "bertcli.txt", "w") as out:
            times["bertcli tokenize encode"].append(
                timed([sys.executable, "-m", "bertcli", "tokenize", "encode", "--tokenizer", args.tokenizer,
                       args.text], stdout=out, env=env))
    same = filecmp.cmp(work / "reference.txt", work / "bertcli.txt", shallow=False)
    size = Path(args.text).stat().st_size / 1e6
    print(f"{size:.1f} MB, {sum(1 for _ in open(args.text, encoding='utf-8')):,} lines; outputs identical: {same}; "
          f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    for name, values in times.items():
        print(f"{name:30} median {statistics.median(values):6.2f} s  runs {' '.join(f'{v:.2f}' for v in values)}")
    ratio = statistics.median(times["bertcli tokenize encode"]) / statistics.median(times["sentencepiece batch encode"])
    print(f"bertcli / sentencepiece: {ratio:.2f}")


if __name__ == "__main__":
    main()

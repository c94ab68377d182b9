"""SIGKILL a pretraining run again and again, resume it each time, and compare with a run never killed.

    PYTHONPATH=src .venv/bin/python bench/kill_resume.py --corpus CORPUS [--kills 20] [--steps 120]

A tiny model (dropout on, so the RNG streams matter) trains on CPU with a checkpoint every
--save-every steps. The killed run gets SIGKILL --kills times: half at a random moment (the first
anywhere after launch, the others within the next two checkpoints' worth of steps once training
has restarted, so the run advances between kills), half the instant the staging folder of the
second checkpoint after the restart appears (mid-checkpoint). After each kill it is started again
with --resume (or afresh when no checkpoint exists yet). At the end the final weights must be
bit-identical to the uninterrupted run's, and so must the logged losses.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]


def command(args, out: Path, resume: bool) -> list[str]:
    cmd = [sys.executable, "-m", "bertcli", "pretrain", "--out", str(out)]
    if resume:
        return cmd + ["--resume"]
    return cmd + ["--corpus", args.corpus, "--preset", "tiny", "--set", "model.hidden_size=64",
                  "--set", "model.num_layers=2", "--set", "model.num_heads=2", "--set", "model.intermediate_size=128",
                  "--set", "model.max_position_embeddings=128", "--set", f"train.max_steps={args.steps}",
                  "--set", "train.batch_size=16", "--set", "train.log_every=1",
                  "--set", f"train.save_every={args.save_every}", "--set", "runtime.progress=none",
                  "--set", "runtime.threads=1", "--set", "runtime.device=cpu", "--set", "optim.lr=1e-3"]


def run_env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}


def staging(out: Path) -> set[str]:
    """The checkpoint staging folders (`.step-N.tmp-*`) now in the run."""
    steps = out / "steps"
    return {p.name for p in steps.iterdir() if p.name.startswith(".")} if steps.is_dir() else set()


def logged_steps(out: Path) -> int:
    """The last step in the run's metrics.jsonl (0 when none)."""
    path = out / "metrics.jsonl"
    if not path.is_file():
        return 0
    steps = [0]
    for line in path.read_text().splitlines():
        try:
            steps.append(json.loads(line)["step"])
        except (json.JSONDecodeError, KeyError):
            pass
    return max(steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--save-every", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        straight, killed = Path(tmp) / "straight", Path(tmp) / "killed"
        start = time.perf_counter()
        subprocess.run(command(args, straight, False), env=run_env(), check=True, capture_output=True)
        once = time.perf_counter() - start
        rows = [r for r in map(json.loads, (straight / "metrics.jsonl").open()) if r["split"] == "train"]
        seconds = [(b["tokens"] - a["tokens"]) / b["tokens_per_s"] for a, b in zip(rows, rows[1:]) if b["tokens_per_s"]]
        step_seconds = sorted(seconds)[len(seconds) // 2] if seconds else 0.1
        print(f"uninterrupted run: {once:.1f} s", flush=True)
        kills, mid_checkpoint, at_steps = 0, 0, []
        while not (killed / "final" / "model.safetensors").is_file():  # a kill can land after final/
            resume = (killed / "steps").is_dir() and any(p.name.startswith("step-") for p in (killed / "steps").iterdir())
            process = subprocess.Popen(command(args, killed, resume), env=run_env(),
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if kills < args.kills:
                aim_mid_checkpoint = kills % 2 == 1
                old = staging(killed)  # a killed run's leftovers, removed by the next --resume
                seen_first = None
                logged = logged_steps(killed)
                # Random kills: the first at a random moment after launch (start-up included); later
                # ones at a random moment within the next few checkpoints once training has resumed,
                # so that the run moves on between kills.
                started = kills == 0
                delay = rng.uniform(0.0, 2 * args.save_every * step_seconds)
                deadline = time.perf_counter() + (rng.uniform(0.5, 10.0) if started else delay)
                while process.poll() is None:
                    if aim_mid_checkpoint:
                        # the second checkpoint written after the restart, so that the run moves on
                        new = staging(killed) - old
                        if new and (seen_first is not None and new - {seen_first}):
                            break
                        if new and seen_first is None:
                            seen_first = min(new)
                    elif not started:
                        if logged_steps(killed) > logged:
                            started, deadline = True, time.perf_counter() + delay
                    elif time.perf_counter() >= deadline:
                        break
                    time.sleep(0.002)
                if process.poll() is None:
                    mid = bool(staging(killed) - old)
                    process.send_signal(signal.SIGKILL)
                    process.wait()
                    kills += 1
                    mid_checkpoint += mid
                    done = [p.name for p in (killed / "steps").iterdir()] if (killed / "steps").is_dir() else []
                    at_steps.append(max((int(n.split("-")[1]) for n in done if n.startswith("step-")), default=0))
                    print(f"kill {kills:2d}: {'mid-checkpoint' if mid else 'random moment '}; logged step "
                          f"{logged_steps(killed)}, last checkpoint step {at_steps[-1]}", flush=True)
                    continue
            _, err = process.communicate()
            if process.returncode != 0 and not (killed / "final" / "model.safetensors").is_file():
                sys.exit(f"run failed after {kills} kills: {err[-2000:]}")
            break
        a = load_file(str(straight / "final" / "model.safetensors"))
        b = load_file(str(killed / "final" / "model.safetensors"))
        identical = all(torch.equal(a[k], b[k]) for k in a)
        keep = ("step", "loss", "mlm_loss", "nsp_loss", "grad_norm", "lr", "tokens")

        def rows(run):
            lines = (run / "metrics.jsonl").read_text().splitlines()
            return [{k: r[k] for k in keep} for r in map(json.loads, lines) if r["split"] == "train"]

        same_log = rows(straight) == rows(killed)
        leftovers = [p.name for p in (killed / "steps").iterdir() if p.name.startswith(".")]
        print(f"{kills} SIGKILLs ({mid_checkpoint} mid-checkpoint), {args.steps} steps: final weights "
              f"{'bit-identical' if identical else 'DIFFERENT'} to the uninterrupted run; metrics "
              f"{'identical' if same_log else 'DIFFERENT'} ({len(rows(killed))} train rows); "
              f"staging leftovers now: {len(leftovers)}")
        sys.exit(0 if identical and same_log else 1)


if __name__ == "__main__":
    main()

"""The command line: parse, load the config, call a stage's run function. Nothing else lives here.

Every user error surfaces as one line on stderr and exit code 2 (see bertcli.exits). Stage modules
are imported inside each command so that `--help` and shell completion stay fast (torch is slow
to import).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from bertcli import exits

app = typer.Typer(
    add_completion=True,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="From raw text to a pretrained BERT encoder and fine-tuned models.",
    epilog=exits.HELP,
)
list_app = typer.Typer(no_args_is_help=True, help="List model size presets or the shipped YAML recipes.")
app.add_typer(list_app, name="list")
tokenize_app = typer.Typer(no_args_is_help=True, help="Train a SentencePiece tokenizer; encode and decode text.")
app.add_typer(tokenize_app, name="tokenize")

SET_HELP = "Override any config key: --set optim.lr=3e-4 (repeatable)."


def _version(value: bool) -> None:
    if value:
        from bertcli import __version__

        print(f"bertcli {__version__}")
        raise typer.Exit()


@app.callback()
def _global_options(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress or messages, only errors (any command; "
                               "may also follow the command)."),
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback of a failure (any command)."),
):
    """From raw text to a pretrained BERT encoder and fine-tuned models."""
    # --quiet and --debug are taken out of the argument list by main() wherever they stand, so they
    # work after the subcommand too; declared here so that `bertcli --help` lists them.
    if ctx.invoked_subcommand == "build-corpus" and not ctx.resilient_parsing:
        # The server that forks build-corpus's workers imports their module while this process
        # parses the command and imports its own (about 0.6 s), rather than after: the first worker
        # starts that much sooner. Unused (and gone at exit) when the build runs with one worker.
        from bertcli.data.workers import start_fork_server

        start_fork_server("bertcli.stages.build_corpus")


@tokenize_app.command("train")
def tokenize_train(
    input: List[Path] = typer.Option(..., "--input", "-i", help="Text files (raw books or one sentence per line)."),
    out: Path = typer.Option(..., "--out", "-o", help="Tokenizer folder to write."),
    vocab_size: Optional[int] = typer.Option(None, "--vocab-size", help="Vocabulary size (default 8000)."),
    model_type: Optional[str] = typer.Option(None, "--model-type", help="unigram or bpe (default unigram)."),
    lowercase: Optional[bool] = typer.Option(None, "--lowercase/--cased", help="Lower-case (case-fold) text."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML with tokenize settings."),
    set_: List[str] = typer.Option([], "--set", help=SET_HELP),
):
    """Train a SentencePiece tokenizer with [PAD] [UNK] [CLS] [SEP] [MASK] at ids 0-4."""
    from bertcli.config import TokenizeConfig, load_config
    from bertcli.stages import tokenize

    flags = {"input": [str(p) for p in input], "out": str(out), "vocab_size": vocab_size,
             "model_type": model_type, "lowercase": lowercase}
    cfg = load_config(TokenizeConfig, config, set_, flags)
    tokenize.train(cfg)


@tokenize_app.command("encode")
def tokenize_encode(
    tokenizer: Path = typer.Option(..., "--tokenizer", "-t", help="Tokenizer folder (or a checkpoint)."),
    file: str = typer.Argument("-", help="Text file, one text per line; - for stdin."),
    pieces: bool = typer.Option(False, "--pieces", help="Print pieces instead of ids."),
):
    """Encode text to token ids: one line in, one line of space-separated ids out."""
    from bertcli.stages import tokenize

    tokenize.encode(tokenizer, file, pieces)


@tokenize_app.command("decode")
def tokenize_decode(
    tokenizer: Path = typer.Option(..., "--tokenizer", "-t", help="Tokenizer folder (or a checkpoint)."),
    file: str = typer.Argument("-", help="Lines of space-separated ids; - for stdin."),
):
    """Decode token ids to text: one line in, one line out."""
    from bertcli.stages import tokenize

    tokenize.decode(tokenizer, file)


@app.command("build-corpus")
def build_corpus(
    config: Optional[Path] = typer.Argument(None, help="YAML recipe (optional)."),
    input: List[Path] = typer.Option([], "--input", "-i", help="Text files or - (stdin), plain, .gz or .zst: "
                                     "a sentence per line, a paragraph per line, raw prose or JSONL."),
    tokenizer: Optional[Path] = typer.Option(None, "--tokenizer", "-t", help="Tokenizer folder."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Corpus folder to write."),
    input_format: Optional[str] = typer.Option(None, "--input-format", help="auto (default) | lines | paragraphs "
                                               "| raw | jsonl."),
    max_seq_len: Optional[int] = typer.Option(None, "--max-seq-len", help="Tokens per example (default 128)."),
    dupe_factor: Optional[int] = typer.Option(None, "--dupe-factor", help="Copies with different masks (default 10)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed (default 12345)."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Worker processes, 0 = all cores (default); "
                                          "the output is the same for any number."),
    shard_size: Optional[int] = typer.Option(None, "--shard-size", help="Examples per shard (default 100000)."),
    shard_index: Optional[int] = typer.Option(None, "--shard-index", help="Build part I of --num-shards (default "
                                              "$RANK or 0); join the parts with merge-corpus."),
    num_shards: Optional[int] = typer.Option(None, "--num-shards", help="Parts the build is split into (default "
                                             "$WORLD_SIZE or 1)."),
    objective: Optional[str] = typer.Option(None, "--objective", help="mlm_nsp (BERT's sentence pairs, default) "
                                            "| mlm (full-length packed sequences, no NSP)."),
    masking: Optional[str] = typer.Option(None, "--masking", help="static (masked once per dupe copy, default) "
                                          "| dynamic (masked anew each time pretraining reads an example)."),
    whole_word_mask: Optional[bool] = typer.Option(None, "--whole-word-mask/--no-whole-word-mask",
                                                   help="Mask all pieces of a word together."),
    set_: List[str] = typer.Option([], "--set", help=SET_HELP),
):
    """Documents -> sentence pairs or packed sequences -> masked examples, as memory-mappable shards."""
    from bertcli.config import BuildCorpusConfig, load_config
    from bertcli.stages import build_corpus as stage

    flags = {"input": [str(p) for p in input] or None, "tokenizer": _str(tokenizer), "out": _str(out),
             "max_seq_len": max_seq_len, "dupe_factor": dupe_factor, "seed": seed, "workers": workers,
             "objective": objective, "masking": masking, "whole_word_mask": whole_word_mask,
             "input_format": input_format, "shard_size": shard_size, "shard_index": shard_index,
             "num_shards": num_shards}
    stage.run(load_config(BuildCorpusConfig, config, set_, flags))


@app.command("merge-corpus")
def merge_corpus(
    out: Path = typer.Argument(..., help="Corpus folder to write."),
    parts: List[Path] = typer.Argument(..., help="The corpus folders of every --shard-index of one build."),
):
    """Join the parts of a `build-corpus --num-shards N` build into one corpus folder."""
    from bertcli.stages import merge_corpus as stage

    stage.run([str(p) for p in parts], str(out))


@app.command("inspect")
def inspect(
    folder: Path = typer.Argument(..., help="Any bertcli folder: tokenizer, corpus, run or checkpoint."),
    dump: int = typer.Option(0, "--dump", help="Corpus: write N examples as JSON lines to stdout."),
    json_: bool = typer.Option(False, "--json", help="Machine-readable description on stdout."),
    split: str = typer.Option("train", "--split", help="Corpus split for --dump (train or eval)."),
    epoch: int = typer.Option(0, "--epoch", min=0, help="Dynamically masked corpus: dump the masks "
                              "pretraining draws in this epoch."),
):
    """Describe a bertcli folder; --dump N prints corpus examples as JSON lines."""
    from bertcli.stages import inspect as stage

    stage.run(folder, dump=dump, as_json=json_, split=split, epoch=epoch)


@app.command("pretrain")
def pretrain(
    config: Optional[Path] = typer.Argument(None, help="YAML recipe, e.g. recipes/pretrain/mini.yaml."),
    corpus: Optional[Path] = typer.Option(None, "--corpus", help="Corpus folder from build-corpus."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run folder to write."),
    preset: Optional[str] = typer.Option(None, "--preset", help="tiny|mini|small|medium|base|large|L4-H256 ..."),
    set_: List[str] = typer.Option([], "--set", help=SET_HELP),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoint."),
    init_from: Optional[Path] = typer.Option(None, "--init-from", help="Start from a checkpoint's weights."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Optimizer steps (train.max_steps)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Examples per step (train.batch_size)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Peak learning rate (optim.lr)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed (train.seed)."),
    device: Optional[str] = typer.Option(None, "--device", help="auto|cpu|cuda (runtime.device)."),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="fp32|bf16|fp16 (runtime.dtype; fp16 adds loss scaling, for GPUs)."),
):
    """Pretrain with masked LM + next sentence prediction."""
    from bertcli.config import PretrainConfig, load_config
    from bertcli.stages import pretrain as stage

    if resume and out is not None:
        stage.check_resume_target(out)  # the folder's kind first, then its config.yaml
    if resume and config is None and out is not None and (out / "config.yaml").is_file():
        config = out / "config.yaml"  # --resume alone continues the run with its own settings
    flags = {"corpus": _str(corpus), "out": _str(out), "init_from": _str(init_from), "model.preset": preset,
             "train.max_steps": max_steps, "train.batch_size": batch_size, "optim.lr": lr,
             "train.seed": seed, "runtime.device": device, "runtime.dtype": dtype}
    stage.run(load_config(PretrainConfig, config, set_, flags), resume=resume)


@app.command("finetune")
def finetune(
    config: Optional[Path] = typer.Argument(None, help="YAML recipe, e.g. recipes/finetune/sst2.yaml."),
    task: Optional[str] = typer.Option(None, "--task", help="cls | regression | ner | qa."),
    mode: Optional[str] = typer.Option(None, "--mode", help="finetune (all weights) | features (frozen encoder)."),
    layers: Optional[str] = typer.Option(None, "--layers", help="Features mode: last | second_to_last | "
                                         "sum_last_four | concat_last_four | embeddings."),
    pooling: Optional[str] = typer.Option(None, "--pooling", help="cls/regression: cls (pooled [CLS], BERT) | mean "
                                          "(mean over tokens; for models pretrained without NSP)."),
    init: Optional[Path] = typer.Option(None, "--init", help="Checkpoint or run folder to start from."),
    train: Optional[Path] = typer.Option(None, "--train", help="Training file (TSV, CSV or JSONL)."),
    dev: Optional[Path] = typer.Option(None, "--dev", help="Dev file, evaluated every epoch."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Fine-tune run folder to write."),
    epochs: Optional[float] = typer.Option(None, "--epochs", help="Epochs (train.epochs)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Batch size (train.batch_size)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Peak learning rate (optim.lr)."),
    max_seq_len: Optional[int] = typer.Option(None, "--max-seq-len", help="Tokens per example (data.max_seq_len)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed (train.seed)."),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="Several seeds, e.g. 1,2,3: one run each, "
                                        "median and spread in summary.json."),
    patience: Optional[int] = typer.Option(None, "--patience", help="Stop after N epochs without a better "
                                           "dev metric (0: never)."),
    set_: List[str] = typer.Option([], "--set", help=SET_HELP),
):
    """Fine-tune a pretrained encoder with a new task head (or train one on frozen features);
    the task's own dev metric picks the best epoch."""
    from bertcli.config import FinetuneConfig, load_config
    from bertcli.stages import finetune as stage

    flags = {"task": task, "mode": mode, "features.layers": layers, "pooling": pooling, "patience": patience,
             "seeds": _int_list(seeds, "--seeds"), "init": _str(init), "data.train": _str(train), "data.dev": _str(dev),
             "out": _str(out), "train.epochs": epochs, "train.batch_size": batch_size, "optim.lr": lr,
             "data.max_seq_len": max_seq_len, "train.seed": seed}
    stage.run(load_config(FinetuneConfig, config, set_, flags))


@app.command("eval")
def evaluate(
    checkpoint: Path = typer.Argument(..., help="Checkpoint or run folder."),
    data: Path = typer.Option(..., "--data", help="Labelled file (TSV/CSV/JSONL, CoNLL, SQuAD JSON) or corpus folder."),
    task: Optional[str] = typer.Option(None, "--task", help="Refuse a checkpoint fine-tuned for another task."),
    json_: bool = typer.Option(False, "--json", help="Print the metrics as JSON on stdout."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Examples per forward pass."),
    max_examples: int = typer.Option(0, "--max-examples", min=0, help="Evaluate at most N examples (0: all)."),
    split: str = typer.Option("auto", "--split", help="Corpus split: auto (eval if present), train or eval."),
):
    """Evaluate a checkpoint: its task's metrics on labelled data; MLM/NSP accuracy and perplexity on a corpus."""
    from bertcli.stages import evaluate as stage

    stage.run(checkpoint, data, as_json=json_, batch_size=batch_size, max_examples=max_examples, split=split,
              task=task)


@app.command("predict")
def predict(
    checkpoint: Path = typer.Argument(..., help="Fine-tuned checkpoint or run folder."),
    file: str = typer.Argument("-", help="Input, one example per line; - for stdin."),
    task: Optional[str] = typer.Option(None, "--task", help="Refuse a checkpoint fine-tuned for another task."),
    batch_size: int = typer.Option(64, "--batch-size", help="Examples per forward pass."),
    fast: bool = typer.Option(False, "--fast", help="int8 linear layers (CPU): about 1.5x faster, less exact (MiniLM vectors: mean cosine 0.97 with fp32)."),
    device: str = typer.Option("auto", "--device", help="auto|cpu|cuda."),
):
    """Predictions as JSON lines on stdout, one line per input line.

    Input lines: text (cls, regression, ner); 'first<TAB>second' for pair models; for qa
    {"question": ..., "context": ...} or 'question<TAB>context'; any task also takes a JSON object.
    """
    from bertcli.stages import predict as stage

    stage.run(checkpoint, file, task=task, batch_size=batch_size, device=device, fast=fast)


@app.command("convert")
def convert(
    checkpoint: Optional[Path] = typer.Argument(None, help="HF folder to import (--from hf) or checkpoint to export (--to hf)."),
    from_: Optional[str] = typer.Option(None, "--from", help="Import format: hf."),
    to: Optional[str] = typer.Option(None, "--to", help="Export format: hf."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write."),
):
    """Convert checkpoints to and from Hugging Face BERT folders, with the same numbers.

    `bertcli convert --from hf HF_DIR --out CKPT` imports BertModel, BertForPreTraining,
    BertForMaskedLM or BertForSequenceClassification weights and the WordPiece tokenizer.
    `bertcli convert CKPT --to hf --out HF_DIR` writes config.json, model.safetensors and a
    tokenizer that transformers' from_pretrained loads.
    """
    from bertcli.stages import convert as stage

    stage.run(checkpoint=checkpoint, from_format=from_, to_format=to, out=out)


@app.command("embed")
def embed(
    checkpoint: Path = typer.Argument(..., help="Checkpoint or run folder."),
    file: str = typer.Argument("-", help="Text file, one text per line; - for stdin."),
    pooling: str = typer.Option("mean", "--pooling", help="mean (over real tokens, as sentence-transformers) "
                                "| cls ([CLS] hidden state) | pooler (BERT's tanh pooler)."),
    normalize: bool = typer.Option(False, "--normalize", help="L2-normalise each vector."),
    batch_size: int = typer.Option(64, "--batch-size", help="Texts per forward pass."),
    max_seq_len: Optional[int] = typer.Option(None, "--max-seq-len", help="Tokens per text, [CLS] and [SEP] "
                                              "included; longer texts are truncated (default 128, or the "
                                              "model's positions if fewer)."),
    device: str = typer.Option("auto", "--device", help="auto|cpu|cuda."),
    layers: str = typer.Option("last", "--layers", help="last | second_to_last | sum_last_four | "
                               "concat_last_four | embeddings."),
    tokens: bool = typer.Option(False, "--tokens", help="A vector per token instead of one per line."),
    npy: Optional[Path] = typer.Option(None, "--npy", help="Write the vectors to this .npy; JSON lines then "
                                       "give each line's row (or rows, with --tokens)."),
    fast: bool = typer.Option(False, "--fast", help="int8 linear layers (CPU): about 1.5x faster, less exact (MiniLM vectors: mean cosine 0.97 with fp32)."),
):
    """Vectors: for each input line, one JSON line on stdout ({"embedding": [...]}, or with --tokens
    {"tokens": [...], "vectors": [[...], ...]}).

    Output line i belongs to input line i (empty lines too). Messages go to stderr.
    """
    from bertcli.stages import embed as stage

    stage.run(checkpoint, file, pooling=pooling, normalize=normalize, batch_size=batch_size,
              max_seq_len=max_seq_len, device=device, layers=layers, tokens=tokens, npy=npy, fast=fast)


def _int_list(value: Optional[str], flag: str) -> Optional[List[int]]:
    if value is None:
        return None
    try:
        return [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"{flag} {value!r}: expected integers separated by commas, e.g. {flag} 1,2,3")


@app.command("report")
def report(
    runs: List[Path] = typer.Argument(..., help="Run folders from pretrain or finetune (finished or still running)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Report folder (default: RUN/report of the first run)."),
):
    """Plots (PNG) and one self-contained HTML page for one or more runs, on shared axes."""
    from bertcli.stages import report as stage

    stage.run(runs, out)


@list_app.command("presets")
def list_presets(json_: bool = typer.Option(False, "--json", help="JSON lines on stdout.")):
    """Model sizes with their layers, widths and parameter counts."""
    from bertcli.stages import listing

    listing.presets(as_json=json_)


@list_app.command("recipes")
def list_recipes(json_: bool = typer.Option(False, "--json", help="JSON lines on stdout.")):
    """The YAML recipes shipped in recipes/, by stage."""
    from bertcli.stages import listing

    listing.recipes(as_json=json_)


# Every command's --help ends with the global flags and the exit codes.
for _typer in (app, tokenize_app, list_app):
    for _info in _typer.registered_commands:
        _info.epilog = _info.epilog or f"Also: --quiet (-q) for errors only, --debug for tracebacks. {exits.HELP}"


def _str(value: Optional[Path]) -> Optional[str]:
    return None if value is None else str(value)


# Options that take several values after one flag, as a shell glob gives them: `--input books/*.txt`.
MULTI_VALUE_OPTIONS = ("--input", "-i")


def spread_multi_value_options(argv: List[str]) -> List[str]:
    """Rewrite `--input a b c` as `--input a --input b --input c` (Click options take one value each).

    Values run until the next token that starts with "-" (a lone "-" is stdin, so it is a value).
    """
    out: List[str] = []
    current = None
    for token in argv:
        if token in MULTI_VALUE_OPTIONS:
            current = token
            continue
        # A YAML file after the inputs is the recipe (`build-corpus --input a.txt recipe.yaml`).
        if current and (token == "-" or not token.startswith("-")) and not token.endswith((".yaml", ".yml")):
            out += [current, token]
            continue
        current = None
        out.append(token)
    return out


def main(argv: Optional[List[str]] = None) -> None:
    argv = spread_multi_value_options(list(sys.argv[1:] if argv is None else argv))
    exits.run_cli(app, argv)


if __name__ == "__main__":
    main()

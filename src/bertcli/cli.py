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
from bertcli.cli_options import config_command
from bertcli.config import (BuildCorpusConfig, EmbedConfig, EvalConfig, FinetuneConfig, PredictConfig,
                            PretrainConfig, TokenizeConfig, load_config)

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


@config_command(tokenize_app, "train", TokenizeConfig)
def tokenize_train(
    flags: dict,
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML with tokenize settings."),
    set_: List[str] = typer.Option([], "--set", help=SET_HELP),
):
    """Train a SentencePiece tokenizer with [PAD] [UNK] [CLS] [SEP] [MASK] at ids 0-4."""
    from bertcli.stages import tokenize

    tokenize.train(load_config(TokenizeConfig, config, set_, flags))


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


@config_command(app, "build-corpus", BuildCorpusConfig)
def build_corpus(
    flags: dict,
    config: Optional[Path] = typer.Argument(None, help="YAML recipe (optional)."),
    set_: List[str] = typer.Option([], "--set", help=SET_HELP),
):
    """Documents -> sentence pairs or packed sequences -> masked examples, as memory-mappable shards."""
    from bertcli.stages import build_corpus as stage

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


@config_command(app, "pretrain", PretrainConfig)
def pretrain(
    flags: dict,
    config: Optional[Path] = typer.Argument(None, help="YAML recipe, e.g. recipes/pretrain/mini.yaml."),
    set_: List[str] = typer.Option([], "--set", help=SET_HELP),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoint."),
):
    """Pretrain with masked LM + next sentence prediction."""
    from bertcli.stages import pretrain as stage

    stage.run(stage.load_run_config(config, set_, flags, resume), resume=resume)


@config_command(app, "finetune", FinetuneConfig)
def finetune(
    flags: dict,
    config: Optional[Path] = typer.Argument(None, help="YAML recipe, e.g. recipes/finetune/sst2.yaml."),
    set_: List[str] = typer.Option([], "--set", help=SET_HELP),
):
    """Fine-tune a pretrained encoder with a new task head (or train one on frozen features);
    the task's own dev metric picks the best epoch."""
    from bertcli.stages import finetune as stage

    stage.run(load_config(FinetuneConfig, config, set_, flags))


@config_command(app, "eval", EvalConfig)
def evaluate(flags: dict):
    """Evaluate a checkpoint: its task's metrics on labelled data; MLM/NSP accuracy and perplexity on a corpus."""
    from bertcli.stages import evaluate as stage

    stage.run(load_config(EvalConfig, flags=flags))


@config_command(app, "predict", PredictConfig)
def predict(flags: dict):
    """Predictions as JSON lines on stdout, one line per input line.

    Input lines: text (cls, regression, ner); 'first<TAB>second' for pair models; for qa
    {"question": ..., "context": ...} or 'question<TAB>context'; any task also takes a JSON object.
    """
    from bertcli.stages import predict as stage

    stage.run(load_config(PredictConfig, flags=flags))


@app.command("convert")
def convert(
    checkpoint: Optional[Path] = typer.Argument(None, help="HF folder to import (--from hf) or checkpoint to export (--to hf)."),
    from_: Optional[str] = typer.Option(None, "--from", help="Import format: hf."),
    to: Optional[str] = typer.Option(None, "--to", help="Export format: hf, onnx, sentence-transformers."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write."),
    pooling: str = typer.Option("mean", "--pooling", help="sentence-transformers export: mean or cls (as embed)."),
    normalize: bool = typer.Option(False, "--normalize", help="sentence-transformers export: L2-normalise (as embed)."),
    max_seq_len: Optional[int] = typer.Option(None, "--max-seq-len", help="sentence-transformers export: tokens "
                                              "per text (default 128, or the model's positions if fewer)."),
):
    """Convert checkpoints to and from Hugging Face BERT folders, with the same numbers.

    `bertcli convert --from hf HF_DIR --out CKPT` imports BertModel, BertForPreTraining,
    BertForMaskedLM or BertForSequenceClassification weights and the WordPiece tokenizer.
    `bertcli convert CKPT --to hf --out HF_DIR` writes config.json, model.safetensors and a
    tokenizer that transformers' from_pretrained loads. `bertcli convert CKPT --to onnx --out DIR`
    writes model.onnx (fp32) and model_int8.onnx (int8 weights per channel) with the tokenizer, each
    checked against PyTorch at export (needs `pip install 'bertcli[onnx]'`).
    `bertcli convert CKPT --to sentence-transformers --out DIR [--pooling mean|cls] [--normalize]`
    writes a folder whose SentenceTransformer(DIR).encode() gives `bertcli embed`'s vectors.
    """
    from bertcli.stages import convert as stage

    stage.run(checkpoint=checkpoint, from_format=from_, to_format=to, out=out, pooling=pooling, normalize=normalize,
              max_seq_len=max_seq_len)


@config_command(app, "embed", EmbedConfig)
def embed(flags: dict):
    """Vectors: for each input line, one JSON line on stdout ({"embedding": [...]}, or with --tokens
    {"tokens": [...], "vectors": [[...], ...]}).

    Output line i belongs to input line i (empty lines too). Messages go to stderr.
    """
    from bertcli.stages import embed as stage

    stage.run(load_config(EmbedConfig, flags=flags))


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

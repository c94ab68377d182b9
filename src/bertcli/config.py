"""One YAML config loader for every subcommand.

A YAML file is mapped onto frozen dataclasses; command-line flags and `--set section.key=value`
override any key. Unknown keys, wrong types and bad values become one-line `ConfigError`s that
name the key path, the file and line when the key came from a file, and a "did you mean".
Dicts and strings-as-types stop here: everything past the loader sees typed dataclasses.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Optional

import yaml

from bertcli.errors import UserError


class ConfigError(UserError):
    pass


class InvalidValue(ValueError):
    """Raised by a section's `__post_init__`; the loader adds the key path and where it came from."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


def require(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise InvalidValue(key, message)


def setting(default: Any = dataclasses.MISSING, *, help: str, flag: str = "", short: str = "",
            factory: Any = None, argument: bool = False, required: bool = False, min: int | None = None,
            show_default: bool = True):
    """A config field that is also a command-line option: its name, type and default are the field's,
    and `help`, `flag` ("--max-seq-len", or "--lowercase/--cased" for a switch) and the rest are what
    bertcli.cli_options makes the option from, so a setting is declared here and nowhere else.

    A field without a flag is still a YAML key and a `--set` key; `argument` makes it positional,
    `required` makes the command line insist on it (only where no recipe could give it), `min` lets
    the parser refuse a value below it with the command's usage line. The help text gains the
    default and, for a nested key, the key (`(train.max_steps; default 1000)`) on its own."""
    metadata = {"help": help, "flag": flag, "short": short, "argument": argument, "required": required,
                "min": min, "show_default": show_default}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


# ----------------------------------------------------------------------------- sections

# Which hidden states make a feature (the BERT paper's feature-based table, section 5.3).
LayerChoice = Literal["last", "second_to_last", "sum_last_four", "concat_last_four", "embeddings"]




@dataclass(frozen=True)
class ModelSpec:
    """The architecture of a model trained from scratch; finetune/eval read it from the checkpoint."""

    preset: str = setting("mini", flag="--preset", help="Model size: tiny|mini|small|medium|base|large or "
                      "L{layers}-H{hidden}, e.g. L4-H256 (`bertcli list presets`).")
    hidden_size: Optional[int] = None  # None: take it from the preset
    num_layers: Optional[int] = None
    num_heads: Optional[int] = None
    intermediate_size: Optional[int] = None
    max_position_embeddings: int = 512
    dropout: float = 0.1
    attention_dropout: float = 0.1
    # The block: BERT's, or ModernBERT's settings together (bertcli.model.config.BLOCKS). Each
    # setting below overrides the block's own; None keeps it. An --init-from run keeps the
    # checkpoint's block, so there None means "the checkpoint's" and anything else must match it.
    block: Optional[Literal["bert", "modern"]] = setting(
        None, flag="--block", help="Encoder block: bert (Devlin et al. 2019) or modern (ModernBERT: pre-LN, rotary "
        "positions, GeGLU, no biases, sliding-window attention in 2 layers of 3); default bert, or the --init-from "
        "checkpoint's.", show_default=False)
    norm: Optional[Literal["post", "pre"]] = None
    position: Optional[Literal["learned", "rotary"]] = None
    ffn: Optional[Literal["gelu", "geglu"]] = None
    bias: Optional[bool] = None
    local_window: Optional[int] = None  # sliding-window layers attend |i - j| <= local_window / 2; 0: none
    global_every: Optional[int] = None  # with a window, layer i is global when i % global_every == 0
    rope_theta: Optional[float] = None
    local_rope_theta: Optional[float] = None
    type_vocab_size: Optional[int] = None  # 0: no segment embeddings
    layer_norm_eps: Optional[float] = None

    BLOCK_OVERRIDES: ClassVar[tuple[str, ...]] = ("norm", "position", "ffn", "bias", "local_window", "global_every",
                                                   "rope_theta", "local_rope_theta", "type_vocab_size",
                                                   "layer_norm_eps")

    def block_overrides(self) -> dict:
        """The block settings this spec sets (None left out)."""
        return {key: getattr(self, key) for key in self.BLOCK_OVERRIDES if getattr(self, key) is not None}

    def __post_init__(self):
        require(0.0 <= self.dropout < 1.0, "dropout", f"must be in [0, 1), got {self.dropout}")
        require(self.local_window is None or (self.local_window >= 0 and self.local_window % 2 == 0), "local_window",
                f"must be an even number >= 0 (0: every layer global), got {self.local_window}")
        require(self.global_every is None or self.global_every >= 1, "global_every", f"must be >= 1, got {self.global_every}")
        require(self.type_vocab_size is None or self.type_vocab_size >= 0, "type_vocab_size",
                f"must be >= 0 (0: no segment embeddings), got {self.type_vocab_size}")
        for key in ("rope_theta", "local_rope_theta", "layer_norm_eps"):
            value = getattr(self, key)
            require(value is None or value > 0, key, f"must be > 0, got {value}")
        require(0.0 <= self.attention_dropout < 1.0, "attention_dropout",
                f"must be in [0, 1), got {self.attention_dropout}")
        require(self.max_position_embeddings > 0, "max_position_embeddings", "must be > 0")
        for key in ("hidden_size", "num_layers", "num_heads", "intermediate_size"):
            value = getattr(self, key)
            require(value is None or value > 0, key, f"must be > 0, got {value}")


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with BERT's settings (Devlin et al. 2019, appendix A.2): decay on weights, not on biases
    or LayerNorm. PyTorch's AdamW corrects the moments' bias; Google's AdamWeightDecayOptimizer does
    not, which matters only in the first few hundred steps, inside the warmup."""

    name: Literal["adamw", "lamb"] = "adamw"  # lamb: You et al. 2020, NVIDIA's large-batch recipe
    lr: float = setting(1e-4, flag="--lr", help="Peak learning rate.")
    schedule: Literal["linear", "cosine", "constant"] = "linear"  # after warmup
    weight_decay: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-6
    warmup_steps: int = -1  # -1: use warmup_ratio of the total steps
    warmup_ratio: float = 0.1
    grad_clip: float = 1.0  # 0 disables clipping

    def __post_init__(self):
        require(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        require(self.weight_decay >= 0, "weight_decay", "must be >= 0")
        require(0 <= self.beta1 < 1, "beta1", "must be in [0, 1)")
        require(0 <= self.beta2 < 1, "beta2", "must be in [0, 1)")
        require(self.eps > 0, "eps", "must be > 0")
        require(self.warmup_steps >= -1, "warmup_steps", "must be >= 0 (or -1 for warmup_ratio)")
        require(0 <= self.warmup_ratio <= 1, "warmup_ratio", "must be in [0, 1]")
        require(self.grad_clip >= 0, "grad_clip", "must be >= 0 (0 disables clipping)")


@dataclass(frozen=True)
class TrainConfig:
    max_steps: int = setting(1000, flag="--max-steps", help="Optimizer steps; for finetune 0 means "
                             "--epochs decides.")
    epochs: float = setting(3.0, flag="--epochs", help="Epochs (finetune only).")
    batch_size: int = setting(32, flag="--batch-size", help="Examples per optimizer step, before "
                              "accumulation (train.grad_accum) splits it.")
    grad_accum: int = 1  # micro-batches per optimizer step (batch_size must divide evenly)
    seed: int = setting(0, flag="--seed", help="Random seed.")
    log_every: int = 10
    save_every: int = 0  # 0: only the final checkpoint
    # pretrain: step checkpoints kept (the newest N; 0 keeps all). The newest is what --resume needs,
    # so it is never deleted; a long run with save_every cannot fill the disk by surprise.
    keep_last: int = 3
    eval_every: int = 0  # pretrain: held-out evaluation every N steps (0: at the end only)
    eval_examples: int = 512  # pretrain: held-out examples per evaluation
    # Budgets besides max_steps (0: none). With max_tokens the schedule's horizon becomes the steps
    # that many tokens take (from the corpus's mean example length); max_seconds only stops early.
    max_tokens: int = 0  # pretrain: non-padding tokens to train on
    max_seconds: float = 0.0  # pretrain: training time, summed over resumes
    # A step whose loss or gradient is not finite is skipped (weights and optimizer untouched) and
    # counted; after more than max_bad_steps of them in a row the run stops, or with
    # on_divergence=rewind (pretrain) restores its last checkpoint and halves the lr.
    max_bad_steps: int = 3
    on_divergence: Literal["stop", "rewind"] = "stop"

    def __post_init__(self):
        require(self.max_steps >= 0, "max_steps", f"must be >= 0, got {self.max_steps}")
        require(self.epochs > 0, "epochs", f"must be > 0, got {self.epochs}")
        require(self.batch_size > 0, "batch_size", f"must be > 0, got {self.batch_size}")
        require(self.grad_accum > 0, "grad_accum", f"must be > 0, got {self.grad_accum}")
        require(self.batch_size % self.grad_accum == 0, "grad_accum",
                f"must divide train.batch_size ({self.batch_size}) evenly, got {self.grad_accum}")
        require(self.log_every > 0, "log_every", f"must be > 0, got {self.log_every}")
        require(self.save_every >= 0, "save_every", "must be >= 0 (0: final checkpoint only)")
        require(self.keep_last >= 0, "keep_last", f"must be >= 0 (0 keeps every checkpoint), got {self.keep_last}")
        require(self.eval_every >= 0, "eval_every", "must be >= 0 (0: at the end only)")
        require(self.eval_examples >= 0, "eval_examples", "must be >= 0")
        require(self.max_tokens >= 0, "max_tokens", "must be >= 0 (0: no token budget)")
        require(self.max_seconds >= 0, "max_seconds", "must be >= 0 (0: no time budget)")
        require(self.max_bad_steps >= 0, "max_bad_steps", "must be >= 0")


@dataclass(frozen=True)
class RuntimeConfig:
    """Settings that change speed, never results (except bf16, which changes rounding)."""

    device: str = setting("auto", flag="--device", help="auto|cpu|cuda|cuda:N|mps.")
    # bf16/fp16 = autocast (weights and optimizer stay fp32); fp16 adds dynamic loss scaling (GPU)
    dtype: Literal["fp32", "bf16", "fp16"] = setting("fp32", flag="--dtype", help="fp32|bf16|fp16 (autocast; "
                                                      "fp16 adds loss scaling, for GPUs).")
    prefetch: bool = True  # assemble the next step's batches in a background thread
    compile: bool = False
    threads: int = 0  # torch intra-op threads; 0 leaves torch's default
    progress: Literal["auto", "rich", "plain", "none"] = "auto"
    tensorboard: bool = False  # also write TensorBoard events to RUN/tensorboard (needs `tensorboard`)

    def __post_init__(self):
        require(self.threads >= 0, "threads", "must be >= 0")
        require(self.device == "auto" or self.device.split(":")[0] in ("cpu", "cuda", "mps"),
                "device", f"must be auto, cpu, cuda, cuda:N or mps, got {self.device!r}")


# ----------------------------------------------------------------------------- stages


@dataclass(frozen=True)
class TokenizeConfig:
    input: list[str] = setting(factory=list, flag="--input", short="-i", required=True,
                               help="Text files (raw books or one sentence per line).")
    out: str = setting("", flag="--out", short="-o", required=True, help="Tokenizer folder to write.")
    vocab_size: int = setting(8000, flag="--vocab-size", help="Vocabulary size.")
    model_type: Literal["unigram", "bpe"] = setting("unigram", flag="--model-type", help="unigram or bpe.")
    lowercase: bool = setting(False, flag="--lowercase/--cased", show_default=False,
                              help="Lower-case (case-fold) text.")
    character_coverage: float = 0.9995
    max_sentences: int = 2_000_000  # SentencePiece samples this many lines for training
    seed: int = 0
    invalid_utf8: Literal["error", "skip"] = "error"  # skip: drop lines that are not UTF-8

    def __post_init__(self):
        require(self.vocab_size >= 16, "vocab_size", f"must be >= 16, got {self.vocab_size}")
        require(0 < self.character_coverage <= 1, "character_coverage", "must be in (0, 1]")
        require(self.max_sentences > 100, "max_sentences",
                f"must be > 100 (SentencePiece samples at least 101 lines), got {self.max_sentences}")


@dataclass(frozen=True)
class ReadSettings:
    """How corpus inputs are read (data.inputs); build-corpus's config is one, so these keys sit at
    the top level of a corpus recipe."""

    # lines: one sentence per line, blank lines between documents (Google's format); paragraphs:
    # a paragraph per line, split into sentences; raw: hard-wrapped prose, one document per file;
    # jsonl: one document per record; auto: picked per input from its first lines (data.inputs)
    input_format: Literal["auto", "lines", "paragraphs", "raw", "jsonl"] = setting(
        "auto", flag="--input-format", help="auto | lines | paragraphs | raw | jsonl.")
    # paragraphs format: documents end at heading lines, blank lines, or the end of the file
    document_boundary: Literal["auto", "heading", "blank", "file"] = "auto"
    # a regex; the default is WikiText's top-level ` = Title = ` (not ` = = Section = = `)
    heading_pattern: str = r"^ ?= [^=].* = ?$"
    text_field: str = "text"  # jsonl: the field holding a record's text
    invalid_utf8: Literal["error", "skip"] = "error"  # skip: drop such lines and report the count
    strip_gutenberg: bool = True  # cut Project Gutenberg licence text around every book

    def __post_init__(self):
        try:
            re.compile(self.heading_pattern)
        except re.error as exc:
            require(False, "heading_pattern", f"is not a valid regular expression ({exc})")


@dataclass(frozen=True)
class BuildCorpusConfig(ReadSettings):
    """Google's create_pretraining_data.py settings, with its defaults unless noted."""

    input: list[str] = setting(factory=list, flag="--input", short="-i", help="Text files or - (stdin), plain, "
                               ".gz or .zst: a sentence per line, a paragraph per line, raw prose or JSONL.")
    tokenizer: str = setting("", flag="--tokenizer", short="-t", help="Tokenizer folder.")
    out: str = setting("", flag="--out", short="-o", help="Corpus folder to write.")
    max_seq_len: int = setting(128, flag="--max-seq-len", help="Tokens per example.")
    short_seq_prob: float = 0.1
    masked_lm_prob: float = 0.15
    # None: ceil(max_seq_len * masked_lm_prob), so the cap never binds below the 15 % rate
    # (Google's README: set it to about max_seq_len * masked_lm_prob; 20 for 128, 77 for 512).
    max_predictions_per_seq: Optional[int] = None
    random_next_prob: float = 0.5  # share of NSP pairs whose B comes from another document
    # mlm_nsp: [CLS] A [SEP] B [SEP] pairs for masked LM + next sentence prediction (BERT);
    # mlm: full-length sequences packed across sentences and documents, [SEP] between documents,
    # no NSP (RoBERTa's FULL-SENTENCES): the objective for short independent texts
    objective: Literal["mlm_nsp", "mlm"] = setting("mlm_nsp", flag="--objective", help="mlm_nsp (BERT's "
                                                   "sentence pairs) | mlm (full-length packed sequences, no NSP).")
    # static: masks drawn once per dupe_factor copy at build time (BERT); dynamic: drawn each time
    # pretraining reads an example, from (seed, epoch, example), so resume stays exact (RoBERTa)
    masking: Literal["static", "dynamic"] = setting("static", flag="--masking", help="static (masked once per "
                                                    "dupe copy) | dynamic (masked anew each time pretraining "
                                                    "reads an example).")
    whole_word_mask: bool = setting(False, flag="--whole-word-mask/--no-whole-word-mask", show_default=False,
                                    help="Mask all pieces of a word together (Google's do_whole_word_mask).")
    mask_token_prob: float = 0.8  # of the predicted tokens: replaced by [MASK] ...
    random_token_prob: float = 0.1  # ... by a random token; the rest are left unchanged
    dupe_factor: int = setting(10, flag="--dupe-factor", help="Copies with different masks.")
    seed: int = setting(12345, flag="--seed", help="Random seed.")
    workers: int = setting(0, flag="--workers", help="Worker processes, 0 = all cores; the output is the same "
                           "for any number.")
    # the last shard of a build may hold fewer
    shard_size: int = setting(100_000, flag="--shard-size", help="Examples per shard.")
    eval_fraction: float = 0.0  # documents held out into an `eval` split (of each block)
    # Text is read, tokenised and turned into examples a block at a time, so memory does not grow
    # with the input: a random-next B comes from another document of the same block, and examples
    # are shuffled within their block (data/blocks in README). MB of text per block. Two blocks are
    # in memory at once (one written while the next is made): 4 MB kept the 2-worker build of the
    # Gutenberg books at 350-370 MB, where 8 MB took 420 (bench/RESULTS.md).
    block_mb: float = 4.0
    # Build part shard_index of num_shards (blocks k with k % num_shards == shard_index), e.g. one per
    # machine; `bertcli merge-corpus` joins the parts. None: from RANK / WORLD_SIZE, else 0 of 1.
    shard_index: Optional[int] = setting(None, flag="--shard-index", help="Build part I of --num-shards "
                                         "(default $RANK or 0); join the parts with merge-corpus.")
    num_shards: Optional[int] = setting(None, flag="--num-shards", help="Parts the build is split into "
                                        "(default $WORLD_SIZE or 1).")
    progress: Literal["auto", "rich", "plain", "none"] = "auto"

    def __post_init__(self):
        require(self.seed >= 0, "seed", f"must be >= 0, got {self.seed}")
        require(self.max_seq_len >= 8, "max_seq_len", f"must be >= 8, got {self.max_seq_len}")
        require(0 <= self.short_seq_prob <= 1, "short_seq_prob", "must be in [0, 1]")
        require(0 < self.masked_lm_prob < 1, "masked_lm_prob", "must be in (0, 1)")
        require(self.max_predictions_per_seq is None or self.max_predictions_per_seq > 0,
                "max_predictions_per_seq", "must be > 0 (or null for max_seq_len * masked_lm_prob)")
        require(0 <= self.random_next_prob <= 1, "random_next_prob", "must be in [0, 1]")
        require(0 <= self.mask_token_prob <= 1, "mask_token_prob", "must be in [0, 1]")
        require(0 <= self.random_token_prob <= 1 - self.mask_token_prob, "random_token_prob",
                f"must be in [0, 1 - mask_token_prob] = [0, {1 - self.mask_token_prob:g}]")
        require(self.dupe_factor > 0, "dupe_factor", f"must be > 0, got {self.dupe_factor}")
        require(self.workers >= 0, "workers", f"must be >= 0 (0: one per core), got {self.workers}")
        require(self.shard_size > 0, "shard_size", "must be > 0")
        require(0 <= self.eval_fraction < 1, "eval_fraction", "must be in [0, 1)")
        require(self.block_mb > 0, "block_mb", "must be > 0")
        require(self.num_shards is None or self.num_shards > 0, "num_shards", "must be > 0")
        require(self.shard_index is None or 0 <= self.shard_index < (self.num_shards or 1), "shard_index",
                f"must be in [0, num_shards) = [0, {self.num_shards or 1})")
        super().__post_init__()

    def predictions_per_seq(self) -> int:
        if self.max_predictions_per_seq is not None:
            return self.max_predictions_per_seq
        return math.ceil(round(self.max_seq_len * self.masked_lm_prob, 6))


@dataclass(frozen=True)
class ElectraSpec:
    """Replaced-token detection (Clark et al. 2020): a small MLM generator fills the masked positions
    with samples, and the model (the discriminator) learns which tokens were replaced, at every position."""

    # The generator's width as a fraction of the discriminator's (the paper's best: 1/4 to 1/2,
    # section 3.2; ELECTRA-Small uses 1/4). Same depth; heads = width / 64 (at least 1) unless set.
    generator_fraction: float = 0.25
    generator_heads: int = 0  # 0: generator width / 64, at least 1
    discriminator_weight: float = 50.0  # lambda in loss = MLM + lambda * replaced-token loss (section 2)

    def __post_init__(self):
        require(0.0 < self.generator_fraction <= 1.0, "generator_fraction",
                f"must be in (0, 1], got {self.generator_fraction}")
        require(self.generator_heads >= 0, "generator_heads", f"must be >= 0, got {self.generator_heads}")
        require(self.discriminator_weight > 0, "discriminator_weight",
                f"must be > 0, got {self.discriminator_weight}")


@dataclass(frozen=True)
class PretrainConfig:
    # Flags of the sections' fields that mean nothing to this stage, left off its command line.
    CLI_EXCLUDE: ClassVar[tuple[str, ...]] = ("train.epochs",)

    corpus: str = setting("", flag="--corpus", help="Corpus folder from build-corpus.")
    out: str = setting("", flag="--out", short="-o", help="Run folder to write.")
    eval_corpus: str = ""  # empty: the corpus's own `eval` split if it has one
    init_from: str = setting("", flag="--init-from", help="Start from a checkpoint's weights.")
    # Shard bytes against the manifest's sha256 and ids against the vocabulary before training:
    # once (a corpus file verified unchanged is not hashed again) or always.
    verify_corpus: Literal["once", "always"] = "once"
    objective: Literal["mlm", "electra"] = setting("mlm", flag="--objective", help="mlm: BERT's masked LM (with "
                                                   "NSP when the corpus has it); electra: replaced-token "
                                                   "detection with a small generator (the electra.* keys).")
    electra: ElectraSpec = field(default_factory=ElectraSpec)
    model: ModelSpec = field(default_factory=ModelSpec)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)


@dataclass(frozen=True)
class TaskDataConfig:
    """Where the labelled examples are and which columns hold what."""

    train: str = setting("", flag="--train", help="Training file (TSV, CSV or JSONL; CoNLL for ner, SQuAD JSON "
                         "for qa).")
    dev: str = setting("", flag="--dev", help="Dev file, evaluated every epoch.")
    format: Literal["auto", "tsv", "csv", "jsonl"] = "auto"  # cls/regression files; ner reads CoNLL, qa SQuAD JSON
    text_column: str = "auto"  # auto: `sentence`, `text`, `sentence1`, `#1 String`, ...
    text_pair_column: str = "auto"  # auto: `sentence2`, `#2 String`, ...; "none" for single
    label_column: str = "auto"  # auto: `label`, `Quality`, ... (`score` for regression)
    max_seq_len: int = setting(128, flag="--max-seq-len", help="Tokens per example.")
    # Batches of similar lengths (shuffled within chunks of 50 batches), so little compute goes to
    # padding; false draws each batch uniformly as BERT's run_classifier.py does.
    group_by_length: bool = True

    def __post_init__(self):
        require(self.max_seq_len >= 8, "max_seq_len", f"must be >= 8, got {self.max_seq_len}")


@dataclass(frozen=True)
class QAConfig:
    """Extractive QA settings, with run_squad.py's defaults (Devlin et al. 2019, section 4.2)."""

    doc_stride: int = 128  # tokens between the starts of a long context's windows
    max_query_len: int = 64  # question tokens kept
    max_answer_len: int = 30  # longest predicted answer, in tokens
    n_best: int = 20  # start and end candidates searched per window

    def __post_init__(self):
        require(self.doc_stride > 0, "doc_stride", f"must be > 0, got {self.doc_stride}")
        require(self.max_query_len > 0, "max_query_len", f"must be > 0, got {self.max_query_len}")
        require(self.max_answer_len > 0, "max_answer_len", f"must be > 0, got {self.max_answer_len}")
        require(self.n_best > 0, "n_best", f"must be > 0, got {self.n_best}")


@dataclass(frozen=True)
class FeaturesConfig:
    """Feature-based mode (section 5.3): which layers make the features and what learns on them."""

    layers: LayerChoice = setting(
        "concat_last_four", flag="--layers", help="Features mode: last | second_to_last | sum_last_four | "
        "concat_last_four | embeddings.")
    head: Literal["auto", "linear", "bilstm"] = "auto"  # auto: bilstm for ner, linear otherwise
    lstm_size: int = 256  # hidden units per direction of the BiLSTM
    lr: float = 1e-3  # the small task model learns fast; the encoder is frozen

    def __post_init__(self):
        require(self.lstm_size > 0, "lstm_size", f"must be > 0, got {self.lstm_size}")
        require(self.lr > 0, "lr", f"must be > 0, got {self.lr}")


@dataclass(frozen=True)
class FinetuneConfig:
    task: Literal["cls", "regression", "ner", "qa"] = setting("cls", flag="--task", help="cls | regression | "
                                                              "ner | qa.")
    mode: Literal["finetune", "features"] = setting("finetune", flag="--mode", help="finetune (all weights) | "
                                                    "features (frozen encoder + small task model).")
    init: str = setting("", flag="--init", help="Checkpoint or run folder to start from.")
    out: str = setting("", flag="--out", short="-o", help="Fine-tune run folder to write.")
    classifier_dropout: float = 0.1
    # cls/regression: "cls" classifies the pooled [CLS] (BERT); "mean" the mean of the last layer over
    # the real tokens, for encoders pretrained without NSP, whose [CLS] output and pooler never trained
    pooling: Literal["cls", "mean"] = setting("cls", flag="--pooling", help="cls/regression: cls (pooled [CLS], "
                                              "BERT) | mean (mean over tokens; for models pretrained without NSP).")
    seeds: list[int] = setting(factory=list, flag="--seeds", help="Several seeds, e.g. 1,2,3: one run each, "
                               "median and spread in summary.json.")
    patience: int = setting(0, flag="--patience", help="Stop after N epochs without a better dev metric "
                            "(0: never).")
    data: TaskDataConfig = field(default_factory=TaskDataConfig)
    qa: QAConfig = field(default_factory=QAConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=2e-5, weight_decay=0.01))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(max_steps=0, batch_size=32))
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    dropout: Optional[float] = None  # None keeps the checkpoint's dropout

    def __post_init__(self):
        require(0 <= self.classifier_dropout < 1, "classifier_dropout", "must be in [0, 1)")
        require(self.dropout is None or 0 <= self.dropout < 1, "dropout", "must be in [0, 1)")
        require(self.patience >= 0, "patience", f"must be >= 0, got {self.patience}")
        require(len(set(self.seeds)) == len(self.seeds), "seeds", f"has a seed twice: {self.seeds}")
        require(not (self.mode == "features" and self.task == "qa"), "mode",
                "features mode serves cls, regression and ner; fine-tune qa (--mode finetune)")
        require(self.pooling == "cls" or (self.task in ("cls", "regression") and self.mode == "finetune"), "pooling",
                f"mean pooling is for fine-tuning cls and regression; --task {self.task} --mode {self.mode} "
                f"reads tokens, not a pooled feature: drop --pooling")


@dataclass(frozen=True)
class EvalConfig:
    """`bertcli eval`: the architecture and task come from the checkpoint; these say what to read."""

    checkpoint: str = setting("", argument=True, required=True, help="Checkpoint or run folder.")
    data: str = setting("", flag="--data", required=True, help="Labelled file (TSV/CSV/JSONL, CoNLL, SQuAD JSON) "
                        "or corpus folder.")
    task: Optional[str] = setting(None, flag="--task", help="Refuse a checkpoint fine-tuned for another task.")
    json: bool = setting(False, flag="--json", show_default=False, help="Print the metrics as JSON on stdout.")
    batch_size: int = setting(64, flag="--batch-size", min=1, help="Examples per forward pass.")
    max_examples: int = setting(0, flag="--max-examples", min=0, help="Evaluate at most N examples (0: all).")
    split: Literal["auto", "train", "eval"] = setting("auto", flag="--split", help="Corpus split: auto (eval if "
                                                      "present), train or eval.")
    device: str = setting("auto", flag="--device", help="auto|cpu|cuda.")


FAST_HELP = ("int8 linear layers in PyTorch (CPU): about 1.5x faster, and it costs exactness (MiniLM vectors: mean "
             "cosine 0.97 with fp32; 3.9 % of SST-2 predictions change); --runtime onnx-int8 is the closer int8.")
# Which engine runs the model: PyTorch (exact), or ONNX Runtime on a graph built for the command
# (fp32 with its transformer fusions, or int8 weights per channel); needs bertcli[onnx].
InferenceRuntime = Literal["torch", "onnx", "onnx-int8"]
LONG_INPUTS_HELP = ("truncate (warned with a count) | window: overlapping windows of --max-seq-len, their outputs "
                    "averaged (bertcli.long_inputs).")
STRIDE_HELP = "--long-inputs window: tokens two neighbouring windows share."
RUNTIME_HELP = ("torch (exact) | onnx (ONNX Runtime, fp32) | onnx-int8 (ONNX Runtime, int8 weights per channel: "
                "about 2x faster on CPU, MiniLM vectors mean cosine 0.992 with fp32); onnx needs "
                "`pip install 'bertcli[onnx]'`.")


def _check_runtime(runtime: str, fast: bool, device: str) -> None:
    require(runtime == "torch" or not fast, "fast", "--fast is PyTorch's int8; with --runtime onnx-int8 leave it out")
    require(runtime == "torch" or device in ("auto", "cpu"), "runtime",
            f"--runtime {runtime} runs on the CPU; use --device cpu (or auto), or --runtime torch for {device}")


@dataclass(frozen=True)
class PredictConfig:
    checkpoint: str = setting("", argument=True, required=True, help="Fine-tuned checkpoint or run folder.")
    file: str = setting("-", argument=True, help="Input, one example per line; - for stdin.")
    task: Optional[str] = setting(None, flag="--task", help="Refuse a checkpoint fine-tuned for another task.")
    batch_size: int = setting(64, flag="--batch-size", min=1, help="Examples per forward pass.")
    fast: bool = setting(False, flag="--fast", show_default=False, help=FAST_HELP)
    runtime: InferenceRuntime = setting("torch", flag="--runtime", help=RUNTIME_HELP)
    device: str = setting("auto", flag="--device", help="auto|cpu|cuda.")
    long_inputs: Literal["truncate", "window"] = setting("truncate", flag="--long-inputs", help=LONG_INPUTS_HELP)
    stride: int = setting(32, flag="--stride", min=0, help=STRIDE_HELP)

    def __post_init__(self):
        _check_runtime(self.runtime, self.fast, self.device)


@dataclass(frozen=True)
class EmbedConfig:
    checkpoint: str = setting("", argument=True, required=True, help="Checkpoint or run folder.")
    file: str = setting("-", argument=True, help="Text file, one text per line; - for stdin.")
    pooling: Literal["mean", "cls", "pooler"] = setting(
        "mean", flag="--pooling", help="mean (over real tokens, as sentence-transformers) | cls ([CLS] hidden "
        "state) | pooler (BERT's tanh pooler).")
    normalize: bool = setting(False, flag="--normalize", show_default=False, help="L2-normalise each vector.")
    batch_size: int = setting(64, flag="--batch-size", help="Texts per forward pass.")
    # None: 128 (all of SST-2 and most sentences fit; sentence-transformers uses 128-512), or the
    # model's positions if fewer
    max_seq_len: Optional[int] = setting(None, flag="--max-seq-len", help="Tokens per text, [CLS] and [SEP] "
                                         "included; longer texts are truncated (default 128, or the model's "
                                         "positions if fewer).")
    device: str = setting("auto", flag="--device", help="auto|cpu|cuda.")
    layers: LayerChoice = setting("last", flag="--layers", help="last | second_to_last | sum_last_four | "
                                  "concat_last_four | embeddings.")
    tokens: bool = setting(False, flag="--tokens", show_default=False, help="A vector per token instead of one "
                           "per line.")
    npy: Optional[str] = setting(None, flag="--npy", help="Write the vectors to this .npy; JSON lines then give "
                                 "each line's row (or rows, with --tokens).")
    fast: bool = setting(False, flag="--fast", show_default=False, help=FAST_HELP)
    runtime: InferenceRuntime = setting("torch", flag="--runtime", help=RUNTIME_HELP)
    long_inputs: Literal["truncate", "window"] = setting("truncate", flag="--long-inputs", help=LONG_INPUTS_HELP)
    stride: int = setting(32, flag="--stride", min=0, help=STRIDE_HELP)

    def __post_init__(self):
        _check_runtime(self.runtime, self.fast, self.device)
        require(self.long_inputs == "truncate" or not self.tokens, "long_inputs",
                "--long-inputs window pools windows into one vector per line; with --tokens use truncate")
        require(self.runtime == "torch" or self.layers == "last", "layers",
                f"--layers {self.layers} reads inner layers, which the ONNX graph does not give; use --runtime torch")
        require(self.batch_size >= 1, "batch_size", f"--batch-size {self.batch_size}: must be at least 1")
        require(self.pooling != "pooler" or (self.layers == "last" and not self.tokens), "pooling",
                "--pooling pooler is the last layer's [CLS] through the pooler; use it without --layers or --tokens")
        require(self.npy is None or self.npy.endswith(".npy"), "npy",
                f"--npy {self.npy}: name the file with a .npy suffix")
        require(self.max_seq_len is None or self.max_seq_len >= 2, "max_seq_len",
                f"--max-seq-len {self.max_seq_len}: must be at least 2")


# ----------------------------------------------------------------------------- the loader


def load_config(cls: type, path: str | Path | None = None, sets: list[str] | None = None,
                flags: dict[str, Any] | None = None):
    """YAML file, then flags (None means "not given"), then `--set key=value`, in that order."""
    raw: dict[str, Any] = {}
    lines: dict[str, int] = {}
    source = ""
    if path:
        path = Path(path)
        source = str(path)
        raw, lines = _read_yaml(path)
    for key, value in (flags or {}).items():
        if value is not None:
            _assign(raw, key, value)
    for item in sets or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected section.key=value, e.g. --set optim.lr=3e-4")
        key, text = item.split("=", 1)
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            value = text
        _assign(raw, key.strip(), value)
    return _build(cls, raw, "", source, lines)


def _read_yaml(path: Path) -> tuple[dict[str, Any], dict[str, int]]:
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found; give the path of a YAML recipe (see recipes/)")
    try:
        text = path.read_text(encoding="utf-8")
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file; a config is a YAML file such as recipes/pretrain/mini.yaml")
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: invalid YAML ({problem}); fix the syntax on that line")
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections (model:, train:, ...)")
    lines: dict[str, int] = {}
    _record_lines(node, "", lines)
    return data, lines


def _record_lines(node, prefix: str, lines: dict[str, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = f"{prefix}{key_node.value}"
            lines[key] = key_node.start_mark.line + 1
            _record_lines(value_node, key + ".", lines)


def _assign(raw: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    target = raw
    for part in parts[:-1]:
        child = target.get(part)
        if not isinstance(child, dict):
            child = {}
            target[part] = child
        target = child
    target[parts[-1]] = value


def _where(source: str, lines: dict[str, int], key: str) -> str:
    if source and key in lines:
        return f"{source}:{lines[key]}: "
    return ""


def _build(cls: type, raw: dict[str, Any], prefix: str, source: str, lines: dict[str, int], base=None):
    """`cls` from `raw`; keys missing from `raw` keep their values in `base` (or the class defaults)."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {name: getattr(base, name) for name in fields} if base is not None else {}
    for key, value in raw.items():
        path = f"{prefix}{key}"
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else f"; known keys: {', '.join(fields)}"
            raise ConfigError(f"{_where(source, lines, path)}unknown key '{path}'{hint}")
        if dataclasses.is_dataclass(hints[key]) and isinstance(value, dict):
            # A section given in part keeps the defaults its parent chose for the rest
            # (finetune's optim.lr is 2e-5, not OptimConfig's own 1e-4).
            section_default = kwargs.get(key) or _field_default(fields[key])
            kwargs[key] = _build(hints[key], value, path + ".", source, lines, section_default)
        else:
            kwargs[key] = _coerce(hints[key], value, path, source, lines)
    try:
        return cls(**kwargs)
    except InvalidValue as exc:
        path = f"{prefix}{exc.key}"
        raise ConfigError(f"{_where(source, lines, path)}{path}: {exc}") from None


def _field_default(f: dataclasses.Field):
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None if f.default is dataclasses.MISSING else f.default


def _coerce(hint, value, path: str, source: str, lines: dict[str, int]):
    where = _where(source, lines, path)
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}{path}: expected a section (a mapping), got {value!r}")
        return _build(hint, value, path + ".", source, lines)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        (inner,) = [option for option in options if option is not type(None)]
        return _coerce(inner, value, path, source, lines)
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
            hint_text = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"{where}{path}: {value!r} is not one of {', '.join(map(str, choices))}{hint_text}")
        return value
    if origin is list:
        (inner,) = typing.get_args(hint)
        items = value if isinstance(value, (list, tuple)) else [value]
        return [_coerce(inner, item, f"{path}[{i}]", source, lines) for i, item in enumerate(items)]
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}{path}: expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{where}{path}: expected an integer, got {value!r}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:  # YAML 1.1 reads "3e-4" as a string; accept it as the number it plainly is
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{where}{path}: expected a number, got {value!r}")
    if hint is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}{path}: expected a string, got {value!r}")
    raise TypeError(f"config field {path} has an unsupported type {hint!r}")


def to_dict(cfg) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def dump_yaml(cfg) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def from_dict(cls: type, data: dict[str, Any]):
    """Rebuild a config saved by `dump_yaml` (a folder's config.yaml)."""
    return _build(cls, data, "", "", {})

"""Statistics of a built corpus that betray a degenerate one, each with its cause and fix.

build-corpus prints these warnings and records them in the manifest; `inspect` recomputes them
from the manifest's statistics, so corpora built before a check existed are checked too.
"""

from __future__ import annotations

NSP_TOLERANCE = 0.10  # random-next share this far from random_next_prob is a warning
SINGLE_SEGMENT_SHARE = 0.5  # documents of one sentence
SHORT_EXAMPLES = 0.5  # mean example length below this share of max_seq_len
UNK_SHARE = 0.02  # of the source tokens


def corpus_warnings(stats: dict, settings: dict) -> list[str]:
    """Warnings for the statistics of one split (or the totals); `settings` is the build config."""
    warnings = []
    objective = settings.get("objective", "mlm_nsp")
    examples = stats.get("examples", 0)
    documents = stats.get("documents", 0)
    if not examples:
        return ["the corpus holds no examples: the input is too short for one; give more text"]
    expected = settings.get("random_next_prob", 0.5)
    if objective == "mlm_nsp" and abs(stats["nsp_random_share"] - expected) > NSP_TOLERANCE:
        warnings.append(
            f"NSP labels are {stats['nsp_random_share']:.0%} random-next (configured {expected:.0%}): a "
            f"chunk of one segment can only be paired with a random B. Cause: documents with too few "
            f"sentences (is each line a paragraph or record read as a single sentence?), or sentences too long "
            f"for max_seq_len. Fix: set input_format=paragraphs (a paragraph per line, split into sentences) or "
            f"separate documents by blank lines/headings, raise --max-seq-len, or build with --objective mlm "
            f"for short independent texts")
    single = stats.get("single_segment_documents")
    # Only sentence pairs need documents of several segments; packed MLM sequences read text, not pairs.
    if objective == "mlm_nsp" and single is not None and documents and single / documents > SINGLE_SEGMENT_SHARE:
        warnings.append(
            f"{single / documents:.0%} of the documents ({single:,} of {documents:,}) have a single segment "
            f"(sentence). Cause: every line (or record) became a document of its own. Fix: input_format="
            f"paragraphs to split lines into sentences, blank lines or a heading_pattern between documents, "
            f"or --objective mlm (packed sequences need no sentence pairs)")
    max_len = settings.get("max_seq_len", 0)
    mean = stats.get("tokens", 0) / examples
    if objective == "mlm_nsp" and max_len and mean < SHORT_EXAMPLES * max_len:
        warnings.append(
            f"examples average {mean:.0f} tokens of max_seq_len {max_len} ({stats.get('padding_share', 0):.0%} "
            f"padding). Cause: short documents end their pairs early. Fix: join related texts into longer "
            f"documents, lower --max-seq-len, or use --objective mlm, which packs text to full length")
    unk = stats.get("unk_tokens")
    source = stats.get("source_tokens", 0)
    if unk is not None and source and unk / source > UNK_SHARE:
        warnings.append(
            f"{unk / source:.1%} of the tokens are [UNK] ({unk:,} of {source:,}). Cause: the tokenizer was "
            f"trained on other text or with a low character_coverage. Fix: train it on this text "
            f"(`bertcli tokenize train --input ...`) or raise character_coverage")
    return warnings

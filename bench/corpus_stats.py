"""Masking and NSP statistics of a corpus, measured from its examples rather than its manifest.

    bertcli inspect CORPUS --dump 20000 | python bench/corpus_stats.py
    bertcli inspect CORPUS --dump 20000 | python bench/corpus_stats.py --json

Reads the JSON lines of `bertcli inspect --dump` on stdin (input_ids, token_type_ids,
mlm_positions, mlm_labels, next_sentence_label, tokens) and reports what BERT prescribes
(Devlin et al. 2019, section 3.1 and appendix A.1): about 15 % of the text tokens predicted, of
those 80 % shown as [MASK], 10 % kept and 10 % replaced by a random token, never a [CLS], [SEP]
or [PAD] position, and half of the pairs with a random B (pairs only: an MLM-only corpus has no
NSP label and must hold no padding). With --tokenizer, words are checked too: a word (a piece that
begins one, by the tokenizer's word_start_table, and the pieces after it) must be predicted whole
or not at all under whole-word masking; the number of words the masks split is reported. The
predicted positions are classified
from the input itself: [MASK] there means masked, the label's own id means kept, anything else
random (a random draw that hits the original token counts as kept, 1 in the vocabulary size).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

SPECIAL_PIECES = {"[CLS]", "[SEP]", "[PAD]"}


def corpus_stats(lines, word_starts=None) -> dict:
    counts = Counter()
    lengths = []
    for line in lines:
        if not line.strip():
            continue
        example = json.loads(line)
        ids, tokens, types = example["input_ids"], example["tokens"], example["token_type_ids"]
        n = len(ids)
        if "next_sentence_label" in example:
            # [CLS] at 0, A's [SEP] just before the first type-1 token, B's [SEP] last
            special_positions = {0, types.index(1) - 1, n - 1}
            counts["random_next"] += example["next_sentence_label"]
            counts["pairs"] += 1
        else:  # packed MLM-only: [CLS], the last [SEP] and a [SEP] after every document
            special_positions = {i for i, piece in enumerate(tokens) if piece in ("[CLS]", "[SEP]")}
        counts["padding"] += sum(piece == "[PAD]" for piece in tokens)
        counts["examples"] += 1
        counts["text_tokens"] += n - len(special_positions)
        lengths.append(n)
        if word_starts is not None:
            original = list(ids)
            for position, label in zip(example["mlm_positions"], example["mlm_labels"]):
                original[position] = label
            predicted = set(example["mlm_positions"])
            bounds = [i for i in range(n) if word_starts[original[i]] or i in special_positions
                      or i - 1 in special_positions] + [n]
            for start, stop in zip(bounds, bounds[1:]):
                inside = sum(i in predicted for i in range(start, stop))
                counts["words"] += 1
                counts["words_predicted"] += inside == stop - start
                counts["words_split"] += 0 < inside < stop - start
        for position, label in zip(example["mlm_positions"], example["mlm_labels"]):
            counts["predicted"] += 1
            counts["special_positions_predicted"] += position in special_positions
            counts["special_pieces_predicted"] += tokens[position] in SPECIAL_PIECES
            if tokens[position] == "[MASK]":
                counts["mask"] += 1
            elif ids[position] == label:
                counts["keep"] += 1
            else:
                counts["random"] += 1
    if not counts["examples"]:
        raise SystemExit("no examples on stdin; pipe in `bertcli inspect CORPUS --dump N`")
    predicted = max(counts["predicted"], 1)
    return {
        "examples": counts["examples"],
        "mean_length": sum(lengths) / len(lengths),
        "max_length": max(lengths),
        "masked_share": counts["predicted"] / counts["text_tokens"],
        "mask_share": counts["mask"] / predicted,
        "keep_share": counts["keep"] / predicted,
        "random_share": counts["random"] / predicted,
        "nsp_random_share": counts["random_next"] / counts["pairs"] if counts["pairs"] else None,
        "padding_tokens": counts["padding"],
        "words": counts["words"] if word_starts is not None else None,
        "words_split_by_masks": counts["words_split"] if word_starts is not None else None,
        "special_positions_predicted": counts["special_positions_predicted"],
        "special_pieces_predicted": counts["special_pieces_predicted"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--tokenizer", help="the corpus's tokenizer folder: also count words split by the masks")
    args = parser.parse_args()
    word_starts = None
    if args.tokenizer:
        from bertcli.tokenizer import load_tokenizer

        word_starts = load_tokenizer(args.tokenizer).word_start_table()
    stats = corpus_stats(sys.stdin, word_starts)
    if args.json:
        print(json.dumps(stats))
        return
    print(f"examples                      {stats['examples']:,} (mean length {stats['mean_length']:.1f}, "
          f"max {stats['max_length']})")
    print(f"predicted / text tokens       {stats['masked_share']:.2%}   (BERT: 15 %)")
    print(f"[MASK] / kept / random        {stats['mask_share']:.2%} / {stats['keep_share']:.2%} / "
          f"{stats['random_share']:.2%}   (BERT: 80 / 10 / 10)")
    if stats["nsp_random_share"] is not None:
        print(f"NSP random B                  {stats['nsp_random_share']:.2%}   (BERT: 50 %)")
    print(f"padding tokens                {stats['padding_tokens']:,}")
    if stats["words"] is not None:
        print(f"words split by the masks      {stats['words_split_by_masks']:,} of {stats['words']:,} "
              f"(0 under whole-word masking)")
    print(f"special positions predicted   {stats['special_positions_predicted']}   (must be 0)")
    print(f"special pieces predicted      {stats['special_pieces_predicted']}   (must be 0)")


if __name__ == "__main__":
    main()

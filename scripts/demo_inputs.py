"""Write the demo's inputs: Python's own documentation as raw text, and a small labelled set.

The text is the English reference documentation that ships with CPython (`pydoc_data.topics`),
one topic per file, so the demo needs nothing but Python. The labelled set is a sentiment task
written here from templates: small, balanced, and learnable in a minute on a CPU.
"""

import random
import sys
from pathlib import Path

import pydoc_data.topics

SUBJECTS = ["the function", "this module", "the new parser", "the interpreter", "that library",
            "the documentation", "this release", "the test suite", "the compiler", "our build",
            "the error message", "the standard library", "this tutorial", "the debugger", "the API"]
POSITIVE = ["clear", "fast", "helpful", "elegant", "reliable", "excellent", "simple", "pleasant",
            "robust", "wonderful", "useful", "delightful", "solid", "great", "friendly"]
NEGATIVE = ["confusing", "slow", "useless", "clumsy", "fragile", "terrible", "bloated", "annoying",
            "broken", "awful", "pointless", "painful", "buggy", "poor", "hostile"]
TEMPLATES = ["{s} is {a} .", "i think {s} is really {a} .", "honestly , {s} felt {a} to me .",
             "everyone agrees that {s} is {a} .", "{s} was {a} from start to finish .",
             "in short : {a} .", "what a {a} experience {s} was .", "my team found {s} quite {a} ."]


def labelled(rng: random.Random, count: int) -> list[tuple[str, int]]:
    rows = []
    for i in range(count):
        label = i % 2
        words = POSITIVE if label else NEGATIVE
        template = rng.choice(TEMPLATES)
        rows.append((template.format(s=rng.choice(SUBJECTS), a=rng.choice(words)), label))
    rng.shuffle(rows)
    return rows


def main(out: Path) -> None:
    text = out / "text"
    text.mkdir(parents=True, exist_ok=True)
    for name, body in sorted(pydoc_data.topics.topics.items()):
        (text / f"{name}.txt").write_text(body, encoding="utf-8")
    rng = random.Random(0)
    for split, count in (("train", 800), ("dev", 200)):
        lines = ["sentence\tlabel"] + [f"{s}\t{label}" for s, label in labelled(rng, count)]
        (out / f"sentiment_{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]))

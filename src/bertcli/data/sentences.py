"""A small rule-based sentence splitter for raw prose (books, articles).

NSP pairs are cut at sentence boundaries (create_pretraining_data.py treats every input line as one
"segment"), so raw text must be split into sentences first. The rules: a sentence ends at `.`, `!`
or `?` (plus any closing quotes or brackets) followed by whitespace and then an upper-case letter,
possibly behind an opening quote; a `.` after a known abbreviation ("Mr.", "St.") or a single
capital initial ("H. G. Wells") is not an end. Hard-wrapped lines inside a paragraph are joined
first, so a line break never ends a sentence by itself.
"""

from __future__ import annotations

import re

# Lower-cased words that are followed by "." without ending a sentence, mostly titles before names.
# ("No. 5", "p. 12" need no entry: a digit after the dot never starts a sentence here.)
ABBREVIATIONS = frozenset(
    "mr mrs ms messrs mme mlle dr prof rev hon st mt gen col maj capt cmdr lt sgt cpl adm gov pres "
    "sen rep jr sr esq vs cf co inc ltd bros dept univ".split()
)

# End punctuation, then closing quotes/brackets/underscores (Gutenberg marks italics with _), then
# the whitespace where the split happens.
_END = re.compile(r"[.!?]+[\"'\u201d\u2019)\]_]*\s+")
_OPENERS = "\"'\u201c\u2018([_"
_UNKNOWN_WORD = "<unk>"
_WHITESPACE = re.compile(r"\s+")


def unwrap(paragraph: str) -> str:
    """One line of text from a hard-wrapped paragraph: line breaks and runs of spaces become one space."""
    return _WHITESPACE.sub(" ", paragraph).strip()


def split_sentences(paragraph: str) -> list[str]:
    """The sentences of one paragraph (hard-wrapped or not), stripped, in order."""
    text = unwrap(paragraph)
    sentences = []
    start = 0
    for match in _END.finditer(text):
        if _is_boundary(text, match):
            sentences.append(text[start:match.end()].strip())
            start = match.end()
    if start < len(text):
        sentences.append(text[start:].strip())
    return [s for s in sentences if s]


def _is_boundary(text: str, match: re.Match) -> bool:
    following = text[match.end():match.end() + 6].lstrip(_OPENERS)
    # WikiText writes out-of-vocabulary words as <unk>, often a sentence's first (capitalised) word
    if not following or not (following[0].isupper() or following.startswith(_UNKNOWN_WORD)):
        return False
    if text[match.start()] != "." or match.group().startswith(".."):
        return True  # "!" and "?" always end a sentence; so does an ellipsis before a capital
    word_start = text.rfind(" ", 0, match.start()) + 1
    word = text[word_start:match.start()].lstrip(_OPENERS)
    if len(word) == 1 and word.isupper():
        return False  # an initial: "H. G. Wells", "J. Smith"
    return word.lower() not in ABBREVIATIONS

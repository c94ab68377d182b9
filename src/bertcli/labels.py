"""The label convention shared by the code that makes labels (corpus shards, masking, task
encoders) and the code that reads them (heads, losses, metrics), without importing either.

IGNORE_INDEX marks a slot that carries no label: a padded MLM prediction slot, a word's later
pieces in NER, padding. It is the index torch's cross_entropy skips by default.
"""

IGNORE_INDEX = -100

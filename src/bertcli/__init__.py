"""bertcli: from raw text to a pretrained BERT encoder and fine-tuned models."""

__version__ = "0.1.0"

"""The BERT encoder and its heads. Imports only torch and its own config."""

from bertcli.model.config import BertConfig, preset_names, preset_shape
from bertcli.model.encoder import BertEncoder
from bertcli.model.heads import (
    BertForPretraining,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    ClassificationHead,
    FeatureModel,
    MaskedLMHead,
    NextSentenceHead,
)

__all__ = [
    "BertConfig",
    "BertEncoder",
    "BertForPretraining",
    "BertForQuestionAnswering",
    "BertForSequenceClassification",
    "BertForTokenClassification",
    "ClassificationHead",
    "FeatureModel",
    "MaskedLMHead",
    "NextSentenceHead",
    "preset_names",
    "preset_shape",
]

"""Everything that faces Hugging Face transformers: BERT weight and config names (bert_weights),
tokenizer import and export (tokenizer), and telling a transformers folder from a bertcli one
(folders). Importing this package imports nothing heavy; its modules import what they need."""

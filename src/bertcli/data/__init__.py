"""Reading text, building the pretraining corpus, reading it back, and task readers."""

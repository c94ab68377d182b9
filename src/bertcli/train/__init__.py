"""The training loop shared by pretrain and finetune, its optimizer, schedule and saved state."""

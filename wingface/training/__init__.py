"""Training: configuration, the data pipeline (sampling, PDB, batched augmentation) and the trainer."""

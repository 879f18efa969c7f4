"""Loading and validating targets.yaml (see `loader`) into the model (see `model`)."""

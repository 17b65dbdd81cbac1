"""The command lines: train, evaluate, filtered, pipeline, plot, models (``python -m agents.<name>``)."""

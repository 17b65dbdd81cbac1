"""The command lines: train, evaluate, filtered, pipeline, plot (``python -m agents.<name>``)."""

"""fraudops: real-time card-fraud detection with its whole MLOps lifecycle."""

__version__ = "0.1.0"

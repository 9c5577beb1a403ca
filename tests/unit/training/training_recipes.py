"""The training tests' quick recipe and test week, shared by their fixtures and tests."""

from datetime import datetime

from fraudops.training.trainer import TrainingConfig

QUICK = TrainingConfig(trials=2, seed=3)
TEST_START = datetime(2024, 1, 29)
TEST_END = datetime(2024, 2, 4)

"""Time-ordered splits, the model zoo, tuning, thresholds, evaluation and the backtest."""

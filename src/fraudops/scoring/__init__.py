"""Real-time scoring: one transaction's fraud probability in microseconds, and its reasons."""

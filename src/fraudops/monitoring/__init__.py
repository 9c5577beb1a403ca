"""Monitoring: data drift against the champion's training reference, performance with intervals."""

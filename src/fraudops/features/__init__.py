"""Feature definitions, computed by two engines with identical values: batch and online."""

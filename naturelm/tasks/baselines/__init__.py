"""tasks baselines."""

"""Real data -> pre-training corpus and instruction sets (see docs/data.md)."""

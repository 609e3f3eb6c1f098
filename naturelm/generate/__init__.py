"""Inference: the decode loop (engine), constrained decoding, post-processing, the vLLM backend, the CLI."""
from naturelm.generate.postprocess import Generation

__all__ = ["Generation"]

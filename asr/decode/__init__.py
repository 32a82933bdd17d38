"""Searches from encoder output to tokens, and decoding of whole manifests."""

from asr.decode.hypothesis import Hypothesis
from asr.decode.options import METHODS, DecodeOptions
from asr.decode.search import decode_batch, search_encoded

__all__ = ["METHODS", "DecodeOptions", "Hypothesis", "decode_batch", "search_encoded"]

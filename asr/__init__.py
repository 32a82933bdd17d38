"""asr: a small attention encoder-decoder speech recognition toolkit."""

__version__ = "0.1.0"

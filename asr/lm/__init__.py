"""Transformer language model on the tokenizer's units: model, text data, training, the
LibriSpeech LM corpus download, and the beam-search scorer for shallow fusion."""

"""Whisper checkpoints in the toolkit: the log-mel frontend, the configuration of the toolkit's
own encoder/decoder that Whisper is, and converters from openai-whisper, Hugging Face
transformers and CTranslate2 (faster-whisper) files into an ordinary experiment directory.
"""

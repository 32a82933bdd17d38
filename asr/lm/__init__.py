"""Language-model training: text data, the training run, the LibriSpeech LM corpus download.
The model is asr.nn.lm; the beam-search scorer for shallow fusion is asr.decode.lm."""

"""The model's special token ids, defined once and importable without any tokenizer library.

0 is the CTC blank (also the padding value of token batches), 1 is <unk>, and 2 is <sos/eos>,
which starts every decoder input and ends every decoder target. Every tokenizer maps its own
special tokens onto these ids (:mod:`asr.text.tokenizer`, :mod:`asr.text.whisper_bpe`).
"""

BLANK_ID = 0
UNK_ID = 1
SOS_EOS_ID = 2

"""Decoding: the decode config (options.py), the decoding task assembled per call (task.py),
its parts (filters, scorers, ranking, end rules), the searches, and decoding of whole manifests.

Importing the package loads nothing heavy: the CLI reads the decode defaults when it starts.
"""

"""The ``baseten-training`` command line, split by concern.

Private: the public entry point is `baseten_training_async.cli.main`.
"""

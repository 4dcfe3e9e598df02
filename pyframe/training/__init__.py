"""Keras-style training: the trainer (compile, fit, evaluate, predict) that
every Module inherits, the data adapters that turn arrays, pandas, datasets
and generators into batches, and the callback protocol."""

"""pf.layers: Keras-named layers (channels_last by default), built on their
first call with shapes inferred from the input."""
from .base import Layer
from .core import (Dense, Activation, ReLU, LeakyReLU, Softmax, Flatten, Reshape, Permute, Add,
                   Subtract, Multiply, Average, Maximum, Concatenate, Rescaling, Normalization,
                   Embedding, Dropout, ZeroPadding2D, UpSampling2D)
from .recurrent import SimpleRNN, LSTM, GRU, Bidirectional
from .normalization import (BatchNormalization, LayerNormalization, GroupNormalization,
                            RMSNormalization)
from .attention import MultiHeadAttention, TransformerEncoder

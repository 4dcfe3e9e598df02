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
from .conv import (Conv1D, Conv2D, Conv2DTranspose, DepthwiseConv2D, SeparableConv2D, MaxPooling1D,
                   MaxPooling2D, AveragePooling1D, AveragePooling2D, GlobalAveragePooling1D,
                   GlobalAveragePooling2D, GlobalMaxPooling1D, GlobalMaxPooling2D)

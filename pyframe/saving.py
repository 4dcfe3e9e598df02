"""pf.saving: the Keras-named home of pyframe.io (save_model, load_model,
save_weights, load_weights, register_serializable, ...)."""
from .io import *  # noqa: F401,F403
from .io import __all__  # noqa: F401

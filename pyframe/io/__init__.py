"""pyframe.io (also ``pf.saving``): models and weights in one safetensors file.

    model.save("model.safetensors")              # architecture, weights, optimizer
    model = pf.load_model("model.safetensors")
    model.save_weights("w.safetensors"); model.load_weights("w.safetensors")

The architecture is Keras-style JSON in the file's metadata; the tensors are
safetensors.  Nothing is pickled, and loading never runs code from the file:
layer classes resolve through pyframe's own layers, classes registered with
``@register_serializable()`` and ``custom_objects``."""
from .saving import (save_model, load_model, save_weights, load_weights, save_checkpoint,
                     load_checkpoint, FORMAT_VERSION)
from .serialization import (register_serializable, register_keras_serializable,
                            get_registered_object, get_registered_name, custom_object_scope,
                            serialize_layer, deserialize_layer)

__all__ = ["save_model", "load_model", "save_weights", "load_weights", "save_checkpoint",
           "load_checkpoint", "FORMAT_VERSION",
           "register_serializable", "register_keras_serializable", "get_registered_object",
           "get_registered_name", "custom_object_scope", "serialize_layer", "deserialize_layer"]

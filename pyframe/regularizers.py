"""Weight penalties (Keras): a layer's ``losses`` holds them, fit() adds them to the loss."""
from . import _C


class Regularizer:
    def __call__(self, w):
        raise NotImplementedError

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class L1L2(Regularizer):
    """l1 * sum(|w|) + l2 * sum(w^2)."""

    def __init__(self, l1=0.0, l2=0.0):
        for what, v in (("l1", l1), ("l2", l2)):
            if not isinstance(v, (int, float)) or v < 0:
                raise ValueError("%s: %s must be a non-negative number; got %r"
                                 % (type(self).__name__, what, v))
        self.l1, self.l2 = float(l1), float(l2)

    def __call__(self, w):
        total = None
        if self.l1:
            total = _C.abs(w).sum() * self.l1
        if self.l2:
            t = (w * w).sum() * self.l2
            total = t if total is None else total + t
        return total if total is not None else _C.zeros((), dtype=w.dtype)

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}

    def __repr__(self):
        return "%s(l1=%g, l2=%g)" % (type(self).__name__, self.l1, self.l2)


class L1(L1L2):
    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


l1, l2, l1_l2 = L1, L2, L1L2


def get(identifier):
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str):
        table = {"l1": L1, "l2": L2, "l1_l2": L1L2, "l1l2": L1L2}
        if identifier.lower() not in table:
            raise ValueError("unknown regularizer %r; known: l1, l2, l1_l2" % (identifier,))
        return table[identifier.lower()]()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if callable(identifier):
        return identifier
    raise TypeError("regularizer must be a name, a Regularizer or a callable; got %s"
                    % type(identifier).__name__)


_CLASSES = {"L1": L1, "L2": L2, "L1L2": L1L2}


def serialize(regularizer):
    """``{"class_name": ..., "config": ...}`` for a saved layer config."""
    if not isinstance(regularizer, Regularizer) or type(regularizer).__name__ not in _CLASSES:
        raise ValueError("cannot save the regularizer %r: only pf.regularizers L1, L2 and L1L2 "
                         "are saved with a layer's config" % (regularizer,))
    return {"class_name": type(regularizer).__name__, "config": regularizer.get_config()}


def deserialize(config):
    cls = _CLASSES.get(config.get("class_name")) if isinstance(config, dict) else None
    if cls is None or not isinstance(config.get("config", {}), dict):
        raise ValueError("unknown regularizer config %r; expected {'class_name': 'L1' | 'L2' | "
                         "'L1L2', 'config': {...}}" % (config,))
    return cls(**config.get("config", {}))

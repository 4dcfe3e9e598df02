"""Runnable examples on real data that ships with scikit-learn (the
``examples`` extra: ``pip install 'pyframe[examples]'``):

    python -m pyframe.examples.digits    # a small CNN on handwritten digits
    python -m pyframe.examples.tabular   # a pandas DataFrame into fit()
"""


def need_sklearn(example):
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise SystemExit("%s needs scikit-learn for its data set: pip install "
                         "'pyframe[examples]' (or pip install scikit-learn)" % example) from None

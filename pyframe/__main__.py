"""`python -m pyframe`: print the configuration and show the zero-copy NumPy bridge at work."""
import numpy as np

import pyframe as pf


def main():
    pf.show_config()
    print()
    pf.manual_seed(0)
    x = pf.randn(2, 3)
    a = np.asarray(x)
    print("x = pf.randn(2, 3) ->", x)
    print("np.asarray(x) shares memory with x:", np.shares_memory(a, np.asarray(x)))
    y = pf.from_numpy(np.arange(6.0))
    v = y.reshape(2, 3).T
    v[0] = -1.0
    print("writing through a transposed view of pf.from_numpy(np.arange(6.)):", y.tolist())
    print("memory:", pf.memory_stats()["cpu"])


if __name__ == "__main__":
    main()

"""Fit the polynomial behind pf_geluf's erfc (csrc/kernels/vmath.h).

erfc(z) for z >= 0 is written as  t * exp(-z^2 + g(t)),  t = 1 / (1 + z/2):
the exp carries the Gaussian decay and t the 1/z tail, so that g is smooth
on t in (0, 1] and a polynomial of degree 12 fits it to ~2e-10, which is
the relative error of erfc (|delta g| = |delta erfc| / erfc).  The fit is a
least-squares fit on Chebyshev nodes in t for z in [0, 10.5]; beyond
z = 10.5 (x < -14.8) gelu underflows float32 anyway.

Run:  python dev/fit_gelu_erfc.py   (needs mpmath for the reference)
"""
import mpmath
import numpy as np
from numpy.polynomial import polynomial as P

mpmath.mp.dps = 40
ZMAX, DEG, NODES = 10.5, 12, 4000


def g_of(z):
    t = 1 / (1 + z / 2)
    return float(mpmath.log(mpmath.erfc(z)) + mpmath.mpf(z) ** 2 - mpmath.log(t))


def main():
    tlo = 1 / (1 + ZMAX / 2)
    k = np.arange(NODES)
    t = (np.cos(np.pi * (k + 0.5) / NODES) + 1) / 2 * (1 - tlo) + tlo
    z = (1 / t - 1) * 2
    c = P.polyfit(t, [g_of(v) for v in z], DEG)
    zz = np.linspace(0, ZMAX, 20001)
    err = np.abs(P.polyval(1 / (1 + zz / 2), c) - [g_of(v) for v in zz]).max()
    print("max relative error of erfc: %.3g" % err)
    for i, ci in enumerate(c):
        print("c%-2d = %.17g" % (i, ci))


if __name__ == "__main__":
    main()

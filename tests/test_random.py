"""The Philox 4x32-10 generator and the sampling constructors.

Oracles: the Random123 known-answer vectors (through a pure-Python Philox
that is itself checked against them), the contract written in
csrc/random.c (element i of a draw is a function of (seed, offset + i/2),
and a draw of n elements advances the offset by ceil(n/2) blocks), and
statistics with loose but meaningful bounds.  Every draw is seeded, so
these tests are deterministic.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import pyframe as pf
from helpers_core import FLOAT_NAMES, to_numpy

MASK32 = 0xFFFFFFFF


def philox4x32_10(ctr, key):
    """Reference Philox4x32-10 (Salmon et al., SC'11; Random123 philox.h)."""
    c0, c1, c2, c3 = ctr
    k0, k1 = key
    for _ in range(10):
        p0 = 0xD2511F53 * c0
        p1 = 0xCD9E8D57 * c2
        c0, c1, c2, c3 = ((p1 >> 32) ^ c1 ^ k0) & MASK32, p1 & MASK32, \
            ((p0 >> 32) ^ c3 ^ k1) & MASK32, p0 & MASK32
        k0 = (k0 + 0x9E3779B9) & MASK32
        k1 = (k1 + 0xBB67AE85) & MASK32
    return c0, c1, c2, c3


# Random123 kat_vectors: counter (4 words), key (2 words) -> output
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((MASK32,) * 4, (MASK32, MASK32), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.fixture
def restore_threads():
    n = pf.get_num_threads()
    yield
    pf.set_num_threads(n)


# ================================================================ Philox

@pytest.mark.parametrize("ctr,key,want", KAT)
def test_reference_philox_reproduces_the_random123_vectors(ctr, key, want):
    assert philox4x32_10(ctr, key) == want


def test_philox_known_answer_counter_zero_key_zero():
    assert pf._C._philox(0, 0) == (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)


def test_philox_all_ones_counter_and_key():
    # The Random123 vector with every word 0xffffffff needs counter words 2
    # and 3 set, which pf._C._philox(counter, key) cannot express (they are 0
    # there).  What does apply: the low 64 counter bits all ones, the key all
    # ones, checked against the reference above (which passes that vector).
    got = pf._C._philox(2**64 - 1, 2**64 - 1)
    assert got == philox4x32_10((MASK32, MASK32, 0, 0), (MASK32, MASK32))
    assert got != (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)   # words 2, 3 matter


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))
def test_philox_matches_the_reference_for_any_64_bit_counter_and_key(counter, key):
    want = philox4x32_10((counter & MASK32, counter >> 32, 0, 0), (key & MASK32, key >> 32))
    assert pf._C._philox(counter, key) == want


# ================================================================ seeding and state

DRAWS = {
    "rand": lambda n, **kw: pf.rand(n, **kw),
    "randn": lambda n, **kw: pf.randn(n, **kw),
    "randint": lambda n, **kw: pf.randint(-50, 1000, (n,), **kw),
    "normal": lambda n, **kw: pf.normal(2.0, 3.0, (n,), **kw),
    "uniform": lambda n, **kw: pf.uniform(-1.0, 4.0, (n,), **kw),
}


def _bits(t):
    a = to_numpy(t)
    return a.view(np.uint8).tobytes()


@pytest.mark.parametrize("draw", sorted(DRAWS))
def test_same_seed_same_numbers(draw):
    f = DRAWS[draw]
    pf.manual_seed(1234)
    a = f(1001)
    b = f(50)
    pf.manual_seed(1234)
    assert _bits(f(1001)) == _bits(a)
    assert _bits(f(50)) == _bits(b)
    assert _bits(b) != _bits(a[:50])                # the stream moves on


@pytest.mark.parametrize("draw", sorted(DRAWS))
def test_different_seeds_give_different_numbers(draw):
    f = DRAWS[draw]
    pf.manual_seed(1)
    a = to_numpy(f(10_000))
    pf.manual_seed(2)
    b = to_numpy(f(10_000))
    # randint has 1050 values, so about 1 in 1000 agree by chance
    assert np.mean(a == b) < 0.01


def test_seed_state_and_offset_advance():
    pf.manual_seed(99)
    assert pf.get_rng_state() == (99, 0)
    pf.rand(5)                                      # ceil(5 / 2) blocks
    assert pf.get_rng_state() == (99, 3)
    pf.randn(2, 2)
    assert pf.get_rng_state() == (99, 5)
    pf.randint(0, 3, (1,))
    assert pf.get_rng_state() == (99, 6)


def test_get_and_set_rng_state_round_trip():
    pf.manual_seed(5)
    pf.rand(17)
    state = pf.get_rng_state()
    a = to_numpy(pf.randn(333, dtype=pf.float64))
    after = pf.get_rng_state()
    pf.set_rng_state(state)
    np.testing.assert_array_equal(to_numpy(pf.randn(333, dtype=pf.float64)), a)
    assert pf.get_rng_state() == after


@pytest.mark.parametrize("draw", ["rand", "randn", "randint"])
def test_element_i_depends_only_on_seed_and_block_offset(draw):
    f = DRAWS[draw]
    pf.manual_seed(77)
    full = to_numpy(f(20, **({} if draw == "randint" else {"dtype": pf.float64})))
    pf.set_rng_state((77, 3))                       # block 3 holds elements 6 and 7
    part = to_numpy(f(14, **({} if draw == "randint" else {"dtype": pf.float64})))
    np.testing.assert_array_equal(part, full[6:])
    # two draws (7 then 5 elements) are the blocks [0, 4) and [4, 7) of the stream
    pf.manual_seed(77)
    first = to_numpy(f(7, **({} if draw == "randint" else {"dtype": pf.float64})))
    second = to_numpy(f(5, **({} if draw == "randint" else {"dtype": pf.float64})))
    np.testing.assert_array_equal(first, full[:7])
    np.testing.assert_array_equal(second, full[8:13])


def test_shape_does_not_change_the_numbers():
    pf.manual_seed(3)
    flat = to_numpy(pf.randn(24))
    pf.manual_seed(3)
    np.testing.assert_array_equal(to_numpy(pf.randn(2, 3, 4)).ravel(), flat)
    pf.manual_seed(3)
    np.testing.assert_array_equal(to_numpy(pf.randn((4, 6))).ravel(), flat)
    pf.manual_seed(3)
    np.testing.assert_array_equal(to_numpy(pf.randn(size=[24])), flat)


def test_manual_seed_wraps_like_pytorch():
    pf.manual_seed(-1)
    assert pf.get_rng_state() == (2**64 - 1, 0)
    pf.manual_seed(2**64 + 5)
    a = to_numpy(pf.rand(10))
    assert pf.get_rng_state()[0] == 5
    pf.manual_seed(5)
    np.testing.assert_array_equal(to_numpy(pf.rand(10)), a)
    pf.manual_seed(np.int64(5))
    np.testing.assert_array_equal(to_numpy(pf.rand(10)), a)


def test_seed_from_the_os_is_returned():
    s = pf.seed()
    assert 0 <= s < 2**64
    assert pf.get_rng_state() == (s, 0)
    a = to_numpy(pf.rand(8))
    pf.manual_seed(s)
    np.testing.assert_array_equal(to_numpy(pf.rand(8)), a)


@pytest.mark.parametrize("draw", sorted(DRAWS))
def test_thread_count_does_not_change_the_numbers(draw, restore_threads):
    # 10**6 elements is far above the threading grain
    f = DRAWS[draw]
    results = []
    for threads in (1, 2, 3):
        pf.set_num_threads(threads)
        assert pf.get_num_threads() == threads
        pf.manual_seed(2024)
        results.append(_bits(f(10**6)))
    assert results[0] == results[1] == results[2]


# ================================================================ distributions

@pytest.mark.parametrize("name", FLOAT_NAMES)
def test_rand_and_uniform_stay_in_the_half_open_interval(name):
    pf.manual_seed(0)
    x = to_numpy(pf.rand(10**6, dtype=name)).astype(np.float64)
    assert x.min() >= 0.0 and x.max() < 1.0, (x.min(), x.max())
    u = to_numpy(pf.uniform(-1.0, 1.0, (10**6,), dtype=name)).astype(np.float64)
    assert u.min() >= -1.0 and u.max() < 1.0, (u.min(), u.max())


def test_rand_float32_never_rounds_up_to_one():
    # A float64 sample of 0.99999998 rounds to 1.0f when cast to float32.
    # This is the state (found by scanning a seed-0 float64 stream) where the
    # second element of the draw is such a value.
    pf.set_rng_state((0, 24962728))
    x = to_numpy(pf.rand(2, dtype=pf.float32))
    assert (x < 1.0).all(), x


def test_rand_moments():
    pf.manual_seed(11)
    x = to_numpy(pf.rand(10**6, dtype=pf.float64))
    assert abs(x.mean() - 0.5) < 0.005              # standard error 0.0003
    assert abs(x.var() - 1 / 12) < 0.002
    counts = np.histogram(x, bins=10, range=(0, 1))[0]
    assert counts.min() > 0.97 * 10**5 and counts.max() < 1.03 * 10**5   # 10 sigma


@pytest.mark.parametrize("name", ["float32", "float64"])
def test_randn_mean_std_and_pair_independence(name):
    pf.manual_seed(12)
    x = to_numpy(pf.randn(10**6, dtype=name)).astype(np.float64)
    assert abs(x.mean()) < 0.01                     # standard error 0.001
    assert abs(x.std() - 1) < 0.01
    # elements 2k and 2k+1 come from one Box-Muller pair: still uncorrelated
    assert abs(np.corrcoef(x[0::2], x[1::2])[0, 1]) < 0.01
    assert abs(np.corrcoef(x[:-1], x[1:])[0, 1]) < 0.01


def test_randn_low_precision_dtypes_are_finite_and_centered():
    for name in ("float16", "bfloat16"):
        pf.manual_seed(13)
        x = to_numpy(pf.randn(10**5, dtype=name)).astype(np.float64)
        assert np.isfinite(x).all()
        assert abs(x.mean()) < 0.02 and abs(x.std() - 1) < 0.02


def test_normal_with_mean_std_and_size():
    pf.manual_seed(14)
    for t in (pf.normal(3.0, 2.0, (10**6,)), pf.normal(mean=3.0, std=2.0, size=(1000, 1000)),
              pf.normal(loc=3, scale=2, size=10**6)):
        x = to_numpy(t).astype(np.float64)
        assert x.size == 10**6
        assert abs(x.mean() - 3.0) < 0.02 and abs(x.std() - 2.0) < 0.02
    assert pf.normal(size=(2, 3)).shape == (2, 3)
    assert pf.normal().shape == ()
    z = pf.normal(5.0, 0.0, (4,))
    assert z.tolist() == [5.0] * 4                  # std 0 is allowed


def test_uniform_with_low_high_and_size():
    pf.manual_seed(15)
    x = to_numpy(pf.uniform(-2.0, 5.0, (10**6,), dtype=pf.float64))
    assert x.min() >= -2.0 and x.max() < 5.0
    assert abs(x.mean() - 1.5) < 0.02
    assert abs(x.std() - 7 / math.sqrt(12)) < 0.02
    y = to_numpy(pf.uniform(low=10, high=11, size=(100, 10)))
    assert y.shape == (100, 10) and y.min() >= 10 and y.max() < 11
    assert pf.uniform(size=3).shape == (3,)


def test_randint_covers_every_value_in_range_uniformly():
    pf.manual_seed(16)
    x = to_numpy(pf.randint(-3, 7, (10**5,)))
    assert x.dtype == np.int64 and x.min() == -3 and x.max() == 6
    counts = np.bincount(x + 3, minlength=10)
    assert (counts > 0).all() and counts.size == 10
    expected = x.size / 10
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 50                                  # 9 dof: p ~ 1e-7


def test_randint_argument_forms():
    pf.manual_seed(17)
    a = pf.randint(5, (200,))                        # torch: randint(high, size)
    assert a.shape == (200,) and 0 <= to_numpy(a).min() and to_numpy(a).max() < 5
    b = pf.randint(5)                                # numpy: one value
    assert b.shape == () and 0 <= b.item() < 5
    c = pf.randint(low=2, high=4, size=(3, 3))
    assert c.shape == (3, 3) and set(to_numpy(c).ravel()) <= {2, 3}
    d = pf.randint(-5, 5, (1000,), dtype=pf.int8)
    assert d.dtype is pf.int8 and to_numpy(d).min() >= -5 and to_numpy(d).max() < 5


def test_randint_full_int64_range():
    pf.manual_seed(18)
    x = to_numpy(pf.randint(-2**63, 2**63 - 1, (10**4,)))
    assert (x < 0).mean() == pytest.approx(0.5, abs=0.03)
    assert x.max() < 2**63 - 1
    assert len(np.unique(x)) == x.size


def test_randint_values_fit_the_requested_dtype():
    # [-5, 5) has values that uint8 cannot hold: the draw cannot honour
    # both the range and the dtype, and must refuse rather than wrap.
    with pytest.raises(ValueError, match=r"pf\.randint.*uint8"):
        pf.randint(-5, 5, (100,), dtype=pf.uint8)
    with pytest.raises(ValueError, match=r"pf\.randint.*int8"):
        pf.randint(0, 300, (100,), dtype=pf.int8)


def _normal_cdf(x):
    return 0.5 * (1.0 + np.frompyfunc(math.erf, 1, 1)(x / math.sqrt(2.0)).astype(np.float64))


def _ks_statistic(samples, cdf):
    x = np.sort(samples)
    n = x.size
    f = cdf(x)
    i = np.arange(1, n + 1)
    return max((i / n - f).max(), (f - (i - 1) / n).max())


# Kolmogorov-Smirnov critical value at significance 0.001: 1.95 / sqrt(n)
KS_N = 10**5
KS_LIMIT = 1.95 / math.sqrt(KS_N)


@pytest.mark.parametrize("name", ["float32", "float64"])
def test_randn_passes_kolmogorov_smirnov_against_the_normal_cdf(name):
    pf.manual_seed(19)
    x = to_numpy(pf.randn(KS_N, dtype=name)).astype(np.float64)
    assert _ks_statistic(x, _normal_cdf) < KS_LIMIT


def test_normal_and_rand_pass_kolmogorov_smirnov():
    pf.manual_seed(20)
    z = (to_numpy(pf.normal(-4.0, 0.5, (KS_N,), dtype=pf.float64)) + 4.0) / 0.5
    assert _ks_statistic(z, _normal_cdf) < KS_LIMIT
    u = to_numpy(pf.rand(KS_N, dtype=pf.float64))
    assert _ks_statistic(u, lambda v: v) < KS_LIMIT


def test_kolmogorov_smirnov_check_rejects_wrong_distributions():
    # the statistic above is able to fail: uniform or shifted samples are caught
    pf.manual_seed(21)
    u = to_numpy(pf.uniform(-2.0, 2.0, (KS_N,), dtype=pf.float64))
    assert _ks_statistic(u, _normal_cdf) > 5 * KS_LIMIT
    z = to_numpy(pf.randn(KS_N, dtype=pf.float64)) + 0.03
    assert _ks_statistic(z, _normal_cdf) > KS_LIMIT


def test_requires_grad_on_random_constructors():
    assert pf.randn(3, requires_grad=True).requires_grad
    assert pf.rand(2, 2, dtype=pf.float64, requires_grad=True).requires_grad
    assert not pf.randn(3).requires_grad

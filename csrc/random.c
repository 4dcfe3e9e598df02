/*
 * random.c -- the counter-based generator (Philox 4x32-10) and the
 * sampling constructors rand, randn, randint, normal, uniform.
 *
 * Element i of a draw is a pure function of (seed, offset + i / 2): each
 * 128-bit Philox block feeds two elements.  So the numbers do not depend
 * on how the work is split between threads, and a GPU backend computing
 * the same function gives the same numbers.  After a draw of n elements
 * the generator's offset advances by ceil(n / 2) blocks.
 *
 * The arithmetic (Philox, the transforms to uniform, normal and integer
 * samples) is kernels/philox.h, which the CUDA library compiles too: a draw
 * with device="cuda" runs there (cuda/random.cu) and gives the same bits.
 */
/*
 * No a * b + c fused into one fma here, even where the target has FMA: the
 * transforms of kernels/philox.h must round as on the GPU (where they use
 * the never-fused _rn intrinsics).  Before any include, so that the
 * header's inline functions compile under it.
 */
#pragma GCC optimize("fp-contract=off")
#include "kernels/kernels.h"
#include "kernels/philox.h"
#include "cuda_backend.h"
#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* The fixed seed a fresh process starts with: runs are reproducible by default. */
#define PF_DEFAULT_SEED 20260101u

static struct {
    uint64_t seed;
    uint64_t offset;
} rng = {PF_DEFAULT_SEED, 0};

uint64_t pf_random_next_offset(uint64_t count)
{
    uint64_t at = rng.offset;
    rng.offset += (count + 1) / 2;
    return at;
}

uint64_t pf_random_seed(void)
{
    return rng.seed;
}

/* the uniforms of rand, for draws made elsewhere (dropout masks) */
void pf_random_uniform_pair(uint64_t seed, uint64_t block, double out[2])
{
    pf_rng_uniform_pair(seed, block, out);
}

PfTensor *pf_dropout_mask_cuda(const PfTensor *x, double p, const char *op)
{
    pf_device dev = x->storage->device;
    if (p >= 1.0) {
        return pf_tensor_zeros(x->ndim, x->shape, x->dtype, dev, op);
    }
    const PfCudaLib *lib = pf_cuda_lib(op);
    if (lib == NULL) {
        return NULL;
    }
    PfTensor *mask = pf_tensor_empty(x->ndim, x->shape, x->dtype, dev, op);
    if (mask == NULL) {
        return NULL;
    }
    int64_t n = pf_numel(x->shape, x->ndim);
    uint64_t seed = rng.seed, offset = pf_random_next_offset((uint64_t)n);
    int status = lib->dropout_mask(dev.index, pf_tensor_data(mask), (int)mask->dtype, n, p, seed,
                                   offset);
    if (status != 0) {
        Py_DECREF(mask);
        pf_cuda_raise(lib, op, status);
        return NULL;
    }
    return mask;
}

typedef pf_rng_dist dist;
#define DIST_UNIFORM PF_RNG_UNIFORM
#define DIST_NORMAL PF_RNG_NORMAL
#define DIST_INT PF_RNG_INT

/*
 * Store a uniform sample, keeping the interval half-open: rounding to a
 * narrow dtype can carry a value just below `high` up to `high` itself,
 * and then the largest value of the dtype below `high` is stored instead.
 */
static void store_below(double v, double high, pf_dtype dt, char *dst)
{
    double back;
    pf_cast_one(&v, PF_FLOAT64, dst, dt);
    pf_cast_one(dst, dt, &back, PF_FLOAT64);
    if (back < high) {
        return;
    }
    if (dt == PF_FLOAT64) {
        double x = nextafter(high, -INFINITY);
        memcpy(dst, &x, 8);
    }
    else if (dt == PF_FLOAT32) {
        float x = (float)high;
        while ((double)x >= high) {
            x = nextafterf(x, -INFINITY);
        }
        memcpy(dst, &x, 4);
    }
    else {
        /* float16 / bfloat16: step the 16-bit pattern toward -inf */
        uint16_t h;
        memcpy(&h, dst, 2);
        for (int guard = 0; guard < 4 && back >= high; guard++) {
            h = pf_rng_step_down16(h);
            memcpy(dst, &h, 2);
            pf_cast_one(dst, dt, &back, PF_FLOAT64);
        }
    }
}

/* the cpu fill of t (contiguous, fresh) from d's state */
static void fill_dist(PfTensor *t, const dist *d)
{
    int64_t n = pf_numel(t->shape, t->ndim);
    int64_t blocks = (n + 1) / 2;
    char *p = pf_tensor_data(t);
    int isz = pf_dtypes[t->dtype].itemsize;
    pf_dtype dt = t->dtype;
    int nth = n >= PF_GRAIN / 4 ? pf_get_num_threads() : 1;
    #pragma omp parallel for num_threads(nth) schedule(static) if (nth > 1)
    for (int64_t j = 0; j < blocks; j++) {
        double fv[2] = {0, 0};
        int64_t iv[2] = {0, 0};
        pf_rng_sample_pair(d, (uint64_t)j, fv, iv);
        for (int k = 0; k < 2 && 2 * j + k < n; k++) {
            char *dst = p + (2 * j + k) * isz;
            if (d->kind == DIST_INT) {
                pf_cast_one(&iv[k], PF_INT64, dst, dt);
            }
            else if (d->kind == DIST_UNIFORM && d->b > d->a) {
                store_below(fv[k], d->b, dt, dst);
            }
            else {
                pf_cast_one(&fv[k], PF_FLOAT64, dst, dt);
            }
        }
    }
}

/*
 * The same fill on a CUDA device, by the library's kernel over the same
 * transforms (kernels/philox.h): the numbers equal the cpu's bit for bit.
 */
static int fill_dist_cuda(PfTensor *t, const dist *d, const char *op)
{
    const PfCudaLib *lib = pf_cuda_lib(op);
    if (lib == NULL) {
        return -1;
    }
    int64_t n = pf_numel(t->shape, t->ndim);
    int status = lib->rng_fill(t->storage->device.index, pf_tensor_data(t), (int)t->dtype, n, d);
    return status == 0 ? 0 : pf_cuda_raise(lib, op, status);
}

static PyObject *draw(PyObject *args, PyObject *kwds, const char *op, dist *d)
{
    int64_t shape[PF_MAX_DIMS];
    int ndim, has_dtype, rg;
    pf_dtype dtype = PF_FLOAT32;
    pf_device dev;
    if (pf_parse_creation(args, kwds, op, shape, &ndim, &dtype, &has_dtype, &rg, &dev) < 0) {
        return NULL;
    }
    if (!has_dtype && d->kind == DIST_INT) {
        dtype = PF_INT64;
    }
    if (d->kind == DIST_INT && pf_is_int(dtype)) {
        /* every value of [low, high) must be representable: no silent wrap-around */
        static const int64_t lim[PF_NDTYPES][2] = {
            [PF_UINT8] = {0, UINT8_MAX}, [PF_INT8] = {INT8_MIN, INT8_MAX},
            [PF_INT16] = {INT16_MIN, INT16_MAX}, [PF_INT32] = {INT32_MIN, INT32_MAX},
            [PF_INT64] = {INT64_MIN, INT64_MAX},
        };
        int64_t last = (int64_t)((uint64_t)d->low + d->range - 1);
        if (d->low < lim[dtype][0] || last > lim[dtype][1]) {
            return PF_ERR(PyExc_ValueError,
                          "%s: the range [%lld, %lld] does not fit dtype %s (%lld..%lld); use a "
                          "wider dtype or a smaller range", op, (long long)d->low,
                          (long long)last, pf_dtypes[dtype].name, (long long)lim[dtype][0],
                          (long long)lim[dtype][1]);
        }
    }
    if (d->kind == DIST_INT && dtype == PF_BOOL && (d->low < 0 || d->low + (int64_t)d->range > 2)) {
        return PF_ERR(PyExc_ValueError, "%s: a bool result needs a range within [0, 2)", op);
    }
    if (d->kind != DIST_INT && !pf_is_float(dtype)) {
        return PF_ERR(PyExc_TypeError, "%s: needs a floating-point dtype; got %s", op,
                      pf_dtypes[dtype].name);
    }
    PfTensor *t = pf_tensor_empty(ndim, shape, dtype, dev, op);
    if (t == NULL) {
        return NULL;
    }
    /* the state is taken (and the generator advanced) alike on every device */
    d->seed = rng.seed;
    d->offset = pf_random_next_offset((uint64_t)pf_numel(shape, ndim));
    if (dev.type == PF_DEV_CPU) {
        fill_dist(t, d);
    }
    else if (fill_dist_cuda(t, d, op) < 0) {
        Py_DECREF(t);
        return NULL;
    }
    return pf_finish_creation((PyObject *)t, rg, op);
}

static PyObject *py_rand(PyObject *Py_UNUSED(m), PyObject *args, PyObject *kwds)
{
    dist d = {.kind = DIST_UNIFORM, .a = 0.0, .b = 1.0};
    return draw(args, kwds, "pf.rand", &d);
}

static PyObject *py_randn(PyObject *Py_UNUSED(m), PyObject *args, PyObject *kwds)
{
    dist d = {.kind = DIST_NORMAL, .a = 0.0, .b = 1.0};
    return draw(args, kwds, "pf.randn", &d);
}

/*
 * Take named float parameters out of args/kwds (positionally first), leaving
 * the rest (the shape and creation keywords) for draw().  names[i] may have
 * an alias (NumPy loc/scale, PyTorch mean/std).
 */
static int take_params(PyObject **args, PyObject **kwds, const char *op, int nparams,
                       const char *const *names, const char *const *aliases, double *vals,
                       int *given)
{
    Py_ssize_t n = PyTuple_GET_SIZE(*args);
    Py_ssize_t used = n < nparams ? n : nparams;
    PyObject *kw = *kwds ? PyDict_Copy(*kwds) : PyDict_New();
    if (kw == NULL) {
        return -1;
    }
    for (int i = 0; i < nparams; i++) {
        PyObject *o = i < used ? PyTuple_GET_ITEM(*args, i) : NULL;
        const char *keys[2] = {names[i], aliases[i]};
        for (int k = 0; k < 2; k++) {
            if (keys[k] == NULL) {
                continue;
            }
            PyObject *v = PyDict_GetItemString(kw, keys[k]);
            if (v != NULL) {
                if (o != NULL) {
                    Py_DECREF(kw);
                    return PF_ERRI(PyExc_TypeError, "%s: %s given twice", op, names[i]);
                }
                o = v;      /* stays alive: the caller's kwds still holds it */
                if (PyDict_DelItemString(kw, keys[k]) < 0) {
                    Py_DECREF(kw);
                    return -1;
                }
            }
        }
        given[i] = o != NULL;
        if (o != NULL && pf_double_arg(o, op, names[i], &vals[i]) < 0) {
            Py_DECREF(kw);
            return -1;
        }
    }
    PyObject *rest = PyTuple_GetSlice(*args, used, n);
    if (rest == NULL) {
        Py_DECREF(kw);
        return -1;
    }
    *args = rest;
    *kwds = kw;
    return 0;
}

static PyObject *param_draw(PyObject *args, PyObject *kwds, const char *op, dist *d,
                            const char *const *names, const char *const *aliases, double *vals)
{
    int given[2];
    PyObject *a = args, *k = kwds;
    if (take_params(&a, &k, op, 2, names, aliases, vals, given) < 0) {
        return NULL;
    }
    PyObject *r = NULL;
    char x[32], y[32];
    pf_fmt_double(vals[0], x, sizeof(x));
    pf_fmt_double(vals[1], y, sizeof(y));
    if (!(isfinite(vals[0]) && isfinite(vals[1]))) {
        PyErr_Format(PyExc_ValueError, "%s: %s and %s must be finite; got %s and %s", op,
                     names[0], names[1], x, y);
    }
    else if (d->kind == DIST_NORMAL && vals[1] < 0) {
        PyErr_Format(PyExc_ValueError, "%s: std must be >= 0; got %s", op, y);
    }
    else if (d->kind == DIST_UNIFORM && vals[1] < vals[0]) {
        PyErr_Format(PyExc_ValueError, "%s: high (%s) must be >= low (%s)", op, y, x);
    }
    else {
        d->a = vals[0];
        d->b = vals[1];
        r = draw(a, k, op, d);
    }
    Py_DECREF(a);
    Py_DECREF(k);
    return r;
}

/* pf.normal(mean=0.0, std=1.0, size=()) -- NumPy's loc/scale accepted */
static PyObject *py_normal(PyObject *Py_UNUSED(m), PyObject *args, PyObject *kwds)
{
    static const char *const names[] = {"mean", "std"};
    static const char *const aliases[] = {"loc", "scale"};
    double vals[2] = {0.0, 1.0};
    dist d = {.kind = DIST_NORMAL};
    return param_draw(args, kwds, "pf.normal", &d, names, aliases, vals);
}

/* pf.uniform(low=0.0, high=1.0, size=()) */
static PyObject *py_uniform(PyObject *Py_UNUSED(m), PyObject *args, PyObject *kwds)
{
    static const char *const names[] = {"low", "high"};
    static const char *const aliases[] = {"from_", "to"};
    double vals[2] = {0.0, 1.0};
    dist d = {.kind = DIST_UNIFORM};
    return param_draw(args, kwds, "pf.uniform", &d, names, aliases, vals);
}

/*
 * pf.randint(low, high, size) (PyTorch and NumPy), randint(high, size)
 * (PyTorch), randint(high) (NumPy, one value): integers in [low, high).
 */
static PyObject *py_randint(PyObject *Py_UNUSED(m), PyObject *args, PyObject *kwds)
{
    const char *op = "pf.randint";
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    PyObject *lo_o = NULL, *hi_o = NULL, *size_o = NULL;
    PyObject *kw = kwds ? PyDict_Copy(kwds) : PyDict_New();
    if (kw == NULL) {
        return NULL;
    }
    PyObject *v;
    if ((v = PyDict_GetItemString(kw, "low")) != NULL) {
        lo_o = v;
    }
    if ((v = PyDict_GetItemString(kw, "high")) != NULL) {
        hi_o = v;
    }
    if ((v = PyDict_GetItemString(kw, "size")) != NULL) {
        size_o = v;
    }
    Py_XINCREF(lo_o);
    Py_XINCREF(hi_o);
    Py_XINCREF(size_o);
    PyDict_DelItemString(kw, "low");
    PyDict_DelItemString(kw, "high");
    PyDict_DelItemString(kw, "size");
    PyErr_Clear();
    PyObject *pos[3] = {NULL, NULL, NULL};
    for (Py_ssize_t i = 0; i < n && i < 3; i++) {
        pos[i] = PyTuple_GET_ITEM(args, i);
    }
    PyObject *r = NULL;
    if (n > 3) {
        PyErr_Format(PyExc_TypeError, "%s(low, high, size): too many positional arguments", op);
        goto done;
    }
    if (n == 3) {
        lo_o = lo_o ? lo_o : Py_NewRef(pos[0]);
        hi_o = hi_o ? hi_o : Py_NewRef(pos[1]);
        size_o = size_o ? size_o : Py_NewRef(pos[2]);
    }
    else if (n == 2 && (PyTuple_Check(pos[1]) || PyList_Check(pos[1]))) {
        hi_o = hi_o ? hi_o : Py_NewRef(pos[0]);
        size_o = size_o ? size_o : Py_NewRef(pos[1]);
    }
    else if (n == 2) {
        lo_o = lo_o ? lo_o : Py_NewRef(pos[0]);
        hi_o = hi_o ? hi_o : Py_NewRef(pos[1]);
    }
    else if (n == 1) {
        if (hi_o == NULL) {
            hi_o = Py_NewRef(pos[0]);
        }
        else {
            lo_o = lo_o ? lo_o : Py_NewRef(pos[0]);
        }
    }
    if (hi_o == NULL) {
        PyErr_Format(PyExc_TypeError, "%s: high is required: randint(low, high, size) or "
                     "randint(high, size)", op);
        goto done;
    }
    int64_t lo = 0, hi;
    if ((lo_o != NULL && pf_int_arg(lo_o, op, "low", &lo) < 0) ||
        pf_int_arg(hi_o, op, "high", &hi) < 0) {
        goto done;
    }
    if (hi <= lo) {
        PyErr_Format(PyExc_ValueError, "%s: high (%lld) must be greater than low (%lld): the "
                     "range [low, high) is empty", op, (long long)hi, (long long)lo);
        goto done;
    }
    dist d = {.kind = DIST_INT, .low = lo, .range = (uint64_t)hi - (uint64_t)lo};
    PyObject *shape_args = size_o ? PyTuple_Pack(1, size_o) : PyTuple_New(0);
    if (shape_args != NULL) {
        r = draw(shape_args, kw, op, &d);
        Py_DECREF(shape_args);
    }
done:
    Py_XDECREF(lo_o);
    Py_XDECREF(hi_o);
    Py_XDECREF(size_o);
    Py_DECREF(kw);
    return r;
}

static PyObject *py_manual_seed(PyObject *Py_UNUSED(m), PyObject *seed)
{
    if (PyFloat_Check(seed) || !PyIndex_Check(seed)) {
        return PF_ERR(PyExc_TypeError, "pf.manual_seed: seed must be an integer; got %.100s",
                      Py_TYPE(seed)->tp_name);
    }
    PyObject *idx = PyNumber_Index(seed);
    if (idx == NULL) {
        return NULL;
    }
    /* any int: negative seeds and seeds past 64 bits wrap, as in PyTorch */
    unsigned long long s = PyLong_AsUnsignedLongLongMask(idx);
    Py_DECREF(idx);
    if (s == (unsigned long long)-1 && PyErr_Occurred()) {
        return NULL;
    }
    rng.seed = s;
    rng.offset = 0;
    Py_RETURN_NONE;
}

static PyObject *py_get_rng_state(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(noargs))
{
    return Py_BuildValue("(KK)", (unsigned long long)rng.seed, (unsigned long long)rng.offset);
}

static PyObject *py_set_rng_state(PyObject *Py_UNUSED(m), PyObject *state)
{
    unsigned long long seed, offset;
    if (!PyTuple_Check(state) || !PyArg_ParseTuple(state, "KK", &seed, &offset)) {
        PyErr_Clear();
        return PF_ERR(PyExc_TypeError, "pf.set_rng_state: expected the (seed, offset) tuple "
                      "that pf.get_rng_state() returns");
    }
    rng.seed = seed;
    rng.offset = offset;
    Py_RETURN_NONE;
}

/* The raw Philox block for a counter, for tests against reference vectors. */
static PyObject *py_philox(PyObject *Py_UNUSED(m), PyObject *args)
{
    unsigned long long counter, key;
    if (!PyArg_ParseTuple(args, "KK:_philox", &counter, &key)) {
        return NULL;
    }
    pf_philox_block b = pf_philox(counter, key);
    return Py_BuildValue("(kkkk)", (unsigned long)b.v[0], (unsigned long)b.v[1],
                         (unsigned long)b.v[2], (unsigned long)b.v[3]);
}

/* ------------------------------------------------ CUDA kernels on the host */

/* A contiguous cpu tensor the host self-tests write into, or NULL with TypeError. */
static PfTensor *host_out(PyObject *o, const char *op)
{
    if (!PfTensor_Check(o) || !pf_tensor_on_cpu((PfTensor *)o) ||
        !pf_tensor_is_contiguous((PfTensor *)o)) {
        return PF_ERR(PyExc_TypeError, "%s: out must be a contiguous cpu tensor; got %.100s", op,
                      Py_TYPE(o)->tp_name);
    }
    return (PfTensor *)o;
}

/*
 * _cuda_host_rng_fill(out, kind, a, b, low, high, seed, offset): the CUDA
 * library's per-block code of rand/randn/randint run on the host into out
 * (kind "uniform" with a, b = low, high; "normal" with a, b = mean, std;
 * "int" with [low, high)), from the state (seed, offset).  For the tests
 * that check the kernels equal random.c without a GPU.
 */
static PyObject *py_cuda_host_rng_fill(PyObject *Py_UNUSED(m), PyObject *args)
{
    const char *op = "_cuda_host_rng_fill";
    PyObject *o;
    const char *kind;
    double a, b;
    long long low, high;
    unsigned long long seed, offset;
    if (!PyArg_ParseTuple(args, "OsddLLKK:_cuda_host_rng_fill", &o, &kind, &a, &b, &low, &high,
                          &seed, &offset)) {
        return NULL;
    }
    PfTensor *out = host_out(o, op);
    if (out == NULL) {
        return NULL;
    }
    dist d = {.a = a, .b = b, .low = low, .range = (uint64_t)high - (uint64_t)low,
              .seed = seed, .offset = offset};
    if (strcmp(kind, "uniform") == 0) {
        d.kind = DIST_UNIFORM;
    }
    else if (strcmp(kind, "normal") == 0) {
        d.kind = DIST_NORMAL;
    }
    else if (strcmp(kind, "int") == 0) {
        d.kind = DIST_INT;
    }
    else {
        return PF_ERR(PyExc_ValueError, "%s: kind must be 'uniform', 'normal' or 'int'; got '%s'",
                      op, kind);
    }
    const PfCudaLib *lib = pf_cuda_library(op);
    if (lib == NULL) {
        return NULL;
    }
    int status = lib->rng_fill_host(0, pf_tensor_data(out), (int)out->dtype,
                                    pf_numel(out->shape, out->ndim), &d);
    if (status != 0) {
        pf_cuda_raise(lib, op, status);
        return NULL;
    }
    Py_RETURN_NONE;
}

/* _cuda_host_dropout_mask(out, p, seed, offset): the library's dropout mask on the host. */
static PyObject *py_cuda_host_dropout_mask(PyObject *Py_UNUSED(m), PyObject *args)
{
    const char *op = "_cuda_host_dropout_mask";
    PyObject *o;
    double p;
    unsigned long long seed, offset;
    if (!PyArg_ParseTuple(args, "OdKK:_cuda_host_dropout_mask", &o, &p, &seed, &offset)) {
        return NULL;
    }
    PfTensor *out = host_out(o, op);
    const PfCudaLib *lib = out != NULL ? pf_cuda_library(op) : NULL;
    if (lib == NULL) {
        return NULL;
    }
    int status = lib->dropout_mask_host(0, pf_tensor_data(out), (int)out->dtype,
                                        pf_numel(out->shape, out->ndim), p, seed, offset);
    if (status != 0) {
        pf_cuda_raise(lib, op, status);
        return NULL;
    }
    Py_RETURN_NONE;
}

#define KW (PyCFunction)(void (*)(void))
PyMethodDef pf_random_module_methods[] = {
    {"rand", KW py_rand, METH_VARARGS | METH_KEYWORDS,
     "rand(*shape, dtype=float32): uniform on [0, 1)"},
    {"randn", KW py_randn, METH_VARARGS | METH_KEYWORDS,
     "randn(*shape, dtype=float32): standard normal"},
    {"randint", KW py_randint, METH_VARARGS | METH_KEYWORDS,
     "randint(low, high, size) or randint(high, size): integers in [low, high), int64"},
    {"normal", KW py_normal, METH_VARARGS | METH_KEYWORDS,
     "normal(mean=0.0, std=1.0, size=()): normal samples (loc/scale accepted)"},
    {"uniform", KW py_uniform, METH_VARARGS | METH_KEYWORDS,
     "uniform(low=0.0, high=1.0, size=()): uniform samples on [low, high)"},
    {"manual_seed", py_manual_seed, METH_O,
     "manual_seed(seed): seed the generator; the same seed gives the same numbers on any "
     "thread count"},
    {"get_rng_state", py_get_rng_state, METH_NOARGS, "the generator state as (seed, offset)"},
    {"set_rng_state", py_set_rng_state, METH_O, "restore a state from get_rng_state()"},
    {"_philox", py_philox, METH_VARARGS, "_philox(counter, key): one Philox4x32-10 block"},
    {"_cuda_host_rng_fill", py_cuda_host_rng_fill, METH_VARARGS,
     "_cuda_host_rng_fill(out, kind, a, b, low, high, seed, offset): the CUDA draw kernels' "
     "code run on the host (tests)"},
    {"_cuda_host_dropout_mask", py_cuda_host_dropout_mask, METH_VARARGS,
     "_cuda_host_dropout_mask(out, p, seed, offset): the CUDA dropout-mask kernel's code run on "
     "the host (tests)"},
    {NULL, NULL, 0, NULL},
};

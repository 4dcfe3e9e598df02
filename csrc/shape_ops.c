/*
 * shape_ops.c -- joining, splitting and reordering: concatenate, stack,
 * split, chunk, tile, repeat, flip, roll, pad, tril/triu, one_hot,
 * masked_fill, moveaxis.
 *
 * The views (split, chunk, flip, moveaxis) only compute new geometry over
 * the input's storage.  Every op that copies describes its copy as a
 * geometry: a list of up to 2 * PF_MAX_DIMS dimensions, each with a size, a
 * destination stride and a source stride (0 where the source repeats, as in
 * tile).  geom_copy compacts the list and hands it to the strided iterator,
 * so every dtype and stride works, dtypes convert on the fly (concatenate
 * of int8 and float32) and big copies are split across threads.  The few
 * loops that are not copies live in kernels/shape_kernels.c.
 */
#include "ops.h"
#include "gather_cuda.h"
#include "kernels/shape_kernels.h"

/* ------------------------------------------------------------- geometry */

#define GEOM_DIMS (2 * PF_MAX_DIMS)

typedef struct {
    int ndim;
    int64_t shape[GEOM_DIMS];
    int64_t dst[GEOM_DIMS];     /* element strides of the destination */
    int64_t src[GEOM_DIMS];     /* element strides of the source; 0 repeats it */
} geom;

static void geom_push(geom *g, int64_t n, int64_t dst_stride, int64_t src_stride)
{
    g->shape[g->ndim] = n;
    g->dst[g->ndim] = dst_stride;
    g->src[g->ndim] = src_stride;
    g->ndim++;
}

/* A stack tensor viewing `base`'s storage: for the iterator only, never seen by Python. */
static void stack_view(PfTensor *v, const PfTensor *base, int ndim, const int64_t *shape,
                       const int64_t *strides, int64_t offset)
{
    memset(v, 0, sizeof(*v));
    v->storage = base->storage;
    v->dtype = base->dtype;
    v->offset = offset;
    v->ndim = ndim;
    memcpy(v->shape, shape, sizeof(int64_t) * (size_t)ndim);
    memcpy(v->strides, strides, sizeof(int64_t) * (size_t)ndim);
}

/*
 * Copy from src's storage at element offset soff to dst's storage at doff,
 * over the geometry g, converting src's dtype to dst's.  Size-1 dimensions
 * are dropped and neighbours that both sides step over contiguously are
 * merged; if more than PF_MAX_DIMS remain (tile of an 8-d tensor), the
 * leading ones are walked here and the iterator runs the inner ones.
 */
static int geom_copy(PfTensor *dst, int64_t doff, PfTensor *src, int64_t soff, const geom *gin,
                     const char *op)
{
    geom g = {0};
    for (int i = 0; i < gin->ndim; i++) {
        if (gin->shape[i] == 0) {
            return 0;
        }
        if (gin->shape[i] == 1) {
            continue;
        }
        int last = g.ndim - 1;
        if (last >= 0 && g.dst[last] == gin->dst[i] * gin->shape[i] &&
            g.src[last] == gin->src[i] * gin->shape[i]) {
            g.shape[last] *= gin->shape[i];
            g.dst[last] = gin->dst[i];
            g.src[last] = gin->src[i];
        }
        else {
            geom_push(&g, gin->shape[i], gin->dst[i], gin->src[i]);
        }
    }
    pf_loop loop = src->dtype == dst->dtype ? pf_copy_loop(pf_dtypes[dst->dtype].itemsize)
                                            : pf_cast_loops[src->dtype][dst->dtype];
    int lead = g.ndim > PF_MAX_DIMS ? g.ndim - PF_MAX_DIMS : 0;
    int inner = g.ndim - lead;
    int64_t idx[GEOM_DIMS] = {0};
    for (;;) {
        int64_t d = doff, s = soff;
        for (int i = 0; i < lead; i++) {
            d += idx[i] * g.dst[i];
            s += idx[i] * g.src[i];
        }
        PfTensor dv, sv;
        stack_view(&dv, dst, inner, g.shape + lead, g.dst + lead, d);
        stack_view(&sv, src, inner, g.shape + lead, g.src + lead, s);
        if (!pf_tensor_on_cpu(dst)) {
            /* on a device: the strided copy (or cast) kernel over the same geometry */
            if (pf_device_assign(&dv, &sv, op) < 0) {
                return -1;
            }
        }
        else {
            PfTensor *ops[2] = {&sv, &dv};
            pf_iter it;
            pf_iter_build(&it, 2, ops, dv.shape, inner);
            pf_iter_run(&it, loop, NULL);
        }
        int i = lead - 1;
        for (; i >= 0; i--) {
            if (++idx[i] < g.shape[i]) {
                break;
            }
            idx[i] = 0;
        }
        if (i < 0) {
            break;
        }
    }
    return 0;
}

/* The geometry that copies all of `src` into a destination of the same shape. */
static void geom_same(geom *g, const PfTensor *src, const int64_t *dst_strides)
{
    g->ndim = 0;
    for (int d = 0; d < src->ndim; d++) {
        geom_push(g, src->shape[d], dst_strides[d], src->strides[d]);
    }
}

/* --------------------------------------------------------------- helpers */

/* An axis argument normalised against ndim (IndexError naming op when out of range). */
static int axis_value(PyObject *o, int ndim, const char *op, int *out)
{
    int64_t v;
    if (pf_int_arg(o, op, "axis", &v) < 0) {
        return -1;
    }
    Py_ssize_t a = (Py_ssize_t)v;
    if (pf_normalize_axis(&a, ndim, op) < 0) {
        return -1;
    }
    *out = (int)a;
    return 0;
}

/* An optional axis argument: `dflt` when it was not given. */
static int axis_or_default(PyObject *o, int dflt, int ndim, const char *op, int *out)
{
    if (o != NULL) {
        return axis_value(o, ndim, op, out);
    }
    Py_ssize_t a = dflt;
    if (pf_normalize_axis(&a, ndim, op) < 0) {
        return -1;
    }
    *out = (int)a;
    return 0;
}

/* A list, tuple or tensor with at least one dimension: read as a sequence of values. */
static int is_sequence_arg(PyObject *o)
{
    if (PyList_Check(o) || PyTuple_Check(o)) {
        return 1;
    }
    if (PfTensor_Check(o)) {
        return ((PfTensor *)o)->ndim > 0;
    }
    if (pf_is_ndarray(o)) {
        Py_ssize_t n = PyObject_Length(o);
        if (n < 0) {
            PyErr_Clear();      /* a 0-d array has no length: it is a scalar */
            return 0;
        }
        return 1;
    }
    return 0;
}

/*
 * Read an int or a sequence of ints into vals (at most cap of them); *n is
 * the count, *is_seq whether a sequence was given.  `what` names the
 * argument in errors.
 */
static int read_ints(PyObject *o, const char *op, const char *what, int64_t *vals, int cap,
                     int *n, int *is_seq)
{
    if (!is_sequence_arg(o)) {
        *is_seq = 0;
        *n = 1;
        return pf_int_arg(o, op, what, &vals[0]);
    }
    *is_seq = 1;
    PyObject *fast = PySequence_Fast(o, "");
    if (fast == NULL) {
        return -1;
    }
    Py_ssize_t len = PySequence_Fast_GET_SIZE(fast);
    int rc = 0;
    if (len > cap) {
        PyErr_Format(PyExc_ValueError, "%s: %s has %zd entries; at most %d are allowed here",
                     op, what, len, cap);
        rc = -1;
    }
    for (Py_ssize_t i = 0; rc == 0 && i < len; i++) {
        rc = pf_int_arg(PySequence_Fast_GET_ITEM(fast, i), op, what, &vals[i]);
    }
    Py_DECREF(fast);
    *n = (int)len;
    return rc;
}

static int64_t checked_mul(int64_t a, int64_t b, const char *op, int *overflow)
{
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r)) {
        if (!*overflow) {
            PyErr_Format(PyExc_ValueError,
                         "%s: the result would have more than 2**63 elements; use smaller "
                         "sizes", op);
        }
        *overflow = 1;
        return 0;
    }
    return r;
}

static const char *shape_of(const PfTensor *t, char *buf)
{
    return pf_shape_str(t->shape, t->ndim, buf, PF_SHAPE_STRLEN);
}

/* --------------------------------------------------- concatenate, stack */

static void free_tensors(PfTensor **ts, Py_ssize_t n)
{
    if (ts == NULL) {
        return;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_XDECREF(ts[i]);
    }
    PyMem_Free(ts);
}

/* The tensors of a sequence argument, as new references (lists and arrays are converted). */
static PfTensor **tensors_from_seq(PyObject *obj, const char *op, Py_ssize_t *n_out)
{
    *n_out = 0;
    PyObject *fast = PySequence_Fast(obj, "");
    if (fast == NULL) {
        PyErr_Clear();
        return PF_ERR(PyExc_TypeError,
                      "%s: expected a sequence (list or tuple) of tensors; got %.100s", op,
                      Py_TYPE(obj)->tp_name);
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    PfTensor **ts = NULL;
    if (n == 0) {
        PyErr_Format(PyExc_ValueError,
                     "%s: need at least one tensor; got an empty sequence", op);
        goto fail;
    }
    ts = PyMem_Calloc((size_t)n, sizeof(PfTensor *));
    if (ts == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        ts[i] = pf_as_tensor(PySequence_Fast_GET_ITEM(fast, i), 0, PF_FLOAT32, op);
        if (ts[i] == NULL) {
            free_tensors(ts, i);
            ts = NULL;
            goto fail;
        }
    }
    Py_DECREF(fast);
    *n_out = n;
    return ts;
fail:
    Py_DECREF(fast);
    return NULL;
}

/* The result dtype: dtype= when given, else the promotion of every input (NumPy 2). */
static int joined_dtype(PfTensor **ts, Py_ssize_t n, PyObject *dtype_obj, const char *op,
                        pf_dtype *out)
{
    if (dtype_obj != NULL && dtype_obj != Py_None) {
        return pf_dtype_from_object(dtype_obj, op, out);
    }
    pf_dtype d = ts[0]->dtype;
    for (Py_ssize_t i = 1; i < n; i++) {
        d = pf_promote(d, ts[i]->dtype);
    }
    *out = d;
    return 0;
}

/* axis=None: every input flattened (row-major) and joined end to end, as NumPy. */
static PyObject *concat_flat(PfTensor **ts, Py_ssize_t n, pf_dtype dt, const char *op)
{
    int64_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        total += pf_numel(ts[i]->shape, ts[i]->ndim);
    }
    PfTensor *out = pf_tensor_empty(1, &total, dt, ts[0]->storage->device, op);
    if (out == NULL) {
        return NULL;
    }
    int64_t pos = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t cs[PF_MAX_DIMS];
        geom g;
        pf_contiguous_strides(ts[i]->shape, ts[i]->ndim, cs);
        geom_same(&g, ts[i], cs);
        if (geom_copy(out, pos, ts[i], ts[i]->offset, &g, op) < 0) {
            Py_DECREF(out);
            return NULL;
        }
        pos += pf_numel(ts[i]->shape, ts[i]->ndim);
    }
    return (PyObject *)out;
}

static PyObject *concat_axis(PfTensor **ts, Py_ssize_t n, PyObject *axis_obj, pf_dtype dt,
                             const char *op)
{
    char s0[PF_SHAPE_STRLEN], s1[PF_SHAPE_STRLEN];
    int nd = ts[0]->ndim, ax = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (ts[i]->ndim == 0) {
            return PF_ERR(PyExc_ValueError,
                          "%s: input %zd is 0-d (a scalar); only tensors with at least one "
                          "dimension can be concatenated; use stack to join scalars, or "
                          "axis=None", op, i);
        }
    }
    if (axis_obj != NULL && axis_value(axis_obj, nd, op, &ax) < 0) {
        return NULL;
    }
    int64_t shape[PF_MAX_DIMS];
    memcpy(shape, ts[0]->shape, sizeof(shape));
    shape[ax] = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PfTensor *t = ts[i];
        if (t->ndim != nd) {
            return PF_ERR(PyExc_ValueError,
                          "%s: input %zd has %d dimension(s) (shape %s) but input 0 has %d "
                          "(shape %s); all inputs need the same number of dimensions", op, i,
                          t->ndim, shape_of(t, s1), nd, shape_of(ts[0], s0));
        }
        for (int d = 0; d < nd; d++) {
            if (d != ax && t->shape[d] != ts[0]->shape[d]) {
                return PF_ERR(PyExc_ValueError,
                              "%s: input %zd has shape %s but input 0 has shape %s; every "
                              "dimension except the concatenation axis %d must match "
                              "(dimension %d: %lld vs %lld)", op, i, shape_of(t, s1),
                              shape_of(ts[0], s0), ax, d, (long long)t->shape[d],
                              (long long)ts[0]->shape[d]);
            }
        }
        shape[ax] += t->shape[ax];
    }
    PfTensor *out = pf_tensor_empty(nd, shape, dt, ts[0]->storage->device, op);
    if (out == NULL) {
        return NULL;
    }
    int64_t pos = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        geom g;
        geom_same(&g, ts[i], out->strides);
        if (geom_copy(out, pos * out->strides[ax], ts[i], ts[i]->offset, &g, op) < 0) {
            Py_DECREF(out);
            return NULL;
        }
        pos += ts[i]->shape[ax];
    }
    return (PyObject *)out;
}

/*
 * concatenate(arrays, axis=0, dtype=None), as np.concatenate (PyTorch's cat
 * and keras's concat are aliases): inputs promote to a common dtype unless
 * dtype= is given; axis=None joins the flattened inputs.
 */
PyObject *pf_op_concatenate(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                            PyObject *kwnames)
{
    const char *op = "concatenate";
    static const char *const names[] = {"arrays", "axis", "dtype", NULL};
    PyObject *v[3];
    if (pf_parse_args(op, args, nargs, kwnames, names, 1, v) < 0) {
        return NULL;
    }
    Py_ssize_t n;
    PfTensor **ts = tensors_from_seq(v[0], op, &n);
    if (ts == NULL) {
        return NULL;
    }
    PyObject *res = NULL;
    pf_dtype dt;
    if (joined_dtype(ts, n, v[2], op, &dt) < 0) {
        goto done;
    }
    res = v[1] == Py_None ? concat_flat(ts, n, dt, op) : concat_axis(ts, n, v[1], dt, op);
done:
    free_tensors(ts, n);
    return res;
}

/* stack(arrays, axis=0, dtype=None): join equal-shaped inputs along a new axis. */
PyObject *pf_op_stack(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                      PyObject *kwnames)
{
    const char *op = "stack";
    static const char *const names[] = {"arrays", "axis", "dtype", NULL};
    PyObject *v[3];
    if (pf_parse_args(op, args, nargs, kwnames, names, 1, v) < 0) {
        return NULL;
    }
    Py_ssize_t n;
    PfTensor **ts = tensors_from_seq(v[0], op, &n);
    if (ts == NULL) {
        return NULL;
    }
    PyObject *res = NULL;
    char s0[PF_SHAPE_STRLEN], s1[PF_SHAPE_STRLEN];
    int nd = ts[0]->ndim, ax = 0;
    pf_dtype dt;
    if (joined_dtype(ts, n, v[2], op, &dt) < 0) {
        goto done;
    }
    if (nd + 1 > PF_MAX_DIMS) {
        PyErr_Format(PyExc_ValueError,
                     "%s: inputs of shape %s would give a result with %d dimensions; pyframe "
                     "tensors have at most %d", op, shape_of(ts[0], s0), nd + 1, PF_MAX_DIMS);
        goto done;
    }
    if (v[1] != NULL && axis_value(v[1], nd + 1, op, &ax) < 0) {
        goto done;
    }
    for (Py_ssize_t i = 1; i < n; i++) {
        if (ts[i]->ndim != nd ||
            memcmp(ts[i]->shape, ts[0]->shape, sizeof(int64_t) * (size_t)nd) != 0) {
            PyErr_Format(PyExc_ValueError,
                         "%s: input %zd has shape %s but input 0 has shape %s; all inputs "
                         "must have the same shape", op, i, shape_of(ts[i], s1),
                         shape_of(ts[0], s0));
            goto done;
        }
    }
    int64_t shape[PF_MAX_DIMS];
    for (int d = 0, s = 0; d <= nd; d++) {
        shape[d] = d == ax ? (int64_t)n : ts[0]->shape[s++];
    }
    PfTensor *out = pf_tensor_empty(nd + 1, shape, dt, ts[0]->storage->device, op);
    if (out == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        geom g = {0};
        for (int d = 0; d < nd; d++) {
            geom_push(&g, ts[i]->shape[d], out->strides[d < ax ? d : d + 1], ts[i]->strides[d]);
        }
        if (geom_copy(out, (int64_t)i * out->strides[ax], ts[i], ts[i]->offset, &g, op) < 0) {
            Py_DECREF(out);
            goto done;
        }
    }
    res = (PyObject *)out;
done:
    free_tensors(ts, n);
    return res;
}

/* ------------------------------------------------------- split, chunk */

/* The view x[..., start:start+len, ...] along axis ax. */
static PyObject *slice_view(PfTensor *x, int ax, int64_t start, int64_t len)
{
    int64_t shape[PF_MAX_DIMS];
    memcpy(shape, x->shape, sizeof(shape));
    shape[ax] = len;
    return (PyObject *)pf_tensor_view(x, x->ndim, shape, x->strides,
                                      x->offset + start * x->strides[ax]);
}

/* Python slice bound semantics: negative counts from the end, then clamp to [0, n]. */
static int64_t clamp_bound(int64_t b, int64_t n)
{
    if (b < 0) {
        b += n;
    }
    return b < 0 ? 0 : b > n ? n : b;
}

/*
 * split(ary, indices_or_sections, axis=0), as np.split: an int N cuts the
 * axis into N equal views (an error when N does not divide it); a sequence
 * of points cuts before each point, with slice semantics (negative points
 * count from the end, points past the end give empty views).  Returns a
 * list of views.  Not a Tensor method: PyTorch's Tensor.split reads an int
 * as a piece size and a list as sizes, and silently different results
 * would be worse than no method.
 */
PyObject *pf_op_split(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                      PyObject *kwnames)
{
    const char *op = "split";
    static const char *const names[] = {"ary", "indices_or_sections", "axis", NULL};
    PyObject *v[3];
    if (pf_parse_args(op, args, nargs, kwnames, names, 2, v) < 0) {
        return NULL;
    }
    PfTensor *x = pf_as_tensor(v[0], 0, PF_FLOAT32, op);
    if (x == NULL) {
        return NULL;
    }
    PyObject *res = NULL, *fast = NULL;
    int ax = 0;
    if (axis_or_default(v[2], 0, x->ndim, op, &ax) < 0) {
        goto done;
    }
    int64_t n = x->shape[ax];
    if (!is_sequence_arg(v[1])) {
        int64_t sections;
        if (pf_int_arg(v[1], op, "indices_or_sections", &sections) < 0) {
            goto done;
        }
        if (sections <= 0) {
            PyErr_Format(PyExc_ValueError,
                         "%s: the number of sections must be > 0; got %lld", op,
                         (long long)sections);
            goto done;
        }
        if (n % sections != 0) {
            PyErr_Format(PyExc_ValueError,
                         "%s: axis %d of size %lld cannot be split into %lld equal sections; "
                         "use a number of sections that divides %lld, a list of split points, "
                         "or chunk() for a smaller last piece", op, ax, (long long)n,
                         (long long)sections, (long long)n);
            goto done;
        }
        if ((res = PyList_New((Py_ssize_t)sections)) == NULL) {
            goto done;
        }
        int64_t size = n / sections;
        for (int64_t i = 0; i < sections; i++) {
            PyObject *piece = slice_view(x, ax, i * size, size);
            if (piece == NULL) {
                Py_CLEAR(res);
                goto done;
            }
            PyList_SET_ITEM(res, (Py_ssize_t)i, piece);
        }
        goto done;
    }
    if ((fast = PySequence_Fast(v[1], "")) == NULL) {
        goto done;
    }
    Py_ssize_t k = PySequence_Fast_GET_SIZE(fast);
    if ((res = PyList_New(k + 1)) == NULL) {
        goto done;
    }
    int64_t start = 0;
    for (Py_ssize_t i = 0; i <= k; i++) {
        int64_t stop = n;
        if (i < k) {
            if (pf_int_arg(PySequence_Fast_GET_ITEM(fast, i), op, "split point", &stop) < 0) {
                Py_CLEAR(res);
                goto done;
            }
            stop = clamp_bound(stop, n);
        }
        PyObject *piece = slice_view(x, ax, start, stop > start ? stop - start : 0);
        if (piece == NULL) {
            Py_CLEAR(res);
            goto done;
        }
        PyList_SET_ITEM(res, i, piece);
        start = stop;
    }
done:
    Py_XDECREF(fast);
    Py_DECREF(x);
    return res;
}

/*
 * chunk(input, chunks, axis=0), as torch.chunk: pieces of ceil(n / chunks)
 * along the axis, the last one smaller; fewer than `chunks` pieces when the
 * axis is too short (an empty axis gives `chunks` empty pieces).  Returns a
 * tuple of views.
 */
PyObject *pf_op_chunk(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                      PyObject *kwnames)
{
    const char *op = "chunk";
    static const char *const names[] = {"input", "chunks", "axis", NULL};
    PyObject *v[3];
    int64_t chunks;
    if (pf_parse_args(op, args, nargs, kwnames, names, 2, v) < 0 ||
        pf_int_arg(v[1], op, "chunks", &chunks) < 0) {
        return NULL;
    }
    if (chunks <= 0) {
        return PF_ERR(PyExc_ValueError, "%s: chunks must be > 0; got %lld", op,
                      (long long)chunks);
    }
    PfTensor *x = pf_as_tensor(v[0], 0, PF_FLOAT32, op);
    if (x == NULL) {
        return NULL;
    }
    PyObject *res = NULL;
    int ax = 0;
    if (axis_or_default(v[2], 0, x->ndim, op, &ax) < 0) {
        goto done;
    }
    int64_t n = x->shape[ax];
    int64_t size = n == 0 ? 0 : (n + chunks - 1) / chunks;
    int64_t count = n == 0 ? chunks : (n + size - 1) / size;
    if ((res = PyTuple_New((Py_ssize_t)count)) == NULL) {
        goto done;
    }
    for (int64_t i = 0; i < count; i++) {
        int64_t start = i * size, len = n - start < size ? n - start : size;
        PyObject *piece = slice_view(x, ax, start, len);
        if (piece == NULL) {
            Py_CLEAR(res);
            goto done;
        }
        PyTuple_SET_ITEM(res, (Py_ssize_t)i, piece);
    }
done:
    Py_DECREF(x);
    return res;
}

/* ------------------------------------------------------------ tile, repeat */

/*
 * tile(A, reps), as np.tile: reps shorter than A.ndim repeat the trailing
 * axes; longer reps add leading axes.  One copy whose source strides are 0
 * along each repetition.
 */
PyObject *pf_op_tile(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                     PyObject *kwnames)
{
    const char *op = "tile";
    static const char *const names[] = {"A", "reps", NULL};
    PyObject *v[2];
    int64_t reps[PF_MAX_DIMS];
    int nr, is_seq;
    if (pf_parse_args(op, args, nargs, kwnames, names, 2, v) < 0 ||
        read_ints(v[1], op, "reps", reps, PF_MAX_DIMS, &nr, &is_seq) < 0) {
        return NULL;
    }
    for (int i = 0; i < nr; i++) {
        if (reps[i] < 0) {
            return PF_ERR(PyExc_ValueError, "%s: reps must be >= 0; got %lld at position %d",
                          op, (long long)reps[i], i);
        }
    }
    PfTensor *x = pf_as_tensor(v[0], 0, PF_FLOAT32, op);
    if (x == NULL) {
        return NULL;
    }
    PfTensor *out = NULL;
    int nd = x->ndim > nr ? x->ndim : nr, overflow = 0;
    int64_t xs[PF_MAX_DIMS], xst[PF_MAX_DIMS], r[PF_MAX_DIMS], shape[PF_MAX_DIMS];
    for (int k = 0; k < nd; k++) {
        int xi = k - (nd - x->ndim), ri = k - (nd - nr);
        xs[k] = xi >= 0 ? x->shape[xi] : 1;
        xst[k] = xi >= 0 ? x->strides[xi] : 0;
        r[k] = ri >= 0 ? reps[ri] : 1;
        shape[k] = checked_mul(xs[k], r[k], op, &overflow);
    }
    if (overflow || (out = pf_tensor_empty(nd, shape, x->dtype, x->storage->device, op)) == NULL) {
        goto done;
    }
    geom g = {0};
    for (int k = 0; k < nd; k++) {
        geom_push(&g, r[k], xs[k] * out->strides[k], 0);
        geom_push(&g, xs[k], out->strides[k], xst[k]);
    }
    if (geom_copy(out, 0, x, x->offset, &g, op) < 0) {
        Py_CLEAR(out);
    }
done:
    Py_DECREF(x);
    return (PyObject *)out;
}

/* Below this many elements after the repeated axis, repeat uses the block kernel. */
#define REPEAT_MIN_RUN 16

/*
 * np.repeat through the block kernel (shape_kernels.c), from a contiguous
 * source: `reps` holds one count per element of the axis, or is NULL for
 * `uniform` copies of each.
 */
static PfTensor *repeat_blocks(PfTensor *src, int ax, const int64_t *reps, int64_t uniform,
                               const char *op)
{
    int64_t n = src->shape[ax], total = 0;
    PfTensor *contig = NULL, *out = NULL;
    int64_t *starts = NULL;
    if (reps != NULL) {
        if ((starts = PyMem_Malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1))) == NULL) {
            PyErr_NoMemory();
            goto done;
        }
        for (int64_t j = 0; j < n; j++) {
            if (reps[j] < 0) {
                PyErr_Format(PyExc_ValueError,
                             "%s: repeats must be >= 0; got %lld at position %lld", op,
                             (long long)reps[j], (long long)j);
                goto done;
            }
            starts[j] = total;
            if (__builtin_add_overflow(total, reps[j], &total)) {
                PyErr_Format(PyExc_ValueError, "%s: the repeat counts add up to more than 2**63",
                             op);
                goto done;
            }
        }
    }
    else if (__builtin_mul_overflow(n, uniform, &total)) {
        PyErr_Format(PyExc_ValueError, "%s: the result would have more than 2**63 elements",
                     op);
        goto done;
    }
    int64_t shape[PF_MAX_DIMS];
    memcpy(shape, src->shape, sizeof(shape));
    shape[ax] = total;
    contig = pf_tensor_is_contiguous(src) ? (PfTensor *)Py_NewRef(src)
                                          : pf_tensor_copy_as(src, src->dtype, op);
    if (contig == NULL ||
        (out = pf_tensor_empty(src->ndim, shape, src->dtype, src->storage->device, op)) == NULL) {
        goto done;
    }
    int64_t outer = pf_numel(src->shape, ax);
    int64_t inner = pf_numel(src->shape + ax + 1, src->ndim - ax - 1);
    if (pf_numel(shape, src->ndim) > 0) {
        pf_repeat_blocks(pf_tensor_data(contig), pf_tensor_data(out),
                         pf_dtypes[src->dtype].itemsize, outer, n, inner, total, reps, starts,
                         uniform);
    }
done:
    PyMem_Free(starts);
    Py_XDECREF(contig);
    return out;
}

/*
 * repeat(a, repeats, axis=None), as np.repeat: each element repeated
 * `repeats` times (an int, or one count per element along the axis);
 * axis=None repeats the flattened tensor.  Tensor.repeat follows NumPy too:
 * PyTorch's Tensor.repeat is tile here.
 */
PyObject *pf_op_repeat(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                       PyObject *kwnames)
{
    const char *op = "repeat";
    static const char *const names[] = {"a", "repeats", "axis", NULL};
    PyObject *v[3];
    char s0[PF_SHAPE_STRLEN];
    if (pf_parse_args(op, args, nargs, kwnames, names, 2, v) < 0) {
        return NULL;
    }
    PfTensor *x = pf_as_tensor(v[0], 0, PF_FLOAT32, op);
    if (x == NULL) {
        return NULL;
    }
    PfTensor *src = NULL, *rep = NULL, *out = NULL;
    int ax = 0;
    if (v[2] == NULL || v[2] == Py_None) {
        src = pf_tensor_flat(x, op);
    }
    else if (axis_value(v[2], x->ndim, op, &ax) == 0) {
        src = (PfTensor *)Py_NewRef(x);
    }
    if (src == NULL) {
        goto done;
    }
    int64_t n = src->shape[ax], r = 0;
    if (!is_sequence_arg(v[1])) {
        if (pf_int_arg(v[1], op, "repeats", &r) < 0) {
            goto done;
        }
    }
    else {
        if ((rep = pf_as_tensor(v[1], 0, PF_INT64, op)) == NULL) {
            goto done;
        }
        /* an empty list becomes a float32 tensor: with no values there is nothing to refuse */
        if (pf_is_float(rep->dtype) && pf_numel(rep->shape, rep->ndim) > 0) {
            PyErr_Format(PyExc_TypeError, "%s: repeats must be integers; got dtype %s", op,
                         pf_dtypes[rep->dtype].name);
            goto done;
        }
        if (rep->ndim != 1) {
            PyErr_Format(PyExc_ValueError,
                         "%s: repeats must be an int or a 1-D sequence of ints; got shape %s",
                         op, shape_of(rep, s0));
            goto done;
        }
        if (rep->dtype != PF_INT64 || !pf_tensor_is_contiguous(rep)) {
            Py_SETREF(rep, pf_tensor_copy_as(rep, PF_INT64, op));
            if (rep == NULL) {
                goto done;
            }
        }
        const int64_t *rv = (const int64_t *)pf_tensor_data(rep);
        if (rep->shape[0] != 1) {
            if (rep->shape[0] != n) {
                PyErr_Format(PyExc_ValueError,
                             "%s: repeats has %lld entries but axis %d has size %lld; give one "
                             "count per element, or a single count", op,
                             (long long)rep->shape[0], ax, (long long)n);
                goto done;
            }
            out = repeat_blocks(src, ax, rv, 0, op);
            goto done;
        }
        r = rv[0];
    }
    if (r < 0) {
        PyErr_Format(PyExc_ValueError, "%s: repeats must be >= 0; got %lld", op, (long long)r);
        goto done;
    }
    if (pf_numel(src->shape + ax + 1, src->ndim - ax - 1) < REPEAT_MIN_RUN) {
        /* the copies of each element would be runs of a few elements, and the
           iterator's per-run cost would dominate: use the block kernel */
        out = repeat_blocks(src, ax, NULL, r, op);
        goto done;
    }
    int64_t shape[PF_MAX_DIMS];
    int overflow = 0;
    memcpy(shape, src->shape, sizeof(shape));
    shape[ax] = checked_mul(n, r, op, &overflow);
    if (overflow ||
        (out = pf_tensor_empty(src->ndim, shape, src->dtype, src->storage->device, op)) == NULL) {
        goto done;
    }
    /* the axis becomes two: its elements (stride r) and their copies (source stride 0) */
    geom g = {0};
    for (int d = 0; d < src->ndim; d++) {
        if (d == ax) {
            geom_push(&g, n, r * out->strides[d], src->strides[d]);
            geom_push(&g, r, out->strides[d], 0);
        }
        else {
            geom_push(&g, src->shape[d], out->strides[d], src->strides[d]);
        }
    }
    if (geom_copy(out, 0, src, src->offset, &g, op) < 0) {
        Py_CLEAR(out);
    }
done:
    Py_DECREF(x);
    Py_XDECREF(src);
    Py_XDECREF(rep);
    return (PyObject *)out;
}

/* ---------------------------------------------------------- flip, roll */

/*
 * flip(m, axis=None), as np.flip (PyTorch's dims= accepted): a view with
 * negated strides on the flipped axes, no copy.
 */
PyObject *pf_op_flip(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                     PyObject *kwnames)
{
    const char *op = "flip";
    static const char *const names[] = {"m", "axis", "dims", NULL};
    PyObject *v[3];
    if (pf_parse_args(op, args, nargs, kwnames, names, 1, v) < 0) {
        return NULL;
    }
    if (v[1] != NULL && v[2] != NULL) {
        return PF_ERR(PyExc_TypeError, "%s: give axis or dims, not both", op);
    }
    PfTensor *x = pf_as_tensor(v[0], 0, PF_FLOAT32, op);
    if (x == NULL) {
        return NULL;
    }
    PyObject *res = NULL;
    int mask[PF_MAX_DIMS];
    if (pf_parse_axes(v[1] != NULL ? v[1] : v[2], x->ndim, op, mask) == 0) {
        int64_t strides[PF_MAX_DIMS], offset = x->offset;
        for (int d = 0; d < x->ndim; d++) {
            strides[d] = mask[d] ? -x->strides[d] : x->strides[d];
            if (mask[d] && x->shape[d] > 0) {
                offset += (x->shape[d] - 1) * x->strides[d];
            }
        }
        res = (PyObject *)pf_tensor_view(x, x->ndim, x->shape, strides, offset);
    }
    Py_DECREF(x);
    return res;
}

#define ROLL_MAX 64

/* roll of the flattened tensor: two copies of the row-major sequence; the shifts add up */
static PfTensor *roll_flat(PfTensor *x, const int64_t *sh, int ns, const char *op)
{
    PfTensor *flat = pf_tensor_flat(x, op), *out = NULL;
    if (flat == NULL ||
        (out = pf_tensor_empty(x->ndim, x->shape, x->dtype, x->storage->device, op)) == NULL) {
        goto done;
    }
    int64_t n = flat->shape[0], s = 0;
    if (n > 0) {
        for (int i = 0; i < ns; i++) {
            s = (s + sh[i] % n + n) % n;
        }
        geom g = {0};
        geom_push(&g, n - s, 1, 1);
        g.shape[0] = s;
        geom rest = g;
        rest.shape[0] = n - s;
        if (geom_copy(out, s, flat, flat->offset, &rest, op) < 0 ||
            geom_copy(out, 0, flat, flat->offset + (n - s), &g, op) < 0) {
            Py_CLEAR(out);
        }
    }
done:
    Py_XDECREF(flat);
    return out;
}

/*
 * roll(a, shift, axis=None), as np.roll (PyTorch's shifts=/dims= accepted):
 * shift and axis broadcast against each other and shifts on the same axis
 * add up; axis=None rolls the flattened tensor.  Each rolled axis splits
 * the copy in two, so k rolled axes make 2**k block copies.
 */
PyObject *pf_op_roll(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                     PyObject *kwnames)
{
    const char *op = "roll";
    static const char *const names[] = {"a", "shift", "axis", "shifts", "dims", NULL};
    PyObject *v[5];
    if (pf_parse_args(op, args, nargs, kwnames, names, 1, v) < 0) {
        return NULL;
    }
    if ((v[1] != NULL && v[3] != NULL) || (v[2] != NULL && v[4] != NULL)) {
        return PF_ERR(PyExc_TypeError,
                      "%s: give shift or shifts (and axis or dims), not both spellings", op);
    }
    PyObject *shift_o = v[1] != NULL ? v[1] : v[3], *axis_o = v[2] != NULL ? v[2] : v[4];
    if (shift_o == NULL) {
        return PF_ERR(PyExc_TypeError, "%s: missing required argument 'shift'", op);
    }
    int64_t sh[ROLL_MAX], axes[ROLL_MAX];
    int ns, na, s_seq, a_seq;
    if (read_ints(shift_o, op, "shift", sh, ROLL_MAX, &ns, &s_seq) < 0) {
        return NULL;
    }
    PfTensor *x = pf_as_tensor(v[0], 0, PF_FLOAT32, op);
    if (x == NULL) {
        return NULL;
    }
    PfTensor *out = NULL;
    if (axis_o == NULL || axis_o == Py_None) {
        out = roll_flat(x, sh, ns, op);
        goto done;
    }
    if (read_ints(axis_o, op, "axis", axes, ROLL_MAX, &na, &a_seq) < 0) {
        goto done;
    }
    if (ns != na && ns != 1 && na != 1) {
        PyErr_Format(PyExc_ValueError,
                     "%s: shift has %d entries but axis has %d; give one shift per axis, or a "
                     "single shift for all of them", op, ns, na);
        goto done;
    }
    int64_t total[PF_MAX_DIMS] = {0};
    int count = ns == 1 ? na : ns;
    for (int i = 0; i < count; i++) {
        Py_ssize_t a = (Py_ssize_t)axes[na == 1 ? 0 : i];
        if (pf_normalize_axis(&a, x->ndim, op) < 0) {
            goto done;
        }
        int64_t n = x->shape[a];
        if (n > 0) {
            total[a] = (total[a] + sh[ns == 1 ? 0 : i] % n + n) % n;
        }
    }
    if ((out = pf_tensor_empty(x->ndim, x->shape, x->dtype, x->storage->device, op)) == NULL) {
        goto done;
    }
    int rolled[PF_MAX_DIMS], nroll = 0;
    for (int d = 0; d < x->ndim; d++) {
        if (total[d] != 0) {
            rolled[nroll++] = d;
        }
    }
    for (int blk = 0; blk < (1 << nroll); blk++) {
        geom g = {0};
        int64_t doff = 0, soff = x->offset;
        for (int d = 0, j = 0; d < x->ndim; d++) {
            int64_t len = x->shape[d];
            if (j < nroll && rolled[j] == d) {
                int64_t s = total[d], n = x->shape[d];
                if ((blk >> j) & 1) {
                    /* out[:s] = x[n - s:] */
                    len = s;
                    soff += (n - s) * x->strides[d];
                }
                else {
                    /* out[s:] = x[:n - s] */
                    len = n - s;
                    doff += s * out->strides[d];
                }
                j++;
            }
            geom_push(&g, len, out->strides[d], x->strides[d]);
        }
        if (geom_copy(out, doff, x, soff, &g, op) < 0) {
            Py_CLEAR(out);
            goto done;
        }
    }
done:
    Py_DECREF(x);
    return (PyObject *)out;
}

/* ------------------------------------------------------------------- pad */

/*
 * Read pad_width or constant_values -- a scalar, a sequence, or a sequence
 * of sequences -- and broadcast it to (ndim, 2) as np.pad does:
 * pairs[k][0] is the value before axis k, pairs[k][1] after it.  The
 * entries are new references.
 */
static int read_pairs(PyObject *o, int nd, const char *op, const char *what,
                      PyObject *pairs[PF_MAX_DIMS][2])
{
    PyObject *grid[PF_MAX_DIMS][2] = {{NULL}};
    PyObject *outer = NULL;
    int64_t rows = 1, cols = 1;
    int depth = 0, rc = -1;
    if (!is_sequence_arg(o)) {
        grid[0][0] = Py_NewRef(o);
    }
    else {
        if ((outer = PySequence_Fast(o, "")) == NULL) {
            goto done;
        }
        Py_ssize_t len = PySequence_Fast_GET_SIZE(outer);
        depth = 1;
        rows = 1;
        cols = len;
        for (Py_ssize_t i = 0; i < len; i++) {
            PyObject *item = PySequence_Fast_GET_ITEM(outer, i);
            int sub = is_sequence_arg(item);
            if (i == 0 && sub) {
                depth = 2;
                rows = len;
                cols = -1;
            }
            if (sub != (depth == 2)) {
                PyErr_Format(PyExc_ValueError,
                             "%s: %s mixes numbers and sequences; give an int, a (before, "
                             "after) pair, or one (before, after) pair per axis", op, what);
                goto done;
            }
            if (!sub) {
                if (i < 2) {
                    grid[0][i] = Py_NewRef(item);
                }
                continue;
            }
            PyObject *inner = PySequence_Fast(item, "");
            if (inner == NULL) {
                goto done;
            }
            Py_ssize_t ilen = PySequence_Fast_GET_SIZE(inner);
            if (cols >= 0 && ilen != cols) {
                Py_DECREF(inner);
                PyErr_Format(PyExc_ValueError,
                             "%s: the rows of %s have different lengths (%lld and %zd); give "
                             "one (before, after) pair per axis", op, what, (long long)cols,
                             ilen);
                goto done;
            }
            cols = ilen;
            for (Py_ssize_t j = 0; j < ilen; j++) {
                PyObject *e = PySequence_Fast_GET_ITEM(inner, j);
                if (is_sequence_arg(e)) {
                    Py_DECREF(inner);
                    PyErr_Format(PyExc_ValueError,
                                 "%s: %s is nested too deeply; give an int, a (before, after) "
                                 "pair, or one (before, after) pair per axis", op, what);
                    goto done;
                }
                if (i < PF_MAX_DIMS && j < 2) {
                    grid[i][j] = Py_NewRef(e);
                }
            }
            Py_DECREF(inner);
        }
    }
    if ((cols != 1 && cols != 2) || (rows != 1 && rows != nd)) {
        int64_t got[2] = {rows, cols};
        char s0[PF_SHAPE_STRLEN];
        PyErr_Format(PyExc_ValueError,
                     "%s: %s of shape %s does not fit a tensor with %d dimension(s); give an "
                     "int, a (before, after) pair, or one (before, after) pair per axis "
                     "(shape (%d, 2))", op, what,
                     pf_shape_str(depth == 2 ? got : got + 1, depth, s0, sizeof(s0)), nd, nd);
        goto done;
    }
    for (int k = 0; k < nd; k++) {
        int r = rows == 1 ? 0 : k;
        pairs[k][0] = Py_NewRef(grid[r][0]);
        pairs[k][1] = Py_NewRef(grid[r][cols - 1]);
    }
    rc = 0;
done:
    for (int i = 0; i < PF_MAX_DIMS; i++) {
        Py_XDECREF(grid[i][0]);
        Py_XDECREF(grid[i][1]);
    }
    Py_XDECREF(outer);
    return rc;
}

typedef enum { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE } pad_mode;

/*
 * Fill axis k's pads of `out` from its own interior (reflect or edge).
 * Axes before k are already padded, so their full extent is copied; axes
 * after k only over their interior.  This processes axes in order, as
 * np.pad does, so corners come out the same.
 */
static int pad_from_interior(PfTensor *out, const int64_t *in_shape, int64_t pw[][2], int k,
                             pad_mode mode, const char *op)
{
    int nd = out->ndim;
    const int64_t *os = out->strides;
    int64_t b = pw[k][0], a = pw[k][1], n = in_shape[k], base = 0;
    for (int j = k + 1; j < nd; j++) {
        base += pw[j][0] * os[j];
    }
    for (int side = 0; side < 2; side++) {
        int64_t len = side == 0 ? b : a;
        if (len == 0) {
            continue;
        }
        geom g = {0};
        for (int j = 0; j < nd; j++) {
            int64_t sz = j < k ? out->shape[j] : j == k ? len : in_shape[j];
            int64_t src_st = j != k ? os[j] : mode == PAD_REFLECT ? -os[j] : 0;
            geom_push(&g, sz, os[j], src_st);
        }
        /* reflect: out[b - 1 - i] = out[b + 1 + i], out[b + n + i] = out[b + n - 2 - i];
           edge: the first and last interior element */
        int64_t dst_i = side == 0 ? 0 : b + n;
        int64_t src_i = side == 0 ? (mode == PAD_REFLECT ? 2 * b : b)
                                  : (mode == PAD_REFLECT ? b + n - 2 : b + n - 1);
        if (geom_copy(out, base + dst_i * os[k], out, base + src_i * os[k], &g, op) < 0) {
            return -1;
        }
    }
    return 0;
}

/*
 * pad(array, pad_width, mode='constant', constant_values=0), as np.pad with
 * modes 'constant', 'reflect' and 'edge' (PyTorch's 'replicate' accepted).
 * Reflect pads must be smaller than the axis they pad (PyTorch's rule; NumPy
 * would reflect repeatedly).
 */
PyObject *pf_op_pad(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                    PyObject *kwnames)
{
    const char *op = "pad";
    static const char *const names[] = {"array", "pad_width", "mode", "constant_values", NULL};
    PyObject *v[4];
    if (pf_parse_args(op, args, nargs, kwnames, names, 2, v) < 0) {
        return NULL;
    }
    pad_mode mode = PAD_CONSTANT;
    const char *mode_name = "constant";
    if (v[2] != NULL) {
        if (!PyUnicode_Check(v[2])) {
            return PF_ERR(PyExc_TypeError, "%s: mode must be a string; got %.100s", op,
                          Py_TYPE(v[2])->tp_name);
        }
        if ((mode_name = PyUnicode_AsUTF8(v[2])) == NULL) {
            return NULL;
        }
        if (strcmp(mode_name, "reflect") == 0) {
            mode = PAD_REFLECT;
        }
        else if (strcmp(mode_name, "edge") == 0 || strcmp(mode_name, "replicate") == 0) {
            mode = PAD_EDGE;
        }
        else if (strcmp(mode_name, "constant") != 0) {
            return PF_ERR(PyExc_ValueError,
                          "%s: unknown mode '%s'; expected 'constant', 'reflect' or 'edge' "
                          "('replicate')", op, mode_name);
        }
    }
    if (mode != PAD_CONSTANT && v[3] != NULL) {
        return PF_ERR(PyExc_ValueError,
                      "%s: constant_values only applies to mode='constant'; got mode '%s'", op,
                      mode_name);
    }
    PfTensor *x = pf_as_tensor(v[0], 0, PF_FLOAT32, op), *out = NULL;
    if (x == NULL) {
        return NULL;
    }
    int nd = x->ndim;
    PyObject *pwo[PF_MAX_DIMS][2] = {{NULL}}, *cv[PF_MAX_DIMS][2] = {{NULL}};
    PyObject *zero = PyLong_FromLong(0);
    int64_t pw[PF_MAX_DIMS][2], shape[PF_MAX_DIMS];
    if (zero == NULL || read_pairs(v[1], nd, op, "pad_width", pwo) < 0 ||
        read_pairs(v[3] != NULL ? v[3] : zero, nd, op, "constant_values", cv) < 0) {
        goto done;
    }
    for (int k = 0; k < nd; k++) {
        for (int side = 0; side < 2; side++) {
            if (pf_int_arg(pwo[k][side], op, "pad_width", &pw[k][side]) < 0) {
                goto done;
            }
            if (pw[k][side] < 0) {
                PyErr_Format(PyExc_ValueError,
                             "%s: pad_width must be >= 0; got %lld %s axis %d", op,
                             (long long)pw[k][side], side ? "after" : "before", k);
                goto done;
            }
        }
        int64_t n = x->shape[k];
        if (mode != PAD_CONSTANT && n == 0 && (pw[k][0] > 0 || pw[k][1] > 0)) {
            PyErr_Format(PyExc_ValueError,
                         "%s: cannot pad the empty axis %d with mode '%s'; only mode='constant' "
                         "can extend an empty axis", op, k, mode_name);
            goto done;
        }
        if (mode == PAD_REFLECT && (pw[k][0] >= n || pw[k][1] >= n)) {
            PyErr_Format(PyExc_ValueError,
                         "%s: mode 'reflect' needs each pad smaller than the axis it pads; "
                         "axis %d has size %lld but its pad_width is (%lld, %lld); use "
                         "smaller pads or mode='edge'", op, k, (long long)n,
                         (long long)pw[k][0], (long long)pw[k][1]);
            goto done;
        }
        if (__builtin_add_overflow(n, pw[k][0], &shape[k]) ||
            __builtin_add_overflow(shape[k], pw[k][1], &shape[k])) {
            PyErr_Format(PyExc_ValueError, "%s: pad_width on axis %d is too large", op, k);
            goto done;
        }
    }
    if ((out = pf_tensor_empty(nd, shape, x->dtype, x->storage->device, op)) == NULL) {
        goto done;
    }
    int64_t interior = 0;
    for (int k = 0; k < nd; k++) {
        interior += pw[k][0] * out->strides[k];
    }
    geom g;
    geom_same(&g, x, out->strides);
    if (geom_copy(out, interior, x, x->offset, &g, op) < 0) {
        Py_CLEAR(out);
        goto done;
    }
    for (int k = 0; k < nd; k++) {
        if (mode != PAD_CONSTANT) {
            if (pad_from_interior(out, x->shape, pw, k, mode, op) < 0) {
                Py_CLEAR(out);
                goto done;
            }
            continue;
        }
        /* constant: axis k's slabs span every other axis whole; later axes
           overwrite the corners, as np.pad */
        for (int side = 0; side < 2; side++) {
            int64_t vshape[PF_MAX_DIMS];
            PfTensor slab;
            memcpy(vshape, out->shape, sizeof(vshape));
            vshape[k] = pw[k][side];
            if (vshape[k] == 0) {
                continue;
            }
            int64_t off = side == 0 ? 0 : (pw[k][0] + x->shape[k]) * out->strides[k];
            stack_view(&slab, out, nd, vshape, out->strides, off);
            if (pf_tensor_fill_scalar(&slab, cv[k][side], op) < 0) {
                Py_CLEAR(out);
                goto done;
            }
        }
    }
done:
    for (int k = 0; k < PF_MAX_DIMS; k++) {
        for (int side = 0; side < 2; side++) {
            Py_XDECREF(pwo[k][side]);
            Py_XDECREF(cv[k][side]);
        }
    }
    Py_XDECREF(zero);
    Py_DECREF(x);
    return (PyObject *)out;
}

/* ------------------------------------------------------------ tril, triu */

/* 0, 1, ..., n - 1 as an int64 tensor of shape (n, 1) or (1, n) on dev. */
static PfTensor *index_column(int64_t n, int as_row, pf_device dev, const char *op)
{
    int64_t shape[2] = {as_row ? 1 : n, as_row ? n : 1};
    pf_device cpu = {PF_DEV_CPU, 0};
    PfTensor *h = pf_tensor_empty(2, shape, PF_INT64, cpu, op);
    if (h == NULL) {
        return NULL;
    }
    int64_t *p = (int64_t *)pf_tensor_data(h);
    for (int64_t i = 0; i < n; i++) {
        p[i] = i;
    }
    PfTensor *d = pf_tensor_to_device(h, dev, PF_INT64, op);
    Py_DECREF(h);
    return d;
}

/*
 * tril / triu of a device tensor into out: where(col - row <= k (>= k for
 * triu), x, 0) with the elementwise kernels; the mask is built on the
 * device from two index vectors, so only m + n integers cross over.
 */
static int tri_device(PfTensor *x, PfTensor *out, int64_t k, int upper, const char *op)
{
    int nd = x->ndim, rc = -1;
    pf_device dev = x->storage->device;
    PyObject *rows = NULL, *cols = NULL, *diff = NULL, *kk = NULL, *mask = NULL, *r = NULL;
    PyObject *zero = x->dtype == PF_BOOL ? Py_NewRef(Py_False) : PyLong_FromLong(0);
    if (zero == NULL ||
        (rows = (PyObject *)index_column(x->shape[nd - 2], 0, dev, op)) == NULL ||
        (cols = (PyObject *)index_column(x->shape[nd - 1], 1, dev, op)) == NULL ||
        (diff = pf_call_ew(PF_OP_SUB, cols, rows)) == NULL ||
        (kk = PyLong_FromLongLong((long long)k)) == NULL ||
        (mask = pf_call_ew(upper ? PF_OP_GE : PF_OP_LE, diff, kk)) == NULL) {
        goto done;
    }
    PyObject *in[3] = {mask, (PyObject *)x, zero};
    r = pf_elementwise_as(PF_OP_WHERE, in, out, NULL, op);
    rc = r == NULL ? -1 : 0;
done:
    Py_XDECREF(zero);
    Py_XDECREF(rows);
    Py_XDECREF(cols);
    Py_XDECREF(diff);
    Py_XDECREF(kk);
    Py_XDECREF(mask);
    Py_XDECREF(r);
    return rc;
}

static PyObject *tri_impl(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, int upper)
{
    const char *op = upper ? "triu" : "tril";
    static const char *const names[] = {"m", "k", "diagonal", NULL};
    PyObject *v[3];
    int64_t k = 0;
    char s0[PF_SHAPE_STRLEN];
    if (pf_parse_args(op, args, nargs, kwnames, names, 1, v) < 0) {
        return NULL;
    }
    if (v[1] != NULL && v[2] != NULL) {
        return PF_ERR(PyExc_TypeError, "%s: give k or diagonal, not both", op);
    }
    if ((v[1] != NULL || v[2] != NULL) &&
        pf_int_arg(v[1] != NULL ? v[1] : v[2], op, "k", &k) < 0) {
        return NULL;
    }
    PfTensor *x = pf_as_tensor(v[0], 0, PF_FLOAT32, op), *out = NULL;
    if (x == NULL) {
        return NULL;
    }
    int64_t *batch_off = NULL;
    int nd = x->ndim;
    if (nd < 2) {
        PyErr_Format(PyExc_ValueError,
                     "%s: needs a tensor with at least 2 dimensions (a matrix or a batch of "
                     "matrices); got shape %s", op, shape_of(x, s0));
        goto done;
    }
    if ((out = pf_tensor_empty(nd, x->shape, x->dtype, x->storage->device, op)) == NULL) {
        goto done;
    }
    int64_t m = x->shape[nd - 2], n = x->shape[nd - 1], batch = pf_numel(x->shape, nd - 2);
    if (batch == 0 || m == 0 || n == 0) {
        goto done;
    }
    if ((batch_off = PyMem_Malloc(sizeof(int64_t) * (size_t)batch)) == NULL) {
        Py_CLEAR(out);
        PyErr_NoMemory();
        goto done;
    }
    /* the element offset of each matrix, walking the batch axes in row-major order */
    int64_t idx[PF_MAX_DIMS] = {0};
    for (int64_t b = 0; b < batch; b++) {
        int64_t off = x->offset;
        for (int d = 0; d < nd - 2; d++) {
            off += idx[d] * x->strides[d];
        }
        batch_off[b] = off;
        for (int d = nd - 3; d >= 0 && ++idx[d] == x->shape[d]; d--) {
            idx[d] = 0;
        }
    }
    /* beyond these bounds every row is kept or dropped whole: clamping avoids overflow */
    k = k < -(m + 1) ? -(m + 1) : k > n + 1 ? n + 1 : k;
    if (!pf_tensor_on_cpu(x)) {
        if (tri_device(x, out, k, upper, op) < 0) {
            Py_CLEAR(out);
        }
        goto done;
    }
    pf_tri_rows(x->storage->data, pf_tensor_data(out), pf_dtypes[x->dtype].itemsize, batch, m,
                n, batch_off, x->strides[nd - 2], x->strides[nd - 1], k, upper);
done:
    PyMem_Free(batch_off);
    Py_DECREF(x);
    return (PyObject *)out;
}

/* tril(m, k=0): the lower triangle (j <= i + k) of the last two axes, zeros above. */
PyObject *pf_op_tril(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                     PyObject *kwnames)
{
    return tri_impl(args, nargs, kwnames, 0);
}

/* triu(m, k=0): the upper triangle (j >= i + k) of the last two axes, zeros below. */
PyObject *pf_op_triu(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                     PyObject *kwnames)
{
    return tri_impl(args, nargs, kwnames, 1);
}

/* ---------------------------------------------------------------- one_hot */

/*
 * one_hot(x, num_classes, axis=-1, dtype=float32), as keras.ops.one_hot:
 * integer class indices become a new axis of length num_classes holding 1
 * at the index and 0 elsewhere.  An index outside [0, num_classes) raises
 * IndexError (Keras's backends differ: some give a zero row).
 */
/* IndexError for index v at flat position p of x */
static void one_hot_bad(const char *op, const PfTensor *x, int64_t p, int64_t v, int64_t classes)
{
    char s0[PF_SHAPE_STRLEN];
    int64_t pos[PF_MAX_DIMS];
    for (int64_t d = x->ndim - 1, rem = p; d >= 0; d--) {
        pos[d] = rem % x->shape[d];
        rem /= x->shape[d];
    }
    PyErr_Format(PyExc_IndexError,
                 "%s: index %lld at position %s is out of range for num_classes=%lld; "
                 "every index must be in [0, %lld)", op, (long long)v,
                 pf_shape_str(pos, x->ndim, s0, sizeof(s0)), (long long)classes,
                 (long long)classes);
}

PyObject *pf_op_one_hot(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                        PyObject *kwnames)
{
    const char *op = "one_hot";
    static const char *const names[] = {"x", "num_classes", "axis", "dtype", NULL};
    PyObject *v[4];
    int64_t classes;
    pf_dtype dt = PF_FLOAT32;
    if (pf_parse_args(op, args, nargs, kwnames, names, 2, v) < 0 ||
        pf_int_arg(v[1], op, "num_classes", &classes) < 0 ||
        (v[3] != NULL && v[3] != Py_None && pf_dtype_from_object(v[3], op, &dt) < 0)) {
        return NULL;
    }
    if (classes < 0) {
        return PF_ERR(PyExc_ValueError, "%s: num_classes must be >= 0; got %lld", op,
                      (long long)classes);
    }
    PfTensor *x = pf_as_tensor(v[0], 0, PF_INT64, op), *idx = NULL, *out = NULL;
    if (x == NULL) {
        return NULL;
    }
    char s0[PF_SHAPE_STRLEN];
    int nd = x->ndim, ax = nd;
    if (pf_is_float(x->dtype)) {
        PyErr_Format(PyExc_TypeError,
                     "%s: x must hold integer class indices; got dtype %s; cast with "
                     ".astype(pf.int64)", op, pf_dtypes[x->dtype].name);
        goto done;
    }
    if (nd + 1 > PF_MAX_DIMS) {
        PyErr_Format(PyExc_ValueError,
                     "%s: x of shape %s would give a result with %d dimensions; pyframe "
                     "tensors have at most %d", op, shape_of(x, s0), nd + 1, PF_MAX_DIMS);
        goto done;
    }
    if (axis_or_default(v[2] == Py_None ? NULL : v[2], -1, nd + 1, op, &ax) < 0) {
        goto done;
    }
    int64_t shape[PF_MAX_DIMS];
    for (int d = 0, s = 0; d <= nd; d++) {
        shape[d] = d == ax ? classes : x->shape[s++];
    }
    char one[8];
    int64_t one_i = 1;
    pf_cast_one(&one_i, PF_INT64, one, dt);
    int64_t count = pf_numel(x->shape, nd);
    pf_cu_route r;
    int routed = pf_cu_route_for(x, op, &r);
    if (routed != 0) {
        /* the library checks the indices while it writes; a bad one discards the result */
        PfCudaBad bad = {-1, 0};
        if (routed < 0 || (out = pf_tensor_empty(nd + 1, shape, dt, x->storage->device, op)) ==
                              NULL) {
            goto done;
        }
        if (count > 0 && pf_cu_one_hot(&r, out, x, classes, pf_numel(x->shape + ax, nd - ax),
                                       one, &bad, op) < 0) {
            Py_CLEAR(out);
            goto done;
        }
        if (bad.pos >= 0) {
            Py_CLEAR(out);
            one_hot_bad(op, x, bad.pos, bad.value, classes);
        }
        goto done;
    }
    idx = (x->dtype == PF_INT64 && pf_tensor_is_contiguous(x))
              ? (PfTensor *)Py_NewRef(x) : pf_tensor_copy_as(x, PF_INT64, op);
    if (idx == NULL) {
        goto done;
    }
    const int64_t *iv = (const int64_t *)pf_tensor_data(idx);
    for (int64_t p = 0; p < count; p++) {
        if (iv[p] < 0 || iv[p] >= classes) {
            one_hot_bad(op, x, p, iv[p], classes);
            goto done;
        }
    }
    if ((out = pf_tensor_empty(nd + 1, shape, dt, x->storage->device, op)) == NULL) {
        goto done;
    }
    if (pf_numel(shape, nd + 1) > 0) {
        pf_one_hot(iv, pf_tensor_data(out), pf_dtypes[dt].itemsize, one,
                   pf_numel(x->shape, ax), classes, pf_numel(x->shape + ax, nd - ax));
    }
done:
    Py_XDECREF(idx);
    Py_DECREF(x);
    return (PyObject *)out;
}

/* ------------------------------------------------------------ masked_fill */

/*
 * masked_fill(input, mask, value), as PyTorch: value where the bool mask
 * (broadcast to input's shape) is True, input elsewhere, in input's dtype.
 * masked_fill_ writes into input.
 */
static PyObject *masked_fill_impl(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                                  int inplace)
{
    const char *op = inplace ? "masked_fill_" : "masked_fill";
    static const char *const names[] = {"input", "mask", "value", NULL};
    PyObject *v[3];
    char s0[PF_SHAPE_STRLEN], s1[PF_SHAPE_STRLEN];
    if (pf_parse_args(op, args, nargs, kwnames, names, 3, v) < 0) {
        return NULL;
    }
    if (inplace && !PfTensor_Check(v[0])) {
        return PF_ERR(PyExc_TypeError,
                      "%s: input must be a pyframe Tensor to be filled in place; got %.100s",
                      op, Py_TYPE(v[0])->tp_name);
    }
    PfTensor *x = pf_as_tensor(v[0], 0, PF_FLOAT32, op), *mask = NULL, *out = NULL;
    if (x == NULL) {
        return NULL;
    }
    if ((mask = pf_as_tensor(v[1], 0, PF_BOOL, op)) == NULL) {
        goto fail;
    }
    if (mask->dtype != PF_BOOL) {
        PyErr_Format(PyExc_TypeError,
                     "%s: mask must have dtype bool; got %s; build it with a comparison "
                     "(x > 0) or .astype(pf.bool)", op, pf_dtypes[mask->dtype].name);
        goto fail;
    }
    int64_t shape[PF_MAX_DIMS];
    int bnd;
    if (pf_broadcast_shapes(mask->shape, mask->ndim, x->shape, x->ndim, shape, &bnd, op) < 0 ||
        bnd != x->ndim || memcmp(shape, x->shape, sizeof(int64_t) * (size_t)bnd) != 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError,
                     "%s: mask of shape %s cannot be broadcast to the input's shape %s; the "
                     "mask must have the input's shape or broadcast to it (dimensions of size "
                     "1, or missing leading dimensions)", op, shape_of(mask, s0),
                     shape_of(x, s1));
        goto fail;
    }
    char value[8];
    if (PfTensor_Check(v[2]) && pf_numel(((PfTensor *)v[2])->shape, ((PfTensor *)v[2])->ndim) != 1) {
        PyErr_Format(PyExc_ValueError,
                     "%s: value must be a scalar or a one-element tensor; got a tensor of shape "
                     "%s", op, shape_of((PfTensor *)v[2], s0));
        goto fail;
    }
    if (pf_scalar_to_raw(v[2], x->dtype, value, op) < 0) {
        goto fail;
    }
    pf_cu_route r;
    int routed = pf_cu_route_for(x, op, &r);
    if (routed < 0) {
        goto fail;
    }
    /* a mask given as a list (built on the host) goes to x's device */
    if (routed) {
        Py_SETREF(mask, pf_cu_place(&r, mask, op));
        if (mask == NULL) {
            goto fail;
        }
    }
    if (inplace) {
        if (pf_tensor_check_writable(x, op) < 0) {
            goto fail;
        }
        out = (PfTensor *)Py_NewRef(x);
        if (mask->storage == x->storage) {
            /* the mask views the memory being written: read it all first */
            Py_SETREF(mask, pf_tensor_copy_as(mask, PF_BOOL, op));
            if (mask == NULL) {
                goto fail;
            }
        }
    }
    else if ((out = pf_tensor_empty(x->ndim, x->shape, x->dtype, x->storage->device, op)) ==
             NULL) {
        goto fail;
    }
    if (routed) {
        if (pf_cu_masked_fill(&r, out, x, mask, value, op) < 0) {
            goto fail;
        }
    }
    else {
        PfTensor *ops[3] = {x, mask, out};
        pf_iter it;
        pf_iter_build(&it, 3, ops, x->shape, x->ndim);
        pf_iter_run(&it, pf_masked_fill_loop(pf_dtypes[x->dtype].itemsize), value);
        if (inplace) {
            out->storage->version++;
        }
    }
    Py_DECREF(mask);
    Py_DECREF(x);
    return (PyObject *)out;
fail:
    Py_XDECREF(out);
    Py_XDECREF(mask);
    Py_DECREF(x);
    return NULL;
}

PyObject *pf_op_masked_fill(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                            PyObject *kwnames)
{
    return masked_fill_impl(args, nargs, kwnames, 0);
}

PyObject *pf_op_masked_fill_(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                             PyObject *kwnames)
{
    return masked_fill_impl(args, nargs, kwnames, 1);
}

/* --------------------------------------------------------------- moveaxis */

/* Read moveaxis's source or destination: an int or a sequence of distinct axes. */
static int read_axes(PyObject *o, int ndim, const char *op, const char *what, int *axes, int *n)
{
    int64_t vals[PF_MAX_DIMS];
    int is_seq, seen[PF_MAX_DIMS] = {0};
    if (read_ints(o, op, what, vals, PF_MAX_DIMS, n, &is_seq) < 0) {
        return -1;
    }
    for (int i = 0; i < *n; i++) {
        Py_ssize_t a = (Py_ssize_t)vals[i];
        if (pf_normalize_axis(&a, ndim, op) < 0) {
            return -1;
        }
        if (seen[a]++) {
            return PF_ERRI(PyExc_ValueError, "%s: axis %zd appears more than once in %s", op,
                           a, what);
        }
        axes[i] = (int)a;
    }
    return 0;
}

/*
 * moveaxis(a, source, destination), as np.moveaxis (PyTorch's movedim is an
 * alias): a view with the source axes at the destination positions and the
 * other axes in their original order.
 */
PyObject *pf_op_moveaxis(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                         PyObject *kwnames)
{
    const char *op = "moveaxis";
    static const char *const names[] = {"a", "source", "destination", NULL};
    PyObject *v[3];
    if (pf_parse_args(op, args, nargs, kwnames, names, 3, v) < 0) {
        return NULL;
    }
    PfTensor *x = pf_as_tensor(v[0], 0, PF_FLOAT32, op);
    if (x == NULL) {
        return NULL;
    }
    PyObject *res = NULL;
    int src[PF_MAX_DIMS], dst[PF_MAX_DIMS], ns, nd;
    if (read_axes(v[1], x->ndim, op, "source", src, &ns) < 0 ||
        read_axes(v[2], x->ndim, op, "destination", dst, &nd) < 0) {
        goto done;
    }
    if (ns != nd) {
        PyErr_Format(PyExc_ValueError,
                     "%s: source has %d axes but destination has %d; give one destination per "
                     "source axis", op, ns, nd);
        goto done;
    }
    int perm[PF_MAX_DIMS], used[PF_MAX_DIMS] = {0};
    for (int p = 0; p < x->ndim; p++) {
        perm[p] = -1;
    }
    for (int i = 0; i < ns; i++) {
        perm[dst[i]] = src[i];
        used[src[i]] = 1;
    }
    for (int p = 0, next = 0; p < x->ndim; p++) {
        if (perm[p] < 0) {
            while (used[next]) {
                next++;
            }
            perm[p] = next;
            used[next] = 1;
        }
    }
    int64_t shape[PF_MAX_DIMS], strides[PF_MAX_DIMS];
    for (int p = 0; p < x->ndim; p++) {
        shape[p] = x->shape[perm[p]];
        strides[p] = x->strides[perm[p]];
    }
    res = (PyObject *)pf_tensor_view(x, x->ndim, shape, strides, x->offset);
done:
    Py_DECREF(x);
    return res;
}

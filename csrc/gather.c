/*
 * gather.c -- gathering and scattering: nonzero / argwhere, take and
 * index_select (through the advanced-indexing engine in indexing.c),
 * take_along_axis / gather, put_along_axis and scatter / scatter_add.
 *
 * Along-axis ops see three tensors of one shape S: the data viewed with
 * stride 0 along the axis, the index, and the output (or the source of a
 * scatter).  The iterator walks S; the kernel adds index * axis-stride to
 * the data pointer.  Gathers may split across threads; scatters run in
 * order on one thread, so that with duplicate indices the last write
 * wins (NumPy) and additions happen in a fixed order.
 *
 * Indices may be negative (counted from the end, as NumPy) in every op
 * here, PyTorch's included: a superset of what PyTorch accepts.
 *
 * Tensors on a CUDA device take the same validation and views, then hand
 * the element loop to libpyframe_cuda.so (gather_cuda.c, cuda/gather.cu).
 */
#include "ops.h"
#include "gather_cuda.h"
#include "kernels/half.h"
#ifdef _OPENMP
#include <omp.h>
#endif

/* ------------------------------------------------------------- helpers */

static int parse_axis(PyObject *o, int ndim, const char *op, int *axis)
{
    int64_t v;
    if (pf_int_arg(o, op, "axis", &v) < 0) {
        return -1;
    }
    Py_ssize_t a = (Py_ssize_t)v;
    if (pf_normalize_axis(&a, ndim, op) < 0) {
        return -1;
    }
    *axis = (int)a;
    return 0;
}

/* An integer index argument as a tensor; lists of ints give int64. */
static PfTensor *index_arg(PyObject *o, const char *op, const char *what)
{
    PfTensor *t = pf_as_tensor_arg(o, op);
    if (t == NULL) {
        return NULL;
    }
    if (!PfTensor_Check(o) && !pf_is_ndarray(o) && pf_numel(t->shape, t->ndim) == 0 &&
        pf_is_float(t->dtype)) {
        Py_SETREF(t, pf_tensor_copy_as(t, PF_INT64, op));   /* [] as an empty index */
        return t;
    }
    if (!pf_is_int(t->dtype)) {
        PyErr_Format(PyExc_TypeError, "%s: %s must be an integer tensor; got dtype %s (convert "
                     "it with .astype(pf.int64))", op, what, pf_dtypes[t->dtype].name);
        Py_DECREF(t);
        return NULL;
    }
    return t;
}

/*
 * The same index as int64 (the cpu's along-axis kernels read int64 only;
 * the CUDA library reads every integer dtype, so its path keeps t as is).
 */
static PfTensor *as_int64(PfTensor *t, const char *op)
{
    return t->dtype == PF_INT64 || pf_cu_wanted(t) ? (PfTensor *)Py_NewRef(t)
                                                   : pf_tensor_copy_as(t, PF_INT64, op);
}

static const char *shape_s(const PfTensor *t, char *buf)
{
    return pf_shape_str(t->shape, t->ndim, buf, PF_SHAPE_STRLEN);
}

/* A tuple of new references (stolen). */
static PyObject *tuple_of(int n, PyObject **items)
{
    PyObject *t = PyTuple_New(n);
    for (int i = 0; i < n; i++) {
        if (t == NULL || items[i] == NULL) {
            Py_XDECREF(items[i]);
            continue;
        }
        PyTuple_SET_ITEM(t, i, items[i]);
    }
    for (int i = 0; t != NULL && i < n; i++) {
        if (items[i] == NULL) {
            Py_CLEAR(t);
        }
    }
    return t;
}

/* ------------------------------------------------------------- nonzero */

#define NZ_MAX_CHUNKS 64

typedef struct {
    PfTensor *mask;             /* contiguous, one byte per element */
    int nchunks;
    int64_t bound[NZ_MAX_CHUNKS + 1];
    int64_t start[NZ_MAX_CHUNKS + 1];   /* output position of each chunk's first hit */
    int64_t nnz;
} nz_scan;

static int64_t count_true(const uint8_t *m, int64_t n)
{
    int64_t c = 0;
    for (int64_t i = 0; i < n; i++) {
        c += m[i] != 0;
    }
    return c;
}

/* Count the nonzero elements of t, per chunk of its elements. */
static int nz_count(PfTensor *t, nz_scan *z, const char *op)
{
    z->mask = t->dtype == PF_BOOL && pf_tensor_is_contiguous(t)
              ? (PfTensor *)Py_NewRef(t) : pf_tensor_copy_as(t, PF_BOOL, op);
    if (z->mask == NULL) {
        return -1;
    }
    int64_t n = pf_numel(t->shape, t->ndim);
    int nth = pf_get_num_threads();
    if (n < PF_GRAIN || nth <= 1) {
        nth = 1;
    }
    if (nth > NZ_MAX_CHUNKS) {
        nth = NZ_MAX_CHUNKS;
    }
    z->nchunks = nth;
    for (int c = 0; c <= nth; c++) {
        z->bound[c] = n * c / nth;
    }
    const uint8_t *m = (const uint8_t *)pf_tensor_data(z->mask);
    int64_t counts[NZ_MAX_CHUNKS];
    #pragma omp parallel for num_threads(nth) if (nth > 1)
    for (int c = 0; c < nth; c++) {
        counts[c] = count_true(m + z->bound[c], z->bound[c + 1] - z->bound[c]);
    }
    z->start[0] = 0;
    for (int c = 0; c < nth; c++) {
        z->start[c + 1] = z->start[c] + counts[c];
    }
    z->nnz = z->start[nth];
    return 0;
}

/*
 * The hits of chunk c, one by one.  The loops write every element's
 * coordinates and move the output position only on a hit: no branch on
 * the data, which a random mask would mispredict half of the time.  They
 * stop at the chunk's last hit, so no write lands past its share of the
 * output.
 */

/* coordinate k of hit number i goes to dst[k][i * step] */
static void nz_coords_chunk(const nz_scan *z, int c, int ndim, const int64_t *shape,
                            int64_t *const *dst, int64_t step)
{
    const uint8_t *m = (const uint8_t *)pf_tensor_data(z->mask);
    int64_t i = z->bound[c], pos = z->start[c] * step, end = z->start[c + 1] * step;
    if (pos >= end) {
        return;     /* no hits; also keeps a zero-size dim out of the division below */
    }
    if (ndim == 1) {
        int64_t *d0 = dst[0];
        for (; pos < end; i++) {
            d0[pos] = i;
            pos += (m[i] != 0) * step;
        }
        return;
    }
    int64_t idx[PF_MAX_DIMS], rem = i;
    for (int k = ndim - 1; k >= 0; k--) {
        idx[k] = rem % shape[k];
        rem /= shape[k];
    }
    for (; pos < end; i++) {
        for (int k = 0; k < ndim; k++) {
            dst[k][pos] = idx[k];
        }
        pos += (m[i] != 0) * step;
        for (int k = ndim - 1; k >= 0; k--) {
            if (++idx[k] < shape[k]) {
                break;
            }
            idx[k] = 0;
        }
    }
}

/* byte offset (sum of coordinate * stride) of hit number i goes to dst[i] */
static void nz_offsets_chunk(const nz_scan *z, int c, int ndim, const int64_t *shape,
                             const int64_t *strides, int64_t *dst)
{
    const uint8_t *m = (const uint8_t *)pf_tensor_data(z->mask);
    int64_t i = z->bound[c], pos = z->start[c], end = z->start[c + 1];
    if (pos >= end) {
        return;
    }
    int64_t idx[PF_MAX_DIMS], rem = i, cur = 0, last = strides[ndim - 1];
    for (int k = ndim - 1; k >= 0; k--) {
        idx[k] = rem % shape[k];
        rem /= shape[k];
        cur += idx[k] * strides[k];
    }
    if (ndim == 1) {
        for (; pos < end; i++, cur += last) {
            dst[pos] = cur;
            pos += m[i] != 0;
        }
        return;
    }
    for (; pos < end; i++) {
        dst[pos] = cur;
        pos += m[i] != 0;
        cur += last;
        for (int k = ndim - 1; k >= 0; k--) {
            if (++idx[k] < shape[k]) {
                break;
            }
            cur -= shape[k] * strides[k];
            idx[k] = 0;
            if (k > 0) {
                cur += strides[k - 1];
            }
        }
    }
}

static void nz_write(const nz_scan *z, int ndim, const int64_t *shape, int64_t *const *dst,
                     int64_t step)
{
    #pragma omp parallel for num_threads(z->nchunks) if (z->nchunks > 1)
    for (int c = 0; c < z->nchunks; c++) {
        nz_coords_chunk(z, c, ndim, shape, dst, step);
    }
}

int pf_nonzero_offsets(PfTensor *mask, const int64_t *strides, PfTensor **out, const char *op)
{
    pf_cu_route r;
    int routed = pf_cu_route_for(mask, op, &r);
    if (routed != 0) {
        *out = routed < 0 ? NULL : pf_cu_nonzero(&r, mask, strides, 0, op);
        return *out == NULL ? -1 : 0;
    }
    nz_scan z;
    if (nz_count(mask, &z, op) < 0) {
        return -1;
    }
    *out = pf_tensor_empty(1, &z.nnz, PF_INT64, mask->storage->device, op);
    if (*out != NULL) {
        int64_t *dst = (int64_t *)pf_tensor_data(*out);
        #pragma omp parallel for num_threads(z.nchunks) if (z.nchunks > 1)
        for (int c = 0; c < z.nchunks; c++) {
            nz_offsets_chunk(&z, c, mask->ndim, mask->shape, strides, dst);
        }
    }
    Py_DECREF(z.mask);
    return *out == NULL ? -1 : 0;
}

/* The nonzero positions of t: t->ndim new 1-D int64 tensors, one per dimension. */
static int pf_nonzero_cols(PfTensor *t, PfTensor **cols, const char *op)
{
    pf_cu_route r;
    int routed = pf_cu_route_for(t, op, &r);
    if (routed != 0) {
        /* one (ndim, nnz) tensor on the device; its rows are the columns */
        PfTensor *all = routed < 0 ? NULL : pf_cu_nonzero(&r, t, NULL, 1, op);
        int k = 0;
        for (; all != NULL && k < t->ndim; k++) {
            int64_t one = 1;
            cols[k] = pf_tensor_view(all, 1, &all->shape[1], &one, all->offset + k * all->shape[1]);
            if (cols[k] == NULL) {
                break;
            }
        }
        if (all == NULL || k < t->ndim) {
            while (k-- > 0) {
                Py_DECREF(cols[k]);
            }
            Py_XDECREF(all);
            return -1;
        }
        Py_DECREF(all);
        return 0;
    }
    nz_scan z;
    if (nz_count(t, &z, op) < 0) {
        return -1;
    }
    pf_device dev = t->storage->device;
    int64_t *dst[PF_MAX_DIMS];
    int k = 0;
    for (; k < t->ndim; k++) {
        cols[k] = pf_tensor_empty(1, &z.nnz, PF_INT64, dev, op);
        if (cols[k] == NULL) {
            break;
        }
        dst[k] = (int64_t *)pf_tensor_data(cols[k]);
    }
    if (k < t->ndim) {
        while (k-- > 0) {
            Py_DECREF(cols[k]);
        }
        Py_DECREF(z.mask);
        return -1;
    }
    nz_write(&z, t->ndim, t->shape, dst, 1);
    Py_DECREF(z.mask);
    return 0;
}

/* (nnz, ndim) int64 coordinates: np.argwhere, torch.nonzero. */
static PyObject *argwhere_impl(PfTensor *t, const char *op)
{
    pf_cu_route r;
    int routed = pf_cu_route_for(t, op, &r);
    if (routed != 0) {
        return routed < 0 ? NULL : (PyObject *)pf_cu_nonzero(&r, t, NULL, 0, op);
    }
    nz_scan z;
    if (nz_count(t, &z, op) < 0) {
        return NULL;
    }
    int64_t shape[2] = {z.nnz, t->ndim};
    PfTensor *out = pf_tensor_empty(2, shape, PF_INT64, t->storage->device, op);
    if (out != NULL) {
        int64_t *dst[PF_MAX_DIMS];
        for (int k = 0; k < t->ndim; k++) {
            dst[k] = (int64_t *)pf_tensor_data(out) + k;
        }
        nz_write(&z, t->ndim, t->shape, dst, t->ndim);
    }
    Py_DECREF(z.mask);
    return (PyObject *)out;
}

/*
 * nonzero(x, as_tuple=True): NumPy's tuple of index tensors, one per
 * dimension.  PyTorch's default form, the (N, ndim) matrix, is
 * argwhere(x) or nonzero(x, as_tuple=False).
 */
PyObject *pf_op_nonzero(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                        PyObject *kwnames)
{
    const char *op = "nonzero";
    static const char *const names[] = {"a", "as_tuple", NULL};
    PyObject *v[2];
    int as_tuple;
    if (pf_parse_args(op, args, nargs, kwnames, names, 1, v) < 0 ||
        pf_parse_bool(v[1], op, "as_tuple", 1, &as_tuple) < 0) {
        return NULL;
    }
    PfTensor *t = pf_as_tensor_arg(v[0], op);
    if (t == NULL) {
        return NULL;
    }
    PyObject *r = NULL;
    if (!as_tuple) {
        r = argwhere_impl(t, op);
    }
    else if (t->ndim == 0) {
        PyErr_Format(PyExc_ValueError, "%s: a 0-d tensor has no dimensions to give indices "
                     "along; use pf.argwhere(x), or nonzero on x.reshape(1)", op);
    }
    else {
        PfTensor *cols[PF_MAX_DIMS];
        if (pf_nonzero_cols(t, cols, op) == 0) {
            r = tuple_of(t->ndim, (PyObject **)cols);
        }
    }
    Py_DECREF(t);
    return r;
}

PyObject *pf_op_argwhere(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                         PyObject *kwnames)
{
    const char *op = "argwhere";
    static const char *const names[] = {"a", NULL};
    PyObject *v[1];
    if (pf_parse_args(op, args, nargs, kwnames, names, 1, v) < 0) {
        return NULL;
    }
    PfTensor *t = pf_as_tensor_arg(v[0], op);
    if (t == NULL) {
        return NULL;
    }
    PyObject *r = argwhere_impl(t, op);
    Py_DECREF(t);
    return r;
}

/* ---------------------------------------------------- take, index_select */

static int parse_mode(PyObject *o, const char *op, pf_idx_mode *mode)
{
    *mode = PF_IDX_RAISE;
    if (o == NULL || o == Py_None) {
        return 0;
    }
    const char *s = PyUnicode_Check(o) ? PyUnicode_AsUTF8(o) : NULL;
    if (s != NULL && strcmp(s, "raise") == 0) {
        return 0;
    }
    if (s != NULL && strcmp(s, "wrap") == 0) {
        *mode = PF_IDX_WRAP;
        return 0;
    }
    if (s != NULL && strcmp(s, "clip") == 0) {
        *mode = PF_IDX_CLIP;
        return 0;
    }
    PyErr_Clear();
    return PF_ERRI(PyExc_ValueError, "%s: mode must be 'raise', 'wrap' or 'clip'; got %R", op, o);
}

/* take(a, indices, axis=None, mode='raise'): NumPy; axis None indexes the flattened a. */
PyObject *pf_op_take(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                     PyObject *kwnames)
{
    const char *op = "take";
    static const char *const names[] = {"a", "indices", "axis", "mode", NULL};
    PyObject *v[4];
    pf_idx_mode mode;
    if (pf_parse_args(op, args, nargs, kwnames, names, 2, v) < 0 ||
        parse_mode(v[3], op, &mode) < 0) {
        return NULL;
    }
    PfTensor *x = pf_as_tensor_arg(v[0], op), *idx = NULL, *src = NULL, *r = NULL;
    int axis = 0;
    if (x == NULL || (idx = index_arg(v[1], op, "indices")) == NULL) {
        goto done;
    }
    if (v[2] == NULL || v[2] == Py_None) {
        src = pf_tensor_flat(x, op);
    }
    else if (parse_axis(v[2], x->ndim, op, &axis) == 0) {
        src = (PfTensor *)Py_NewRef(x);
    }
    if (src != NULL) {
        r = pf_index_take(src, axis, idx, mode, op);
    }
done:
    Py_XDECREF(x);
    Py_XDECREF(idx);
    Py_XDECREF(src);
    return (PyObject *)r;
}

/* index_select(x, dim, index): PyTorch; index is 1-D (a 0-d index counts as one element). */
PyObject *pf_op_index_select(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                             PyObject *kwnames)
{
    const char *op = "index_select";
    static const char *const names[] = {"input", "axis", "index", NULL};
    PyObject *v[3];
    if (pf_parse_args(op, args, nargs, kwnames, names, 3, v) < 0) {
        return NULL;
    }
    PfTensor *x = pf_as_tensor_arg(v[0], op), *idx = NULL, *r = NULL;
    int axis;
    if (x == NULL || (idx = index_arg(v[2], op, "index")) == NULL) {
        goto done;
    }
    if (idx->ndim > 1) {
        char b[PF_SHAPE_STRLEN];
        PyErr_Format(PyExc_ValueError, "%s: index must be 1-D; got shape %s (flatten it, or use "
                     "pf.take(x, index, axis) for any index shape)", op, shape_s(idx, b));
        goto done;
    }
    if (x->ndim == 0) {
        /* a 0-d input reads as one element along its only "axis" (PyTorch) */
        int64_t one = 1;
        PfTensor *x1 = pf_tensor_view(x, 1, &one, &one, x->offset);
        if (x1 == NULL || parse_axis(v[1], 1, op, &axis) < 0) {
            Py_XDECREF(x1);
            goto done;
        }
        Py_SETREF(x, x1);
    }
    else if (parse_axis(v[1], x->ndim, op, &axis) < 0) {
        goto done;
    }
    if (idx->ndim == 0) {
        int64_t one = 1;
        Py_SETREF(idx, pf_tensor_view(idx, 1, &one, &one, idx->offset));
        if (idx == NULL) {
            goto done;
        }
    }
    r = pf_index_take(x, axis, idx, PF_IDX_RAISE, op);
done:
    Py_XDECREF(x);
    Py_XDECREF(idx);
    return (PyObject *)r;
}

/* ----------------------------------------------------- along-axis kernels */

typedef struct {
    int64_t size;       /* of the axis */
    int64_t stride;     /* bytes, along the axis */
    int bad;
    int64_t badval;
    int add;            /* scatter: add instead of assign */
    pf_dtype dtype;
} along_ctx;

static void record_bad(along_ctx *c, int64_t v)
{
    int zero = 0;
    if (__atomic_compare_exchange_n(&c->bad, &zero, 1, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
        c->badval = v;
    }
}

/* the position an index selects, or -1 when out of range */
static inline int64_t wrap_index(int64_t v, int64_t size)
{
    int64_t w = v < 0 ? v + size : v;
    return (uint64_t)w < (uint64_t)size ? w : -1;
}

#define GATHER_LOOP(T)                                                                   \
    for (int64_t i = 0; i < n; i++) {                                                    \
        int64_t v = *(const int64_t *)(ip + i * is), w = wrap_index(v, c->size);         \
        if (w < 0) {                                                                     \
            record_bad(c, v);                                                            \
            w = 0;                                                                       \
        }                                                                                \
        *(T *)(op + i * os) = *(const T *)(xp + i * xs + w * c->stride);                 \
    }

/* data[0] the data (stride 0 along the axis), data[1] int64 indices, data[2] the output */
static void gather_loop(char **data, const int64_t *st, int64_t n, void *vctx)
{
    along_ctx *c = vctx;
    const char *xp = data[0], *ip = data[1];
    char *op = data[2];
    int64_t xs = st[0], is = st[1], os = st[2];
    switch (pf_dtypes[c->dtype].itemsize) {
    case 1: GATHER_LOOP(uint8_t) break;
    case 2: GATHER_LOOP(uint16_t) break;
    case 4: GATHER_LOOP(uint32_t) break;
    default: GATHER_LOOP(uint64_t) break;
    }
}

/* data[0] int64 indices: only check the range */
static void check_loop(char **data, const int64_t *st, int64_t n, void *vctx)
{
    along_ctx *c = vctx;
    for (int64_t i = 0; i < n; i++) {
        int64_t v = *(const int64_t *)(data[0] + i * st[0]);
        if (wrap_index(v, c->size) < 0) {
            record_bad(c, v);
        }
    }
}

#define SCATTER_SET(T)                                                                   \
    for (int64_t i = 0; i < n; i++) {                                                    \
        int64_t w = wrap_index(*(const int64_t *)(ip + i * is), c->size);                \
        *(T *)(dp + i * ds + w * c->stride) = *(const T *)(sp + i * ss);                 \
    }

/* unsigned arithmetic: integer sums wrap as in NumPy and PyTorch, without C's UB */
#define SCATTER_ADD(T, U)                                                                \
    for (int64_t i = 0; i < n; i++) {                                                    \
        int64_t w = wrap_index(*(const int64_t *)(ip + i * is), c->size);                \
        T *d = (T *)(dp + i * ds + w * c->stride);                                       \
        *d = (T)((U)*d + (U)*(const T *)(sp + i * ss));                                  \
    }

#define SCATTER_ADD_F(T)                                                                 \
    for (int64_t i = 0; i < n; i++) {                                                    \
        int64_t w = wrap_index(*(const int64_t *)(ip + i * is), c->size);                \
        T *d = (T *)(dp + i * ds + w * c->stride);                                       \
        *d += *(const T *)(sp + i * ss);                                                 \
    }

#define SCATTER_ADD_H(TO, FROM)                                                          \
    for (int64_t i = 0; i < n; i++) {                                                    \
        int64_t w = wrap_index(*(const int64_t *)(ip + i * is), c->size);                \
        uint16_t *d = (uint16_t *)(dp + i * ds + w * c->stride);                         \
        *d = TO(FROM(*d) + FROM(*(const uint16_t *)(sp + i * ss)));                      \
    }

/*
 * data[0] the destination (stride 0 along the axis), data[1] int64
 * indices (checked beforehand), data[2] the source.
 */
static void scatter_loop(char **data, const int64_t *st, int64_t n, void *vctx)
{
    along_ctx *c = vctx;
    char *dp = data[0];
    const char *ip = data[1], *sp = data[2];
    int64_t ds = st[0], is = st[1], ss = st[2];
    if (!c->add) {
        switch (pf_dtypes[c->dtype].itemsize) {
        case 1: SCATTER_SET(uint8_t) break;
        case 2: SCATTER_SET(uint16_t) break;
        case 4: SCATTER_SET(uint32_t) break;
        default: SCATTER_SET(uint64_t) break;
        }
        return;
    }
    switch (c->dtype) {
    case PF_BOOL:
        /* bool addition saturates: a logical or */
        for (int64_t i = 0; i < n; i++) {
            int64_t w = wrap_index(*(const int64_t *)(ip + i * is), c->size);
            uint8_t *d = (uint8_t *)(dp + i * ds + w * c->stride);
            *d = (uint8_t)((*d != 0) | (*(const uint8_t *)(sp + i * ss) != 0));
        }
        break;
    case PF_UINT8: SCATTER_ADD(uint8_t, uint8_t) break;
    case PF_INT8: SCATTER_ADD(int8_t, uint8_t) break;
    case PF_INT16: SCATTER_ADD(int16_t, uint16_t) break;
    case PF_INT32: SCATTER_ADD(int32_t, uint32_t) break;
    case PF_INT64: SCATTER_ADD(int64_t, uint64_t) break;
    case PF_FLOAT16: SCATTER_ADD_H(pf_f32_to_half, pf_half_to_f32) break;
    case PF_BFLOAT16: SCATTER_ADD_H(pf_f32_to_bf16, pf_bf16_to_f32) break;
    case PF_FLOAT32: SCATTER_ADD_F(float) break;
    default: SCATTER_ADD_F(double) break;
    }
}

/* Run an iterator's loops in order on the calling thread. */
static void iter_run_serial(const pf_iter *it, pf_loop loop, void *ctx)
{
    if (it->numel == 0) {
        return;
    }
    int nd = it->ndim, nop = it->nop;
    int64_t idx[PF_MAX_DIMS] = {0}, inner_st[PF_MAX_OPERANDS];
    char *ptr[PF_MAX_OPERANDS];
    for (int k = 0; k < nop; k++) {
        inner_st[k] = it->strides[k][nd - 1];
        ptr[k] = it->data[k];
    }
    for (;;) {
        loop(ptr, inner_st, it->shape[nd - 1], ctx);
        int d = nd - 2;
        for (; d >= 0; d--) {
            for (int k = 0; k < nop; k++) {
                ptr[k] += it->strides[k][d];
            }
            if (++idx[d] < it->shape[d]) {
                break;
            }
            for (int k = 0; k < nop; k++) {
                ptr[k] -= it->strides[k][d] * it->shape[d];
            }
            idx[d] = 0;
        }
        if (d < 0) {
            return;
        }
    }
}

/*
 * A stack view of t with shape `shape` (t's dims aligned to the right):
 * stride 0 where t has no dim or a size-1 dim that broadcasts, and along
 * `axis` if >= 0 (the kernel steps along it by index).  Elsewhere t's dims
 * must be at least as long as the shape's: PyTorch's scatter and gather
 * use the leading part of a longer dim.
 */
static PfTensor view_as(const PfTensor *t, int ndim, const int64_t *shape, int axis)
{
    PfTensor v = *t;
    int lead = ndim - t->ndim;
    v.ndim = ndim;
    for (int d = ndim - 1; d >= 0; d--) {
        int td = d - lead;
        int zero = d == axis || td < 0 || (t->shape[td] == 1 && shape[d] != 1);
        v.strides[d] = zero ? 0 : t->strides[td];
        v.shape[d] = shape[d];
    }
    return v;
}

/* Does t's memory overlap dst's storage? */
static int touches(const PfTensor *t, const PfTensor *dst)
{
    const pf_storage *a = t->storage, *b = dst->storage;
    return a == b || (a->data < b->data + b->nbytes && b->data < a->data + a->nbytes);
}

static int out_of_bounds(const char *op, along_ctx *c, int axis)
{
    return PF_ERRI(PyExc_IndexError, "%s: index %lld is out of bounds for axis %d with size "
                   "%lld", op, (long long)c->badval, axis, (long long)c->size);
}

/* out[pos] = x[pos with its axis coordinate replaced by idx[pos]], over shape S = out's. */
static PfTensor *along_gather(PfTensor *x, PfTensor *idx, int axis, int ndim,
                              const int64_t *shape, const char *op)
{
    PfTensor *out = pf_tensor_empty(ndim, shape, x->dtype, x->storage->device, op);
    if (out == NULL) {
        return NULL;
    }
    if (pf_numel(shape, ndim) == 0) {
        return out;
    }
    PfTensor xv = view_as(x, ndim, shape, axis), iv = view_as(idx, ndim, shape, -1);
    along_ctx c = {x->shape[axis], x->strides[axis] * pf_dtypes[x->dtype].itemsize, 0, 0, 0,
                   x->dtype};
    pf_cu_route r;
    int routed = pf_cu_route_for(x, op, &r);
    if (routed != 0) {
        PfCudaBad bad;
        if (routed < 0 ||
            pf_cu_gather_along(&r, out, &xv, &iv, x->shape[axis], x->strides[axis], &bad,
                               op) < 0) {
            Py_DECREF(out);
            return NULL;
        }
        if (bad.pos >= 0) {
            c.badval = bad.value;
            Py_DECREF(out);
            out_of_bounds(op, &c, axis);
            return NULL;
        }
        return out;
    }
    PfTensor *ops[3] = {&xv, &iv, out};
    pf_iter it;
    pf_iter_build(&it, 3, ops, shape, ndim);
    pf_iter_run(&it, gather_loop, &c);
    if (c.bad) {
        Py_DECREF(out);
        out_of_bounds(op, &c, axis);
        return NULL;
    }
    return out;
}

/*
 * dst[pos with its axis coordinate replaced by idx[pos]] (=|+=) src[pos]
 * over shape S; src is broadcast to S and already in dst's dtype.  Every
 * index is checked before anything is written.
 */
static int along_scatter(PfTensor *dst, PfTensor *idx, PfTensor *src, int axis, int ndim,
                         const int64_t *shape, int add, const char *op)
{
    if (pf_numel(shape, ndim) == 0) {
        return 0;
    }
    along_ctx c = {dst->shape[axis], dst->strides[axis] * pf_dtypes[dst->dtype].itemsize, 0, 0,
                   add, dst->dtype};
    PfTensor iv = view_as(idx, ndim, shape, -1);
    pf_cu_route r;
    int routed = pf_cu_route_for(dst, op, &r);
    if (routed != 0) {
        /* a one-element source still on the host (a number) goes by value */
        int by_value = pf_tensor_on_cpu(src) && r.device != PF_CUDA_HOST;
        PfTensor dv = view_as(dst, ndim, shape, axis), sv = view_as(src, ndim, shape, -1);
        PfCudaBad bad;
        if (routed < 0 ||
            pf_cu_scatter_along(&r, &dv, &iv, by_value ? NULL : &sv,
                                by_value ? pf_tensor_data(src) : NULL, dst->shape[axis],
                                dst->strides[axis], add, &bad, op) < 0) {
            return -1;
        }
        if (bad.pos >= 0) {
            c.badval = bad.value;
            return out_of_bounds(op, &c, axis);
        }
        return 0;
    }
    PfTensor *chk[1] = {&iv};
    pf_iter it;
    pf_iter_build(&it, 1, chk, shape, ndim);
    pf_iter_run(&it, check_loop, &c);
    if (c.bad) {
        return out_of_bounds(op, &c, axis);
    }
    PfTensor dv = view_as(dst, ndim, shape, axis), sv = view_as(src, ndim, shape, -1);
    PfTensor *ops[3] = {&dv, &iv, &sv};
    pf_iter_build(&it, 3, ops, shape, ndim);
    iter_run_serial(&it, scatter_loop, &c);
    dst->storage->version++;
    return 0;
}

/* ------------------------------------------------- take_along_axis, gather */

/*
 * NumPy's along-axis shape: arr and indices have the same ndim; off the
 * axis their dims broadcast, along it the indices' length counts.
 */
static int along_shape(const PfTensor *arr, const PfTensor *idx, int axis, const char *op,
                       const char *aname, int64_t *shape)
{
    char a[PF_SHAPE_STRLEN], b[PF_SHAPE_STRLEN];
    if (idx->ndim != arr->ndim) {
        return PF_ERRI(PyExc_ValueError, "%s: indices has %d dimension(s) but %s has %d (shapes "
                       "%s and %s); they must have the same number of dimensions", op,
                       idx->ndim, aname, arr->ndim, shape_s(idx, a), shape_s(arr, b));
    }
    for (int d = 0; d < arr->ndim; d++) {
        int64_t n = arr->shape[d], m = idx->shape[d];
        if (d != axis && n != m && n != 1 && m != 1) {
            return PF_ERRI(PyExc_ValueError, "%s: indices of shape %s do not broadcast with %s "
                           "of shape %s at dimension %d (%lld vs %lld); off the axis each "
                           "dimension must match or be 1", op, shape_s(idx, a), aname,
                           shape_s(arr, b), d, (long long)m, (long long)n);
        }
        shape[d] = d == axis ? m : (n == 1 ? m : n);
    }
    return 0;
}

/* take_along_axis(arr, indices, axis=-1): NumPy; axis=None takes from the flattened arr. */
PyObject *pf_op_take_along_axis(PyObject *Py_UNUSED(m), PyObject *const *args,
                                Py_ssize_t nargs, PyObject *kwnames)
{
    const char *op = "take_along_axis";
    static const char *const names[] = {"arr", "indices", "axis", NULL};
    PyObject *v[3];
    if (pf_parse_args(op, args, nargs, kwnames, names, 2, v) < 0) {
        return NULL;
    }
    PfTensor *x = pf_as_tensor_arg(v[0], op), *idx = NULL, *i64 = NULL, *r = NULL;
    int axis = 0;
    int64_t shape[PF_MAX_DIMS];
    if (x == NULL || (idx = index_arg(v[1], op, "indices")) == NULL) {
        goto done;
    }
    if (v[2] == Py_None) {
        if (idx->ndim != 1) {
            char b[PF_SHAPE_STRLEN];
            PyErr_Format(PyExc_ValueError, "%s: with axis=None the indices must be 1-D; got "
                         "shape %s", op, shape_s(idx, b));
            goto done;
        }
        Py_SETREF(x, pf_tensor_flat(x, op));
        if (x == NULL) {
            goto done;
        }
    }
    else if (x->ndim == 0) {
        PyErr_Format(PyExc_ValueError, "%s: arr is 0-d; there is no axis to take along (use "
                     "axis=None)", op);
        goto done;
    }
    else if (v[2] == NULL) {
        axis = x->ndim - 1;
    }
    else if (parse_axis(v[2], x->ndim, op, &axis) < 0) {
        goto done;
    }
    if (along_shape(x, idx, axis, op, "arr", shape) < 0 || (i64 = as_int64(idx, op)) == NULL) {
        goto done;
    }
    r = along_gather(x, i64, axis, x->ndim, shape, op);
done:
    Py_XDECREF(x);
    Py_XDECREF(idx);
    Py_XDECREF(i64);
    return (PyObject *)r;
}

/*
 * PyTorch's gather/scatter shape rules: index has input's ndim, and is no
 * longer than input off the axis (and than src everywhere, for scatter).
 */
static int torch_shape_check(const PfTensor *x, const PfTensor *idx, const PfTensor *src,
                             int axis, const char *op)
{
    char a[PF_SHAPE_STRLEN], b[PF_SHAPE_STRLEN];
    if (idx->ndim != x->ndim && !(x->ndim <= 1 && idx->ndim <= 1)) {
        return PF_ERRI(PyExc_ValueError, "%s: index has %d dimension(s) but input has %d "
                       "(shapes %s and %s); index must have the same number of dimensions as "
                       "input", op, idx->ndim, x->ndim, shape_s(idx, a), shape_s(x, b));
    }
    if (src != NULL && src->ndim != idx->ndim && !(src->ndim <= 1 && idx->ndim <= 1)) {
        return PF_ERRI(PyExc_ValueError, "%s: src has %d dimension(s) but index has %d (shapes "
                       "%s and %s); they must have the same number of dimensions", op,
                       src->ndim, idx->ndim, shape_s(src, a), shape_s(idx, b));
    }
    for (int d = 0; d < idx->ndim; d++) {
        if (d != axis && d < x->ndim && idx->shape[d] > x->shape[d]) {
            return PF_ERRI(PyExc_ValueError, "%s: index of shape %s is longer than input of "
                           "shape %s at dimension %d (%lld > %lld); off the axis index may not "
                           "exceed input", op, shape_s(idx, a), shape_s(x, b), d,
                           (long long)idx->shape[d], (long long)x->shape[d]);
        }
        if (src != NULL && d < src->ndim && idx->shape[d] > src->shape[d]) {
            return PF_ERRI(PyExc_ValueError, "%s: index of shape %s is longer than src of shape "
                           "%s at dimension %d (%lld > %lld); index may not exceed src", op,
                           shape_s(idx, a), shape_s(src, b), d, (long long)idx->shape[d],
                           (long long)src->shape[d]);
        }
    }
    return 0;
}

/* 0-d and 1-d mix freely in PyTorch's gather/scatter: read both as 1-d. */
static PfTensor *at_least_1d(PfTensor *t)
{
    if (t->ndim > 0) {
        return (PfTensor *)Py_NewRef(t);
    }
    int64_t one = 1;
    return pf_tensor_view(t, 1, &one, &one, t->offset);
}

/* gather(input, dim, index): PyTorch; the result has index's shape. */
PyObject *pf_op_gather(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                       PyObject *kwnames)
{
    const char *op = "gather";
    static const char *const names[] = {"input", "axis", "index", "sparse_grad", NULL};
    PyObject *v[4];
    if (pf_parse_args(op, args, nargs, kwnames, names, 3, v) < 0) {
        return NULL;
    }
    PfTensor *x0 = pf_as_tensor_arg(v[0], op), *idx0 = NULL, *x = NULL, *idx = NULL, *i64 = NULL;
    PfTensor *r = NULL;
    int axis;
    if (x0 == NULL || (idx0 = index_arg(v[2], op, "index")) == NULL ||
        parse_axis(v[1], x0->ndim > 0 ? x0->ndim : 1, op, &axis) < 0 ||
        torch_shape_check(x0, idx0, NULL, axis, op) < 0 ||
        (x = at_least_1d(x0)) == NULL || (idx = at_least_1d(idx0)) == NULL ||
        (i64 = as_int64(idx, op)) == NULL) {
        goto done;
    }
    r = along_gather(x, i64, axis, idx->ndim, idx->shape, op);
    if (r != NULL && idx0->ndim == 0) {
        Py_SETREF(r, pf_tensor_view(r, 0, NULL, NULL, r->offset));
    }
done:
    Py_XDECREF(x0);
    Py_XDECREF(idx0);
    Py_XDECREF(x);
    Py_XDECREF(idx);
    Py_XDECREF(i64);
    return (PyObject *)r;
}

/* ------------------------------------------------------ scatter family */

/* Values of a scatter (a scalar, a list, an array, a tensor) as a tensor in dtype. */
static PfTensor *values_in(PyObject *o, pf_dtype dtype, const PfTensor *dst, const char *op)
{
    PfTensor *t = PfTensor_Check(o) ? (PfTensor *)Py_NewRef(o) : pf_as_tensor(o, 1, dtype, op);
    if (t == NULL) {
        return NULL;
    }
    /* a source sharing memory with the destination is read before any write */
    if (t->dtype != dtype || touches(t, dst)) {
        Py_SETREF(t, pf_tensor_copy_as(t, dtype, op));
    }
    /* values built on the host for a device destination: a number goes by value (see
       along_scatter), anything longer is copied over */
    if (t != NULL && !pf_tensor_on_cpu(dst) && pf_tensor_on_cpu(t) &&
        pf_numel(t->shape, t->ndim) != 1) {
        Py_SETREF(t, pf_tensor_to_device(t, dst->storage->device, dtype, op));
    }
    return t;
}

/*
 * The PyTorch scatter family: scatter(input, dim, index, src) and
 * scatter_add; `inplace` writes into input (Tensor.scatter_,
 * Tensor.scatter_add_) and returns it, otherwise a copy is written.  src
 * may be a number (PyTorch's `value`).
 */
static PyObject *scatter_impl(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                              const char *op, int add, int inplace)
{
    static const char *const names[] = {"input", "axis", "index", "src", "value", NULL};
    PyObject *v[5];
    if (pf_parse_args(op, args, nargs, kwnames, names, 3, v) < 0) {
        return NULL;
    }
    if ((v[3] == NULL) == (v[4] == NULL)) {
        return PF_ERR(PyExc_TypeError, "%s: give exactly one of src (a tensor or number) and "
                      "value (a number)", op);
    }
    PyObject *srco = v[3] ? v[3] : v[4];
    PfTensor *x0 = NULL, *idx0 = NULL, *src0 = NULL, *dst = NULL, *x = NULL, *idx = NULL;
    PfTensor *i64 = NULL, *src = NULL;
    PyObject *r = NULL;
    int axis;
    if (inplace && !PfTensor_Check(v[0])) {
        return PF_ERR(PyExc_TypeError, "%s: input must be a pyframe Tensor; got %.100s", op,
                      Py_TYPE(v[0])->tp_name);
    }
    if ((x0 = pf_as_tensor_arg(v[0], op)) == NULL || (idx0 = index_arg(v[2], op, "index")) == NULL ||
        (src0 = values_in(srco, x0->dtype, x0, op)) == NULL ||
        parse_axis(v[1], x0->ndim > 0 ? x0->ndim : 1, op, &axis) < 0) {
        goto done;
    }
    int scalar_src = !PfTensor_Check(srco) && src0->ndim == 0;
    if (!scalar_src && PfTensor_Check(srco) && src0->ndim == 0 && idx0->ndim > 1) {
        scalar_src = 1;     /* a 0-d tensor broadcasts like a number */
    }
    if (torch_shape_check(x0, idx0, scalar_src ? NULL : src0, axis, op) < 0) {
        goto done;
    }
    if (inplace) {
        dst = (PfTensor *)Py_NewRef(x0);
        if (pf_tensor_check_writable(dst, op) < 0) {
            goto done;
        }
    }
    else if ((dst = pf_tensor_copy_as(x0, x0->dtype, op)) == NULL) {
        goto done;
    }
    if ((x = at_least_1d(dst)) == NULL || (idx = at_least_1d(idx0)) == NULL ||
        (i64 = as_int64(idx, op)) == NULL || (src = at_least_1d(src0)) == NULL) {
        goto done;
    }
    if (scalar_src) {
        /* a number is broadcast over index's shape */
        Py_SETREF(src, pf_tensor_view(src0, 0, NULL, NULL, src0->offset));
        if (src == NULL) {
            goto done;
        }
    }
    if (along_scatter(x, i64, src, axis, idx->ndim, idx->shape, add, op) < 0) {
        goto done;
    }
    r = Py_NewRef(dst);
done:
    Py_XDECREF(x0);
    Py_XDECREF(idx0);
    Py_XDECREF(src0);
    Py_XDECREF(dst);
    Py_XDECREF(x);
    Py_XDECREF(idx);
    Py_XDECREF(i64);
    Py_XDECREF(src);
    return r;
}

PyObject *pf_op_scatter(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                        PyObject *kwnames)
{
    return scatter_impl(args, nargs, kwnames, "scatter", 0, 0);
}

PyObject *pf_op_scatter_(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                         PyObject *kwnames)
{
    return scatter_impl(args, nargs, kwnames, "scatter_", 0, 1);
}

PyObject *pf_op_scatter_add(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                            PyObject *kwnames)
{
    return scatter_impl(args, nargs, kwnames, "scatter_add", 1, 0);
}

PyObject *pf_op_scatter_add_(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                             PyObject *kwnames)
{
    return scatter_impl(args, nargs, kwnames, "scatter_add_", 1, 1);
}

/*
 * put_along_axis(arr, indices, values, axis): NumPy; writes into arr in
 * place and returns None.  values broadcast to take_along_axis's result
 * shape; axis=None puts into the flattened arr.
 */
PyObject *pf_op_put_along_axis(PyObject *Py_UNUSED(m), PyObject *const *args,
                               Py_ssize_t nargs, PyObject *kwnames)
{
    const char *op = "put_along_axis";
    static const char *const names[] = {"arr", "indices", "values", "axis", NULL};
    PyObject *v[4];
    if (pf_parse_args(op, args, nargs, kwnames, names, 4, v) < 0) {
        return NULL;
    }
    if (!PfTensor_Check(v[0])) {
        return PF_ERR(PyExc_TypeError, "%s: arr must be a pyframe Tensor (it is written in "
                      "place); got %.100s", op, Py_TYPE(v[0])->tp_name);
    }
    PfTensor *arr = (PfTensor *)v[0], *idx = NULL, *i64 = NULL, *vals = NULL, *dst = NULL;
    PyObject *r = NULL;
    int axis = 0, copied = 0;
    int64_t shape[PF_MAX_DIMS];
    if (pf_tensor_check_writable(arr, op) < 0 || (idx = index_arg(v[1], op, "indices")) == NULL ||
        (vals = values_in(v[2], arr->dtype, arr, op)) == NULL) {
        goto done;
    }
    if (v[3] == Py_None) {
        if (idx->ndim != 1) {
            char b[PF_SHAPE_STRLEN];
            PyErr_Format(PyExc_ValueError, "%s: with axis=None the indices must be 1-D; got "
                         "shape %s", op, shape_s(idx, b));
            goto done;
        }
        /* a tensor that cannot be viewed flat is written through a contiguous copy */
        copied = !pf_tensor_is_contiguous(arr);
        dst = pf_tensor_flat(arr, op);
    }
    else if (arr->ndim == 0) {
        PyErr_Format(PyExc_ValueError, "%s: arr is 0-d; there is no axis to put along (use "
                     "axis=None)", op);
        goto done;
    }
    else if (parse_axis(v[3], arr->ndim, op, &axis) == 0) {
        dst = (PfTensor *)Py_NewRef(arr);
    }
    if (dst == NULL || along_shape(dst, idx, axis, op, "arr", shape) < 0) {
        goto done;
    }
    int nd = dst->ndim, vskip = 0;
    while (vals->ndim - vskip > nd && vals->shape[vskip] == 1) {
        vskip++;
    }
    int ok = vals->ndim - vskip <= nd;
    for (int k = 0; k < vals->ndim - vskip && ok; k++) {
        int64_t n = vals->shape[vskip + k], want = shape[nd - (vals->ndim - vskip) + k];
        ok = n == want || n == 1;
    }
    if (!ok) {
        char a[PF_SHAPE_STRLEN], b[PF_SHAPE_STRLEN];
        PyErr_Format(PyExc_ValueError, "%s: values of shape %s cannot be broadcast to the "
                     "indexed shape %s", op, shape_s(vals, a), pf_shape_str(shape, nd, b,
                                                                           sizeof(b)));
        goto done;
    }
    /* values without the leading 1s; along_scatter broadcasts the rest */
    PfTensor vv = *vals;
    vv.ndim = vals->ndim - vskip;
    memmove(vv.shape, vals->shape + vskip, sizeof(int64_t) * (size_t)vv.ndim);
    memmove(vv.strides, vals->strides + vskip, sizeof(int64_t) * (size_t)vv.ndim);
    if ((i64 = as_int64(idx, op)) == NULL ||
        along_scatter(dst, i64, &vv, axis, nd, shape, 0, op) < 0) {
        goto done;
    }
    if (copied) {
        int64_t st[PF_MAX_DIMS];
        pf_contiguous_strides(arr->shape, arr->ndim, st);
        PfTensor *back = pf_tensor_view(dst, arr->ndim, arr->shape, st, dst->offset);
        if (back == NULL) {
            goto done;
        }
        int rc = pf_tensor_assign(arr, back, op);
        Py_DECREF(back);
        if (rc < 0) {
            goto done;
        }
    }
    r = Py_NewRef(Py_None);
done:
    Py_XDECREF(idx);
    Py_XDECREF(i64);
    Py_XDECREF(vals);
    Py_XDECREF(dst);
    return r;
}

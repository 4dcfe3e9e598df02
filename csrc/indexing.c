/*
 * indexing.c -- indexing for reading and writing, with NumPy's rules.
 *
 * Basic indexing (ints, slices with any step, ..., None) gives a view;
 * writing through one is an assignment into that view, with broadcasting
 * and casting.  An integer index on every axis gives a 0-d tensor (as
 * PyTorch), not a Python scalar (as NumPy): use .item() for the number.
 *
 * Advanced indexing (integer arrays, boolean masks, True/False) gives a
 * copy, and writing through it scatters.  The key is first reduced to a
 * plan: a strided view of the tensor in which every index array selects
 * along one dimension (a mask becomes the index arrays of its nonzero()
 * positions; True/False index a new axis of size 1).  The index arrays
 * broadcast to one shape B; each position of B becomes one byte offset
 * into the view, and the copy moves whole blocks of the remaining
 * dimensions per offset.  A key with no advanced item never reaches any of
 * this: the first pass over the key spots the first array and only then
 * leaves the basic path.
 *
 * On a CUDA device the plan is the same; the index arrays (moved to the
 * device when given on the host), the offsets over B and the copy live
 * there (cuda/gather.cu): one kernel per index array for the offsets, one
 * for the copy, and an 8-byte read back for the bounds check.
 */
#include "autograd.h"
#include "gather_cuda.h"
#ifdef _OPENMP
#include <omp.h>
#endif

/* ndim of a NumPy array without the NumPy headers: its .ndim attribute */
static int PyArray_NDIM_compat(PyObject *arr)
{
    PyObject *nd = PyObject_GetAttrString(arr, "ndim");
    long v = nd ? PyLong_AsLong(nd) : 0;
    Py_XDECREF(nd);
    PyErr_Clear();
    return (int)v;
}

/* NumPy's bool scalar (np.True_) has no __index__; spot it by its type name */
static int is_numpy_bool_scalar(PyObject *o)
{
    const char *n = Py_TYPE(o)->tp_name;
    return strcmp(n, "numpy.bool") == 0 || strcmp(n, "numpy.bool_") == 0;
}

/* a 0-d bool array indexes like True/False, not like an integer */
static int ndarray_is_bool(PyObject *arr)
{
    PyObject *dt = PyObject_GetAttrString(arr, "dtype");
    PyObject *kind = dt ? PyObject_GetAttrString(dt, "kind") : NULL;
    int r = kind != NULL && PyUnicode_Check(kind) &&
            PyUnicode_CompareWithASCIIString(kind, "b") == 0;
    Py_XDECREF(kind);
    Py_XDECREF(dt);
    PyErr_Clear();
    return r;
}

/* items that make a key advanced: arrays of any kind, sequences, bools */
static int is_advanced_item(PyObject *it)
{
    return PfTensor_Check(it) || PyList_Check(it) || PyTuple_Check(it) || PyBool_Check(it) ||
           is_numpy_bool_scalar(it) || pf_is_ndarray(it);
}

/* The items of a key: the tuple's items, or the key itself. */
static PyObject **key_items(PyObject *key, PyObject **buf, Py_ssize_t *n)
{
    if (PyTuple_Check(key)) {
        *n = PyTuple_GET_SIZE(key);
        return &PyTuple_GET_ITEM(key, 0);
    }
    buf[0] = key;
    *n = 1;
    return buf;
}

/*
 * Parse a basic `key` into the view it selects.  Returns a new reference,
 * or NULL: with an exception set, or with *advanced set when the key holds
 * an array, a sequence or a bool (the caller takes the advanced path).
 */
static PfTensor *basic_index(PfTensor *self, PyObject *key, const char *op, int *advanced)
{
    PyObject *items_buf[1];
    Py_ssize_t nitems;
    PyObject **items = key_items(key, items_buf, &nitems);
    *advanced = 0;
    /* first pass: how many axes do the items consume, and where is ... */
    int consumed = 0, ellipsis = -1;
    for (Py_ssize_t i = 0; i < nitems; i++) {
        PyObject *it = items[i];
        if (it == Py_Ellipsis) {
            if (ellipsis >= 0) {
                return PF_ERR(PyExc_IndexError, "%s: an index can only have a single ellipsis "
                              "('...')", op);
            }
            ellipsis = (int)i;
        }
        else if (it == Py_None) {
            continue;
        }
        else if (PySlice_Check(it) ||
                 (!PyBool_Check(it) && !is_numpy_bool_scalar(it) && !PyFloat_Check(it) &&
                  PyIndex_Check(it) &&
                  !(PfTensor_Check(it) && (((PfTensor *)it)->ndim > 0 ||
                                           ((PfTensor *)it)->dtype == PF_BOOL)) &&
                  !(pf_is_ndarray(it) && (PyArray_NDIM_compat(it) > 0 ||
                                          ndarray_is_bool(it))))) {
            consumed++;
        }
        else if (is_advanced_item(it)) {
            *advanced = 1;
            return NULL;
        }
        else {
            return PF_ERR(PyExc_IndexError,
                          "%s: only integers, slices (`:`), ellipsis (`...`), None and integer "
                          "or boolean arrays are valid indices; got %.100s", op,
                          Py_TYPE(it)->tp_name);
        }
    }
    if (consumed > self->ndim) {
        return PF_ERR(PyExc_IndexError,
                      "%s: too many indices: the tensor has %d dimension(s) but %d were indexed",
                      op, self->ndim, consumed);
    }
    int64_t shape[PF_MAX_DIMS], strides[PF_MAX_DIMS];
    int64_t offset = self->offset;
    int nd = 0, src = 0;
    for (Py_ssize_t i = 0; i < nitems; i++) {
        PyObject *it = items[i];
        if (it == Py_Ellipsis) {
            int span = self->ndim - consumed;
            for (int k = 0; k < span; k++, src++) {
                if (nd >= PF_MAX_DIMS) {
                    goto too_many;
                }
                shape[nd] = self->shape[src];
                strides[nd++] = self->strides[src];
            }
        }
        else if (it == Py_None) {
            if (nd >= PF_MAX_DIMS) {
                goto too_many;
            }
            shape[nd] = 1;
            strides[nd++] = 0;
        }
        else if (PySlice_Check(it)) {
            Py_ssize_t start, stop, step;
            if (PySlice_Unpack(it, &start, &stop, &step) < 0) {
                PyErr_Clear();
                return PF_ERR(PyExc_ValueError,
                              "%s: slice step cannot be zero (axis %d); use a positive or "
                              "negative step", op, src);
            }
            Py_ssize_t len = PySlice_AdjustIndices((Py_ssize_t)self->shape[src], &start, &stop,
                                                   step);
            if (nd >= PF_MAX_DIMS) {
                goto too_many;
            }
            shape[nd] = len;
            strides[nd++] = self->strides[src] * step;
            if (len > 0) {
                offset += start * self->strides[src];
            }
            src++;
        }
        else {
            Py_ssize_t idx = PyNumber_AsSsize_t(it, PyExc_IndexError);
            if (idx == -1 && PyErr_Occurred()) {
                return NULL;
            }
            int64_t size = self->shape[src];
            if (idx < -size || idx >= size) {
                return PF_ERR(PyExc_IndexError,
                              "%s: index %zd is out of bounds for axis %d with size %lld", op,
                              idx, src, (long long)size);
            }
            if (idx < 0) {
                idx += size;
            }
            offset += idx * self->strides[src];
            src++;
        }
    }
    /* trailing axes not named by the key are kept whole */
    for (; src < self->ndim; src++) {
        if (nd >= PF_MAX_DIMS) {
            goto too_many;
        }
        shape[nd] = self->shape[src];
        strides[nd++] = self->strides[src];
    }
    return pf_tensor_view(self, nd, shape, strides, offset);
too_many:
    return PF_ERR(PyExc_IndexError, "%s: the result would have more than %d dimensions", op,
                  PF_MAX_DIMS);
}

/* ------------------------------------------------------ advanced indexing */

/*
 * Dimensions of a plan's view: the tensor's own, plus one per None and
 * per True/False.  NumPy caps an index at 64 items; so do we.
 */
#define ADV_MAX_ITEMS 64
#define ADV_MAX_DIMS (ADV_MAX_ITEMS + PF_MAX_DIMS)

typedef struct {
    PfTensor *base;                 /* the indexed tensor (borrowed) */
    int64_t offset;                 /* the view's first element, in base's storage */
    int nd;
    int64_t shape[ADV_MAX_DIMS];
    int64_t strides[ADV_MAX_DIMS];  /* elements */
    char adv[ADV_MAX_DIMS];         /* 1 where an index array selects along the dim */
    int nidx;
    PfTensor *idx[ADV_MAX_DIMS];    /* integer index arrays (owned), one per adv dim */
    char idx_off[ADV_MAX_DIMS];     /* 1: byte offsets from a mask, over all of its dims */
    int idx_dim[ADV_MAX_DIMS];      /* the view dim each one selects along */
    int idx_axis[ADV_MAX_DIMS];     /* base's axis, for messages (-1: a True/False axis) */
    int insert_at;                  /* where B goes among the remaining dims */
    pf_idx_mode mode;
} adv_plan;

static void plan_init(adv_plan *p, PfTensor *base, pf_idx_mode mode)
{
    p->base = base;
    p->offset = base->offset;
    p->nd = 0;
    p->nidx = 0;
    p->insert_at = 0;
    p->mode = mode;
}

static void plan_clear(adv_plan *p)
{
    for (int j = 0; j < p->nidx; j++) {
        Py_CLEAR(p->idx[j]);
    }
    p->nidx = 0;
}

static int plan_push(adv_plan *p, int64_t size, int64_t stride, const char *op)
{
    if (p->nd >= ADV_MAX_DIMS) {
        return PF_ERRI(PyExc_IndexError, "%s: the index has too many items (at most %d)", op,
                       ADV_MAX_ITEMS);
    }
    p->shape[p->nd] = size;
    p->strides[p->nd] = stride;
    p->adv[p->nd] = 0;
    p->nd++;
    return 0;
}

/* Add index array `t` (a new reference, stolen) selecting along a new view dim. */
static int plan_push_index(adv_plan *p, PfTensor *t, int64_t size, int64_t stride, int axis,
                           const char *op)
{
    if (plan_push(p, size, stride, op) < 0) {
        Py_DECREF(t);
        return -1;
    }
    p->adv[p->nd - 1] = 1;
    p->idx[p->nidx] = t;
    p->idx_off[p->nidx] = 0;
    p->idx_dim[p->nidx] = p->nd - 1;
    p->idx_axis[p->nidx] = axis;
    p->nidx++;
    return 0;
}

static int check_index_dtype(PfTensor *t, const char *op)
{
    if (pf_is_float(t->dtype)) {
        return PF_ERRI(PyExc_IndexError,
                       "%s: arrays used as indices must be of integer or boolean type; got an "
                       "index of dtype %s (convert it with .astype(pf.int64))", op,
                       pf_dtypes[t->dtype].name);
    }
    return 0;
}

enum { K_ELL, K_NONE, K_SLICE, K_INT, K_BOOL, K_IDX, K_MASK };

/*
 * Reduce an advanced key to a plan.  Integers next to index arrays count
 * as advanced for NumPy's placement rule (they are 0-d index arrays
 * there), although they simply move the view's start here.
 */
static int plan_from_key(PfTensor *self, PyObject **items, Py_ssize_t nitems, const char *op,
                         adv_plan *p)
{
    int kind[ADV_MAX_ITEMS];
    int64_t ival[ADV_MAX_ITEMS];
    PfTensor *arr[ADV_MAX_ITEMS] = {NULL};
    int r = -1;
    plan_init(p, self, PF_IDX_RAISE);
    if (nitems > ADV_MAX_ITEMS) {
        return PF_ERRI(PyExc_IndexError, "%s: the index has %zd items; at most %d are allowed",
                       op, nitems, ADV_MAX_ITEMS);
    }
    /* first pass: classify the items, turn arrays and sequences into tensors */
    int consumed = 0, ellipsis = 0;
    for (Py_ssize_t i = 0; i < nitems; i++) {
        PyObject *it = items[i];
        if (it == Py_Ellipsis) {
            if (ellipsis++) {
                PyErr_Format(PyExc_IndexError, "%s: an index can only have a single ellipsis "
                             "('...')", op);
                goto done;
            }
            kind[i] = K_ELL;
        }
        else if (it == Py_None) {
            kind[i] = K_NONE;
        }
        else if (PySlice_Check(it)) {
            kind[i] = K_SLICE;
            consumed++;
        }
        else if (PyBool_Check(it) || is_numpy_bool_scalar(it)) {
            int b = PyObject_IsTrue(it);
            if (b < 0) {
                goto done;
            }
            kind[i] = K_BOOL;
            ival[i] = b;
        }
        else if (PfTensor_Check(it) || pf_is_ndarray(it) || PyList_Check(it) ||
                 PyTuple_Check(it)) {
            PfTensor *t = pf_as_tensor(it, 0, PF_FLOAT32, op);
            if (t == NULL) {
                goto done;
            }
            /* [] reads as float32, but as an index it is an empty integer array (NumPy) */
            if (!PfTensor_Check(it) && !pf_is_ndarray(it) && pf_numel(t->shape, t->ndim) == 0 &&
                pf_is_float(t->dtype)) {
                Py_SETREF(t, pf_tensor_copy_as(t, PF_INT64, op));
                if (t == NULL) {
                    goto done;
                }
            }
            if (check_index_dtype(t, op) < 0) {
                Py_DECREF(t);
                goto done;
            }
            if (t->ndim == 0) {
                /* a 0-d bool indexes like True/False, a 0-d integer like an int (read on
                   the host) */
                Py_SETREF(t, pf_tensor_on_host(t, op));
                if (t == NULL) {
                    goto done;
                }
                pf_cast_one(pf_tensor_data(t), t->dtype, &ival[i], PF_INT64);
                kind[i] = t->dtype == PF_BOOL ? K_BOOL : K_INT;
                ival[i] = t->dtype == PF_BOOL ? ival[i] != 0 : ival[i];
                consumed += kind[i] == K_INT;
                Py_DECREF(t);
            }
            else {
                kind[i] = t->dtype == PF_BOOL ? K_MASK : K_IDX;
                consumed += t->dtype == PF_BOOL ? t->ndim : 1;
                /* an index given on the host for a tensor on a device goes there */
                if (!pf_tensor_on_cpu(self) && pf_tensor_on_cpu(t)) {
                    Py_SETREF(t, pf_tensor_to_device(t, self->storage->device, t->dtype, op));
                    if (t == NULL) {
                        goto done;
                    }
                }
                arr[i] = t;
            }
        }
        else if (!PyFloat_Check(it) && PyIndex_Check(it)) {
            Py_ssize_t v = PyNumber_AsSsize_t(it, PyExc_IndexError);
            if (v == -1 && PyErr_Occurred()) {
                goto done;
            }
            kind[i] = K_INT;
            ival[i] = v;
            consumed++;
        }
        else {
            PyErr_Format(PyExc_IndexError,
                         "%s: only integers, slices (`:`), ellipsis (`...`), None and integer "
                         "or boolean arrays are valid indices; got %.100s", op,
                         Py_TYPE(it)->tp_name);
            goto done;
        }
    }
    if (consumed > self->ndim) {
        PyErr_Format(PyExc_IndexError,
                     "%s: too many indices: the tensor has %d dimension(s) but %d were indexed",
                     op, self->ndim, consumed);
        goto done;
    }
    /* second pass: build the view; note where the advanced items sit in the key */
    int src = 0, first = -1, last = -1, count = 0;
    for (Py_ssize_t i = 0; i < nitems; i++) {
        PyObject *it = items[i];
        int k = kind[i];
        if (k == K_INT || k == K_BOOL || k == K_IDX || k == K_MASK) {
            if (first < 0) {
                first = (int)i;
                p->insert_at = p->nd;
            }
            last = (int)i;
            count++;
        }
        switch (k) {
        case K_ELL:
            for (int span = self->ndim - consumed; span > 0; span--, src++) {
                if (plan_push(p, self->shape[src], self->strides[src], op) < 0) {
                    goto done;
                }
            }
            break;
        case K_NONE:
            if (plan_push(p, 1, 0, op) < 0) {
                goto done;
            }
            break;
        case K_SLICE: {
            Py_ssize_t start, stop, step;
            if (PySlice_Unpack(it, &start, &stop, &step) < 0) {
                PyErr_Clear();
                PyErr_Format(PyExc_ValueError, "%s: slice step cannot be zero (axis %d); use a "
                             "positive or negative step", op, src);
                goto done;
            }
            Py_ssize_t len = PySlice_AdjustIndices((Py_ssize_t)self->shape[src], &start, &stop,
                                                   step);
            if (plan_push(p, len, self->strides[src] * step, op) < 0) {
                goto done;
            }
            if (len > 0) {
                p->offset += start * self->strides[src];
            }
            src++;
            break;
        }
        case K_INT: {
            int64_t size = self->shape[src], v = ival[i];
            if (v < -size || v >= size) {
                PyErr_Format(PyExc_IndexError, "%s: index %lld is out of bounds for axis %d "
                             "with size %lld", op, (long long)v, src, (long long)size);
                goto done;
            }
            p->offset += (v < 0 ? v + size : v) * self->strides[src];
            src++;
            break;
        }
        case K_BOOL: {
            /* a new axis of size 1, indexed by [0] (True) or by [] (False) */
            int64_t n = ival[i];
            PfTensor *t = pf_tensor_zeros(1, &n, PF_INT64, self->storage->device, op);
            if (t == NULL) {
                goto done;
            }
            if (plan_push_index(p, t, 1, 0, -1, op) < 0) {
                goto done;
            }
            break;
        }
        case K_IDX:
            if (plan_push_index(p, arr[i], self->shape[src], self->strides[src], src, op) < 0) {
                arr[i] = NULL;
                goto done;
            }
            arr[i] = NULL;
            src++;
            break;
        case K_MASK: {
            PfTensor *m = arr[i];
            for (int d = 0; d < m->ndim; d++) {
                if (m->shape[d] != self->shape[src + d]) {
                    char a[PF_SHAPE_STRLEN], b[PF_SHAPE_STRLEN], c[PF_SHAPE_STRLEN];
                    PyErr_Format(PyExc_IndexError,
                                 "%s: boolean index of shape %s does not match the indexed "
                                 "dimensions %s (axes %d to %d of a tensor of shape %s): axis "
                                 "%d has size %lld but the mask has %lld there; a mask must "
                                 "have the shape of the dimensions it covers", op,
                                 pf_shape_str(m->shape, m->ndim, a, sizeof(a)),
                                 pf_shape_str(self->shape + src, m->ndim, b, sizeof(b)), src,
                                 src + m->ndim - 1,
                                 pf_shape_str(self->shape, self->ndim, c, sizeof(c)),
                                 src + d, (long long)self->shape[src + d],
                                 (long long)m->shape[d]);
                    goto done;
                }
            }
            /* one entry of byte offsets selects along all of the mask's dims at once */
            int64_t st[PF_MAX_DIMS];
            int isz = pf_dtypes[self->dtype].itemsize;
            for (int d = 0; d < m->ndim; d++) {
                st[d] = self->strides[src + d] * isz;
            }
            PfTensor *offs;
            if (pf_nonzero_offsets(m, st, &offs, op) < 0 ||
                plan_push_index(p, offs, self->shape[src], self->strides[src], src, op) < 0) {
                goto done;
            }
            p->idx_off[p->nidx - 1] = 1;
            for (int d = 1; d < m->ndim; d++) {
                if (plan_push(p, self->shape[src + d], self->strides[src + d], op) < 0) {
                    goto done;
                }
                p->adv[p->nd - 1] = 1;
            }
            src += m->ndim;
            break;
        }
        }
    }
    for (; src < self->ndim; src++) {
        if (plan_push(p, self->shape[src], self->strides[src], op) < 0) {
            goto done;
        }
    }
    /* NumPy: advanced items side by side keep their place, otherwise B goes first */
    if (last - first + 1 != count) {
        p->insert_at = 0;
    }
    r = 0;
done:
    for (Py_ssize_t i = 0; i < nitems; i++) {
        Py_XDECREF(arr[i]);
    }
    if (r < 0) {
        plan_clear(p);
    }
    return r;
}

/* ------------------------------------------------ from a plan to offsets */

typedef struct {
    int bnd;
    int64_t bshape[PF_MAX_DIMS];
    int64_t nb;
    int rnd;
    int64_t rshape[PF_MAX_DIMS];        /* pre dims, B, post dims */
    int npre, npost;
    int64_t pre_st[PF_MAX_DIMS];        /* bytes, in the view */
    int64_t post_st[PF_MAX_DIMS];
    PfTensor *off;                      /* int64 over B: byte offset of each position */
    char *data;                         /* the view's first element */
    int routed;                         /* 1: through the CUDA library (route) */
    pf_cu_route route;
} adv_exec;

typedef struct {
    pf_dtype dtype;     /* of the index array */
    int64_t size;       /* of the dim it selects along */
    int64_t stride;     /* bytes */
    int first;          /* write the offset, rather than add to it */
    int is_off;         /* the array holds byte offsets already (from a mask) */
    int64_t wrap;       /* added to negative indices: size, or 0 where they are invalid */
    pf_idx_mode mode;
    int bad;
    int64_t badval;
} off_ctx;

#define OFF_LOOP(T)                                                                      \
    for (int64_t i = 0; i < n; i++) {                                                    \
        int64_t v = (int64_t)*(const T *)(ip + i * is), w = v < 0 ? v + wrap : v;        \
        if ((uint64_t)w >= (uint64_t)size) {                                             \
            w = out_of_range(c, v);                                                      \
        }                                                                                \
        int64_t o = w * c->stride;                                                       \
        *(int64_t *)(op + i * os) = c->first ? o : *(int64_t *)(op + i * os) + o;        \
    }

/* An index outside [-size, size): wrapped or clipped, or recorded for the error. */
static int64_t out_of_range(off_ctx *c, int64_t v)
{
    int64_t size = c->size;
    if (c->mode == PF_IDX_WRAP) {
        int64_t w = v % size;
        return w < 0 ? w + size : w;
    }
    if (c->mode == PF_IDX_CLIP) {
        return v < 0 ? 0 : size - 1;
    }
    int zero = 0;
    if (__atomic_compare_exchange_n(&c->bad, &zero, 1, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
        c->badval = v;
    }
    return 0;
}

/* data[0] an index array, data[1] the int64 offsets */
static void offsets_loop(char **data, const int64_t *st, int64_t n, void *vctx)
{
    off_ctx *c = vctx;
    const char *ip = data[0];
    char *op = data[1];
    int64_t is = st[0], os = st[1], size = c->size, wrap = c->wrap;
    if (c->is_off) {
        for (int64_t i = 0; i < n; i++) {
            int64_t v = *(const int64_t *)(ip + i * is);
            *(int64_t *)(op + i * os) = c->first ? v : *(int64_t *)(op + i * os) + v;
        }
        return;
    }
    switch (c->dtype) {
    case PF_UINT8: OFF_LOOP(uint8_t) break;
    case PF_INT8: OFF_LOOP(int8_t) break;
    case PF_INT16: OFF_LOOP(int16_t) break;
    case PF_INT32: OFF_LOOP(int32_t) break;
    default: OFF_LOOP(int64_t) break;
    }
}

/*
 * One index array's offsets on the CUDA path: t broadcast over B, with
 * c's size, stride and mode; a bad index is left in c as the cpu's loop
 * leaves it.
 */
static int device_offsets(adv_exec *e, const PfTensor *t, off_ctx *c, const char *op)
{
    PfCudaIndexOffsets g;
    memset(&g, 0, sizeof(g));
    g.ndim = e->bnd;
    int lead = e->bnd - t->ndim;
    for (int d = 0; d < e->bnd; d++) {
        int td = d - lead;
        g.shape[d] = e->bshape[d];
        g.index_strides[d] = td < 0 || (t->shape[td] == 1 && e->bshape[d] != 1)
                                 ? 0 : t->strides[td];
    }
    g.index_dtype = t->dtype;
    g.is_offset = c->is_off;
    g.first = c->first;
    g.mode = c->mode == PF_IDX_WRAP ? 1 : c->mode == PF_IDX_CLIP ? 2 : 0;
    g.size = c->size;
    g.wrap = c->wrap;
    g.stride_bytes = c->stride;
    PfCudaBad bad;
    int status = e->route.lib->index_offsets(e->route.device, (int64_t *)pf_tensor_data(e->off),
                                             pf_tensor_data(t), &g, &bad);
    if (status != 0) {
        return pf_cu_raise(&e->route, op, status);
    }
    if (bad.pos >= 0) {
        c->bad = 1;
        c->badval = bad.value;
    }
    return 0;
}

static void exec_clear(adv_exec *e)
{
    Py_CLEAR(e->off);
}

/*
 * Broadcast the index arrays, lay out the result shape, and compute the
 * byte offset of every position of B within the view.
 */
static int exec_prepare(adv_plan *p, adv_exec *e, const char *op)
{
    memset(e, 0, sizeof(*e));
    if ((e->routed = pf_cu_route_for(p->base, op, &e->route)) < 0) {
        return -1;
    }
    int isz = pf_dtypes[p->base->dtype].itemsize;
    e->data = p->base->storage->data + p->offset * isz;
    for (int j = 0; j < p->nidx; j++) {
        PfTensor *t = p->idx[j];
        int n = t->ndim > e->bnd ? t->ndim : e->bnd;
        int ok = 1;
        int64_t out[PF_MAX_DIMS];
        for (int d = 0; d < n; d++) {
            int ia = e->bnd - n + d, ib = t->ndim - n + d;
            int64_t a = ia >= 0 ? e->bshape[ia] : 1, b = ib >= 0 ? t->shape[ib] : 1;
            ok &= a == b || a == 1 || b == 1;
            out[d] = a == 1 ? b : a;
        }
        if (!ok) {
            char msg[8 * PF_SHAPE_STRLEN] = "", buf[PF_SHAPE_STRLEN];
            for (int k = 0; k < p->nidx; k++) {
                strncat(msg, k ? ", " : "", sizeof(msg) - strlen(msg) - 1);
                strncat(msg, pf_shape_str(p->idx[k]->shape, p->idx[k]->ndim, buf, sizeof(buf)),
                        sizeof(msg) - strlen(msg) - 1);
            }
            return PF_ERRI(PyExc_IndexError,
                           "%s: shape mismatch: the index arrays have shapes %s, which cannot "
                           "be broadcast together; each dimension must match or be 1", op, msg);
        }
        e->bnd = n;
        memcpy(e->bshape, out, sizeof(int64_t) * (size_t)n);
    }
    e->nb = pf_numel(e->bshape, e->bnd);
    /* the result: remaining dims before insert_at, then B, then the rest */
    int nrest = 0;
    for (int d = 0; d < p->nd; d++) {
        nrest += !p->adv[d];
    }
    if (nrest + e->bnd > PF_MAX_DIMS) {
        return PF_ERRI(PyExc_IndexError, "%s: the result would have %d dimensions; tensors have "
                       "at most %d", op, nrest + e->bnd, PF_MAX_DIMS);
    }
    for (int d = 0; d < p->nd; d++) {
        if (p->adv[d]) {
            continue;
        }
        if (d < p->insert_at) {
            e->pre_st[e->npre] = p->strides[d] * isz;
            e->rshape[e->npre++] = p->shape[d];
        }
        else {
            e->post_st[e->npost++] = p->strides[d] * isz;
        }
    }
    memcpy(e->rshape + e->npre, e->bshape, sizeof(int64_t) * (size_t)e->bnd);
    for (int d = 0, k = 0; d < p->nd; d++) {
        if (!p->adv[d] && d >= p->insert_at) {
            e->rshape[e->npre + e->bnd + k++] = p->shape[d];
        }
    }
    e->rnd = e->npre + e->bnd + e->npost;
    if (p->nidx == 1 && p->idx_off[0]) {
        /* a lone mask: its offsets are the table */
        e->off = (PfTensor *)Py_NewRef(p->idx[0]);
        return 0;
    }
    pf_device dev = p->base->storage->device;
    e->off = p->nidx == 0 ? pf_tensor_zeros(e->bnd, e->bshape, PF_INT64, dev, op)
                          : pf_tensor_empty(e->bnd, e->bshape, PF_INT64, dev, op);
    if (e->off == NULL) {
        return -1;
    }
    for (int j = 0; j < p->nidx; j++) {
        int64_t size = p->shape[p->idx_dim[j]];
        if (size == 0 && e->nb > 0 && p->mode != PF_IDX_RAISE && !p->idx_off[j]) {
            exec_clear(e);
            return PF_ERRI(PyExc_IndexError, "%s: cannot take %lld element(s) from axis %d, "
                           "which has size 0", op, (long long)e->nb, p->idx_axis[j]);
        }
        /* np.take's clip mode clips negative indices to 0 rather than counting from the end */
        off_ctx c = {p->idx[j]->dtype, size, p->strides[p->idx_dim[j]] * isz, j == 0,
                     p->idx_off[j], p->mode == PF_IDX_CLIP ? 0 : size, p->mode, 0, 0};
        if (e->routed) {
            if (device_offsets(e, p->idx[j], &c, op) < 0) {
                exec_clear(e);
                return -1;
            }
        }
        else {
            PfTensor *ops[2] = {p->idx[j], e->off};
            pf_iter it;
            pf_iter_build(&it, 2, ops, e->bshape, e->bnd);
            pf_iter_run(&it, offsets_loop, &c);
        }
        if (c.bad) {
            exec_clear(e);
            return PF_ERRI(PyExc_IndexError, "%s: index %lld is out of bounds for axis %d with "
                           "size %lld", op, (long long)c.badval, p->idx_axis[j],
                           (long long)size);
        }
    }
    return 0;
}

/* ------------------------------------------------------------ the copy */

/*
 * One side of a copy: element (p, b, q) -- p over the dims before B, b
 * over B, q over the dims after -- lies at
 *     data + p . pre + (btab ? btab[b] : b * bstep) + q . post   (bytes).
 */
typedef struct {
    char *data;
    const int64_t *btab;
    int64_t bstep;
    int64_t pre[PF_MAX_DIMS];
    int64_t post[PF_MAX_DIMS];
} adv_side;

typedef struct {
    int npre, npost;
    int64_t pre_shape[PF_MAX_DIMS];
    int64_t post_shape[PF_MAX_DIMS];
    int64_t nb;
    int isz;
} adv_geom;

/* Drop size-1 dims and merge neighbours that both sides step over contiguously. */
static void merge_dims(int *nd, int64_t *shape, int64_t *a, int64_t *b)
{
    int n = 0;
    for (int d = 0; d < *nd; d++) {
        if (shape[d] == 1) {
            continue;
        }
        if (n > 0 && a[n - 1] == a[d] * shape[d] && b[n - 1] == b[d] * shape[d]) {
            shape[n - 1] *= shape[d];
            a[n - 1] = a[d];
            b[n - 1] = b[d];
            continue;
        }
        shape[n] = shape[d];
        a[n] = a[d];
        b[n] = b[d];
        n++;
    }
    *nd = n;
}

#define RUN_LOOP(T)                                                                      \
    for (int64_t i = 0; i < n; i++) {                                                    \
        *(T *)(d + i * ds) = *(const T *)(s + i * ss);                                   \
    }

static void copy_run(char *d, int64_t ds, const char *s, int64_t ss, int64_t n, int isz)
{
    if (ds == isz && ss == isz) {
        memcpy(d, s, (size_t)(n * isz));
        return;
    }
    switch (isz) {
    case 1: RUN_LOOP(uint8_t) break;
    case 2: RUN_LOOP(uint16_t) break;
    case 4: RUN_LOOP(uint32_t) break;
    default: RUN_LOOP(uint64_t) break;
    }
}

/* Copy the block of post dims at (d, s). */
static void copy_block(char *d, const char *s, const adv_geom *g, const adv_side *D,
                       const adv_side *S)
{
    int np = g->npost;
    if (np == 0) {
        copy_run(d, 0, s, 0, 1, g->isz);
        return;
    }
    int64_t inner = g->post_shape[np - 1], ds = D->post[np - 1], ss = S->post[np - 1];
    int64_t idx[PF_MAX_DIMS] = {0};
    for (;;) {
        copy_run(d, ds, s, ss, inner, g->isz);
        int k = np - 2;
        for (; k >= 0; k--) {
            d += D->post[k];
            s += S->post[k];
            if (++idx[k] < g->post_shape[k]) {
                break;
            }
            d -= D->post[k] * g->post_shape[k];
            s -= S->post[k] * g->post_shape[k];
            idx[k] = 0;
        }
        if (k < 0) {
            return;
        }
    }
}

#define B_LOOP(T)                                                                        \
    for (int64_t b = b0; b < b1; b++) {                                                  \
        *(T *)(dp + (D->btab ? D->btab[b] : b * D->bstep)) =                             \
            *(const T *)(sp + (S->btab ? S->btab[b] : b * S->bstep));                    \
    }

/* Positions b0 <= b < b1 of B, for the pre position whose bases are dp and sp. */
static void copy_b_range(char *dp, const char *sp, int64_t b0, int64_t b1, const adv_geom *g,
                         const adv_side *D, const adv_side *S)
{
    if (g->npost == 0) {
        /* one element per position: the plain gather / scatter loop */
        switch (g->isz) {
        case 1: B_LOOP(uint8_t) break;
        case 2: B_LOOP(uint16_t) break;
        case 4: B_LOOP(uint32_t) break;
        default: B_LOOP(uint64_t) break;
        }
        return;
    }
    for (int64_t b = b0; b < b1; b++) {
        copy_block(dp + (D->btab ? D->btab[b] : b * D->bstep),
                   sp + (S->btab ? S->btab[b] : b * S->bstep), g, D, S);
    }
}

/* Outer positions lo <= o < hi, where o = p * nb + b, in order. */
static void copy_range(const adv_geom *g, const adv_side *D, const adv_side *S, int64_t lo,
                       int64_t hi)
{
    int64_t nb = g->nb, pidx[PF_MAX_DIMS];
    int64_t pos = lo / nb, b = lo % nb;
    char *dp = D->data;
    const char *sp = S->data;
    for (int k = g->npre - 1; k >= 0; k--) {
        pidx[k] = pos % g->pre_shape[k];
        pos /= g->pre_shape[k];
        dp += pidx[k] * D->pre[k];
        sp += pidx[k] * S->pre[k];
    }
    for (int64_t o = lo; o < hi;) {
        int64_t b1 = hi - o < nb - b ? b + (hi - o) : nb;
        copy_b_range(dp, sp, b, b1, g, D, S);
        o += b1 - b;
        b = 0;
        for (int k = g->npre - 1; k >= 0; k--) {
            dp += D->pre[k];
            sp += S->pre[k];
            if (++pidx[k] < g->pre_shape[k]) {
                break;
            }
            dp -= D->pre[k] * g->pre_shape[k];
            sp -= S->pre[k] * g->pre_shape[k];
            pidx[k] = 0;
        }
    }
}

/*
 * Run the copy.  Reads split the outer positions across threads freely;
 * writes (scatter) split only whole pre positions, which land in disjoint
 * parts of the tensor, so that duplicate indices keep NumPy's order: the
 * last write wins.
 */
static void adv_copy(adv_geom *g, adv_side *D, adv_side *S, int scatter)
{
    merge_dims(&g->npre, g->pre_shape, D->pre, S->pre);
    merge_dims(&g->npost, g->post_shape, D->post, S->post);
    int64_t npos = pf_numel(g->pre_shape, g->npre);
    int64_t nouter = npos * g->nb;
    int64_t work = nouter * pf_numel(g->post_shape, g->npost);
    if (work == 0) {
        return;
    }
    int nth = pf_get_num_threads();
    int64_t units = scatter ? npos : nouter;    /* what may be split */
    if (nth <= 1 || work < PF_GRAIN || units < 2) {
        copy_range(g, D, S, 0, nouter);
        return;
    }
    if (nth > units) {
        nth = (int)units;
    }
    int64_t step = scatter ? g->nb : 1;
    #pragma omp parallel for num_threads(nth) schedule(static)
    for (int t = 0; t < nth; t++) {
        int64_t lo = units * t / nth * step, hi = units * (t + 1) / nth * step;
        if (lo < hi) {
            copy_range(g, D, S, lo, hi);
        }
    }
}

static void geom_from_exec(const adv_exec *e, int isz, adv_geom *g)
{
    g->npre = e->npre;
    g->npost = e->npost;
    g->nb = e->nb;
    g->isz = isz;
    memcpy(g->pre_shape, e->rshape, sizeof(int64_t) * (size_t)e->npre);
    memcpy(g->post_shape, e->rshape + e->npre + e->bnd, sizeof(int64_t) * (size_t)e->npost);
}

/*
 * The copy on the CUDA path, over the result's shape: pre dims, B, post
 * dims.  The indexed side (the view at e->data) steps by e's strides off B
 * and by the offset table on B; `other` (byte strides over the result's
 * dims, B's included) is the result for a read, the value for a write;
 * value non-NULL writes that one item everywhere.
 */
static int device_copy(adv_exec *e, int write, char *other, const int64_t *other_st,
                       const void *value, int isz, const char *op)
{
    PfCudaIndexCopy g;
    memset(&g, 0, sizeof(g));
    g.ndim = e->rnd;
    g.bfirst = e->npre;
    g.bnd = e->bnd;
    g.table_side = write;
    g.itemsize = isz;
    int64_t *side = write ? g.dst_strides : g.src_strides;
    int64_t *oside = write ? g.src_strides : g.dst_strides;
    for (int k = 0; k < e->rnd; k++) {
        g.shape[k] = e->rshape[k];
        int post = k - e->npre - e->bnd;
        side[k] = k < e->npre ? e->pre_st[k] : post < 0 ? 0 : e->post_st[post];
        oside[k] = value != NULL ? 0 : other_st[k];
    }
    if (value != NULL) {
        g.scalar = 1;
        memcpy(g.value, value, (size_t)isz);
    }
    const int64_t *table = (const int64_t *)pf_tensor_data(e->off);
    int status = write ? e->route.lib->index_copy(e->route.device, e->data, value ? NULL : other,
                                                  table, &g)
                       : e->route.lib->index_copy(e->route.device, other, e->data, table, &g);
    return status == 0 ? 0 : pf_cu_raise(&e->route, op, status);
}

/* base[key] for a plan: a new contiguous tensor. */
static PfTensor *adv_read(adv_plan *p, const char *op)
{
    adv_exec e;
    if (exec_prepare(p, &e, op) < 0) {
        return NULL;
    }
    PfTensor *base = p->base;
    int isz = pf_dtypes[base->dtype].itemsize;
    PfTensor *out = pf_tensor_empty(e.rnd, e.rshape, base->dtype, base->storage->device, op);
    if (out != NULL && e.routed) {
        int64_t st[PF_MAX_DIMS];
        for (int k = 0; k < e.rnd; k++) {
            st[k] = out->strides[k] * isz;
        }
        if (device_copy(&e, 0, pf_tensor_data(out), st, NULL, isz, op) < 0) {
            Py_CLEAR(out);
        }
    }
    else if (out != NULL) {
        adv_geom g;
        geom_from_exec(&e, isz, &g);
        adv_side S = {e.data, (const int64_t *)pf_tensor_data(e.off), 0, {0}, {0}};
        adv_side D = {pf_tensor_data(out), NULL, 0, {0}, {0}};
        memcpy(S.pre, e.pre_st, sizeof(S.pre));
        memcpy(S.post, e.post_st, sizeof(S.post));
        for (int k = 0; k < e.rnd; k++) {
            int64_t st = out->strides[k] * isz;
            if (k < e.npre) {
                D.pre[k] = st;
            }
            else if (k >= e.npre + e.bnd) {
                D.post[k - e.npre - e.bnd] = st;
            }
        }
        D.bstep = pf_numel(g.post_shape, g.npost) * isz;
        adv_copy(&g, &D, &S, 0);
    }
    exec_clear(&e);
    return out;
}

/* Does the memory of t overlap the storage s? */
static int touches_storage(const PfTensor *t, const pf_storage *s)
{
    if (t->storage == s) {
        return 1;
    }
    const char *lo = t->storage->data, *hi = lo + t->storage->nbytes;
    return lo < s->data + s->nbytes && s->data < hi;
}

/* base[key] = value for a plan: value broadcast to the indexed shape, cast to base's dtype. */
static int adv_write(adv_plan *p, PyObject *value, const char *op)
{
    PfTensor *base = p->base, *v = NULL;
    pf_dtype dt = base->dtype;
    int isz = pf_dtypes[dt].itemsize, r = -1;
    int64_t *vtab = NULL;
    union {
        double d;
        int64_t i;
        char raw[8];
    } scalar;
    adv_exec e;
    if (pf_tensor_check_writable(base, op) < 0) {
        return -1;
    }
    if (exec_prepare(p, &e, op) < 0) {
        return -1;
    }
    adv_geom g;
    geom_from_exec(&e, isz, &g);
    adv_side D = {e.data, (const int64_t *)pf_tensor_data(e.off), 0, {0}, {0}};
    adv_side S = {NULL, NULL, 0, {0}, {0}};
    memcpy(D.pre, e.pre_st, sizeof(D.pre));
    memcpy(D.post, e.post_st, sizeof(D.post));
    if (PyFloat_Check(value) || PyLong_Check(value) || PyBool_Check(value)) {
        if (pf_scalar_to_raw(value, dt, scalar.raw, op) < 0) {
            goto done;
        }
        S.data = scalar.raw;
        if (e.routed) {
            if (device_copy(&e, 1, NULL, NULL, scalar.raw, isz, op) < 0) {
                goto done;
            }
            goto written;
        }
    }
    else {
        v = PfTensor_Check(value) ? (PfTensor *)Py_NewRef(value) : pf_as_tensor(value, 1, dt, op);
        if (v == NULL) {
            goto done;
        }
        /* a value on the host (a list, an array, a tensor) for a tensor on a device is
           copied over; a value on another device is refused */
        if (!pf_tensor_on_cpu(base) && pf_tensor_on_cpu(v)) {
            Py_SETREF(v, pf_tensor_to_device(v, base->storage->device, dt, op));
            if (v == NULL) {
                goto done;
            }
        }
        if (!pf_device_eq(v->storage->device, base->storage->device)) {
            char a[32], b[32];
            PyErr_Format(PyExc_RuntimeError, "%s: the tensor is on %s and the value on %s; move "
                         "the value with .to(...)", op,
                         pf_device_str(base->storage->device, a, sizeof(a)),
                         pf_device_str(v->storage->device, b, sizeof(b)));
            goto done;
        }
        /* a value of another dtype, or one that shares memory with base, is copied first */
        if (v->dtype != dt || touches_storage(v, base->storage)) {
            Py_SETREF(v, pf_tensor_copy_as(v, dt, op));
            if (v == NULL) {
                goto done;
            }
        }
        /* broadcast to the indexed shape; extra leading 1s are allowed (NumPy) */
        int skip = 0;
        while (v->ndim - skip > e.rnd && v->shape[skip] == 1) {
            skip++;
        }
        int vnd = v->ndim - skip, ok = vnd <= e.rnd;
        int64_t vst[PF_MAX_DIMS] = {0};
        for (int k = 0; k < vnd && ok; k++) {
            int64_t n = v->shape[skip + k], want = e.rshape[e.rnd - vnd + k];
            ok = n == want || n == 1;
            vst[e.rnd - vnd + k] = n == 1 ? 0 : v->strides[skip + k] * isz;
        }
        if (!ok) {
            char a[PF_SHAPE_STRLEN], b[PF_SHAPE_STRLEN];
            PyErr_Format(PyExc_ValueError,
                         "%s: cannot broadcast a value of shape %s to the indexed shape %s; "
                         "the value must broadcast to the shape the index selects", op,
                         pf_shape_str(v->shape, v->ndim, a, sizeof(a)),
                         pf_shape_str(e.rshape, e.rnd, b, sizeof(b)));
            goto done;
        }
        if (e.routed) {
            if (device_copy(&e, 1, pf_tensor_data(v), vst, NULL, isz, op) < 0) {
                goto done;
            }
            goto written;
        }
        S.data = pf_tensor_data(v);
        memcpy(S.pre, vst, sizeof(int64_t) * (size_t)e.npre);
        memcpy(S.post, vst + e.npre + e.bnd, sizeof(int64_t) * (size_t)e.npost);
        /* the value's offsets over B: a table, unless it is constant or 1-D there */
        const int64_t *bst = vst + e.npre;
        int nonzero = 0;
        for (int k = 0; k < e.bnd; k++) {
            nonzero += bst[k] != 0;
        }
        if (e.bnd == 1) {
            S.bstep = bst[0];
        }
        else if (nonzero > 0 && e.nb > 0) {
            vtab = PyMem_Malloc(sizeof(int64_t) * (size_t)e.nb);
            if (vtab == NULL) {
                PyErr_NoMemory();
                goto done;
            }
            int64_t idx[PF_MAX_DIMS] = {0}, o = 0;
            for (int64_t b = 0; b < e.nb; b++) {
                vtab[b] = o;
                for (int k = e.bnd - 1; k >= 0; k--) {
                    o += bst[k];
                    if (++idx[k] < e.bshape[k]) {
                        break;
                    }
                    o -= bst[k] * e.bshape[k];
                    idx[k] = 0;
                }
            }
            S.btab = vtab;
        }
    }
    adv_copy(&g, &D, &S, 1);
written:
    base->storage->version++;
    r = 0;
done:
    PyMem_Free(vtab);
    Py_XDECREF(v);
    exec_clear(&e);
    return r;
}

PfTensor *pf_index_take(PfTensor *x, int axis, PfTensor *index, pf_idx_mode mode,
                        const char *op)
{
    adv_plan p;
    if (check_index_dtype(index, op) < 0) {
        return NULL;
    }
    if (index->dtype == PF_BOOL) {
        return PF_ERR(PyExc_IndexError, "%s: indices must be integers; got a bool tensor (use "
                      "nonzero() to turn a mask into indices)", op);
    }
    plan_init(&p, x, mode);
    p.nd = x->ndim;
    for (int d = 0; d < x->ndim; d++) {
        p.shape[d] = x->shape[d];
        p.strides[d] = x->strides[d];
        p.adv[d] = d == axis;
    }
    p.nidx = 1;
    p.idx[0] = (PfTensor *)Py_NewRef(index);
    p.idx_off[0] = 0;
    p.idx_dim[0] = axis;
    p.idx_axis[0] = axis;
    p.insert_at = axis;
    PfTensor *r = adv_read(&p, op);
    plan_clear(&p);
    return r;
}

/* ----------------------------------------------------------- the slots */

/* x[key] under autograd: the node keeps the key for the backward rule. */
static PyObject *record_getitem(PfTensor *self, PyObject *key, PfTensor *r)
{
    if (r == NULL || !self->requires_grad || !pf_grad_enabled()) {
        return (PyObject *)r;
    }
    PfNode *n = pf_node_new(PF_NODE_GETITEM, 1, 1);
    if (n == NULL || (n->args = PyTuple_Pack(1, key)) == NULL) {
        Py_XDECREF(n);
        Py_DECREF(r);
        return NULL;
    }
    pf_node_set_input(n, 0, (PyObject *)self, 0);
    n->has_saved = 1;
    n->is_view = r->storage == self->storage;
    int rc = pf_node_set_output(n, 0, r, 0);
    Py_DECREF(n);
    if (rc < 0) {
        Py_DECREF(r);
        return NULL;
    }
    return (PyObject *)r;
}

/*
 * Advanced indexing runs where the tensor is.  A tensor on a CUDA device
 * takes index tensors on its own device or on the cpu (copied over, as
 * lists and arrays are); CUDA must be usable before anything is read.  A
 * tensor on the cpu takes cpu indices only.
 */
static int adv_devices(PfTensor *self, PyObject **items, Py_ssize_t n, const char *op)
{
    if (!pf_tensor_on_cpu(self)) {
        if (pf_cuda_lib(op) == NULL) {
            return -1;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            PfTensor *t = PfTensor_Check(items[i]) ? (PfTensor *)items[i] : NULL;
            if (t != NULL && !pf_tensor_on_cpu(t) &&
                !pf_device_eq(t->storage->device, self->storage->device)) {
                char a[32], b[32];
                return PF_ERRI(PyExc_RuntimeError,
                               "%s: the tensor is on %s and an index tensor on %s; move the "
                               "index to the tensor's device with .to(...)", op,
                               pf_device_str(self->storage->device, a, sizeof(a)),
                               pf_device_str(t->storage->device, b, sizeof(b)));
            }
        }
        return 0;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (PfTensor_Check(items[i]) && !pf_tensor_on_cpu((PfTensor *)items[i])) {
            char d[32];
            return PF_ERRI(PyExc_RuntimeError,
                           "%s: the tensor is on cpu and an index tensor on %s; move the "
                           "index to the cpu with .cpu()", op,
                           pf_device_str(((PfTensor *)items[i])->storage->device, d, sizeof(d)));
        }
    }
    return 0;
}

PyObject *pf_tensor_getitem(PyObject *self, PyObject *key)
{
    const char *op = "Tensor.__getitem__";
    int advanced;
    PfTensor *r = basic_index((PfTensor *)self, key, op, &advanced);
    if (r == NULL && advanced) {
        PyObject *buf[1];
        Py_ssize_t n;
        PyObject **items = key_items(key, buf, &n);
        adv_plan p;
        if (adv_devices((PfTensor *)self, items, n, op) < 0 ||
            plan_from_key((PfTensor *)self, items, n, op, &p) < 0) {
            return NULL;
        }
        r = adv_read(&p, op);
        plan_clear(&p);
    }
    return record_getitem((PfTensor *)self, key, r);
}

static int setitem_impl(PyObject *self, PyObject *key, PyObject *value);

/*
 * x[key] = v under autograd: x takes a new history whose rule passes the
 * gradient through outside the written places (to x's old history) and
 * hands the written places to v.
 */
int pf_tensor_setitem(PyObject *self, PyObject *key, PyObject *value)
{
    PfTensor *t = (PfTensor *)self;
    if (value == NULL || !pf_grad_enabled() || (!t->requires_grad && !pf_needs_grad(value))) {
        return setitem_impl(self, key, value);
    }
    PyObject *alias;
    if (pf_ag_inplace_begin(t, 1, 1, "Tensor.__setitem__", &alias) < 0) {
        return -1;
    }
    PfNode *n = pf_node_new(PF_NODE_SETITEM, 2, 1);
    if (n == NULL || (n->args = PyTuple_Pack(1, key)) == NULL) {
        Py_XDECREF(n);
        Py_DECREF(alias);
        return -1;
    }
    pf_node_set_input(n, 0, alias, 0);
    Py_DECREF(alias);
    pf_node_set_input(n, 1, value, 0);
    n->has_saved = 1;
    int r = setitem_impl(self, key, value);
    if (r == 0) {
        r = pf_ag_inplace_finish(n, t, 0);
    }
    Py_DECREF(n);
    return r;
}

static int setitem_impl(PyObject *self, PyObject *key, PyObject *value)
{
    const char *op = "Tensor.__setitem__";
    if (value == NULL) {
        return PF_ERRI(PyExc_TypeError, "%s: tensor elements cannot be deleted", op);
    }
    int advanced;
    PfTensor *view = basic_index((PfTensor *)self, key, op, &advanced);
    if (view == NULL) {
        if (!advanced) {
            return -1;
        }
        PyObject *buf[1];
        Py_ssize_t n;
        PyObject **items = key_items(key, buf, &n);
        adv_plan p;
        if (adv_devices((PfTensor *)self, items, n, op) < 0 ||
            plan_from_key((PfTensor *)self, items, n, op, &p) < 0) {
            return -1;
        }
        int r = adv_write(&p, value, op);
        plan_clear(&p);
        return r;
    }
    int r;
    if (PyFloat_Check(value) || PyLong_Check(value) || PyBool_Check(value)) {
        r = pf_tensor_fill_scalar(view, value, op);
    }
    else {
        /* non-tensor values are read straight in the target's dtype: no rounding detour */
        PfTensor *src = PfTensor_Check(value) ? (PfTensor *)Py_NewRef(value)
                                              : pf_as_tensor(value, 1, view->dtype, op);
        r = src == NULL ? -1 : pf_tensor_assign(view, src, op);
        Py_XDECREF(src);
    }
    Py_DECREF(view);
    return r;
}

PyMappingMethods pf_tensor_as_mapping = {
    .mp_length = NULL,
    .mp_subscript = pf_tensor_getitem,
    .mp_ass_subscript = pf_tensor_setitem,
};

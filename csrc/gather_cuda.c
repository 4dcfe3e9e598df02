/*
 * gather_cuda.c -- pyframe's side of gather.cu: routing a gathering,
 * scattering or indexing op to libpyframe_cuda.so, and filling the
 * library's geometry structs from tensors.  See gather_cuda.h.
 *
 * The bindings (gather.c, indexing.c, shape_ops.c) validate as before and
 * build the same views for both paths; only the loop that moves elements
 * differs.  Index arrays go to the library in their own integer dtype (the
 * cpu path widens them to int64 first), so no cast kernel is needed.
 */
#include "gather_cuda.h"

#include "ops.h"

/* Set while _C._cuda_host_run runs a call: cpu tensors take the library's host path. */
static int host_selftest;
/* How many times an op took that path: the tests check that it was taken at all. */
static long long host_routes;

int pf_cu_wanted(const PfTensor *t)
{
    return !pf_tensor_on_cpu(t) || host_selftest;
}

int pf_cu_route_for(const PfTensor *t, const char *op, pf_cu_route *r)
{
    if (!pf_tensor_on_cpu(t)) {
        if ((r->lib = pf_cuda_lib(op)) == NULL) {
            return -1;
        }
        r->device = t->storage->device.index;
        return 1;
    }
    if (host_selftest) {
        if ((r->lib = pf_cuda_library(op)) == NULL) {
            return -1;
        }
        r->device = PF_CUDA_HOST;
        host_routes++;
        return 1;
    }
    return 0;
}

int pf_cu_raise(const pf_cu_route *r, const char *op, int status)
{
    return pf_cuda_raise(r->lib, op, status);
}

PfTensor *pf_cu_place(const pf_cu_route *r, PfTensor *t, const char *op)
{
    if (r->device == PF_CUDA_HOST || !pf_tensor_on_cpu(t)) {
        return (PfTensor *)Py_NewRef(t);
    }
    pf_device dev = {PF_DEV_CUDA, (int16_t)r->device};
    return pf_tensor_to_device(t, dev, t->dtype, op);
}

/* The strides of t (right-aligned) over shape: 0 where t lacks the dim or broadcasts it. */
static void bcast_strides(const PfTensor *t, int ndim, const int64_t *shape, int64_t *st)
{
    int lead = ndim - t->ndim;
    for (int d = 0; d < ndim; d++) {
        int td = d - lead;
        st[d] = td < 0 || (t->shape[td] == 1 && shape[d] != 1) ? 0 : t->strides[td];
    }
}

/* ---------------------------------------------------------- along an axis */

static void along_geometry(PfCudaAlong *g, const PfTensor *data, const PfTensor *index,
                           const PfTensor *other, int64_t axis_size, int64_t axis_stride)
{
    memset(g, 0, sizeof(*g));
    g->ndim = index->ndim;
    for (int k = 0; k < index->ndim; k++) {
        g->shape[k] = index->shape[k];
        g->data_strides[k] = data->strides[k];
        g->index_strides[k] = index->strides[k];
        g->other_strides[k] = other != NULL ? other->strides[k] : 0;
    }
    g->axis_size = axis_size;
    g->axis_stride = axis_stride;
    g->dtype = data->dtype;
    g->index_dtype = index->dtype;
}

int pf_cu_gather_along(const pf_cu_route *r, PfTensor *out, const PfTensor *data,
                       const PfTensor *index, int64_t axis_size, int64_t axis_stride,
                       PfCudaBad *bad, const char *op)
{
    PfCudaAlong g;
    along_geometry(&g, data, index, out, axis_size, axis_stride);
    int status = r->lib->gather_along(r->device, pf_tensor_data(out), pf_tensor_data(data),
                                      pf_tensor_data(index), &g, bad);
    return status == 0 ? 0 : pf_cu_raise(r, op, status);
}

int pf_cu_scatter_along(const pf_cu_route *r, PfTensor *data, const PfTensor *index,
                        const PfTensor *src, const void *scalar, int64_t axis_size,
                        int64_t axis_stride, int add, PfCudaBad *bad, const char *op)
{
    PfCudaAlong g;
    along_geometry(&g, data, index, src, axis_size, axis_stride);
    g.add = add;
    g.scalar = src == NULL;
    if (src == NULL) {
        memcpy(g.value, scalar, (size_t)pf_dtypes[data->dtype].itemsize);
    }
    int status = r->lib->scatter_along(r->device, pf_tensor_data(data), pf_tensor_data(index),
                                       src != NULL ? pf_tensor_data(src) : NULL, &g, bad);
    if (status != 0) {
        return pf_cu_raise(r, op, status);
    }
    if (bad->pos < 0) {
        data->storage->version++;
    }
    return 0;
}

/* -------------------------------------------------------------- nonzero */

PfTensor *pf_cu_nonzero(const pf_cu_route *r, PfTensor *x, const int64_t *offsets, int by_dim,
                        const char *op)
{
    PfCudaNonzero g;
    memset(&g, 0, sizeof(g));
    g.ndim = x->ndim;
    for (int k = 0; k < x->ndim; k++) {
        g.shape[k] = x->shape[k];
        g.strides[k] = x->strides[k];
        g.offset_strides[k] = offsets != NULL ? offsets[k] : 0;
    }
    g.dtype = x->dtype;
    g.offsets = offsets != NULL;
    g.row_step = x->ndim;
    g.col_step = 1;
    pf_device dev = x->storage->device;
    int64_t nscratch = PF_CUDA_NONZERO_SCRATCH, count = 0;
    PfTensor *scratch = pf_tensor_empty(1, &nscratch, PF_INT64, dev, op), *out = NULL;
    if (scratch == NULL) {
        return NULL;
    }
    int status = r->lib->nonzero_count(r->device, pf_tensor_data(x), &g,
                                       (int64_t *)pf_tensor_data(scratch), &count);
    if (status != 0) {
        pf_cu_raise(r, op, status);
        goto done;
    }
    int64_t shape[2] = {count, x->ndim};
    if (by_dim) {
        shape[0] = x->ndim;
        shape[1] = count;
        g.row_step = 1;
        g.col_step = count;
    }
    out = pf_tensor_empty(offsets != NULL ? 1 : 2, shape, PF_INT64, dev, op);
    if (out == NULL || count == 0) {
        goto done;
    }
    status = r->lib->nonzero_write(r->device, (int64_t *)pf_tensor_data(out), pf_tensor_data(x),
                                   &g, (const int64_t *)pf_tensor_data(scratch));
    if (status != 0) {
        pf_cu_raise(r, op, status);
        Py_CLEAR(out);
    }
done:
    Py_DECREF(scratch);
    return out;
}

/* -------------------------------------------------------------- one_hot */

int pf_cu_one_hot(const pf_cu_route *r, PfTensor *out, const PfTensor *x, int64_t classes,
                  int64_t inner, const void *one, PfCudaBad *bad, const char *op)
{
    PfCudaOneHot g;
    memset(&g, 0, sizeof(g));
    g.ndim = x->ndim;
    for (int k = 0; k < x->ndim; k++) {
        g.shape[k] = x->shape[k];
        g.index_strides[k] = x->strides[k];
    }
    /* bool class indices (0 and 1, as the cpu reads them) are bytes */
    g.index_dtype = x->dtype == PF_BOOL ? PF_UINT8 : x->dtype;
    g.itemsize = pf_dtypes[out->dtype].itemsize;
    g.classes = classes;
    g.inner = inner;
    memcpy(g.one, one, (size_t)g.itemsize);
    int status = r->lib->one_hot(r->device, pf_tensor_data(out), pf_tensor_data(x), &g, bad);
    return status == 0 ? 0 : pf_cu_raise(r, op, status);
}

/* ---------------------------------------------------------- masked_fill */

int pf_cu_masked_fill(const pf_cu_route *r, PfTensor *out, const PfTensor *x,
                      const PfTensor *mask, const void *value, const char *op)
{
    PfCudaMaskedFill g;
    memset(&g, 0, sizeof(g));
    g.ndim = x->ndim;
    for (int k = 0; k < x->ndim; k++) {
        g.shape[k] = x->shape[k];
        g.x_strides[k] = x->strides[k];
        g.out_strides[k] = out->strides[k];
    }
    bcast_strides(mask, x->ndim, x->shape, g.mask_strides);
    g.itemsize = pf_dtypes[x->dtype].itemsize;
    memcpy(g.value, value, (size_t)g.itemsize);
    int status = r->lib->masked_fill(r->device, pf_tensor_data(out), pf_tensor_data(x),
                                     pf_tensor_data(mask), &g);
    if (status != 0) {
        return pf_cu_raise(r, op, status);
    }
    out->storage->version++;
    return 0;
}

/* ---------------------------------------------------- the host self-test */

/*
 * _cuda_host_run(fn, *args, **kwargs): fn(*args, **kwargs) with the
 * gathering, scattering and indexing ops on cpu tensors routed through the
 * CUDA library's host path -- the kernels' own per-element code run in
 * plain loops -- so that the tests compare it with the cpu backend on a
 * machine without a GPU.  Tests only.
 */
static PyObject *py_cuda_host_run(PyObject *Py_UNUSED(m), PyObject *const *args,
                                  Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs < 1 || !PyCallable_Check(args[0])) {
        return PF_ERR(PyExc_TypeError, "_cuda_host_run: the first argument must be a callable; "
                      "call it as _cuda_host_run(fn, *args, **kwargs)");
    }
    if (pf_cuda_library("_cuda_host_run") == NULL) {
        return NULL;
    }
    int saved = host_selftest;
    host_selftest = 1;
    PyObject *r = PyObject_Vectorcall(args[0], args + 1, (size_t)(nargs - 1), kwnames);
    host_selftest = saved;
    return r;
}

static PyObject *py_cuda_host_routes(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(noargs))
{
    return PyLong_FromLongLong(host_routes);
}

PyMethodDef pf_gather_cuda_module_methods[] = {
    {"_cuda_host_routes", py_cuda_host_routes, METH_NOARGS,
     "how many ops _cuda_host_run has routed through the CUDA library's host path; tests only"},
    {"_cuda_host_run", (PyCFunction)(void (*)(void))py_cuda_host_run,
     METH_FASTCALL | METH_KEYWORDS,
     "_cuda_host_run(fn, *args, **kwargs): fn(*args, **kwargs) with the gather, scatter and "
     "indexing ops on cpu tensors run through the CUDA library's host path (its kernels' "
     "per-element code in plain loops); tests only"},
    {NULL, NULL, 0, NULL},
};

/*
 * ew_cuda.c -- elementwise ops on CUDA devices: the part of pf_elementwise
 * (dispatch.c) after the dtypes, the broadcast shape and the output are
 * fixed, exactly as for the cpu.  It brings every operand to the dtype the
 * kernel reads (a cast kernel on the device: no operand goes through the
 * host), passes Python scalars by value in the kernel's arguments, merges
 * the geometry with the cpu's iterator (pf_iter_build), and runs the
 * kernel of libpyframe_cuda.so (csrc/cuda/elementwise.cu).
 *
 * The same path runs the kernels' element code over host buffers for the
 * host self-test (_C._cuda_host_ew): the tests compare it with the cpu
 * backend for every op and dtype on a machine without a GPU.
 */
#include "autograd.h"
#include "cuda_backend.h"

_Static_assert((int)PF_CUDA_BOOL == (int)PF_BOOL && (int)PF_CUDA_INT64 == (int)PF_INT64 &&
                   (int)PF_CUDA_FLOAT16 == (int)PF_FLOAT16 &&
                   (int)PF_CUDA_BFLOAT16 == (int)PF_BFLOAT16 &&
                   (int)PF_CUDA_FLOAT64 == (int)PF_FLOAT64 && (int)PF_CUDA_NDTYPES == (int)PF_NDTYPES,
               "libpyframe_cuda.so numbers dtypes as pyframe does");
_Static_assert(PF_CUDA_EW_MAX_OPERANDS >= PF_MAX_OPERANDS, "operands of an elementwise op");

/* The library: usable CUDA for device tensors; just loaded for the host self-test. */
static const PfCudaLib *ew_lib(pf_ew_target target, const char *name)
{
    return target == PF_EW_CUDA ? pf_cuda_lib(name) : pf_cuda_library(name);
}

int pf_ew_cuda_has_kernel(pf_op op, pf_dtype dtype, pf_ew_target target, const char *name)
{
    const PfCudaLib *lib = ew_lib(target, name);
    if (lib == NULL) {
        return -1;
    }
    return (int)((lib->kernel_dtypes((int)op) >> dtype) & 1u);
}

/* dst = src converted to dst's dtype; same shape, any strides; on their device (or the host). */
static int cast_into(const PfCudaLib *lib, pf_ew_target target, PfTensor *dst, PfTensor *src,
                     const char *name)
{
    PfCudaStrided g;
    g.ndim = dst->ndim;
    for (int k = 0; k < dst->ndim; k++) {
        g.shape[k] = dst->shape[k];
        g.dst_strides[k] = dst->strides[k];
        g.src_strides[k] = src->strides[k];
    }
    int status = target == PF_EW_CUDA
                     ? lib->cast_strided(dst->storage->device.index, pf_tensor_data(dst),
                                         (int)dst->dtype, pf_tensor_data(src), (int)src->dtype, &g)
                     : lib->cast_host(pf_tensor_data(dst), (int)dst->dtype, pf_tensor_data(src),
                                      (int)src->dtype, &g);
    return status == 0 ? 0 : pf_cuda_raise(lib, name, status);
}

/* A contiguous copy of src in dtype, on src's device; new reference. */
static PfTensor *converted(const PfCudaLib *lib, pf_ew_target target, PfTensor *src,
                           pf_dtype dtype, const char *name)
{
    PfTensor *c = pf_tensor_empty(src->ndim, src->shape, dtype, src->storage->device, name);
    if (c != NULL && cast_into(lib, target, c, src, name) < 0) {
        Py_CLEAR(c);
    }
    return c;
}

int pf_ew_cuda_run(pf_op op, PfTensor *const *t, const int *weak, int nin, PfTensor *dst,
                   const pf_dtype *want, const int64_t *shape, int ndim, const pf_params *p,
                   pf_ew_target target, const char *name)
{
    const PfCudaLib *lib = ew_lib(target, name);
    if (lib == NULL) {
        return -1;
    }
    PfTensor *held[PF_MAX_OPERANDS + 1] = {NULL};
    PfTensor *ops[PF_MAX_OPERANDS + 1];
    void *data[PF_CUDA_EW_MAX_OPERANDS] = {NULL};
    PfCudaEw g;
    memset(&g, 0, sizeof(g));
    pf_device dev = dst->storage->device;
    int rc = -1;
    for (int k = 0; k < nin; k++) {
        PfTensor *x = t[k];
        ops[k] = x;
        if (weak[k] >= 0) {
            /* a Python scalar: its value travels in the kernel's arguments */
            pf_cast_one(pf_tensor_data(x), x->dtype, &g.scalars[k], want[k]);
            g.scalar_mask |= 1u << k;
            continue;
        }
        if (target == PF_EW_CUDA && pf_tensor_on_cpu(x)) {
            /* a list or array operand, which dispatch made a host tensor */
            if ((held[k] = pf_tensor_to_device(x, dev, want[k], name)) == NULL) {
                goto done;
            }
            x = held[k];
        }
        /* bool's bytes are 0 or 1: read as uint8 (the integer ops' dtype for bool) as they are */
        if (x->dtype != want[k] && !(x->dtype == PF_BOOL && want[k] == PF_UINT8)) {
            PfTensor *c = converted(lib, target, x, want[k], name);
            if (c == NULL) {
                goto done;
            }
            Py_XSETREF(held[k], c);
            x = c;
        }
        ops[k] = x;
    }
    /* a result of another dtype (bool from uint8, out= of a wider dtype) goes through a temporary */
    ops[nin] = dst;
    if (dst->dtype != want[nin]) {
        if ((held[nin] = pf_tensor_empty(ndim, shape, want[nin], dev, name)) == NULL) {
            goto done;
        }
        ops[nin] = held[nin];
    }

    pf_iter it;
    pf_iter_build(&it, nin + 1, ops, shape, ndim);
    g.op = (int)op;
    g.dtype = (int)(pf_ops[op].kind == PF_OK_WHERE ? want[1] : want[0]);
    g.nin = nin;
    g.ndim = it.ndim;
    for (int d = 0; d < it.ndim; d++) {
        g.shape[d] = it.shape[d];
        for (int k = 0; k <= nin; k++) {
            g.strides[k][d] = it.strides[k][d] / pf_dtypes[ops[k]->dtype].itemsize;
        }
    }
    for (int k = 0; k <= nin; k++) {
        data[k] = k < nin && (g.scalar_mask >> k) & 1u ? NULL : it.data[k];
    }
    if (p != NULL) {
        g.params[0] = p->p[0];
        g.params[1] = p->p[1];
    }
    int status = target == PF_EW_CUDA ? lib->ew(dev.index, data, &g) : lib->ew_host(data, &g);
    if (status != 0) {
        pf_cuda_raise(lib, name, status);
        goto done;
    }
    if (ops[nin] != dst && cast_into(lib, target, dst, ops[nin], name) < 0) {
        goto done;
    }
    rc = 0;
done:
    for (int k = 0; k <= nin; k++) {
        Py_XDECREF(held[k]);
    }
    return rc;
}

/* ------------------------------------------------ _C._cuda_host_ew (tests) */

/*
 * _cuda_host_ew(name, inputs, params=None, out=None): the elementwise op
 * `name` on cpu tensors (or Python scalars), through dispatch's CUDA path
 * with the kernels' element code run on the host.  params: the op's
 * parameters in the table's order (None keeps a default).
 */
static PyObject *py_cuda_host_ew(PyObject *Py_UNUSED(m), PyObject *args, PyObject *kwds)
{
    const char *caller = "_cuda_host_ew";
    const char *name;
    PyObject *inputs, *params = Py_None, *out = Py_None;
    static char *kwlist[] = {"name", "inputs", "params", "out", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "sO|OO:_cuda_host_ew", kwlist, &name, &inputs,
                                     &params, &out)) {
        return NULL;
    }
    int op = -1;
    for (int i = 0; i < PF_OP_COUNT && op < 0; i++) {
        if (pf_ops[i].kind != PF_OK_CUSTOM && strcmp(pf_ops[i].name, name) == 0) {
            op = i;
        }
    }
    if (op < 0) {
        return PF_ERR(PyExc_ValueError, "%s: '%s' is not an elementwise op of the op table; "
                      "pass the name of a row whose kind is not custom", caller, name);
    }
    int nin = pf_ops[op].nin;
    if (!PyTuple_Check(inputs) || PyTuple_GET_SIZE(inputs) != nin) {
        return PF_ERR(PyExc_ValueError, "%s: %s takes a tuple of %d inputs; got %s", caller,
                      name, nin, Py_TYPE(inputs)->tp_name);
    }
    for (int k = 0; k < nin; k++) {
        PyObject *x = PyTuple_GET_ITEM(inputs, k);
        if (PfTensor_Check(x) && !pf_tensor_on_cpu((PfTensor *)x)) {
            return PF_ERR(PyExc_ValueError, "%s: input %d is on a CUDA device; the host "
                          "self-test runs on cpu tensors", caller, k);
        }
    }
    if (out != Py_None && (!PfTensor_Check(out) || !pf_tensor_on_cpu((PfTensor *)out))) {
        return PF_ERR(PyExc_TypeError, "%s: out must be None or a cpu tensor; got %s", caller,
                      Py_TYPE(out)->tp_name);
    }
    pf_params p = {{pf_op_params[op].defaults[0], pf_op_params[op].defaults[1]}};
    if (params != Py_None) {
        if (!PyTuple_Check(params) || PyTuple_GET_SIZE(params) > pf_op_params[op].n) {
            return PF_ERR(PyExc_ValueError, "%s: %s takes a tuple of at most %d params", caller,
                          name, pf_op_params[op].n);
        }
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(params); i++) {
            PyObject *v = PyTuple_GET_ITEM(params, i);
            if (v != Py_None && ((p.p[i] = PyFloat_AsDouble(v)) == -1.0 && PyErr_Occurred())) {
                return NULL;
            }
        }
    }
    if (pf_cuda_library(caller) == NULL) {
        return NULL;
    }
    return pf_elementwise_host_selftest((pf_op)op, PySequence_Fast_ITEMS(inputs),
                                        out == Py_None ? NULL : (PfTensor *)out, &p);
}

/* _cuda_host_cast(t, dtype): t (a cpu tensor, any strides) converted by the cast kernel's host code. */
static PyObject *py_cuda_host_cast(PyObject *Py_UNUSED(m), PyObject *args)
{
    const char *caller = "_cuda_host_cast";
    PyObject *src, *dt;
    if (!PyArg_ParseTuple(args, "OO:_cuda_host_cast", &src, &dt)) {
        return NULL;
    }
    if (!PfTensor_Check(src) || !pf_tensor_on_cpu((PfTensor *)src)) {
        return PF_ERR(PyExc_TypeError, "%s: expected a cpu tensor; got %s", caller,
                      Py_TYPE(src)->tp_name);
    }
    pf_dtype d;
    if (pf_dtype_from_object(dt, caller, &d) < 0) {
        return NULL;
    }
    const PfCudaLib *lib = pf_cuda_library(caller);
    if (lib == NULL) {
        return NULL;
    }
    return (PyObject *)converted(lib, PF_EW_CUDA_HOST, (PfTensor *)src, d, caller);
}

PyMethodDef pf_ew_cuda_module_methods[] = {
    {"_cuda_host_cast", py_cuda_host_cast, METH_VARARGS,
     "_cuda_host_cast(t, dtype): a cpu tensor converted by the CUDA cast kernel's element code "
     "run on the host (tests only)"},
    {"_cuda_host_ew", (PyCFunction)(void (*)(void))py_cuda_host_ew,
     METH_VARARGS | METH_KEYWORDS,
     "_cuda_host_ew(name, inputs, params=None, out=None): an elementwise op on cpu tensors "
     "through the CUDA path, running the CUDA kernels' element code on the host (tests only)"},
    {NULL, NULL, 0, NULL},
};

/*
 * autocast.c -- mixed precision by op: inside pf.autocast(device, dtype),
 * the ops that gain from a 16-bit type (the matrix products) cast their
 * float32 tensor arguments to it, and the ops that need float32's range or
 * precision (softmax, losses, normalisations, and the kernels that exist in
 * float32 and float64 only) cast 16-bit arguments up to float32.  Every
 * other op follows the ordinary promotion rules, so a bfloat16 product plus
 * a float32 bias is float32.
 *
 * The casts happen where every CUSTOM op passes (pf_ag_custom_call), before
 * the op records its node, through Tensor.astype, which records its own: the
 * gradient of a float32 weight used in a bfloat16 product arrives in
 * float32.  The state is one dtype per device type, process-wide like grad
 * mode (pf.autocast saves and restores it, so contexts nest).
 */
#include "autograd.h"

typedef enum { AC_NONE = 0, AC_LOWER, AC_FP32 } ac_class;

static const unsigned char ac_classes[PF_OP_COUNT] = {
    /* the products: the work that 16-bit types (AMX, tensor cores) speed up */
    [PF_OP_MATMUL] = AC_LOWER,
    [PF_OP_MM] = AC_LOWER,
    [PF_OP_BMM] = AC_LOWER,
    [PF_OP_DOT] = AC_LOWER,
    [PF_OP_OUTER] = AC_LOWER,
    [PF_OP_TENSORDOT] = AC_LOWER,
    [PF_OP_EINSUM] = AC_LOWER,
    /* float32 for range and precision: exponentials, sums of squares, losses */
    [PF_OP_SOFTMAX] = AC_FP32,
    [PF_OP_LOG_SOFTMAX] = AC_FP32,
    [PF_OP_LOGSUMEXP] = AC_FP32,
    [PF_OP_NORM] = AC_FP32,
    [PF_OP_VAR] = AC_FP32,
    [PF_OP_STD] = AC_FP32,
    [PF_OP_CUMPROD] = AC_FP32,
    [PF_OP_BATCH_NORM] = AC_FP32,
    [PF_OP_LAYER_NORM] = AC_FP32,
    [PF_OP_GROUP_NORM] = AC_FP32,
    [PF_OP_RMS_NORM] = AC_FP32,
    [PF_OP_CROSS_ENTROPY] = AC_FP32,
    [PF_OP_NLL_LOSS] = AC_FP32,
    [PF_OP_BINARY_CROSS_ENTROPY] = AC_FP32,
    [PF_OP_MSE_LOSS] = AC_FP32,
    [PF_OP_L1_LOSS] = AC_FP32,
    [PF_OP_HUBER_LOSS] = AC_FP32,
    [PF_OP_SMOOTH_L1_LOSS] = AC_FP32,
    /* kernels that exist in float32 and float64 only: a 16-bit activation
       (a product without a bias) reaches them as float32 */
    [PF_OP_CONV1D] = AC_FP32,
    [PF_OP_CONV2D] = AC_FP32,
    [PF_OP_CONV_TRANSPOSE2D] = AC_FP32,
    [PF_OP_CONV] = AC_FP32,
    [PF_OP_MAX_POOL1D] = AC_FP32,
    [PF_OP_MAX_POOL2D] = AC_FP32,
    [PF_OP_AVG_POOL1D] = AC_FP32,
    [PF_OP_AVG_POOL2D] = AC_FP32,
    [PF_OP_SDPA] = AC_FP32,
    [PF_OP_ATTENTION] = AC_FP32,
};

/* The autocast dtype per device type (PF_DEV_CPU, PF_DEV_CUDA), or -1. */
static int ac_dtype[2] = {-1, -1};
int pf_autocast_on = 0;

static int is_half(pf_dtype d) { return d == PF_FLOAT16 || d == PF_BFLOAT16; }

/* The dtype autocast gives tensor t as an argument of an op of class c, or -1 to leave it. */
static int target_dtype(PyObject *o, ac_class c)
{
    if (!PfTensor_Check(o)) {
        return -1;
    }
    PfTensor *t = (PfTensor *)o;
    int want = ac_dtype[t->storage->device.type == PF_DEV_CPU ? 0 : 1];
    if (want < 0 || pf_dtypes[t->dtype].kind != PF_KIND_FLOAT) {
        return -1;
    }
    if (c == AC_LOWER) {
        /* float64 is asked for on purpose: leave it, as the products of
           other frameworks' autocast do only for float32 */
        return t->dtype == PF_FLOAT32 ? want : -1;
    }
    return is_half(t->dtype) ? PF_FLOAT32 : -1;
}

PyObject *pf_autocast_call(pf_op op, pf_fastcall fn, PyObject *m, PyObject *const *args,
                           Py_ssize_t nargs, PyObject *kwnames)
{
    ac_class c = (ac_class)ac_classes[op];
    Py_ssize_t total = nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0);
    int any = 0;
    for (Py_ssize_t i = 0; i < total && !any; i++) {
        any = target_dtype(args[i], c) >= 0;
    }
    if (c == AC_NONE || !any) {
        return pf_ag_custom_call_raw(op, fn, m, args, nargs, kwnames);
    }
    PyObject *small[16];
    PyObject **cast = total <= 16 ? small : PyMem_Malloc(sizeof(PyObject *) * (size_t)total);
    if (cast == NULL) {
        return PyErr_NoMemory();
    }
    Py_ssize_t made = 0;
    PyObject *r = NULL;
    for (; made < total; made++) {
        int d = target_dtype(args[made], c);
        cast[made] = d >= 0 ? pf_astype(args[made], (pf_dtype)d) : Py_NewRef(args[made]);
        if (cast[made] == NULL) {
            goto done;
        }
    }
    r = pf_ag_custom_call_raw(op, fn, m, cast, nargs, kwnames);
done:
    for (Py_ssize_t i = 0; i < made; i++) {
        Py_DECREF(cast[i]);
    }
    if (cast != small) {
        PyMem_Free(cast);
    }
    return r;
}

static int device_type_arg(PyObject *o, int *type)
{
    const char *s = PyUnicode_Check(o) ? PyUnicode_AsUTF8(o) : NULL;
    if (s != NULL && strcmp(s, "cpu") == 0) {
        *type = 0;
        return 0;
    }
    if (s != NULL && strcmp(s, "cuda") == 0) {
        *type = 1;
        return 0;
    }
    PyErr_Clear();
    return PF_ERRI(PyExc_ValueError,
                   "autocast: device_type must be 'cpu' or 'cuda'; got %R", o);
}

/* _C._autocast_set(device_type, dtype or None) -> the previous dtype or None */
static PyObject *py_autocast_set(PyObject *Py_UNUSED(m), PyObject *args)
{
    PyObject *dev, *dt;
    if (!PyArg_ParseTuple(args, "OO:_autocast_set", &dev, &dt)) {
        return NULL;
    }
    int type;
    if (device_type_arg(dev, &type) < 0) {
        return NULL;
    }
    int want = -1;
    if (dt != Py_None) {
        pf_dtype d;
        if (pf_dtype_from_object(dt, "autocast", &d) < 0) {
            return NULL;
        }
        if (!is_half(d)) {
            return PF_ERR(PyExc_ValueError,
                          "autocast: dtype must be pf.bfloat16 or pf.float16; got %s (leave "
                          "autocast off to compute in float32)", pf_dtypes[d].name);
        }
        want = d;
    }
    int previous = ac_dtype[type];
    ac_dtype[type] = want;
    pf_autocast_on = ac_dtype[0] >= 0 || ac_dtype[1] >= 0;
    return previous < 0 ? Py_NewRef(Py_None) : Py_NewRef(pf_dtype_objs[previous]);
}

/* _C._autocast_get(device_type) -> dtype or None */
static PyObject *py_autocast_get(PyObject *Py_UNUSED(m), PyObject *dev)
{
    int type;
    if (device_type_arg(dev, &type) < 0) {
        return NULL;
    }
    int d = ac_dtype[type];
    return d < 0 ? Py_NewRef(Py_None) : Py_NewRef(pf_dtype_objs[d]);
}

/* _C._autocast_ops() -> {"lower": [...], "float32": [...]}: the lists, for docs and tests */
static PyObject *py_autocast_ops(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(noargs))
{
    PyObject *lower = PyList_New(0), *fp32 = PyList_New(0);
    for (int op = 0; lower != NULL && fp32 != NULL && op < PF_OP_COUNT; op++) {
        PyObject *list = ac_classes[op] == AC_LOWER ? lower : ac_classes[op] == AC_FP32 ? fp32
                                                                                        : NULL;
        if (list == NULL) {
            continue;
        }
        PyObject *s = PyUnicode_FromString(pf_ops[op].name);
        if (s == NULL || PyList_Append(list, s) < 0) {
            Py_XDECREF(s);
            Py_CLEAR(lower);
            break;
        }
        Py_DECREF(s);
    }
    if (lower == NULL || fp32 == NULL) {
        Py_XDECREF(lower);
        Py_XDECREF(fp32);
        return NULL;
    }
    return Py_BuildValue("{s:N,s:N}", "lower", lower, "float32", fp32);
}

PyMethodDef pf_autocast_module_methods[] = {
    {"_autocast_set", py_autocast_set, METH_VARARGS,
     "_autocast_set(device_type, dtype or None) -> previous dtype or None"},
    {"_autocast_get", py_autocast_get, METH_O, "_autocast_get(device_type) -> dtype or None"},
    {"_autocast_ops", py_autocast_ops, METH_NOARGS,
     "the ops autocast runs in the 16-bit dtype ('lower') and in float32"},
    {NULL, NULL, 0, NULL},
};

/*
 * bench_support.c -- reference loops for bench/ops.py, kept apart from the
 * op library: a STREAM-style triad a = b + s * c over float32, the memory
 * bandwidth yardstick that elementwise ops are measured against in the
 * same run, on the same threads.
 */
#include "pyframe.h"
#ifdef _OPENMP
#include <omp.h>
#endif

static int is_f32_contiguous(PyObject *o, int64_t n)
{
    return PfTensor_Check(o) && ((PfTensor *)o)->dtype == PF_FLOAT32 &&
           pf_tensor_is_contiguous((PfTensor *)o) &&
           pf_numel(((PfTensor *)o)->shape, ((PfTensor *)o)->ndim) == n;
}

/* _stream_triad(a, b, c, s): a[i] = b[i] + s * c[i]; contiguous float32 of one size */
static PyObject *py_stream_triad(PyObject *Py_UNUSED(m), PyObject *args)
{
    PyObject *a, *b, *c;
    float s;
    if (!PyArg_ParseTuple(args, "OOOf:_stream_triad", &a, &b, &c, &s)) {
        return NULL;
    }
    if (!PfTensor_Check(a)) {
        return PF_ERR(PyExc_TypeError, "_stream_triad: expected tensors");
    }
    int64_t n = pf_numel(((PfTensor *)a)->shape, ((PfTensor *)a)->ndim);
    if (!is_f32_contiguous(a, n) || !is_f32_contiguous(b, n) || !is_f32_contiguous(c, n)) {
        return PF_ERR(PyExc_ValueError,
                      "_stream_triad: a, b and c must be contiguous float32 tensors of one size");
    }
    float *pa = (float *)pf_tensor_data((PfTensor *)a);
    const float *pb = (const float *)pf_tensor_data((PfTensor *)b);
    const float *pc = (const float *)pf_tensor_data((PfTensor *)c);
    int nth = pf_get_num_threads();
    Py_BEGIN_ALLOW_THREADS
    #pragma omp parallel for num_threads(nth) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        pa[i] = pb[i] + s * pc[i];
    }
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

PyMethodDef pf_bench_methods[] = {
    {"_stream_triad", py_stream_triad, METH_VARARGS,
     "_stream_triad(a, b, c, s): a = b + s*c, the bandwidth reference of bench/ops.py"},
    {NULL, NULL, 0, NULL},
};

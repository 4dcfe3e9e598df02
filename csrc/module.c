/*
 * module.c -- the pyframe._C module: initialisation, threads, and the build
 * facts that pf.show_config() prints.
 */
#include "autograd.h"
#include "cuda_backend.h"
#include "gather_cuda.h"
#include "kernels/gemm.h"
#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#ifndef PYFRAME_VERSION
#define PYFRAME_VERSION "0.0.0"
#endif

static int num_threads = 1;

int pf_get_num_threads(void) { return num_threads; }

/*
 * pyframe's OpenMP loops and OpenBLAS's own threads never run at the same
 * time (a BLAS call is made from one thread, outside parallel regions), so
 * giving both the same count uses every core without oversubscribing.
 */
static void apply_threads(int n)
{
    num_threads = n;
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    scipy_openblas_set_num_threads(n);
}

static PyObject *py_set_num_threads(PyObject *Py_UNUSED(m), PyObject *arg)
{
    if (PyFloat_Check(arg) || !PyIndex_Check(arg)) {
        return PF_ERR(PyExc_TypeError, "pf.set_num_threads: expected an integer; got %.100s",
                      Py_TYPE(arg)->tp_name);
    }
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (n < 1 || n > 1024) {
        return PF_ERR(PyExc_ValueError, "pf.set_num_threads: expected 1 <= n <= 1024; got %ld",
                      n);
    }
    apply_threads((int)n);
    Py_RETURN_NONE;
}

static PyObject *py_get_num_threads(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(noargs))
{
    return PyLong_FromLong(num_threads);
}

static const char *simd_level(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl")) {
        return "AVX512";
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        return "AVX2";
    }
    if (__builtin_cpu_supports("avx")) {
        return "AVX";
    }
    return "SSE2";
#elif defined(__aarch64__)
    return "NEON";
#else
    return "scalar";
#endif
}

static const char *simd_baseline(void)
{
#if defined(__AVX512F__)
    return "AVX512";
#elif defined(__AVX2__)
    return "AVX2";
#elif defined(__x86_64__)
    return "SSE2";
#elif defined(__aarch64__)
    return "NEON";
#else
    return "scalar";
#endif
}

/* The facts pf.show_config() and pf.config() report. */
static PyObject *py_build_info(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(noargs))
{
    int omp_max = 1;
#ifdef _OPENMP
    omp_max = omp_get_max_threads();
    const char *omp = "yes";
#else
    const char *omp = "no";
#endif
    return Py_BuildValue(
        "{s:s,s:s,s:s,s:s,s:i,s:i,s:i,s:s,s:s,s:s,s:s,s:O}",
        "version", PYFRAME_VERSION,
        "blas", scipy_openblas_get_config(),
        "blas_core", scipy_openblas_get_corename(),
        "compiler", __VERSION__,
        "num_threads", num_threads,
        "blas_threads", scipy_openblas_get_num_threads(),
        "omp_max_threads", omp_max,
        "openmp", omp,
        "simd", simd_level(),
        "simd_baseline", simd_baseline(),
        "bf16_gemm", pf_bf16_path_names[pf_bf16_path_active()],
        "sanitize",
#ifdef PYFRAME_SANITIZE
        Py_True
#else
        Py_False
#endif
    );
}

static PyMethodDef module_methods[] = {
    {"set_num_threads", py_set_num_threads, METH_O,
     "set_num_threads(n): threads for pyframe's kernels and OpenBLAS together"},
    {"get_num_threads", py_get_num_threads, METH_NOARGS, "threads pyframe's kernels use"},
    {"memory_stats", pf_memory_stats, METH_NOARGS,
     "live tensors and bytes per device, for leak checks"},
    {"empty_cache", pf_empty_cache, METH_NOARGS,
     "return the allocator's cached small blocks to the system"},
    {"_build_info", py_build_info, METH_NOARGS, "build and runtime facts, as a dict"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT,
    .m_name = "pyframe._C",
    .m_doc = "pyframe's C core: tensors, dtypes, the NumPy/DLPack bridge, random numbers.",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__C(void)
{
    PyObject *m = PyModule_Create(&moduledef);
    if (m == NULL) {
        return NULL;
    }
    pf_ew_kernels_init();
    PyMethodDef *op_functions = pf_ops_module_methods();
    if (op_functions == NULL || pf_ops_check_kernels() < 0 ||
        PyModule_AddFunctions(m, op_functions) < 0 ||
        PyModule_AddFunctions(m, pf_ops_info_methods) < 0 ||
        pf_dtype_init(m) < 0 || pf_device_init(m) < 0 || pf_tensor_type_init(m) < 0 ||
        PyModule_AddFunctions(m, pf_create_module_methods) < 0 ||
        PyModule_AddFunctions(m, pf_transfer_module_methods) < 0 ||
        PyModule_AddFunctions(m, pf_random_module_methods) < 0 ||
        PyModule_AddFunctions(m, pf_softmax_cuda_host_methods) < 0 ||
        PyModule_AddFunctions(m, pf_layer_norm_cuda_host_methods) < 0 ||
        PyModule_AddFunctions(m, pf_nn_losses_cuda_host_methods) < 0 ||
        PyModule_AddFunctions(m, pf_bridge_module_methods) < 0 ||
        PyModule_AddFunctions(m, pf_bench_methods) < 0 ||
        PyModule_AddFunctions(m, pf_linalg_module_methods) < 0 ||
        PyModule_AddFunctions(m, pf_optim_module_methods) < 0 ||
        PyModule_AddFunctions(m, pf_autograd_module_methods) < 0 || pf_autograd_init(m) < 0 ||
        PyModule_AddFunctions(m, pf_cuda_module_methods) < 0 ||
        PyModule_AddFunctions(m, pf_gather_cuda_module_methods) < 0 ||
        PyModule_AddFunctions(m, pf_autocast_module_methods) < 0 ||
        PyModule_AddFunctions(m, pf_reduce_module_methods) < 0 ||
        PyModule_AddFunctions(m, pf_ew_cuda_module_methods) < 0 ||
        pf_caching_allocator_harness_init(m) < 0 ||
        PyModule_AddIntConstant(m, "MAX_DIMS", PF_MAX_DIMS) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    int n = 1;
#ifdef _OPENMP
    n = omp_get_max_threads();
#endif
    apply_threads(n < 1 ? 1 : n);
    return m;
}

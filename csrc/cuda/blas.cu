/*
 * blas.cu -- matrix products on a device through cuBLAS (pf_cuda_blas_load,
 * pf_cuda_gemm; pf_cuda.h).
 *
 * cuBLAS is neither linked nor included: the build machines have no cuBLAS
 * headers or libraries, and users get it from the nvidia-cublas wheel or a
 * CUDA toolkit.  So the library dlopen()s libcublas.so.13 on the first
 * product and resolves the few functions it calls by name, declared below
 * from cuBLAS's documented C API (the handle is an opaque pointer, the enums
 * plain ints with their documented values).
 *
 * The mapping.  pyframe's products are row-major-agnostic: every operand is
 * a (rows x cols) matrix with a row stride and a column stride, per batch
 * index (gemm.h).  cuBLAS is column-major: element (i, j) of its matrix X
 * lies at X[i + j * ld], or of op(X) = X^T at X[j + i * ld].  So a matrix
 * with unit row stride is cuBLAS's "N" with ld = its column stride, one with
 * unit column stride its "T" with ld = its row stride.  C must be one of the
 * two as it lies: column-major C is cuBLAS's C = A B directly; row-major C
 * is computed as the column-major C^T = B^T A^T (A and B swap places, each
 * transposed, which swaps its strides).  Batch dimensions are merged where
 * all three operands allow; the innermost merged one becomes a strided-batch
 * call (stride 0 for a broadcast operand), and any others a loop of calls.
 *
 * The same plan runs on the host (device == PF_CUDA_HOST): a reference GEMM
 * that reads its operands exactly as cuBLAS's parameters say, so the CI
 * tests (no GPU, no cuBLAS) check transposes, leading dimensions and batch
 * strides against NumPy.
 */
#include "internal.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <library_types.h>

#include <dlfcn.h>

#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>

PF_CUDA_EXPORT pf_cuda_blas_load_fn pf_cuda_blas_load;
PF_CUDA_EXPORT pf_cuda_gemm_fn pf_cuda_gemm;

/* matmul and the products built on it run in the four float dtypes (integers are refused) */
static pfc_register r_matmul(PFC_OP_MATMUL, PFC_FLOAT_DTYPES);
static pfc_register r_mm(PFC_OP_MM, PFC_FLOAT_DTYPES);
static pfc_register r_bmm(PFC_OP_BMM, PFC_FLOAT_DTYPES);
static pfc_register r_dot(PFC_OP_DOT, PFC_FLOAT_DTYPES);
static pfc_register r_tensordot(PFC_OP_TENSORDOT, PFC_FLOAT_DTYPES);
static pfc_register r_einsum(PFC_OP_EINSUM, PFC_FLOAT_DTYPES);

/* ------------------------------------------------ cuBLAS, as we call it */

/* documented values of the cuBLAS C API (cublas_api.h) */
typedef void *blas_handle;
enum { BLAS_OP_N = 0, BLAS_OP_T = 1 };
enum { BLAS_DEFAULT_MATH = 0 };
enum { BLAS_COMPUTE_32F = 68, BLAS_COMPUTE_32F_FAST_TF32 = 77, BLAS_COMPUTE_64F = 70 };
enum { BLAS_GEMM_DEFAULT = -1 };
enum { BLAS_STATUS_SUCCESS = 0, BLAS_STATUS_ALLOC_FAILED = 3 };

typedef int blas_create_fn(blas_handle *handle);
typedef int blas_destroy_fn(blas_handle handle);
typedef int blas_set_stream_fn(blas_handle handle, cudaStream_t stream);
typedef int blas_set_math_mode_fn(blas_handle handle, int mode);
typedef int blas_gemm_ex_fn(blas_handle handle, int transa, int transb, int m, int n, int k,
                            const void *alpha, const void *A, cudaDataType Atype, int lda,
                            const void *B, cudaDataType Btype, int ldb, const void *beta,
                            void *C, cudaDataType Ctype, int ldc, int compute, int algo);
typedef int blas_gemm_strided_fn(blas_handle handle, int transa, int transb, int m, int n,
                                 int k, const void *alpha, const void *A, cudaDataType Atype,
                                 int lda, long long strideA, const void *B, cudaDataType Btype,
                                 int ldb, long long strideB, const void *beta, void *C,
                                 cudaDataType Ctype, int ldc, long long strideC, int batch,
                                 int compute, int algo);
typedef const char *blas_status_string_fn(int status);
typedef int blas_get_version_fn(blas_handle handle, int *version);

static const char BLAS_SONAME[] = "libcublas.so.13";
static const char BLAS_LT_SONAME[] = "libcublasLt.so.13";

static struct {
    std::mutex lock;
    void *lib;
    char path[1024];
    blas_create_fn *create;
    blas_destroy_fn *destroy;
    blas_set_stream_fn *set_stream;
    blas_set_math_mode_fn *set_math_mode;
    blas_gemm_ex_fn *gemm_ex;
    blas_gemm_strided_fn *gemm_strided;
    blas_status_string_fn *status_string;   /* optional */
    blas_handle handles[64];                /* per device, made on its first product */
} blas;

static const char *status_name(int s)
{
    switch (s) {
    case 0: return "CUBLAS_STATUS_SUCCESS";
    case 1: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case 3: return "CUBLAS_STATUS_ALLOC_FAILED";
    case 7: return "CUBLAS_STATUS_INVALID_VALUE";
    case 8: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case 11: return "CUBLAS_STATUS_MAPPING_ERROR";
    case 13: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case 14: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case 15: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case 16: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "an unknown cuBLAS status";
    }
}

/* Records a failed cuBLAS call; out of memory stays out of memory, the rest is a library error. */
__attribute__((format(printf, 2, 3))) static int blas_fail(int status, const char *call, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, call);
    vsnprintf(what, sizeof(what), call, ap);
    va_end(ap);
    const char *text = blas.status_string != nullptr ? blas.status_string(status) : nullptr;
    snprintf(pfc_last_error, sizeof(pfc_last_error), "%s failed: %s (%d)%s%s", what,
             status_name(status), status, text != nullptr ? ": " : "",
             text != nullptr ? text : "");
    return status == BLAS_STATUS_ALLOC_FAILED ? PF_CUDA_ERROR_OUT_OF_MEMORY
                                              : PF_CUDA_ERROR_LIBRARY;
}

/* report += printf(...), truncating */
__attribute__((format(printf, 3, 4))) static void append(char *report, size_t size,
                                                         const char *fmt, ...)
{
    size_t used = strlen(report);
    if (used + 1 >= size) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(report + used, size - used, fmt, ap);
    va_end(ap);
}

/* dlopen `name` and resolve what we call; 0, or -1 with the reason appended to report */
static int try_open(const char *name, const char *lt_name, char *report, size_t size)
{
    if (lt_name != nullptr) {
        /* the wheel's libcublas finds libcublasLt beside itself only through its RPATH;
           loading it first by path makes that independent of how it was built */
        (void)dlopen(lt_name, RTLD_NOW | RTLD_LOCAL);
    }
    void *lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
        const char *e = dlerror();
        append(report, size, "\n  %s: %s", name, e != nullptr ? e : "not found");
        return -1;
    }
    struct {
        const char *sym;
        void **slot;
    } need[] = {
        {"cublasCreate_v2", (void **)&blas.create},
        {"cublasDestroy_v2", (void **)&blas.destroy},
        {"cublasSetStream_v2", (void **)&blas.set_stream},
        {"cublasSetMathMode", (void **)&blas.set_math_mode},
        {"cublasGemmEx", (void **)&blas.gemm_ex},
        {"cublasGemmStridedBatchedEx", (void **)&blas.gemm_strided},
    };
    for (auto &n : need) {
        *n.slot = dlsym(lib, n.sym);
        if (*n.slot == nullptr) {
            append(report, size, "\n  %s: loaded, but it has no %s (not a cuBLAS 13?)", name,
                   n.sym);
            dlclose(lib);
            return -1;
        }
    }
    blas.status_string = (blas_status_string_fn *)dlsym(lib, "cublasGetStatusString");
    Dl_info info;
    void *sym = (void *)blas.create;
    const char *where = dladdr(sym, &info) != 0 && info.dli_fname != nullptr ? info.dli_fname
                                                                              : name;
    snprintf(blas.path, sizeof(blas.path), "%s", where);
    blas.lib = lib;
    return 0;
}

int pf_cuda_blas_load(const char *const *dirs, int ndirs, char *report, size_t report_size)
{
    std::lock_guard<std::mutex> guard(blas.lock);
    if (report_size > 0) {
        report[0] = '\0';
    }
    if (blas.lib != nullptr) {
        append(report, report_size, "%s", blas.path);
        return 0;
    }
    char tried[3000] = "";
    if (try_open(BLAS_SONAME, nullptr, tried, sizeof(tried)) == 0) {
        append(report, report_size, "%s", blas.path);
        return 0;
    }
    for (int i = 0; i < ndirs; i++) {
        char path[1200], lt[1200];
        snprintf(path, sizeof(path), "%s/%s", dirs[i], BLAS_SONAME);
        snprintf(lt, sizeof(lt), "%s/%s", dirs[i], BLAS_LT_SONAME);
        if (try_open(path, lt, tried, sizeof(tried)) == 0) {
            append(report, report_size, "%s", blas.path);
            return 0;
        }
    }
    append(report, report_size,
           "cuBLAS (%s) was not found; tried the dynamic loader's search path and %d "
           "director%s:%s\ninstall it with `pip install nvidia-cublas` (the CUDA 13 wheel) or "
           "a CUDA 13 toolkit, whose lib64 directory pyframe also searches (set CUDA_HOME when "
           "it is not /usr/local/cuda)", BLAS_SONAME, ndirs, ndirs == 1 ? "y" : "ies", tried);
    return pfc_fail_with(PF_CUDA_ERROR_LIBRARY, report);
}

/* The handle of `device` (current), made on first use and bound to pyframe's stream. */
static int device_handle(int device, blas_handle *h)
{
    if (blas.lib == nullptr) {
        return pfc_fail_with(PF_CUDA_ERROR_LIBRARY,
                             "cuBLAS is not loaded (pf_cuda_blas_load was not called)");
    }
    if (device < 0 || device >= 64) {
        return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE, "pf_cuda_gemm: bad device index");
    }
    std::lock_guard<std::mutex> guard(blas.lock);
    if (blas.handles[device] == nullptr) {
        blas_handle made = nullptr;
        int s = blas.create(&made);
        if (s != BLAS_STATUS_SUCCESS) {
            return blas_fail(s, "cublasCreate_v2 (cuda:%d)", device);
        }
        if ((s = blas.set_math_mode(made, BLAS_DEFAULT_MATH)) != BLAS_STATUS_SUCCESS) {
            blas.destroy(made);
            return blas_fail(s, "cublasSetMathMode(CUBLAS_DEFAULT_MATH)");
        }
        blas.handles[device] = made;
    }
    int s = blas.set_stream(blas.handles[device], pfc_stream());
    if (s != BLAS_STATUS_SUCCESS) {
        return blas_fail(s, "cublasSetStream_v2");
    }
    *h = blas.handles[device];
    return 0;
}

/* ------------------------------------------------------------ the plan */

/* One cuBLAS operand: op, leading dimension, base pointer and batch strides (elements). */
struct Operand {
    int op;
    int64_t ld;
    char *data;
    int64_t bstrides[PF_CUDA_MAX_DIMS];
};

/*
 * The cuBLAS problem of a PfCudaGemm: C' (m x n, "N", ldc) = op(A') op(B')
 * over the merged batch dimensions (the last of them a strided batch).
 */
struct Plan {
    int swap;                   /* 1: A' is our B^T, B' our A^T, C' our C^T */
    int64_t m, n, k;
    Operand a, b, c;
    int nb;
    int64_t bshape[PF_CUDA_MAX_DIMS];
    int itemsize;
};

/*
 * As cuBLAS's operand op(X) of R x C (rs, cs: its row and column strides):
 * "N" when its rows are unit-strided (ld = cs), "T" when its columns are
 * (ld = rs); a size-1 dimension's stride does not matter.  ld must be at
 * least the stored matrix's row count.  0 when neither way works.
 */
static int pick_op(int64_t R, int64_t C, int64_t rs, int64_t cs, int *op, int64_t *ld)
{
    int64_t rmin = R > 1 ? R : 1, cmin = C > 1 ? C : 1;
    if (R == 1 || rs == 1) {
        int64_t l = C == 1 ? rmin : cs;
        if (l >= rmin) {
            *op = BLAS_OP_N;
            *ld = l;
            return 1;
        }
    }
    if (C == 1 || cs == 1) {
        int64_t l = R == 1 ? cmin : rs;
        if (l >= cmin) {
            *op = BLAS_OP_T;
            *ld = l;
            return 1;
        }
    }
    return 0;
}

static int itemsize_of(int dtype)
{
    return dtype == PF_CUDA_FLOAT64 ? 8 : dtype == PF_CUDA_FLOAT32 ? 4 : 2;
}

static int make_plan(const PfCudaGemm *g, Plan *p)
{
    char msg[300];
    memset(p, 0, sizeof(*p));
    if (g->dtype != PF_CUDA_FLOAT16 && g->dtype != PF_CUDA_BFLOAT16 &&
        g->dtype != PF_CUDA_FLOAT32 && g->dtype != PF_CUDA_FLOAT64) {
        snprintf(msg, sizeof(msg), "pf_cuda_gemm: dtype %d; cuBLAS products here run in "
                 "float16, bfloat16, float32 or float64", g->dtype);
        return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE, msg);
    }
    if (g->nb < 0 || g->nb > PF_CUDA_MAX_DIMS || g->m < 0 || g->n < 0 || g->k < 0 ||
        g->m > INT32_MAX || g->n > INT32_MAX || g->k > INT32_MAX) {
        snprintf(msg, sizeof(msg), "pf_cuda_gemm: a bad problem (%d batch dims, m %lld, n "
                 "%lld, k %lld; cuBLAS takes sizes up to 2^31 - 1)", g->nb, (long long)g->m,
                 (long long)g->n, (long long)g->k);
        return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE, msg);
    }
    p->itemsize = itemsize_of(g->dtype);
    const PfCudaGemmMat *A = &g->a, *B = &g->b, *C = &g->c;
    int op = 0;
    int64_t ld = 0;
    /* C as it lies: column-major is C = A B; row-major is C^T = B^T A^T */
    if (pick_op(g->m, g->n, C->rs, C->cs, &op, &ld) && op == BLAS_OP_N) {
        p->swap = 0;
        p->m = g->m;
        p->n = g->n;
        p->c.ld = ld;
    }
    else if (pick_op(g->n, g->m, C->cs, C->rs, &op, &ld) && op == BLAS_OP_N) {
        p->swap = 1;
        p->m = g->n;
        p->n = g->m;
        p->c.ld = ld;
    }
    else {
        snprintf(msg, sizeof(msg), "pf_cuda_gemm: the result (%lld x %lld, strides %lld, %lld) "
                 "has neither contiguous rows nor contiguous columns", (long long)g->m,
                 (long long)g->n, (long long)C->rs, (long long)C->cs);
        return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE, msg);
    }
    p->k = g->k;
    p->c.op = BLAS_OP_N;
    p->c.data = (char *)C->data;
    /* A' and B' with their shapes and strides as cuBLAS's op(A') (m x k), op(B') (k x n) */
    const PfCudaGemmMat *xa = p->swap ? B : A, *xb = p->swap ? A : B;
    int64_t ars = p->swap ? B->cs : A->rs, acs = p->swap ? B->rs : A->cs;
    int64_t brs = p->swap ? A->cs : B->rs, bcs = p->swap ? A->rs : B->cs;
    int ok = 1;
    if (p->k > 0 && p->m > 0 && p->n > 0) {
        ok = pick_op(p->m, p->k, ars, acs, &p->a.op, &p->a.ld) &&
             pick_op(p->k, p->n, brs, bcs, &p->b.op, &p->b.ld);
    }
    if (!ok) {
        snprintf(msg, sizeof(msg), "pf_cuda_gemm: an operand has neither contiguous rows nor "
                 "contiguous columns (a: strides %lld, %lld; b: %lld, %lld)", (long long)A->rs,
                 (long long)A->cs, (long long)B->rs, (long long)B->cs);
        return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE, msg);
    }
    if (p->a.ld > INT32_MAX || p->b.ld > INT32_MAX || p->c.ld > INT32_MAX) {
        return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE,
                             "pf_cuda_gemm: a leading dimension exceeds 2^31 - 1");
    }
    p->a.data = (char *)xa->data;
    p->b.data = (char *)xb->data;
    /* batch dimensions: size-1 ones dropped, neighbours merged where all three allow */
    for (int d = 0; d < g->nb; d++) {
        int64_t sz = g->bshape[d];
        if (sz == 1) {
            continue;
        }
        int q = p->nb;
        if (q > 0 && p->a.bstrides[q - 1] == xa->bstrides[d] * sz &&
            p->b.bstrides[q - 1] == xb->bstrides[d] * sz &&
            p->c.bstrides[q - 1] == C->bstrides[d] * sz) {
            p->bshape[q - 1] *= sz;
            p->a.bstrides[q - 1] = xa->bstrides[d];
            p->b.bstrides[q - 1] = xb->bstrides[d];
            p->c.bstrides[q - 1] = C->bstrides[d];
            continue;
        }
        p->bshape[q] = sz;
        p->a.bstrides[q] = xa->bstrides[d];
        p->b.bstrides[q] = xb->bstrides[d];
        p->c.bstrides[q] = C->bstrides[d];
        p->nb++;
    }
    if (p->nb > 0 && p->bshape[p->nb - 1] > INT32_MAX) {
        return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE,
                             "pf_cuda_gemm: more than 2^31 - 1 products in one batch");
    }
    return 0;
}

/* number of strided-batch calls (the outer batch dims), and the batch count of each */
static int64_t outer_calls(const Plan &p)
{
    int64_t n = 1;
    for (int d = 0; d + 1 < p.nb; d++) {
        n *= p.bshape[d];
    }
    return n;
}

static int64_t inner_batch(const Plan &p) { return p.nb > 0 ? p.bshape[p.nb - 1] : 1; }

/* element offsets of outer call `o` in A', B', C' */
static void outer_offsets(const Plan &p, int64_t o, int64_t *oa, int64_t *ob, int64_t *oc)
{
    *oa = *ob = *oc = 0;
    for (int d = p.nb - 2; d >= 0; d--) {
        int64_t i = o % p.bshape[d];
        o /= p.bshape[d];
        *oa += i * p.a.bstrides[d];
        *ob += i * p.b.bstrides[d];
        *oc += i * p.c.bstrides[d];
    }
}

static int64_t inner_stride(const Operand &x, const Plan &p)
{
    return p.nb > 0 ? x.bstrides[p.nb - 1] : 0;
}

/* ------------------------------------------------ the host reference */

template <typename T> static inline double to_double(T v) { return (double)v; }
template <> inline double to_double<__half>(__half v) { return (double)__half2float(v); }
template <> inline double to_double<__nv_bfloat16>(__nv_bfloat16 v)
{
    return (double)__bfloat162float(v);
}
template <typename T> static inline T from_acc(double v) { return (T)v; }
template <> inline __half from_acc<__half>(double v) { return __float2half_rn((float)v); }
template <> inline __nv_bfloat16 from_acc<__nv_bfloat16>(double v)
{
    return __float2bfloat16_rn((float)v);
}

/* element (i, j) of op(X) for a column-major X with leading dimension ld */
template <typename T> static inline T op_at(const T *x, int op, int64_t ld, int64_t i, int64_t j)
{
    return op == BLAS_OP_N ? x[i + j * ld] : x[j + i * ld];
}

/*
 * cuBLAS's C' = op(A') op(B') for every batch index, read exactly as its
 * parameters say.  Accumulates in Acc: float for the float16, bfloat16 and
 * float32 products (cuBLAS's CUBLAS_COMPUTE_32F), double for float64.
 */
template <typename T, typename Acc> static void host_gemm(const Plan &p)
{
    int64_t calls = outer_calls(p), batch = inner_batch(p);
    for (int64_t o = 0; o < calls; o++) {
        int64_t oa, ob, oc;
        outer_offsets(p, o, &oa, &ob, &oc);
        for (int64_t b = 0; b < batch; b++) {
            const T *A = (const T *)p.a.data + oa + b * inner_stride(p.a, p);
            const T *B = (const T *)p.b.data + ob + b * inner_stride(p.b, p);
            T *C = (T *)p.c.data + oc + b * inner_stride(p.c, p);
            for (int64_t j = 0; j < p.n; j++) {
                for (int64_t i = 0; i < p.m; i++) {
                    Acc acc = 0;
                    for (int64_t l = 0; l < p.k; l++) {
                        acc += (Acc)to_double(op_at(A, p.a.op, p.a.ld, i, l)) *
                               (Acc)to_double(op_at(B, p.b.op, p.b.ld, l, j));
                    }
                    C[i + j * p.c.ld] = from_acc<T>((double)acc);
                }
            }
        }
    }
}

/* ------------------------------------------------------------ on a device */

/* C' = 0 where k == 0 (cuBLAS is not asked to multiply by an empty sum) */
template <typename T>
__global__ void zero_kernel(T *c, int64_t m, int64_t n, int64_t ldc, int64_t batch,
                            int64_t stride)
{
    int64_t total = m * n * batch, step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += step) {
        int64_t i = t % m, j = (t / m) % n, b = t / (m * n);
        c[b * stride + i + j * ldc] = T();
    }
}

static cudaDataType data_type(int dtype)
{
    switch (dtype) {
    case PF_CUDA_FLOAT16: return CUDA_R_16F;
    case PF_CUDA_BFLOAT16: return CUDA_R_16BF;
    case PF_CUDA_FLOAT64: return CUDA_R_64F;
    default: return CUDA_R_32F;
    }
}

static int device_gemm(int device, const PfCudaGemm *g, const Plan &p)
{
    blas_handle h = nullptr;
    int status = device_handle(device, &h);
    if (status != 0) {
        return status;
    }
    int64_t calls = outer_calls(p), batch = inner_batch(p);
    cudaDataType t = data_type(g->dtype);
    int compute = g->dtype == PF_CUDA_FLOAT64                        ? BLAS_COMPUTE_64F
                  : g->dtype == PF_CUDA_FLOAT32 && g->allow_tf32 != 0 ? BLAS_COMPUTE_32F_FAST_TF32
                                                                      : BLAS_COMPUTE_32F;
    const float one_f = 1.0f, zero_f = 0.0f;
    const double one_d = 1.0, zero_d = 0.0;
    const void *alpha = compute == BLAS_COMPUTE_64F ? (const void *)&one_d : (const void *)&one_f;
    const void *beta = compute == BLAS_COMPUTE_64F ? (const void *)&zero_d : (const void *)&zero_f;
    int isz = p.itemsize;
    for (int64_t o = 0; o < calls; o++) {
        int64_t oa, ob, oc;
        outer_offsets(p, o, &oa, &ob, &oc);
        char *C = p.c.data + oc * isz;
        if (p.k == 0) {
            int64_t total = p.m * p.n * batch;
            unsigned blocks = (unsigned)((total + 255) / 256 < 65535 ? (total + 255) / 256 : 65535);
            if (isz == 8) {
                zero_kernel<<<blocks, 256, 0, pfc_stream()>>>((double *)C, p.m, p.n, p.c.ld,
                                                              batch, inner_stride(p.c, p));
            }
            else if (isz == 4) {
                zero_kernel<<<blocks, 256, 0, pfc_stream()>>>((float *)C, p.m, p.n, p.c.ld,
                                                              batch, inner_stride(p.c, p));
            }
            else {
                zero_kernel<<<blocks, 256, 0, pfc_stream()>>>((uint16_t *)C, p.m, p.n, p.c.ld,
                                                              batch, inner_stride(p.c, p));
            }
            cudaError_t err = cudaGetLastError();
            if (err != cudaSuccess) {
                return pfc_fail(err, "zero_kernel launch on cuda:%d", device);
            }
            continue;
        }
        const char *A = p.a.data + oa * isz, *B = p.b.data + ob * isz;
        int s;
        if (batch == 1) {
            s = blas.gemm_ex(h, p.a.op, p.b.op, (int)p.m, (int)p.n, (int)p.k, alpha, A, t,
                             (int)p.a.ld, B, t, (int)p.b.ld, beta, C, t, (int)p.c.ld, compute,
                             BLAS_GEMM_DEFAULT);
            if (s != BLAS_STATUS_SUCCESS) {
                return blas_fail(s, "cublasGemmEx(%c%c, m=%lld, n=%lld, k=%lld, lda=%lld, "
                                 "ldb=%lld, ldc=%lld, cuda:%d)", p.a.op ? 'T' : 'N',
                                 p.b.op ? 'T' : 'N', (long long)p.m, (long long)p.n,
                                 (long long)p.k, (long long)p.a.ld, (long long)p.b.ld,
                                 (long long)p.c.ld, device);
            }
            continue;
        }
        s = blas.gemm_strided(h, p.a.op, p.b.op, (int)p.m, (int)p.n, (int)p.k, alpha, A, t,
                              (int)p.a.ld, inner_stride(p.a, p), B, t, (int)p.b.ld,
                              inner_stride(p.b, p), beta, C, t, (int)p.c.ld,
                              inner_stride(p.c, p), (int)batch, compute, BLAS_GEMM_DEFAULT);
        if (s != BLAS_STATUS_SUCCESS) {
            return blas_fail(s, "cublasGemmStridedBatchedEx(%c%c, m=%lld, n=%lld, k=%lld, "
                             "batch=%lld, strides %lld/%lld/%lld, cuda:%d)",
                             p.a.op ? 'T' : 'N', p.b.op ? 'T' : 'N', (long long)p.m,
                             (long long)p.n, (long long)p.k, (long long)batch,
                             (long long)inner_stride(p.a, p), (long long)inner_stride(p.b, p),
                             (long long)inner_stride(p.c, p), device);
        }
    }
    return 0;
}

int pf_cuda_gemm(int device, const PfCudaGemm *g)
{
    /* nothing to write: the caller describes no operand of an empty product */
    int64_t outputs = g->m * g->n;
    for (int d = 0; d < g->nb && d < PF_CUDA_MAX_DIMS; d++) {
        outputs *= g->bshape[d];
    }
    if (outputs == 0) {
        return 0;
    }
    Plan p;
    int status = make_plan(g, &p);
    if (status != 0) {
        return status;
    }
    if (device == PF_CUDA_HOST) {
        switch (g->dtype) {
        case PF_CUDA_FLOAT16: host_gemm<__half, float>(p); break;
        case PF_CUDA_BFLOAT16: host_gemm<__nv_bfloat16, float>(p); break;
        case PF_CUDA_FLOAT32: host_gemm<float, float>(p); break;
        default: host_gemm<double, double>(p); break;
        }
        return 0;
    }
    return pfc_on_device(device, [&] { return device_gemm(device, g, p); });
}

/*
 * elementwise.cu -- the elementwise ops of the op table (every row of
 * csrc/ops.def whose kind is not CUSTOM) and the dtype cast, on a device,
 * and the same code over host buffers for the host self-test (pf_cuda.h).
 *
 * One kernel per (op, dtype): a grid-stride loop over the output elements,
 * each thread turning its flat index into one offset per operand (a single
 * multiply when pyframe._C has merged the geometry into one dimension, the
 * common contiguous case; else the coordinates peeled off the shape,
 * innermost first) and calling the op's element function (ew_ops.cuh).
 * pf_cuda_ew_host calls the very same element function in a plain loop.
 *
 * Every operand is already in the dtype the kernel reads or writes:
 * pyframe._C converts mixed dtypes first with the cast kernel here (on the
 * device), so one instantiation per (op, dtype) covers every combination.
 * float16 and bfloat16 are read and written as such and computed in
 * float32, as the cpu backend computes them.
 */
#include "ew_ops.cuh"

#include <cstdio>

PF_CUDA_EXPORT pf_cuda_ew_fn pf_cuda_ew;
PF_CUDA_EXPORT pf_cuda_ew_host_fn pf_cuda_ew_host;
PF_CUDA_EXPORT pf_cuda_cast_strided_fn pf_cuda_cast_strided;
PF_CUDA_EXPORT pf_cuda_cast_host_fn pf_cuda_cast_host;

/* ------------------------------------------------------------ the op table */

enum pfc_kind {
    PFC_K_UFLOAT, PFC_K_USAME, PFC_K_UPRED, PFC_K_ULOGICAL, PFC_K_UBITWISE, PFC_K_BARITH,
    PFC_K_BFLOAT, PFC_K_COMPARE, PFC_K_LOGICAL, PFC_K_BITWISE, PFC_K_WHERE, PFC_K_CUSTOM
};

/* an op's kind, on either side (a function: a host array is not visible to device code) */
__host__ __device__ static constexpr int pfc_kind(int op)
{
    switch (op) {
#define PF_OP(E, py, K, N, F) case PFC_OP_##E: return PFC_K_##K;
#include "../ops.def"
#undef PF_OP
    default: return PFC_K_CUSTOM;
    }
}

static const char *const pfc_op_names[PFC_OP_COUNT] = {
#define PF_OP(E, py, K, N, F) #py,
#include "../ops.def"
#undef PF_OP
};

__host__ __device__ static constexpr int pfc_nin_of(int op)
{
    return pfc_kind(op) == PFC_K_WHERE ? 3
           : pfc_kind(op) <= PFC_K_UBITWISE ? 1
                                                : 2;
}

/* kinds whose result is bool whatever the inputs' dtype */
__host__ __device__ static constexpr bool pfc_bool_result(int op)
{
    return pfc_kind(op) == PFC_K_UPRED || pfc_kind(op) == PFC_K_ULOGICAL ||
           pfc_kind(op) == PFC_K_COMPARE || pfc_kind(op) == PFC_K_LOGICAL;
}

/* ------------------------------------------------------------ one element */

/* What a kernel receives by value (about 450 bytes of parameter space). */
struct pfc_ew_args {
    PfCudaEw g;
    char *data[PF_CUDA_EW_MAX_OPERANDS];
};

/* The element offsets of flat index i in each of the first NOP operands. */
template <int NOP> PFC_HD void pfc_offsets(const PfCudaEw &g, int64_t i, int64_t *off)
{
    if (g.ndim == 1) {
        for (int k = 0; k < NOP; k++) {
            off[k] = i * g.strides[k][0];
        }
        return;
    }
    for (int k = 0; k < NOP; k++) {
        off[k] = 0;
    }
    for (int d = g.ndim - 1; d >= 0; d--) {
        int64_t size = g.shape[d];
        int64_t c = i % size;
        i /= size;
        for (int k = 0; k < NOP; k++) {
            off[k] += c * g.strides[k][d];
        }
    }
}

/* Input k of dtype D at element offset off (or its scalar). */
template <int D> PFC_HD typename pfc_dt<D>::S pfc_in(const pfc_ew_args &a, int k, int64_t off)
{
    using S = typename pfc_dt<D>::S;
    if ((a.g.scalar_mask >> k) & 1u) {
        S s;
        memcpy((void *)&s, &a.g.scalars[k], sizeof(S));   /* bits, in the dtype of input k */
        return s;
    }
    return ((const S *)a.data[k])[off];
}

/* Output element i of op OP in dtype D (for where: the storage of D's item size). */
template <int OP, int D> PFC_HD void pfc_ew_element(const pfc_ew_args &a, int64_t i)
{
    using S = typename pfc_dt<D>::S;
    using C = typename pfc_dt<D>::C;
    constexpr int nin = pfc_nin_of(OP);
    int64_t off[nin + 1];
    pfc_offsets<nin + 1>(a.g, i, off);
    if constexpr (pfc_kind(OP) == PFC_K_WHERE) {
        uint8_t c = pfc_in<PF_CUDA_BOOL>(a, 0, off[0]);
        ((S *)a.data[3])[off[3]] = c ? pfc_in<D>(a, 1, off[1]) : pfc_in<D>(a, 2, off[2]);
    }
    else {
        C v = pfc_load<D>(pfc_in<D>(a, 0, off[0]));
        auto r = [&] {
            if constexpr (nin == 1) {
                return pfc_unary<OP, D>(v, a.g.params);
            }
            else {
                return pfc_binary<OP, D>(v, pfc_load<D>(pfc_in<D>(a, 1, off[1])));
            }
        }();
        if constexpr (pfc_bool_result(OP)) {
            ((uint8_t *)a.data[nin])[off[nin]] = (uint8_t)(r ? 1 : 0);
        }
        else {
            ((S *)a.data[nin])[off[nin]] = pfc_store<D>((C)r);
        }
    }
}

/* out (g.shape) = op(inputs); n = prod(g.shape) */
template <int OP, int D> __global__ void __launch_bounds__(256) pfc_ew_kernel(pfc_ew_args a,
                                                                              int64_t n)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
        pfc_ew_element<OP, D>(a, i);
    }
}

static const int THREADS = 256;
/* enough blocks to fill any current GPU several times over; the loop covers the rest */
static const int64_t MAX_BLOCKS = 65535;

static unsigned blocks_for(int64_t n)
{
    int64_t b = (n + THREADS - 1) / THREADS;
    return (unsigned)(b < MAX_BLOCKS ? b : MAX_BLOCKS);
}

template <int OP, int D> static void pfc_ew_launch(const pfc_ew_args &a, int64_t n)
{
    pfc_ew_kernel<OP, D><<<blocks_for(n), THREADS, 0, pfc_stream()>>>(a, n);
}

template <int OP, int D> static void pfc_ew_host_run(const pfc_ew_args &a, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        pfc_ew_element<OP, D>(a, i);
    }
}

/* ------------------------------------------------------------ the kernel table */

typedef void (*pfc_ew_run)(const pfc_ew_args &a, int64_t n);
struct pfc_ew_entry {
    pfc_ew_run launch;
    pfc_ew_run host;
};

/* [op][dtype]; where's row is indexed by the dtype of each item size */
static pfc_ew_entry ew_table[PFC_OP_COUNT][PF_CUDA_NDTYPES];

template <int OP, int... Ds> struct pfc_ew_reg {
    pfc_ew_reg()
    {
        ((ew_table[OP][Ds] = pfc_ew_entry{pfc_ew_launch<OP, Ds>, pfc_ew_host_run<OP, Ds>}), ...);
        if constexpr (pfc_kind(OP) != PFC_K_WHERE) {
            pfc_kernel_table[OP] |= (PFC_DTYPE_BIT(Ds) | ...);
        }
    }
};

#define FLOATS PF_CUDA_FLOAT16, PF_CUDA_BFLOAT16, PF_CUDA_FLOAT32, PF_CUDA_FLOAT64
#define INTS PF_CUDA_UINT8, PF_CUDA_INT8, PF_CUDA_INT16, PF_CUDA_INT32, PF_CUDA_INT64
#define REG(OP, ...) static pfc_ew_reg<PFC_OP_##OP, __VA_ARGS__> reg_##OP;

/* unary, float result (integer inputs arrive converted to float32) */
REG(EXP, FLOATS) REG(EXP2, FLOATS) REG(LOG, FLOATS) REG(LOG2, FLOATS) REG(LOG10, FLOATS)
REG(LOG1P, FLOATS) REG(EXPM1, FLOATS) REG(SQRT, FLOATS) REG(RSQRT, FLOATS)
REG(RECIPROCAL, FLOATS) REG(SIN, FLOATS) REG(COS, FLOATS) REG(TAN, FLOATS) REG(ASIN, FLOATS)
REG(ACOS, FLOATS) REG(ATAN, FLOATS) REG(SINH, FLOATS) REG(COSH, FLOATS) REG(TANH, FLOATS)
REG(SIGMOID, FLOATS) REG(SILU, FLOATS) REG(GELU, FLOATS) REG(ELU, FLOATS) REG(SELU, FLOATS)
REG(SOFTPLUS, FLOATS) REG(LEAKY_RELU, FLOATS) REG(ERF, FLOATS)

/* unary, same dtype (bool inputs compute as uint8, as on the cpu) */
REG(NEG, FLOATS, INTS) REG(ABS, FLOATS, INTS) REG(SIGN, FLOATS, INTS) REG(SQUARE, FLOATS, INTS)
REG(FLOOR, FLOATS, INTS) REG(CEIL, FLOATS, INTS) REG(ROUND, FLOATS, INTS)
REG(TRUNC, FLOATS, INTS) REG(RELU, FLOATS, INTS) REG(RELU6, FLOATS, INTS)
REG(CLIP, FLOATS, INTS)

/* predicates (integer inputs arrive as float32), logical and bitwise not */
REG(ISNAN, FLOATS) REG(ISINF, FLOATS) REG(ISFINITE, FLOATS)
REG(LOGICAL_NOT, PF_CUDA_BOOL) REG(BITWISE_NOT, INTS, PF_CUDA_BOOL)

/* binary arithmetic; bool only where it is logic */
REG(ADD, FLOATS, INTS, PF_CUDA_BOOL) REG(SUB, FLOATS, INTS) REG(MUL, FLOATS, INTS, PF_CUDA_BOOL)
REG(FLOOR_DIVIDE, FLOATS, INTS) REG(REMAINDER, FLOATS, INTS) REG(POW, FLOATS, INTS)
REG(MAXIMUM, FLOATS, INTS, PF_CUDA_BOOL) REG(MINIMUM, FLOATS, INTS, PF_CUDA_BOOL)
REG(DIV, FLOATS) REG(ATAN2, FLOATS)

/* comparisons, logical (operands converted to bool), bitwise */
REG(EQ, FLOATS, INTS, PF_CUDA_BOOL) REG(NE, FLOATS, INTS, PF_CUDA_BOOL)
REG(LT, FLOATS, INTS, PF_CUDA_BOOL) REG(LE, FLOATS, INTS, PF_CUDA_BOOL)
REG(GT, FLOATS, INTS, PF_CUDA_BOOL) REG(GE, FLOATS, INTS, PF_CUDA_BOOL)
REG(LOGICAL_AND, PF_CUDA_BOOL) REG(LOGICAL_OR, PF_CUDA_BOOL) REG(LOGICAL_XOR, PF_CUDA_BOOL)
REG(BITWISE_AND, INTS, PF_CUDA_BOOL) REG(BITWISE_OR, INTS, PF_CUDA_BOOL)
REG(BITWISE_XOR, INTS, PF_CUDA_BOOL)

/* where moves bits: one kernel per item size serves every dtype */
REG(WHERE, PF_CUDA_UINT8, PF_CUDA_INT16, PF_CUDA_INT32, PF_CUDA_INT64)
static pfc_register reg_where_dtypes(PFC_OP_WHERE, (1u << PF_CUDA_NDTYPES) - 1u);

/*
 * Ops of the op table that run on a device without kernels of their own:
 * isclose is built from the elementwise ops above; the joins, tiles, rolls
 * and pads are the strided copy kernel (copy.cu) or the cast kernel below
 * over views of their output (shape_ops.c); flip, split, chunk and
 * moveaxis make views; tril and triu are a where.  Every dtype.
 */
#define ALL_DTYPES ((1u << PF_CUDA_NDTYPES) - 1u)
static pfc_register reg_isclose(PFC_OP_ISCLOSE, ALL_DTYPES);
static pfc_register reg_concatenate(PFC_OP_CONCATENATE, ALL_DTYPES);
static pfc_register reg_stack(PFC_OP_STACK, ALL_DTYPES);
static pfc_register reg_split(PFC_OP_SPLIT, ALL_DTYPES);
static pfc_register reg_chunk(PFC_OP_CHUNK, ALL_DTYPES);
static pfc_register reg_tile(PFC_OP_TILE, ALL_DTYPES);
static pfc_register reg_flip(PFC_OP_FLIP, ALL_DTYPES);
static pfc_register reg_roll(PFC_OP_ROLL, ALL_DTYPES);
static pfc_register reg_pad(PFC_OP_PAD, ALL_DTYPES);
static pfc_register reg_moveaxis(PFC_OP_MOVEAXIS, ALL_DTYPES);
/* tril, triu: where(col - row <= k, x, 0), elementwise kernels */
static pfc_register reg_tril(PFC_OP_TRIL, ALL_DTYPES);
static pfc_register reg_triu(PFC_OP_TRIU, ALL_DTYPES);
#undef ALL_DTYPES

#undef REG
#undef INTS
#undef FLOATS

/* bytes per element of each dtype, on either side */
PFC_HD int pfc_itemsize(int d)
{
    return d <= PF_CUDA_INT8 ? 1 : d == PF_CUDA_INT16 || d == PF_CUDA_FLOAT16 ||
                                   d == PF_CUDA_BFLOAT16 ? 2
                                   : d == PF_CUDA_INT32 || d == PF_CUDA_FLOAT32 ? 4 : 8;
}

/*
 * Checks what the kernels rely on and finds the op's kernel; sets *n to
 * the element count.  where's kernels are looked up by item size.
 */
static int ew_check(const char *what, void *const *data, const PfCudaEw *g,
                    const pfc_ew_entry **entry, int64_t *n)
{
    char msg[240];
    if (g->op < 0 || g->op >= PFC_OP_COUNT || pfc_kind(g->op) == PFC_K_CUSTOM) {
        snprintf(msg, sizeof(msg), "%s: op %d is not an elementwise op of the op table", what,
                 g->op);
        return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE, msg);
    }
    const char *name = pfc_op_names[g->op];
    if (g->dtype < 0 || g->dtype >= PF_CUDA_NDTYPES) {
        snprintf(msg, sizeof(msg), "%s: %s: dtype %d is not a pyframe dtype", what, name,
                 g->dtype);
        return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE, msg);
    }
    int nin = pfc_nin_of(g->op);
    if (g->nin != nin || g->ndim < 1 || g->ndim > PF_CUDA_MAX_DIMS) {
        snprintf(msg, sizeof(msg), "%s: %s: %d inputs over %d dimensions; expected %d inputs "
                 "over 1 to %d", what, name, g->nin, g->ndim, nin, PF_CUDA_MAX_DIMS);
        return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE, msg);
    }
    int d = g->dtype;
    if (pfc_kind(g->op) == PFC_K_WHERE) {
        static const int by_size[9] = {0, PF_CUDA_UINT8, PF_CUDA_INT16, 0, PF_CUDA_INT32,
                                       0, 0, 0, PF_CUDA_INT64};
        d = by_size[pfc_itemsize(d)];
    }
    if (ew_table[g->op][d].launch == nullptr) {
        snprintf(msg, sizeof(msg), "%s: %s has no kernel for dtype %d", what, name, g->dtype);
        return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE, msg);
    }
    int64_t count = 1;
    for (int k = 0; k < g->ndim; k++) {
        if (g->shape[k] < 0) {
            snprintf(msg, sizeof(msg), "%s: %s: negative size %lld in dimension %d", what, name,
                     (long long)g->shape[k], k);
            return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE, msg);
        }
        count *= g->shape[k];
    }
    for (int k = 0; k <= nin && count > 0; k++) {
        if (k < nin && ((g->scalar_mask >> k) & 1u)) {
            continue;
        }
        if (data[k] == nullptr) {
            snprintf(msg, sizeof(msg), "%s: %s: operand %d has no data", what, name, k);
            return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE, msg);
        }
    }
    *entry = &ew_table[g->op][d];
    *n = count;
    return 0;
}

static pfc_ew_args ew_args(void *const *data, const PfCudaEw *g)
{
    pfc_ew_args a;
    a.g = *g;
    int nin = g->nin;
    for (int k = 0; k < PF_CUDA_EW_MAX_OPERANDS; k++) {
        a.data[k] = k <= nin && data[k] != nullptr ? (char *)data[k] : nullptr;
    }
    return a;
}

int pf_cuda_ew(int device, void *const *data, const PfCudaEw *g)
{
    const pfc_ew_entry *e = nullptr;
    int64_t n = 0;
    int status = ew_check("pf_cuda_ew", data, g, &e, &n);
    if (status != 0 || n == 0) {
        return status;
    }
    pfc_ew_args a = ew_args(data, g);
    return pfc_on_device(device, [&] {
        e->launch(a, n);
        cudaError_t err = cudaGetLastError();
        if (err != cudaSuccess) {
            return pfc_fail(err, "%s kernel launch (dtype %d, %lld elements, cuda:%d)",
                            pfc_op_names[g->op], g->dtype, (long long)n, device);
        }
        return 0;
    });
}

int pf_cuda_ew_host(void *const *data, const PfCudaEw *g)
{
    const pfc_ew_entry *e = nullptr;
    int64_t n = 0;
    int status = ew_check("pf_cuda_ew_host", data, g, &e, &n);
    if (status != 0 || n == 0) {
        return status;
    }
    e->host(ew_args(data, g), n);
    return 0;
}

/* ------------------------------------------------------------ the cast */

/* The element at p of dtype sd, converted to DD (sd is the same for every thread). */
template <int DD> PFC_HD typename pfc_dt<DD>::S pfc_convert_from(int sd, const char *p)
{
#define PFC_FROM(SD)                                                                         \
    case SD: return pfc_convert<SD, DD>(*(const typename pfc_dt<SD>::S *)p);
    switch (sd) {
        PFC_FROM(PF_CUDA_BOOL) PFC_FROM(PF_CUDA_UINT8) PFC_FROM(PF_CUDA_INT8)
        PFC_FROM(PF_CUDA_INT16) PFC_FROM(PF_CUDA_INT32) PFC_FROM(PF_CUDA_INT64)
        PFC_FROM(PF_CUDA_FLOAT16) PFC_FROM(PF_CUDA_BFLOAT16) PFC_FROM(PF_CUDA_FLOAT32)
        default: return pfc_convert<PF_CUDA_FLOAT64, DD>(*(const double *)p);
    }
#undef PFC_FROM
}

/* dst (g.shape, g.dst_strides) of dtype DD = src (g.shape, g.src_strides) of dtype sd */
template <int DD> PFC_HD void pfc_cast_element(void *dst, const void *src, int sd,
                                               const PfCudaStrided &g, int64_t i)
{
    int64_t d = 0, s = 0;
    for (int k = g.ndim - 1; k >= 0; k--) {
        int64_t size = g.shape[k];
        int64_t c = i % size;
        i /= size;
        d += c * g.dst_strides[k];
        s += c * g.src_strides[k];
    }
    ((typename pfc_dt<DD>::S *)dst)[d] =
        pfc_convert_from<DD>(sd, (const char *)src + s * pfc_itemsize(sd));
}

template <int DD> __global__ void __launch_bounds__(256)
    pfc_cast_kernel(void *dst, const void *src, int sd, PfCudaStrided g, int64_t n)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
        pfc_cast_element<DD>(dst, src, sd, g, i);
    }
}

typedef void (*pfc_cast_run)(void *dst, const void *src, int sd, const PfCudaStrided &g,
                             int64_t n);
struct pfc_cast_entry {
    pfc_cast_run launch;
    pfc_cast_run host;
};

template <int DD> static void pfc_cast_launch(void *dst, const void *src, int sd,
                                              const PfCudaStrided &g, int64_t n)
{
    pfc_cast_kernel<DD><<<blocks_for(n), THREADS, 0, pfc_stream()>>>(dst, src, sd, g, n);
}

template <int DD> static void pfc_cast_host_run(void *dst, const void *src, int sd,
                                                const PfCudaStrided &g, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        pfc_cast_element<DD>(dst, src, sd, g, i);
    }
}

#define PFC_CAST_ENTRY(DD) {pfc_cast_launch<DD>, pfc_cast_host_run<DD>}
/* by destination dtype */
static const pfc_cast_entry cast_table[PF_CUDA_NDTYPES] = {
    PFC_CAST_ENTRY(PF_CUDA_BOOL), PFC_CAST_ENTRY(PF_CUDA_UINT8), PFC_CAST_ENTRY(PF_CUDA_INT8),
    PFC_CAST_ENTRY(PF_CUDA_INT16), PFC_CAST_ENTRY(PF_CUDA_INT32), PFC_CAST_ENTRY(PF_CUDA_INT64),
    PFC_CAST_ENTRY(PF_CUDA_FLOAT16), PFC_CAST_ENTRY(PF_CUDA_BFLOAT16),
    PFC_CAST_ENTRY(PF_CUDA_FLOAT32), PFC_CAST_ENTRY(PF_CUDA_FLOAT64),
};
#undef PFC_CAST_ENTRY

static int cast_check(const char *what, const void *dst, int dst_dtype, const void *src,
                      int src_dtype, const PfCudaStrided *g, int64_t *n)
{
    char msg[200];
    if (dst_dtype < 0 || dst_dtype >= PF_CUDA_NDTYPES || src_dtype < 0 ||
        src_dtype >= PF_CUDA_NDTYPES) {
        snprintf(msg, sizeof(msg), "%s: dtypes %d -> %d; expected pyframe dtypes 0 to %d", what,
                 src_dtype, dst_dtype, PF_CUDA_NDTYPES - 1);
        return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE, msg);
    }
    if (g->ndim < 0 || g->ndim > PF_CUDA_MAX_DIMS) {
        snprintf(msg, sizeof(msg), "%s: %d dimensions; at most %d", what, g->ndim,
                 PF_CUDA_MAX_DIMS);
        return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE, msg);
    }
    int64_t count = 1;
    for (int k = 0; k < g->ndim; k++) {
        if (g->shape[k] < 0) {
            snprintf(msg, sizeof(msg), "%s: negative size %lld in dimension %d", what,
                     (long long)g->shape[k], k);
            return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE, msg);
        }
        count *= g->shape[k];
    }
    if (count > 0 && (dst == nullptr || src == nullptr)) {
        snprintf(msg, sizeof(msg), "%s: a null pointer for %lld elements", what,
                 (long long)count);
        return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE, msg);
    }
    *n = count;
    return 0;
}

int pf_cuda_cast_strided(int device, void *dst, int dst_dtype, const void *src, int src_dtype,
                         const PfCudaStrided *g)
{
    int64_t n = 0;
    int status = cast_check("pf_cuda_cast_strided", dst, dst_dtype, src, src_dtype, g, &n);
    if (status != 0 || n == 0) {
        return status;
    }
    PfCudaStrided geom = *g;
    return pfc_on_device(device, [&] {
        cast_table[dst_dtype].launch(dst, src, src_dtype, geom, n);
        cudaError_t err = cudaGetLastError();
        if (err != cudaSuccess) {
            return pfc_fail(err, "cast kernel launch (dtype %d to %d, %lld elements, cuda:%d)",
                            src_dtype, dst_dtype, (long long)n, device);
        }
        return 0;
    });
}

int pf_cuda_cast_host(void *dst, int dst_dtype, const void *src, int src_dtype,
                      const PfCudaStrided *g)
{
    int64_t n = 0;
    int status = cast_check("pf_cuda_cast_host", dst, dst_dtype, src, src_dtype, g, &n);
    if (status != 0 || n == 0) {
        return status;
    }
    cast_table[dst_dtype].host(dst, src, src_dtype, *g, n);
    return 0;
}

/*
 * layer_norm.cu -- layer_norm forward and its fused backward on a device
 * (the CUDA paths of nn_ops.c's rownorm_entry and backward_nnops.c's
 * bw_rownorm for layer_norm).  Declared in pf_cuda.h (PF_CUDA_NN_ENTRIES).
 *
 * x, g, y, dx are (rows, n) contiguous; w, b, dw, db (n).  As on the cpu
 * (kernels/nn_kernels_t.h), a row's mean and variance are summed in double
 * and the mean is split into hi + lo in T, so (x - hi) - lo keeps T's
 * precision when the mean is large next to the spread; the rest runs in T.
 *
 * One warp per row for the statistics and for dx (lanes walk every 32nd
 * element, partial sums meet in a butterfly); the weight and bias gradients
 * sum columns over rows: one thread per column over a chunk of ROW_CHUNK
 * rows into double partials, folded in chunk order by a second pass.  The
 * per-lane, per-row and per-column functions are __host__ __device__; the
 * host twins run them in the same order (lanes in turn, butterflies over
 * arrays), which is the host self-test (tests/test_cuda_layer_norm.py).
 */
#include "internal.cuh"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

PF_CUDA_EXPORT pf_cuda_layer_norm_fn pf_cuda_layer_norm;
PF_CUDA_EXPORT pf_cuda_layer_norm_host_fn pf_cuda_layer_norm_host;
PF_CUDA_EXPORT pf_cuda_layer_norm_bwd_fn pf_cuda_layer_norm_bwd;
PF_CUDA_EXPORT pf_cuda_layer_norm_bwd_host_fn pf_cuda_layer_norm_bwd_host;
PF_CUDA_EXPORT pf_cuda_alloc_fn pf_cuda_alloc;      /* runtime.cu */
PF_CUDA_EXPORT pf_cuda_free_fn pf_cuda_free;

static pfc_register r_layer_norm(PFC_OP_LAYER_NORM, PFC_DTYPE_BIT(PF_CUDA_FLOAT32) |
                                                        PFC_DTYPE_BIT(PF_CUDA_FLOAT64));

#define LANES 32
#define ROW_CHUNK 256

#define HD __host__ __device__

/* ------------------------------------------------------------ per lane */

template <typename T> static HD double lane_sum(const T *xr, int64_t n, int lane)
{
    double s = 0;
    for (int64_t j = lane; j < n; j += LANES) {
        s += (double)xr[j];
    }
    return s;
}

template <typename T> static HD double lane_sqdev(const T *xr, int64_t n, int lane, double m)
{
    double s = 0;
    for (int64_t j = lane; j < n; j += LANES) {
        double d = (double)xr[j] - m;
        s += d * d;
    }
    return s;
}

/* the row's mean as hi + lo in T, and rstd in T, from the two sums */
template <typename T> struct row_stat {
    double mean, rstd;
    T mh, ml, r;
};

template <typename T> static HD row_stat<T> make_stat(double mean, double sqdev, int64_t n,
                                                      double eps)
{
    row_stat<T> s;
    s.mean = mean;
    s.rstd = 1.0 / sqrt(sqdev / (double)n + eps);
    s.mh = (T)mean;
    s.ml = (T)(mean - (double)s.mh);
    s.r = (T)s.rstd;
    return s;
}

template <typename T> static HD T xhat(T x, const row_stat<T> &s)
{
    return ((x - s.mh) - s.ml) * s.r;
}

template <typename T>
static HD void lane_forward(const T *xr, const T *w, const T *b, T *yr, int64_t n, int lane,
                            const row_stat<T> &s)
{
    for (int64_t j = lane; j < n; j += LANES) {
        T v = xhat(xr[j], s);
        if (w != nullptr) {
            v = v * w[j];
        }
        if (b != nullptr) {
            v = v + b[j];
        }
        yr[j] = v;
    }
}

/* A = sum g w, B = sum g w xh over the lane's elements, in double */
template <typename T>
static HD void lane_ab(const T *gr, const T *xr, const T *w, int64_t n, int lane,
                       const row_stat<T> &s, double *A, double *B)
{
    double a = 0, c = 0;
    for (int64_t j = lane; j < n; j += LANES) {
        T gw = gr[j] * (w != nullptr ? w[j] : (T)1);
        a += (double)gw;
        c += (double)(gw * xhat(xr[j], s));
    }
    *A = a;
    *B = c;
}

template <typename T>
static HD void lane_dx(const T *gr, const T *xr, const T *w, T *dxr, int64_t n, int lane,
                       const row_stat<T> &s, T ma, T mb)
{
    for (int64_t j = lane; j < n; j += LANES) {
        T gw = gr[j] * (w != nullptr ? w[j] : (T)1);
        dxr[j] = s.r * (gw - ma - xhat(xr[j], s) * mb);
    }
}

/* column j's weight and bias sums over rows [r0, r1), with the rows' statistics st (2 per row) */
template <typename T>
static HD void column_part(const T *g, const T *x, const double *st, int64_t n, int64_t j,
                           int64_t r0, int64_t r1, double eps, double *pw, double *pb)
{
    double sw = 0, sb = 0;
    for (int64_t r = r0; r < r1; r++) {
        row_stat<T> s = make_stat<T>(st[2 * r], st[2 * r + 1], n, eps);
        T gv = g[r * n + j];
        sw += (double)(gv * xhat(x[r * n + j], s));
        sb += (double)gv;
    }
    *pw = sw;
    *pb = sb;
}

/* ------------------------------------------------------------ kernels */

__device__ static inline double warp_sum(double v)
{
    for (int off = LANES / 2; off >= 1; off /= 2) {
        v += __shfl_xor_sync(0xffffffffu, v, off);
    }
    return v;
}

/* x, y (rows, n); w, b (n) or NULL */
template <typename T>
__global__ void ln_forward_kernel(const T *x, const T *w, const T *b, T *y, int64_t rows,
                                  int64_t n, double eps)
{
    int lane = (int)(threadIdx.x % LANES);
    int64_t warps = (int64_t)gridDim.x * (blockDim.x / LANES);
    for (int64_t r = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / LANES; r < rows;
         r += warps) {
        const T *xr = x + r * n;
        double mean = warp_sum(lane_sum(xr, n, lane)) / (double)n;
        double sq = warp_sum(lane_sqdev(xr, n, lane, mean));
        row_stat<T> s = make_stat<T>(mean, sq, n, eps);
        lane_forward(xr, w, b, y + r * n, n, lane, s);
    }
}

/* g, x, dx (rows, n); w (n) or NULL; st (rows, 2): each row's mean and sum of squared deviations */
template <typename T>
__global__ void ln_backward_rows_kernel(const T *g, const T *x, const T *w, T *dx, double *st,
                                        int64_t rows, int64_t n, double eps)
{
    int lane = (int)(threadIdx.x % LANES);
    int64_t warps = (int64_t)gridDim.x * (blockDim.x / LANES);
    for (int64_t r = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / LANES; r < rows;
         r += warps) {
        const T *xr = x + r * n, *gr = g + r * n;
        double mean = warp_sum(lane_sum(xr, n, lane)) / (double)n;
        double sq = warp_sum(lane_sqdev(xr, n, lane, mean));
        if (lane == 0 && st != nullptr) {
            st[2 * r] = mean;
            st[2 * r + 1] = sq;
        }
        if (dx == nullptr) {
            continue;
        }
        row_stat<T> s = make_stat<T>(mean, sq, n, eps);
        double A, B;
        lane_ab(gr, xr, w, n, lane, s, &A, &B);
        A = warp_sum(A);
        B = warp_sum(B);
        lane_dx(gr, xr, w, dx + r * n, n, lane, s, (T)(A / (double)n), (T)(B / (double)n));
    }
}

/* part (chunks, 2, n): column sums of chunk c over its rows */
template <typename T>
__global__ void ln_columns_kernel(const T *g, const T *x, const double *st, double *part,
                                  int64_t rows, int64_t n, double eps, int64_t chunks)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < chunks * n; i += step) {
        int64_t c = i / n, j = i % n;
        int64_t r0 = c * ROW_CHUNK, r1 = r0 + ROW_CHUNK < rows ? r0 + ROW_CHUNK : rows;
        column_part(g, x, st, n, j, r0, r1, eps, &part[(2 * c) * n + j],
                    &part[(2 * c + 1) * n + j]);
    }
}

/* dw, db (n) in T: the chunks' partials added in chunk order */
template <typename T>
static HD void fold_column(const double *part, int64_t chunks, int64_t n, int64_t j, T *dw,
                           T *db)
{
    double sw = 0, sb = 0;
    for (int64_t c = 0; c < chunks; c++) {
        sw += part[(2 * c) * n + j];
        sb += part[(2 * c + 1) * n + j];
    }
    if (dw != nullptr) {
        dw[j] = (T)sw;
    }
    if (db != nullptr) {
        db[j] = (T)sb;
    }
}

template <typename T>
__global__ void ln_fold_kernel(const double *part, int64_t chunks, int64_t n, T *dw, T *db)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; j < n; j += step) {
        fold_column(part, chunks, n, j, dw, db);
    }
}

/* ------------------------------------------------------------ host twins */

/* the butterfly of a warp over an array of LANES values: every lane ends with the total */
static double host_warp_sum(double *v)
{
    double w[LANES];
    for (int off = LANES / 2; off >= 1; off /= 2) {
        for (int l = 0; l < LANES; l++) {
            w[l] = v[l] + v[l ^ off];
        }
        for (int l = 0; l < LANES; l++) {
            v[l] = w[l];
        }
    }
    return v[0];
}

template <typename T>
static void host_stats(const T *xr, int64_t n, double *mean, double *sq)
{
    double v[LANES];
    for (int l = 0; l < LANES; l++) {
        v[l] = lane_sum(xr, n, l);
    }
    *mean = host_warp_sum(v) / (double)n;
    for (int l = 0; l < LANES; l++) {
        v[l] = lane_sqdev(xr, n, l, *mean);
    }
    *sq = host_warp_sum(v);
}

template <typename T>
static void host_forward(const T *x, const T *w, const T *b, T *y, int64_t rows, int64_t n,
                         double eps)
{
    for (int64_t r = 0; r < rows; r++) {
        double mean, sq;
        host_stats(x + r * n, n, &mean, &sq);
        row_stat<T> s = make_stat<T>(mean, sq, n, eps);
        for (int l = 0; l < LANES; l++) {
            lane_forward(x + r * n, w, b, y + r * n, n, l, s);
        }
    }
}

template <typename T>
static void host_backward(const T *g, const T *x, const T *w, T *dx, T *dw, T *db, double *st,
                          double *part, int64_t rows, int64_t n, double eps, int64_t chunks)
{
    for (int64_t r = 0; r < rows; r++) {
        const T *xr = x + r * n, *gr = g + r * n;
        double mean, sq;
        host_stats(xr, n, &mean, &sq);
        st[2 * r] = mean;
        st[2 * r + 1] = sq;
        if (dx == nullptr) {
            continue;
        }
        row_stat<T> s = make_stat<T>(mean, sq, n, eps);
        double va[LANES], vb[LANES];
        for (int l = 0; l < LANES; l++) {
            lane_ab(gr, xr, w, n, l, s, &va[l], &vb[l]);
        }
        double A = host_warp_sum(va), B = host_warp_sum(vb);
        for (int l = 0; l < LANES; l++) {
            lane_dx(gr, xr, w, dx + r * n, n, l, s, (T)(A / (double)n), (T)(B / (double)n));
        }
    }
    if (dw == nullptr && db == nullptr) {
        return;
    }
    for (int64_t c = 0; c < chunks; c++) {
        int64_t r0 = c * ROW_CHUNK, r1 = r0 + ROW_CHUNK < rows ? r0 + ROW_CHUNK : rows;
        for (int64_t j = 0; j < n; j++) {
            column_part(g, x, st, n, j, r0, r1, eps, &part[(2 * c) * n + j],
                        &part[(2 * c + 1) * n + j]);
        }
    }
    for (int64_t j = 0; j < n; j++) {
        fold_column(part, chunks, n, j, dw, db);
    }
}

/* ------------------------------------------------------------ entry points */

static const int THREADS = 256;
static const int64_t MAX_BLOCKS = 65535;

static unsigned grid_for(int64_t threads)
{
    int64_t b = (threads + THREADS - 1) / THREADS;
    return (unsigned)(b < MAX_BLOCKS ? b : MAX_BLOCKS);
}

static int bad(const char *what)
{
    char msg[160];
    snprintf(msg, sizeof(msg), "%s: bad arguments", what);
    return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE, msg);
}

static int launched(const char *what, int64_t rows, int64_t n, int device)
{
    cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) {
        return pfc_fail(err, "%s kernel launch (%lld rows of %lld, cuda:%d)", what,
                        (long long)rows, (long long)n, device);
    }
    return 0;
}

int pf_cuda_layer_norm(int device, const void *x, const void *w, const void *b, void *y,
                       int64_t rows, int64_t n, double eps, int is_double)
{
    if (rows < 0 || n < 0 || x == nullptr || y == nullptr) {
        return bad("pf_cuda_layer_norm");
    }
    if (rows == 0 || n == 0) {
        return 0;
    }
    return pfc_on_device(device, [&] {
        unsigned grid = grid_for(rows * LANES);
        if (is_double) {
            ln_forward_kernel<double><<<grid, THREADS, 0, pfc_stream()>>>(
                (const double *)x, (const double *)w, (const double *)b, (double *)y, rows, n,
                eps);
        }
        else {
            ln_forward_kernel<float><<<grid, THREADS, 0, pfc_stream()>>>(
                (const float *)x, (const float *)w, (const float *)b, (float *)y, rows, n, eps);
        }
        return launched("layer_norm", rows, n, device);
    });
}

int pf_cuda_layer_norm_host(int device, const void *x, const void *w, const void *b, void *y,
                            int64_t rows, int64_t n, double eps, int is_double)
{
    (void)device;
    if (rows < 0 || n < 0 || x == nullptr || y == nullptr) {
        return bad("pf_cuda_layer_norm_host");
    }
    if (is_double) {
        host_forward((const double *)x, (const double *)w, (const double *)b, (double *)y, rows,
                     n, eps);
    }
    else {
        host_forward((const float *)x, (const float *)w, (const float *)b, (float *)y, rows, n,
                     eps);
    }
    return 0;
}

template <typename T>
static int backward_on(int device, const T *g, const T *x, const T *w, T *dx, T *dw, T *db,
                       int64_t rows, int64_t n, double eps)
{
    int64_t chunks = (rows + ROW_CHUNK - 1) / ROW_CHUNK;
    int want_wb = dw != nullptr || db != nullptr;
    double *st = nullptr, *part = nullptr;
    int status = 0;
    if (want_wb) {
        status = pf_cuda_alloc(sizeof(double) * (size_t)(2 * rows), device, (void **)&st);
        if (status == 0) {
            status = pf_cuda_alloc(sizeof(double) * (size_t)(2 * chunks * n), device,
                                   (void **)&part);
        }
    }
    if (status == 0) {
        status = pfc_on_device(device, [&] {
            ln_backward_rows_kernel<T><<<grid_for(rows * LANES), THREADS, 0, pfc_stream()>>>(
                g, x, w, dx, st, rows, n, eps);
            int s = launched("layer_norm backward", rows, n, device);
            if (s != 0 || !want_wb) {
                return s;
            }
            ln_columns_kernel<T><<<grid_for(chunks * n), THREADS, 0, pfc_stream()>>>(
                g, x, st, part, rows, n, eps, chunks);
            if ((s = launched("layer_norm weight gradient", rows, n, device)) != 0) {
                return s;
            }
            ln_fold_kernel<T><<<grid_for(n), THREADS, 0, pfc_stream()>>>(part, chunks, n, dw, db);
            return launched("layer_norm weight gradient fold", rows, n, device);
        });
    }
    /* the frees are ordered after the kernels on the one stream */
    if (part != nullptr) {
        int s = pf_cuda_free(part);
        status = status != 0 ? status : s;
    }
    if (st != nullptr) {
        int s = pf_cuda_free(st);
        status = status != 0 ? status : s;
    }
    return status;
}

int pf_cuda_layer_norm_bwd(int device, const void *g, const void *x, const void *w, void *dx,
                           void *dw, void *db, int64_t rows, int64_t n, double eps,
                           int is_double)
{
    if (rows < 0 || n < 0 || g == nullptr || x == nullptr) {
        return bad("pf_cuda_layer_norm_bwd");
    }
    if (rows == 0 || n == 0) {
        return 0;
    }
    if (is_double) {
        return backward_on(device, (const double *)g, (const double *)x, (const double *)w,
                           (double *)dx, (double *)dw, (double *)db, rows, n, eps);
    }
    return backward_on(device, (const float *)g, (const float *)x, (const float *)w,
                       (float *)dx, (float *)dw, (float *)db, rows, n, eps);
}

int pf_cuda_layer_norm_bwd_host(int device, const void *g, const void *x, const void *w,
                                void *dx, void *dw, void *db, int64_t rows, int64_t n,
                                double eps, int is_double)
{
    (void)device;
    if (rows < 0 || n < 0 || g == nullptr || x == nullptr) {
        return bad("pf_cuda_layer_norm_bwd_host");
    }
    if (rows == 0 || n == 0) {
        return 0;
    }
    int64_t chunks = (rows + ROW_CHUNK - 1) / ROW_CHUNK;
    double *st = (double *)malloc(sizeof(double) * (size_t)(2 * rows));
    double *part = (double *)malloc(sizeof(double) * (size_t)(2 * chunks * n));
    if (st == nullptr || part == nullptr) {
        free(st);
        free(part);
        return pfc_fail_with(PF_CUDA_ERROR_OUT_OF_MEMORY,
                             "pf_cuda_layer_norm_bwd_host: out of host memory");
    }
    if (is_double) {
        host_backward((const double *)g, (const double *)x, (const double *)w, (double *)dx,
                      (double *)dw, (double *)db, st, part, rows, n, eps, chunks);
    }
    else {
        host_backward((const float *)g, (const float *)x, (const float *)w, (float *)dx,
                      (float *)dw, (float *)db, st, part, rows, n, eps, chunks);
    }
    free(st);
    free(part);
    return 0;
}

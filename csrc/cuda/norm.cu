/*
 * norm.cu -- group_norm and rms_norm (the row norms of
 * csrc/kernels/nn_kernels.h: rows normalised by their own statistics,
 * weight and bias per channel block) and batch_norm (training and eval,
 * the running statistics updated as on the cpu), with the fused gradients
 * their backward rules call, for the four float dtypes.
 *
 * Statistics are float64 sums, as on the cpu.  One block of 256 threads
 * per row (or per channel of batch_norm, or per weight element of the row
 * norms' weight gradient) in a grid-stride loop over rows: each thread
 * sums a strided share, and the block adds the 256 partial sums in a fixed
 * tree, so a result has the same bits on every run.  The per-thread shares
 * and the elementwise writes are __host__ __device__ functions; the host
 * self-test (device PF_CUDA_HOST) computes every thread's share, adds them
 * in the same tree and writes, phase by phase.
 *
 * batch_norm's per-channel coefficients (mean, 1 / std, weight / std, bias,
 * and in the backward the two gradient terms) are computed once into
 * float64 scratch and then mapped over the elements by a second kernel.
 */
#include "nn_common.cuh"

#include <type_traits>

PF_CUDA_EXPORT pf_cuda_rownorm_fn pf_cuda_rownorm;
PF_CUDA_EXPORT pf_cuda_rownorm_backward_fn pf_cuda_rownorm_backward;
PF_CUDA_EXPORT pf_cuda_batch_norm_fn pf_cuda_batch_norm;
PF_CUDA_EXPORT pf_cuda_batch_norm_backward_fn pf_cuda_batch_norm_backward;

static pfc_register r_group_norm(PFC_OP_GROUP_NORM, PFC_FLOAT_DTYPES);
static pfc_register r_rms_norm(PFC_OP_RMS_NORM, PFC_FLOAT_DTYPES);
static pfc_register r_batch_norm(PFC_OP_BATCH_NORM, PFC_FLOAT_DTYPES);

namespace {

const int NT = 256;
/* blocks of a grid-stride loop over units (rows, channels) */
unsigned unit_blocks(int64_t units)
{
    return (unsigned)(units < 65535 ? (units > 0 ? units : 1) : 65535);
}

/* The fixed tree the block's partial sums are added in (buf[NT]; the host runs it too). */
__host__ __device__ inline void tree_step(double *buf, int t, int s)
{
    if (t < s) {
        buf[t] += buf[t + s];
    }
}

/* ------------------------------------------------------------- row norms */

/*
 * A block's work on one row is a sequence of phases; phase k of thread t
 * reads the sums of the phases before it from `st`.  Row r of x starts at
 * r * n; element j of it uses weight (r % groups) * nch + j / inner.
 */
struct rn_args {
    PfCudaRowNorm P;
    const void *x, *g;
    PfCudaVec w, b;
    void *y;            /* forward: y; backward: dx (may be NULL) */
    double *stats;      /* backward: (rows, 2) mean and rstd, for the weight gradient */
};

/* what the phases of one row have found: mean, rstd, and the backward's two sums */
struct rn_state {
    double mean, rstd, sum_gw, sum_gwxh;
};

template <typename T> __host__ __device__ inline double ld(const void *p, int64_t i)
{
    return (double)pfc_in(((const T *)p)[i]);
}

__host__ __device__ inline int64_t rn_weight(const PfCudaRowNorm &P, int64_t r, int64_t j)
{
    return pfc_mod(r, P.groups) * P.nch + pfc_div(j, P.inner);
}

/*
 * Thread t's share of phase `phase` of row r:
 *   0: sum x            (skipped for RMS: its mean is 0)
 *   1: sum (x - mean)^2
 *   2: (backward) sum g w
 *   3: (backward) sum g w xh
 */
template <typename T>
__host__ __device__ double rn_partial(const rn_args &A, int phase, int64_t r, const rn_state &s,
                                      int t)
{
    const PfCudaRowNorm &P = A.P;
    int64_t base = r * P.n;
    double acc = 0;
    for (int64_t j = t; j < P.n; j += NT) {
        double xv = ld<T>(A.x, base + j);
        if (phase == 0) {
            acc += xv;
        }
        else if (phase == 1) {
            double d = xv - s.mean;
            acc += d * d;
        }
        else {
            double gw = ld<T>(A.g, base + j) * pfc_vec_get(A.w, rn_weight(P, r, j), 1.0);
            acc += phase == 2 ? gw : gw * (xv - s.mean) * s.rstd;
        }
    }
    return acc;
}

/* A phase's total gives the state its next value. */
__host__ __device__ inline void rn_take(const PfCudaRowNorm &P, int phase, double total,
                                        rn_state *s)
{
    double n = (double)P.n;
    switch (phase) {
    case 0: s->mean = P.rms ? 0.0 : total / n; break;
    case 1: s->rstd = 1.0 / sqrt(total / n + P.eps); break;
    case 2: s->sum_gw = total; break;
    default: s->sum_gwxh = total; break;
    }
}

/* Thread t writes its share of row r: y (forward) or dx (backward). */
template <typename T>
__host__ __device__ void rn_write(const rn_args &A, bool backward, int64_t r, const rn_state &s,
                                  int t)
{
    const PfCudaRowNorm &P = A.P;
    int64_t base = r * P.n;
    double n = (double)P.n;
    T *out = (T *)A.y;
    for (int64_t j = t; j < P.n; j += NT) {
        int64_t c = rn_weight(P, r, j);
        double xh = (ld<T>(A.x, base + j) - s.mean) * s.rstd;
        double v;
        if (!backward) {
            v = xh * pfc_vec_get(A.w, c, 1.0) + pfc_vec_get(A.b, c, 0.0);
        }
        else {
            double gw = ld<T>(A.g, base + j) * pfc_vec_get(A.w, c, 1.0);
            v = gw - xh * s.sum_gwxh / n;
            if (!P.rms) {
                v -= s.sum_gw / n;
            }
            v *= s.rstd;
        }
        out[base + j] = pfc_out<T>(v);
    }
}

/* The phases a row goes through: statistics, then (backward) the two gradient sums. */
__host__ __device__ inline int rn_first_phase(const PfCudaRowNorm &P) { return P.rms ? 1 : 0; }

template <typename T> __global__ void __launch_bounds__(NT) rownorm_kernel(rn_args A, bool backward)
{
    __shared__ double buf[NT];
    int t = threadIdx.x;
    int last = backward ? 3 : 1;
    for (int64_t r = blockIdx.x; r < A.P.rows; r += gridDim.x) {
        rn_state s = {0, 0, 0, 0};
        for (int phase = rn_first_phase(A.P); phase <= last; phase++) {
            buf[t] = rn_partial<T>(A, phase, r, s, t);
            __syncthreads();
            for (int w = NT / 2; w > 0; w /= 2) {
                tree_step(buf, t, w);
                __syncthreads();
            }
            rn_take(A.P, phase, buf[0], &s);
            __syncthreads();
        }
        if (backward && A.stats != nullptr && t == 0) {
            A.stats[2 * r] = s.mean;
            A.stats[2 * r + 1] = s.rstd;
        }
        if (A.y != nullptr) {
            rn_write<T>(A, backward, r, s, t);
        }
    }
}

template <typename T> void rownorm_host(const rn_args &A, bool backward, double *buf)
{
    int last = backward ? 3 : 1;
    for (int64_t r = 0; r < A.P.rows; r++) {
        rn_state s = {0, 0, 0, 0};
        for (int phase = rn_first_phase(A.P); phase <= last; phase++) {
            for (int t = 0; t < NT; t++) {
                buf[t] = rn_partial<T>(A, phase, r, s, t);
            }
            for (int w = NT / 2; w > 0; w /= 2) {
                for (int t = 0; t < NT; t++) {
                    tree_step(buf, t, w);
                }
            }
            rn_take(A.P, phase, buf[0], &s);
        }
        if (backward && A.stats != nullptr) {
            A.stats[2 * r] = s.mean;
            A.stats[2 * r + 1] = s.rstd;
        }
        if (A.y != nullptr) {
            for (int t = 0; t < NT; t++) {
                rn_write<T>(A, backward, r, s, t);
            }
        }
    }
}

/*
 * Thread t's share of weight element c's gradients: sum over the rows of
 * its block (r % groups == c / nch) and its run of `inner` elements of
 * g xh (which = 0) or of g (which = 1).
 */
template <typename T>
__host__ __device__ double rn_wsum(const rn_args &A, int64_t c, int which, int t)
{
    const PfCudaRowNorm &P = A.P;
    int64_t blk = c / P.nch, j0 = (c % P.nch) * P.inner;
    int64_t per = P.rows / P.groups, count = per * P.inner;
    double acc = 0;
    for (int64_t e = t; e < count; e += NT) {
        int64_t r = pfc_div(e, P.inner) * P.groups + blk, j = j0 + pfc_mod(e, P.inner);
        double gv = ld<T>(A.g, r * P.n + j);
        acc += which == 1 ? gv : gv * (ld<T>(A.x, r * P.n + j) - A.stats[2 * r]) *
                                     A.stats[2 * r + 1];
    }
    return acc;
}

template <typename T>
__global__ void __launch_bounds__(NT) rn_weight_kernel(rn_args A, PfCudaVec dw, PfCudaVec db)
{
    __shared__ double buf[NT];
    int t = threadIdx.x;
    int64_t wlen = A.P.groups * A.P.nch;
    for (int64_t c = blockIdx.x; c < wlen; c += gridDim.x) {
        for (int which = 0; which < 2; which++) {
            const PfCudaVec &out = which == 0 ? dw : db;
            if (out.data == nullptr) {
                continue;
            }
            buf[t] = rn_wsum<T>(A, c, which, t);
            __syncthreads();
            for (int w = NT / 2; w > 0; w /= 2) {
                tree_step(buf, t, w);
                __syncthreads();
            }
            if (t == 0) {
                pfc_vec_set(out, c, buf[0]);
            }
            __syncthreads();
        }
    }
}

template <typename T>
void rn_weight_host(const rn_args &A, const PfCudaVec &dw, const PfCudaVec &db, double *buf)
{
    int64_t wlen = A.P.groups * A.P.nch;
    for (int64_t c = 0; c < wlen; c++) {
        for (int which = 0; which < 2; which++) {
            const PfCudaVec &out = which == 0 ? dw : db;
            if (out.data == nullptr) {
                continue;
            }
            for (int t = 0; t < NT; t++) {
                buf[t] = rn_wsum<T>(A, c, which, t);
            }
            for (int w = NT / 2; w > 0; w /= 2) {
                for (int t = 0; t < NT; t++) {
                    tree_step(buf, t, w);
                }
            }
            pfc_vec_set(out, c, buf[0]);
        }
    }
}

/* ------------------------------------------------------------- batch norm */

/*
 * Per channel c, scratch coef (5, C): mean, rstd, and the map's three
 * coefficients: out = u A + (x - mean) B + D, with u = x, B = 0 in the
 * forward (A = w rstd, D = b - mean A) and u = g in the backward.
 */
struct bn_args {
    PfCudaBatchNorm B;
    const void *x, *g;
    void *out;
    PfCudaVec rm, rv, w, b, dw, db;
    double *coef;
};

__host__ __device__ inline int64_t bn_at(const PfCudaBatchNorm &B, int64_t c, int64_t e)
{
    return (pfc_div(e, B.inner) * B.c + c) * B.inner + pfc_mod(e, B.inner);
}

/* phase 0: sum x; 1: sum (x - mean)^2; 2: sum g; 3: sum g (x - mean) -- thread t's share */
template <typename T>
__host__ __device__ double bn_partial(const bn_args &A, int phase, int64_t c, double mean, int t)
{
    int64_t count = A.B.outer * A.B.inner;
    double acc = 0;
    for (int64_t e = t; e < count; e += NT) {
        int64_t k = bn_at(A.B, c, e);
        double xv = phase == 2 ? 0.0 : ld<T>(A.x, k);
        switch (phase) {
        case 0: acc += xv; break;
        case 1: acc += (xv - mean) * (xv - mean); break;
        case 2: acc += ld<T>(A.g, k); break;
        default: acc += ld<T>(A.g, k) * (xv - mean); break;
        }
    }
    return acc;
}

/*
 * Channel c's coefficients from its sums (s[phase]; those not computed are
 * 0), by thread 0 of its block: in training the running buffers take the
 * batch's statistics; the backward writes dw and db.
 */
__host__ __device__ void bn_finish(const bn_args &A, bool backward, int64_t c, const double *s)
{
    const PfCudaBatchNorm &B = A.B;
    int64_t C = B.c;
    double M = (double)(B.outer * B.inner);
    double mean, var;
    if (B.training) {
        mean = s[0] / M;
        var = s[1] / M;
    }
    else {
        mean = pfc_vec_get(A.rm, c, 0.0);
        var = pfc_vec_get(A.rv, c, 1.0);
    }
    double r = 1.0 / sqrt(var + B.eps), w = pfc_vec_get(A.w, c, 1.0);
    double *k = A.coef;
    k[c] = mean;
    k[C + c] = r;
    if (!backward) {
        k[2 * C + c] = w * r;
        k[3 * C + c] = 0.0;
        k[4 * C + c] = pfc_vec_get(A.b, c, 0.0) - mean * w * r;
        if (B.training && A.rm.data != nullptr) {
            double m = B.momentum, unbias = M / (M - 1.0);
            pfc_vec_set(A.rm, c, (1.0 - m) * pfc_vec_get(A.rm, c, 0.0) + m * mean);
            pfc_vec_set(A.rv, c, (1.0 - m) * pfc_vec_get(A.rv, c, 0.0) + m * var * unbias);
        }
        return;
    }
    double sg = s[2], sgx = s[3];
    k[2 * C + c] = w * r;
    k[3 * C + c] = B.training ? -w * r * r * r * sgx / M : 0.0;
    k[4 * C + c] = B.training ? -w * r * sg / M : 0.0;
    pfc_vec_set(A.dw, c, sgx * r);
    pfc_vec_set(A.db, c, sg);
}

/* The phases a channel needs: 0, 1 in training; 2, 3 in the backward (3 needs the mean). */
__host__ __device__ inline bool bn_phase_needed(const bn_args &A, bool backward, int phase)
{
    if (phase <= 1) {
        return A.B.training != 0;
    }
    return backward;
}

template <typename T>
__global__ void __launch_bounds__(NT) bn_coef_kernel(bn_args A, bool backward)
{
    __shared__ double buf[NT];
    int t = threadIdx.x;
    for (int64_t c = blockIdx.x; c < A.B.c; c += gridDim.x) {
        double s[4] = {0, 0, 0, 0};
        double mean = A.B.training ? 0.0 : pfc_vec_get(A.rm, c, 0.0);
        for (int phase = 0; phase < 4; phase++) {
            if (!bn_phase_needed(A, backward, phase)) {
                continue;
            }
            buf[t] = bn_partial<T>(A, phase, c, mean, t);
            __syncthreads();
            for (int w = NT / 2; w > 0; w /= 2) {
                tree_step(buf, t, w);
                __syncthreads();
            }
            s[phase] = buf[0];
            if (phase == 0) {
                mean = s[0] / (double)(A.B.outer * A.B.inner);
            }
            __syncthreads();
        }
        if (t == 0) {
            bn_finish(A, backward, c, s);
        }
    }
}

template <typename T> void bn_coef_host(const bn_args &A, bool backward, double *buf)
{
    for (int64_t c = 0; c < A.B.c; c++) {
        double s[4] = {0, 0, 0, 0};
        double mean = A.B.training ? 0.0 : pfc_vec_get(A.rm, c, 0.0);
        for (int phase = 0; phase < 4; phase++) {
            if (!bn_phase_needed(A, backward, phase)) {
                continue;
            }
            for (int t = 0; t < NT; t++) {
                buf[t] = bn_partial<T>(A, phase, c, mean, t);
            }
            for (int w = NT / 2; w > 0; w /= 2) {
                for (int t = 0; t < NT; t++) {
                    tree_step(buf, t, w);
                }
            }
            s[phase] = buf[0];
            if (phase == 0) {
                mean = s[0] / (double)(A.B.outer * A.B.inner);
            }
        }
        bn_finish(A, backward, c, s);
    }
}

/* Element i of the map: out = u A + (x - mean) B + D, u = x (forward) or g (backward). */
template <typename T> __host__ __device__ void bn_map_one(const bn_args &A, bool backward, int64_t i)
{
    int64_t C = A.B.c, c = pfc_mod(pfc_div(i, A.B.inner), C);
    const double *k = A.coef;
    double xv = ld<T>(A.x, i);
    double u = backward ? ld<T>(A.g, i) : xv;
    double v = u * k[2 * C + c] + (xv - k[c]) * k[3 * C + c] + k[4 * C + c];
    ((T *)A.out)[i] = pfc_out<T>(v);
}

template <typename T> __global__ void bn_map_kernel(bn_args A, bool backward, int64_t total)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += step) {
        bn_map_one<T>(A, backward, i);
    }
}

template <typename T> int bn_run(int device, bn_args &A, bool backward)
{
    const char *what = backward ? "pf_cuda_batch_norm_backward" : "pf_cuda_batch_norm";
    pfc_scratch scratch(device);
    int64_t C = A.B.c, total = A.B.outer * C * A.B.inner;
    int status = scratch.get(sizeof(double) * (size_t)(5 * (C > 0 ? C : 1) + NT), what);
    if (status != 0) {
        return status;
    }
    A.coef = (double *)scratch.ptr;
    bool map = A.out != nullptr && total > 0;
    if (device == PF_CUDA_HOST) {
        bn_coef_host<T>(A, backward, A.coef + 5 * C);
        for (int64_t i = 0; map && i < total; i++) {
            bn_map_one<T>(A, backward, i);
        }
        return 0;
    }
    if (C > 0) {
        bn_coef_kernel<T><<<unit_blocks(C), NT, 0, pfc_stream()>>>(A, backward);
        if ((status = pfc_check_launch("batch norm statistics", device)) != 0) {
            return status;
        }
    }
    if (map) {
        bn_map_kernel<T><<<pfc_nn_blocks(total), PFC_NN_THREADS, 0, pfc_stream()>>>(A, backward,
                                                                                     total);
        return pfc_check_launch("batch norm map", device);
    }
    return 0;
}

template <typename T>
int rn_run(int device, rn_args &A, bool backward, const PfCudaVec &dw, const PfCudaVec &db)
{
    const char *what = backward ? "pf_cuda_rownorm_backward" : "pf_cuda_rownorm";
    bool weights = backward && (dw.data != nullptr || db.data != nullptr);
    pfc_scratch scratch(device);
    int64_t rows = A.P.rows;
    int status = scratch.get(sizeof(double) * (size_t)((weights ? 2 * rows : 0) + NT), what);
    if (status != 0) {
        return status;
    }
    double *buf = (double *)scratch.ptr;
    A.stats = weights ? buf + NT : nullptr;
    int64_t wlen = A.P.groups * A.P.nch;
    if (device == PF_CUDA_HOST) {
        rownorm_host<T>(A, backward, buf);
        if (weights) {
            rn_weight_host<T>(A, dw, db, buf);
        }
        return 0;
    }
    if (rows > 0) {
        rownorm_kernel<T><<<unit_blocks(rows), NT, 0, pfc_stream()>>>(A, backward);
        if ((status = pfc_check_launch(backward ? "row norm backward" : "row norm", device)) !=
            0) {
            return status;
        }
    }
    if (weights && wlen > 0) {
        rn_weight_kernel<T><<<unit_blocks(wlen), NT, 0, pfc_stream()>>>(A, dw, db);
        return pfc_check_launch("row norm weight gradient", device);
    }
    return 0;
}

PfCudaVec vec_or_none(const PfCudaVec *v)
{
    return v != nullptr ? *v : pfc_no_vec();
}

} // namespace

int pf_cuda_rownorm(int device, int dtype, const PfCudaRowNorm *P, const void *x,
                    const PfCudaVec *w, const PfCudaVec *b, void *y)
{
    if (P->groups < 1 || P->n != P->nch * P->inner || P->rows % P->groups != 0) {
        return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE,
                             "pf_cuda_rownorm: inconsistent row geometry");
    }
    rn_args A = {*P, x, nullptr, vec_or_none(w), vec_or_none(b), y, nullptr};
    PfCudaVec none = pfc_no_vec();
    return pfc_by_dtype(dtype, "pf_cuda_rownorm", [&](auto *tag) {
        typedef typename std::remove_pointer<decltype(tag)>::type T;
        return pfc_nn_run(device, [&] { return rn_run<T>(device, A, false, none, none); });
    });
}

int pf_cuda_rownorm_backward(int device, int dtype, const PfCudaRowNorm *P, const void *g,
                             const void *x, const PfCudaVec *w, void *dx, const PfCudaVec *dw,
                             const PfCudaVec *db)
{
    if (P->groups < 1 || P->n != P->nch * P->inner || P->rows % P->groups != 0) {
        return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE,
                             "pf_cuda_rownorm_backward: inconsistent row geometry");
    }
    rn_args A = {*P, x, g, vec_or_none(w), pfc_no_vec(), dx, nullptr};
    PfCudaVec dwv = vec_or_none(dw), dbv = vec_or_none(db);
    return pfc_by_dtype(dtype, "pf_cuda_rownorm_backward", [&](auto *tag) {
        typedef typename std::remove_pointer<decltype(tag)>::type T;
        return pfc_nn_run(device, [&] { return rn_run<T>(device, A, true, dwv, dbv); });
    });
}

int pf_cuda_batch_norm(int device, int dtype, const PfCudaBatchNorm *B, const void *x, void *y,
                       const PfCudaVec *running_mean, const PfCudaVec *running_var,
                       const PfCudaVec *w, const PfCudaVec *b)
{
    bn_args A;
    A.B = *B;
    A.x = x;
    A.g = nullptr;
    A.out = y;
    A.rm = vec_or_none(running_mean);
    A.rv = vec_or_none(running_var);
    A.w = vec_or_none(w);
    A.b = vec_or_none(b);
    A.dw = A.db = pfc_no_vec();
    A.coef = nullptr;
    return pfc_by_dtype(dtype, "pf_cuda_batch_norm", [&](auto *tag) {
        typedef typename std::remove_pointer<decltype(tag)>::type T;
        return pfc_nn_run(device, [&] { return bn_run<T>(device, A, false); });
    });
}

int pf_cuda_batch_norm_backward(int device, int dtype, const PfCudaBatchNorm *B, const void *g,
                                const void *x, const PfCudaVec *running_mean,
                                const PfCudaVec *running_var, const PfCudaVec *w, void *dx,
                                const PfCudaVec *dw, const PfCudaVec *db)
{
    bn_args A;
    A.B = *B;
    A.x = x;
    A.g = g;
    A.out = dx;
    A.rm = vec_or_none(running_mean);
    A.rv = vec_or_none(running_var);
    A.w = vec_or_none(w);
    A.b = pfc_no_vec();
    A.dw = vec_or_none(dw);
    A.db = vec_or_none(db);
    A.coef = nullptr;
    return pfc_by_dtype(dtype, "pf_cuda_batch_norm_backward", [&](auto *tag) {
        typedef typename std::remove_pointer<decltype(tag)>::type T;
        return pfc_nn_run(device, [&] { return bn_run<T>(device, A, true); });
    });
}

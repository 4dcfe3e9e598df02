/*
 * conv.cu -- convolution on CUDA devices as implicit GEMMs: the forward
 * product, the input gradient (the transposed convolution) and the weight
 * gradient, for float16, bfloat16, float32 (float32 sums) and float64.
 *
 * Each of the three is a GEMM whose operands are never formed: a tile of
 * the operand that im2col would have written is gathered from the
 * activation into shared memory as it is needed, with zeros for the
 * padding.  Per group gr of the convolution:
 *
 *   forward      rows = output pixels (n, oh, ow)    cols = output channels of gr
 *                K = (c, i, j) taps of gr's input channels
 *                A(m, k) = x[n, c, oh sh - ph + i dh, ow sw - pw + j dw]   B(k, o) = w[o, c, i, j]
 *   input grad   rows = input pixels (n, h, w)       cols = input channels of gr
 *                K = (o, i, j)
 *                A(m, k) = gy[n, o, (h + ph - i dh) / sh, ...] where that divides and lands
 *                          inside the output, else 0          B(k, c) = w[o, c, i, j]
 *   weight grad  rows = output channels of gr        cols = (c, i, j)
 *                K = (n, oh, ow), cut into splits (split-K) when the product is small
 *                A(o, k) = gy[n, o, oh, ow]   B(k, (c, i, j)) = x at that tap
 *
 * The tiling: a block of 256 threads owns a 64 x 64 tile of the product and
 * walks K 16 at a time.  Each step, every thread gathers 4 elements of the
 * A tile (16 x 64) and 4 of the B tile into shared memory (one fixed row or
 * column per thread, so a pixel or channel is decoded once per block), the
 * block waits, each thread multiplies-and-adds its 4 x 4 outputs (rows tx +
 * 16 i, columns ty + 16 j, so neighbouring threads write neighbouring
 * pixels), and the block waits again.  grid = (row tiles, column tiles,
 * groups x splits).
 *
 * The phases -- gather (tile_load), multiply (tile_mac), write (tile_store)
 * -- are __host__ __device__ functions.  The host self-test (device
 * PF_CUDA_HOST) runs the same grid in plain loops, phase by phase for all
 * 256 "threads" of a block, so it checks the tiling, the gathers' index
 * arithmetic, the tile edges and the split-K sums, not a second copy of the
 * maths.
 *
 * The weight gradient's splits write float partial sums to scratch
 * (splits, groups, O/groups, C/groups*KH*KW), which a second kernel adds
 * in split order and rounds once: the result does not depend on timing.
 */
#include "nn_common.cuh"

#include <type_traits>

PF_CUDA_EXPORT pf_cuda_conv_fn pf_cuda_conv;

static pfc_register r_conv1d(PFC_OP_CONV1D, PFC_FLOAT_DTYPES);
static pfc_register r_conv2d(PFC_OP_CONV2D, PFC_FLOAT_DTYPES);
static pfc_register r_convt(PFC_OP_CONV_TRANSPOSE2D, PFC_FLOAT_DTYPES);
static pfc_register r_conv(PFC_OP_CONV, PFC_FLOAT_DTYPES);
static pfc_register r_conv_ig(PFC_OP_CONV_INPUT_GRAD, PFC_FLOAT_DTYPES);
static pfc_register r_conv_wg(PFC_OP_CONV_WEIGHT_GRAD, PFC_FLOAT_DTYPES);

namespace {

const int BM = 64, BN = 64, BK = 16, NT = 256;

/* A strided 4-D operand of T. */
template <typename T> struct nd4 {
    T *p;
    int64_t s0, s1, s2, s3;
    __host__ __device__ T &at(int64_t a, int64_t b, int64_t c, int64_t d) const
    {
        return p[a * s0 + b * s1 + c * s2 + d * s3];
    }
};

template <typename T> nd4<T> view(const PfCudaNd4 *a)
{
    nd4<T> v = {(T *)a->data, a->s[0], a->s[1], a->s[2], a->s[3]};
    return v;
}

/* A pixel (n, y, x) of an image of (H, W), or a (c, i, j) tap of (KH, KW). */
struct idx3 {
    int64_t a, b, c;
};
__host__ __device__ inline idx3 split3(int64_t v, int64_t h, int64_t w)
{
    idx3 r;
    /* 32-bit division where everything fits (always, but for huge batches): a 64-bit
       division is a long software routine on the GPU, and this runs per gathered element */
    if ((uint64_t)(v | (h * w)) <= UINT32_MAX) {
        uint32_t v32 = (uint32_t)v, h32 = (uint32_t)h, w32 = (uint32_t)w;
        r.c = v32 % w32;
        v32 /= w32;
        r.b = v32 % h32;
        r.a = v32 / h32;
        return r;
    }
    r.c = v % w;
    v /= w;
    r.b = v % h;
    r.a = v / h;
    return r;
}

/* ------------------------------------------------------------- the three problems */

/*
 * A problem gives the GEMM's sizes per group (M rows, N columns, K), the
 * per-row and per-column contexts a thread decodes once (row(), col()),
 * the decoding of a K index shared by both operands (kdec()), the gathered
 * elements a(row, k) and b(col, k), and store().
 */
template <typename T> struct conv_fwd {
    typedef typename pfc_acc<T>::type Acc;
    PfCudaConvGeom g;
    nd4<T> x, w, y;
    PfCudaVec bias;
    int64_t M, N, K, cg, og;
    typedef idx3 Row;   /* (n, first input row, first input column) */
    typedef int64_t Col;
    __host__ __device__ Row row(int64_t m, int64_t) const
    {
        idx3 p = split3(m, g.oh, g.ow);
        p.b = p.b * g.sh - g.ph;
        p.c = p.c * g.sw - g.pw;
        return p;
    }
    __host__ __device__ Col col(int64_t n, int64_t grp) const { return grp * og + n; }
    /* k as (c, i, j), decoded once for both operands */
    __host__ __device__ idx3 kdec(int64_t k) const { return split3(k, g.kh, g.kw); }
    __host__ __device__ Acc a(const Row &r, const idx3 &t, int64_t grp) const
    {
        int64_t ih = r.b + t.b * g.dh, iw = r.c + t.c * g.dw;
        if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) {
            return Acc(0);
        }
        return pfc_in(x.at(r.a, grp * cg + t.a, ih, iw));
    }
    __host__ __device__ Acc b(const Col &o, const idx3 &t, int64_t) const
    {
        return pfc_in(w.at(o, t.a, t.b, t.c));
    }
    __host__ __device__ void store(int64_t m, int64_t n, int64_t grp, int64_t, Acc v) const
    {
        idx3 p = split3(m, g.oh, g.ow);
        int64_t o = grp * og + n;
        if (bias.data != nullptr) {
            v += (Acc)pfc_vec_get(bias, o, 0.0);
        }
        y.at(p.a, o, p.b, p.c) = pfc_store<T, Acc>(v);
    }
};

template <typename T> struct conv_igrad {
    typedef typename pfc_acc<T>::type Acc;
    PfCudaConvGeom g;
    nd4<T> gy, w, gx;
    PfCudaVec bias;
    int64_t M, N, K, cg, og;
    typedef idx3 Row;   /* (n, h + ph, w + pw) */
    typedef int64_t Col;
    __host__ __device__ Row row(int64_t m, int64_t) const
    {
        idx3 p = split3(m, g.h, g.w);
        p.b += g.ph;
        p.c += g.pw;
        return p;
    }
    __host__ __device__ Col col(int64_t n, int64_t) const { return n; }
    /* k as (o, i, j) */
    __host__ __device__ idx3 kdec(int64_t k) const { return split3(k, g.kh, g.kw); }
    /* the output pixel whose tap (i, j) read input pixel r, if any */
    __host__ __device__ Acc a(const Row &r, const idx3 &t, int64_t grp) const
    {
        int64_t th = r.b - t.b * g.dh, tw = r.c - t.c * g.dw;
        if (th < 0 || tw < 0 || pfc_mod(th, g.sh) != 0 || pfc_mod(tw, g.sw) != 0) {
            return Acc(0);
        }
        int64_t oh = pfc_div(th, g.sh), ow = pfc_div(tw, g.sw);
        if (oh >= g.oh || ow >= g.ow) {
            return Acc(0);
        }
        return pfc_in(gy.at(r.a, grp * og + t.a, oh, ow));
    }
    __host__ __device__ Acc b(const Col &c, const idx3 &t, int64_t grp) const
    {
        return pfc_in(w.at(grp * og + t.a, c, t.b, t.c));
    }
    __host__ __device__ void store(int64_t m, int64_t n, int64_t grp, int64_t, Acc v) const
    {
        idx3 p = split3(m, g.h, g.w);
        int64_t c = grp * cg + n;
        if (bias.data != nullptr) {
            v += (Acc)pfc_vec_get(bias, c, 0.0);
        }
        gx.at(p.a, c, p.b, p.c) = pfc_store<T, Acc>(v);
    }
};

template <typename T> struct conv_wgrad {
    typedef typename pfc_acc<T>::type Acc;
    PfCudaConvGeom g;
    nd4<T> x, gy;
    Acc *partial;       /* (splits, groups, M, N) */
    int64_t M, N, K, cg, og;
    typedef int64_t Row;
    typedef idx3 Col;   /* (c of the whole input, i, j) */
    __host__ __device__ Row row(int64_t m, int64_t grp) const { return grp * og + m; }
    __host__ __device__ Col col(int64_t n, int64_t grp) const
    {
        idx3 t = split3(n, g.kh, g.kw);
        t.a += grp * cg;
        return t;
    }
    /* k as the output pixel (n, oh, ow) */
    __host__ __device__ idx3 kdec(int64_t k) const { return split3(k, g.oh, g.ow); }
    __host__ __device__ Acc a(const Row &o, const idx3 &p, int64_t) const
    {
        return pfc_in(gy.at(p.a, o, p.b, p.c));
    }
    __host__ __device__ Acc b(const Col &t, const idx3 &p, int64_t) const
    {
        int64_t ih = p.b * g.sh - g.ph + t.b * g.dh, iw = p.c * g.sw - g.pw + t.c * g.dw;
        if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) {
            return Acc(0);
        }
        return pfc_in(x.at(p.a, t.a, ih, iw));
    }
    __host__ __device__ void store(int64_t m, int64_t n, int64_t grp, int64_t split, Acc v) const
    {
        partial[((split * g.groups + grp) * M + m) * N + n] = v;
    }
};

/* ------------------------------------------------------------- the tile phases */

template <typename Acc> struct tiles {
    Acc a[BK][BM];
    Acc b[BK][BN];
};

/* The tile a block works on: its corner, its group and split, its K range [k0, k1). */
struct tile_pos {
    int64_t m0, n0, grp, split, k1;
};

/*
 * Thread t gathers row (or column) t % 64 of the tiles at K offset kb:
 * K rows t / 64 + 4 r, r < 4; zeros past the problem's edges.
 */
template <typename P>
__host__ __device__ void tile_load(const P &p, tiles<typename P::Acc> &s, int t,
                                   const tile_pos &at, int64_t kb)
{
    typedef typename P::Acc Acc;
    int lane = t % BM, k4 = t / BM;
    int64_t m = at.m0 + lane, n = at.n0 + lane;
    bool mv = m < p.M, nv = n < p.N;
    typename P::Row r = p.row(mv ? m : 0, at.grp);
    typename P::Col c = p.col(nv ? n : 0, at.grp);
    for (int q = 0; q < BK / 4; q++) {
        int kk = k4 + 4 * q;
        int64_t k = kb + kk;
        bool kv = k < at.k1;
        idx3 kd = p.kdec(kv ? k : 0);
        s.a[kk][lane] = mv && kv ? p.a(r, kd, at.grp) : Acc(0);
        s.b[kk][lane] = nv && kv ? p.b(c, kd, at.grp) : Acc(0);
    }
}

/* Thread t's 4 x 4 outputs (rows tx + 16 i, columns ty + 16 j) += the tiles' product. */
template <typename Acc>
__host__ __device__ void tile_mac(const tiles<Acc> &s, int t, Acc acc[4][4])
{
    int tx = t % 16, ty = t / 16;
    for (int kk = 0; kk < BK; kk++) {
        Acc av[4], bv[4];
        for (int i = 0; i < 4; i++) {
            av[i] = s.a[kk][tx + 16 * i];
            bv[i] = s.b[kk][ty + 16 * i];
        }
        for (int i = 0; i < 4; i++) {
            for (int j = 0; j < 4; j++) {
                acc[i][j] += av[i] * bv[j];
            }
        }
    }
}

template <typename P>
__host__ __device__ void tile_store(const P &p, int t, const tile_pos &at,
                                    typename P::Acc acc[4][4])
{
    int tx = t % 16, ty = t / 16;
    for (int i = 0; i < 4; i++) {
        int64_t m = at.m0 + tx + 16 * i;
        for (int j = 0; j < 4; j++) {
            int64_t n = at.n0 + ty + 16 * j;
            if (m < p.M && n < p.N) {
                p.store(m, n, at.grp, at.split, acc[i][j]);
            }
        }
    }
}

/* The launch shape: tiles of rows and columns, groups x splits, K per split (a multiple of BK). */
struct gemm_grid {
    int64_t mt, nt, groups, splits, kchunk;
};

__host__ __device__ inline tile_pos tile_at(const gemm_grid &G, int64_t K, int64_t bx, int64_t by,
                                            int64_t bz)
{
    tile_pos at;
    at.m0 = bx * BM;
    at.n0 = by * BN;
    at.grp = bz / G.splits;
    at.split = bz % G.splits;
    int64_t k1 = (at.split + 1) * G.kchunk;
    at.k1 = k1 < K ? k1 : K;
    return at;
}

template <typename P> __global__ void __launch_bounds__(NT) igemm_kernel(P p, gemm_grid G)
{
    typedef typename P::Acc Acc;
    __shared__ tiles<Acc> s;
    int t = threadIdx.x;
    tile_pos at = tile_at(G, p.K, blockIdx.x, blockIdx.y, blockIdx.z);
    Acc acc[4][4];
    for (int i = 0; i < 4; i++) {
        for (int j = 0; j < 4; j++) {
            acc[i][j] = Acc(0);
        }
    }
    for (int64_t kb = at.split * G.kchunk; kb < at.k1; kb += BK) {
        tile_load(p, s, t, at, kb);
        __syncthreads();
        tile_mac(s, t, acc);
        __syncthreads();
    }
    tile_store(p, t, at, acc);
}

/* The same grid on the host: each phase for all 256 threads of a block before the next. */
template <typename P> static int igemm_host(const P &p, const gemm_grid &G)
{
    typedef typename P::Acc Acc;
    tiles<Acc> *s = (tiles<Acc> *)malloc(sizeof(tiles<Acc>));
    Acc(*acc)[4][4] = (Acc(*)[4][4])malloc(sizeof(Acc) * 16 * NT);
    if (s == nullptr || acc == nullptr) {
        free(s);
        free(acc);
        return pfc_fail_with(PF_CUDA_ERROR_OUT_OF_MEMORY, "pf_cuda_conv: out of host memory");
    }
    for (int64_t bz = 0; bz < G.groups * G.splits; bz++) {
        for (int64_t by = 0; by < G.nt; by++) {
            for (int64_t bx = 0; bx < G.mt; bx++) {
                tile_pos at = tile_at(G, p.K, bx, by, bz);
                for (int t = 0; t < NT; t++) {
                    for (int i = 0; i < 16; i++) {
                        acc[t][i / 4][i % 4] = Acc(0);
                    }
                }
                for (int64_t kb = at.split * G.kchunk; kb < at.k1; kb += BK) {
                    for (int t = 0; t < NT; t++) {
                        tile_load(p, *s, t, at, kb);
                    }
                    for (int t = 0; t < NT; t++) {
                        tile_mac(*s, t, acc[t]);
                    }
                }
                for (int t = 0; t < NT; t++) {
                    tile_store(p, t, at, acc[t]);
                }
            }
        }
    }
    free(s);
    free(acc);
    return 0;
}

/*
 * Splits of K for the weight gradient: enough blocks to fill a large GPU
 * (about 4 per SM of a 132-SM H100) when the product itself has few tiles,
 * each split at least 512 long.  Depends on the shape only, so the host test
 * sums the same splits.
 */
static int64_t wgrad_splits(int64_t tiles_, int64_t K)
{
    const int64_t want = 528;
    int64_t s = tiles_ >= want ? 1 : (want + tiles_ - 1) / tiles_;
    int64_t most = K / 512 > 1 ? K / 512 : 1;
    s = s < most ? s : most;
    return s < 64 ? s : 64;
}

/* gw (O, C/groups, KH, KW) = the sum over splits of partial (splits, groups, og, N); i = o * N + col */
template <typename T, typename Acc>
__host__ __device__ void wgrad_finish_one(const Acc *partial, int64_t splits, int64_t groups,
                                          int64_t og, int64_t N, const PfCudaConvGeom &g,
                                          nd4<T> gw, int64_t i)
{
    int64_t o = i / N, col = i % N, grp = o / og, m = o % og;
    Acc sum = Acc(0);
    for (int64_t s = 0; s < splits; s++) {
        sum += partial[((s * groups + grp) * og + m) * N + col];
    }
    idx3 t = split3(col, g.kh, g.kw);
    gw.at(o, t.a, t.b, t.c) = pfc_store<T, Acc>(sum);
}

template <typename T, typename Acc>
__global__ void wgrad_finish_kernel(const Acc *partial, int64_t splits, int64_t og, int64_t N,
                                    PfCudaConvGeom g, nd4<T> gw, int64_t total)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += step) {
        wgrad_finish_one(partial, splits, g.groups, og, N, g, gw, i);
    }
}

static int grid_fail(const char *what, const gemm_grid &G)
{
    char msg[256];
    snprintf(msg, sizeof(msg), "pf_cuda_conv: %s needs a grid of (%lld, %lld, %lld) blocks; the "
             "second and third dimensions may be at most 65535", what, (long long)G.mt,
             (long long)G.nt, (long long)(G.groups * G.splits));
    return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE, msg);
}

template <typename P> static int run_gemm(int device, const char *what, const P &p,
                                          const gemm_grid &G)
{
    if (device == PF_CUDA_HOST) {
        return igemm_host(p, G);
    }
    if (G.nt > 65535 || G.groups * G.splits > 65535 || G.mt > INT32_MAX) {
        return grid_fail(what, G);
    }
    dim3 grid((unsigned)G.mt, (unsigned)G.nt, (unsigned)(G.groups * G.splits));
    igemm_kernel<P><<<grid, NT, 0, pfc_stream()>>>(p, G);
    return pfc_check_launch(what, device);
}

static gemm_grid grid_for(int64_t M, int64_t N, int64_t K, int64_t groups, int64_t splits)
{
    gemm_grid G;
    G.mt = (M + BM - 1) / BM;
    G.nt = (N + BN - 1) / BN;
    G.groups = groups;
    G.splits = splits;
    int64_t per = (K + splits - 1) / splits;
    G.kchunk = (per + BK - 1) / BK * BK;
    if (G.kchunk == 0) {
        G.kchunk = BK;
    }
    return G;
}

template <typename T>
static int conv_typed(int device, int kind, const PfCudaConvGeom &g, const PfCudaNd4 *a,
                      const PfCudaNd4 *b, const PfCudaVec &bias, const PfCudaNd4 *out)
{
    typedef typename pfc_acc<T>::type Acc;
    int64_t cg = g.c / g.groups, og = g.o / g.groups;
    if (kind == PF_CUDA_CONV_FORWARD) {
        conv_fwd<T> p;
        p.g = g;
        p.x = view<T>(a);
        p.w = view<T>(b);
        p.y = view<T>(out);
        p.bias = bias;
        p.cg = cg;
        p.og = og;
        p.M = g.n * g.oh * g.ow;
        p.N = og;
        p.K = cg * g.kh * g.kw;
        return run_gemm(device, "convolution", p, grid_for(p.M, p.N, p.K, g.groups, 1));
    }
    if (kind == PF_CUDA_CONV_INPUT_GRAD) {
        conv_igrad<T> p;
        p.g = g;
        p.gy = view<T>(a);
        p.w = view<T>(b);
        p.gx = view<T>(out);
        p.bias = bias;
        p.cg = cg;
        p.og = og;
        p.M = g.n * g.h * g.w;
        p.N = cg;
        p.K = og * g.kh * g.kw;
        return run_gemm(device, "convolution input gradient", p,
                        grid_for(p.M, p.N, p.K, g.groups, 1));
    }
    conv_wgrad<T> p;
    p.g = g;
    p.x = view<T>(a);
    p.gy = view<T>(b);
    p.cg = cg;
    p.og = og;
    p.M = og;
    p.N = cg * g.kh * g.kw;
    p.K = g.n * g.oh * g.ow;
    gemm_grid G0 = grid_for(p.M, p.N, p.K, g.groups, 1);
    int64_t splits = wgrad_splits(G0.mt * G0.nt * g.groups, p.K);
    gemm_grid G = grid_for(p.M, p.N, p.K, g.groups, splits);
    pfc_scratch scratch(device);
    int64_t total = g.o * p.N;
    int status = scratch.get(sizeof(Acc) * (size_t)(splits * total), "pf_cuda_conv");
    if (status != 0) {
        return status;
    }
    p.partial = (Acc *)scratch.ptr;
    if ((status = run_gemm(device, "convolution weight gradient", p, G)) != 0) {
        return status;
    }
    nd4<T> gw = view<T>(out);
    if (device == PF_CUDA_HOST) {
        for (int64_t i = 0; i < total; i++) {
            wgrad_finish_one(p.partial, splits, g.groups, og, p.N, g, gw, i);
        }
        return 0;
    }
    wgrad_finish_kernel<T, Acc><<<pfc_nn_blocks(total), PFC_NN_THREADS, 0, pfc_stream()>>>(
        p.partial, splits, og, p.N, g, gw, total);
    return pfc_check_launch("convolution weight gradient sum", device);
}

} // namespace

int pf_cuda_conv(int device, int kind, int dtype, const PfCudaConvGeom *g, const PfCudaNd4 *a,
                 const PfCudaNd4 *b, const PfCudaVec *bias, const PfCudaNd4 *out)
{
    if (kind < PF_CUDA_CONV_FORWARD || kind > PF_CUDA_CONV_WEIGHT_GRAD || g->groups < 1 ||
        g->c % g->groups != 0 || g->o % g->groups != 0) {
        return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE,
                             "pf_cuda_conv: bad kind or groups (the caller checks them)");
    }
    /* nothing to write: an empty batch, image or channel set */
    int64_t outputs = kind == PF_CUDA_CONV_FORWARD      ? g->n * g->o * g->oh * g->ow
                      : kind == PF_CUDA_CONV_INPUT_GRAD ? g->n * g->c * g->h * g->w
                                                        : g->o * g->c * g->kh * g->kw;
    if (outputs == 0) {
        return 0;
    }
    PfCudaVec bv = bias != nullptr ? *bias : pfc_no_vec();
    return pfc_by_dtype(dtype, "pf_cuda_conv", [&](auto *tag) {
        typedef typename std::remove_pointer<decltype(tag)>::type T;
        return pfc_nn_run(device, [&] { return conv_typed<T>(device, kind, *g, a, b, bv, out); });
    });
}

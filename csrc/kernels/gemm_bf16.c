/*
 * gemm_bf16.c -- bfloat16 matrix products with float32 accumulation: the
 * pf_gemm problems of dtype PF_BFLOAT16 (gemm.h), C (m x n) = A (m x k,
 * bfloat16) B (k x n, bfloat16) for every batch index, C float32 or, with
 * c_bf16, the float32 sums rounded to bfloat16 here (as half.h rounds).
 *
 * Why pyframe has its own kernel: the OpenBLAS it links (the scipy-openblas32
 * wheel, 0.3.34) is built without sbgemm -- `nm -D libscipy_openblas.so`
 * lists no sbgemm symbol -- so the only bfloat16 product it offers is the
 * float32 one (widen both operands, sgemm, round).  Recent x86 cores
 * multiply bfloat16 directly, in one of two ways:
 *
 *   amx     AMX-BF16: TDPBF16PS multiplies a 16 x 32 tile of A by a 32 x 16
 *           tile of B into a 16 x 16 float32 tile of C, 8192 multiply-adds
 *           per instruction, in eight 1 KB tile registers.
 *   avx512  AVX512-BF16: VDPBF16PS adds the products of 16 k-pairs to 16
 *           float32 lanes of a zmm register.
 *
 * The third, generic, path is the float32 engine itself; linalg.c routes
 * products there when neither instruction set is usable, so this file only
 * runs on a CPU that has one of them.  The path is chosen once, at the
 * first bfloat16 product: cpuid says what the processor has, XCR0 what the
 * OS saves on a context switch, and Linux must be asked for the 8 KB of AMX
 * tile state per thread (arch_prctl ARCH_REQ_XCOMP_PERM).  AMX is taken
 * wherever it works.  VDPBF16PS is the default only on AMD processors: Zen 4
 * issues one per cycle, twice the multiply-adds of a float32 FMA, but on
 * Intel's Sapphire Rapids it issues every other cycle (measured here: 1.65
 * per ns against 6.6 FMAs, so 53 against 106 G multiply-adds/s), and the
 * avx512 path ran at 0.7x the float32 engine -- so an Intel CPU without
 * usable AMX (an older kernel refuses it; Cooper Lake lacks it) keeps the
 * generic path.  Any check failing leaves the next path down; nothing here
 * can crash on an older CPU, because every instruction that needs a feature
 * sits in a function compiled for it (target attributes) and is only
 * called once it is known.  PYFRAME_BF16_GEMM=generic|avx512 caps the choice.
 *
 * Packed layout, shared by both paths (every operand is packed, so A and B
 * may have any strides):
 *
 *   A  mt = ceil(m/16) row tiles x kc = ceil(k/32) chunks, tile (i, c) at
 *      Ap + (i*kc + c)*512: 16 rows of 32 bf16, row r = A[16i + r][32c ...].
 *   B  a panel of up to 16 column tiles at a time (below), x kc chunks:
 *      its tile (j, c) at Bp + (j*kc + c)*512 is 16 rows of 16 k-pairs
 *      ("VNNI" layout), row r holding B[32c + 2r][16j + q] and
 *      B[32c + 2r + 1][16j + q] side by side at 2q and 2q + 1.  A 32-bit
 *      word is one column's k-pair, which both TDPBF16PS and VDPBF16PS
 *      multiply.
 *
 * Everything outside (m, k) and (k, n) is zero, so ragged edges and a k
 * that is no multiple of 32 (odd included) cost padding, not special
 * cases.  The chunks of one tile row (or column) lie one after the other:
 * for the avx512 path a column tile of B is simply kc*16 rows of 32 bf16.
 *
 * Blocking.  Measured on this project's machine (Sapphire Rapids, one
 * core): a tile product takes about 5 ns with its operands in L1, 7-10 ns
 * streaming them from L2 and 35 ns from L3, so the operands of the inner
 * loops must come from L2; and each micro-kernel call ends by storing its
 * C tiles, which waits for the tile pipeline to drain, so long runs of k
 * (1024) beat short ones (256) by about a quarter.  So: A is packed whole;
 * C is cut into panels of 256 columns (and, when there are too few panels
 * to keep every thread busy, ranges of rows), and the thread that computes
 * a panel first packs the panel of B it needs (k x 256, 512 KB for
 * k = 1024), which it then reads back from L2.  Within a panel: k in steps
 * of KB chunks, blocks of 256 rows (their A, 512 KB, stays in L2 while the
 * panel's 8 column pairs pass), pairs of column tiles, pairs of row tiles.
 * No element of C is ever split between threads, so results have the same
 * bits on any thread count.  Between k steps the sums stay float32: in C
 * itself, or for a bfloat16 C in a 256 x 256 block of the thread's own.
 *
 * Threads: pyframe's OpenMP threads (pf_get_num_threads()).  OpenBLAS is
 * not called here, so its pool is idle and the two never compete.  A batch
 * of at least as many products as threads is split by product (each thread
 * packs its own A); otherwise the threads pack each product's A together
 * and then share out its jobs (panel x row range).
 */
#include "gemm.h"
#include "half.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define PF_X86_BF16 1
#include <cpuid.h>
#include <immintrin.h>
#ifdef __linux__
#include <sys/syscall.h>
#include <unistd.h>
#endif
#else
#define PF_X86_BF16 0
#endif

const char *const pf_bf16_path_names[PF_BF16_NPATHS] = {"generic", "avx512", "amx"};

#define TILE_ELEMS 512          /* bf16 elements in one packed tile (1 KB) */
#define KB 32                   /* k chunks (of 32) per blocking step: k = 1024 */
#define BLOCK_M 16              /* row tiles per block: 256 rows of A per k step in L2 */
#define BLOCK_N 16              /* column tiles per panel of B: 256 columns */
#define BF16_GRAIN (1 << 18)    /* multiply-adds below which one thread does it all */
#define SCRATCH_FLOATS 256      /* a 16 x 16 float32 edge tile, per thread */
#define WORK_CACHE_MAX ((size_t)64 << 20)  /* the largest packing buffer kept for reuse */

/* ------------------------------------------------------------ detection */

static int detected;
static int available[PF_BF16_NPATHS] = {1, 0, 0};
static int avx512_by_default;   /* an AMD CPU: VDPBF16PS out-runs float32 FMA */
static pf_bf16_path active = PF_BF16_GENERIC;
static const char *why_not[PF_BF16_NPATHS] = {NULL, "not checked", "not checked"};

#if PF_X86_BF16
static uint64_t read_xcr0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t)hi << 32 | lo;
}

/* Ask Linux for the AMX tile data state; 0 when this process may use it. */
static int request_amx(const char **why)
{
#if defined(__linux__) && defined(SYS_arch_prctl)
    const long get_perm = 0x1022, req_perm = 0x1023, xtiledata = 18;
    unsigned long granted = 0;
    int saved = errno;
    long rc = syscall(SYS_arch_prctl, req_perm, xtiledata);
    if (rc == 0) {
        rc = syscall(SYS_arch_prctl, get_perm, &granted);
    }
    errno = saved;
    if (rc != 0 || !(granted >> xtiledata & 1)) {
        *why = "the kernel refused the AMX tile state (arch_prctl ARCH_REQ_XCOMP_PERM)";
        return -1;
    }
    return 0;
#else
    *why = "pyframe asks for the AMX tile state only on Linux";
    return -1;
#endif
}
#endif

/*
 * What this CPU and OS can run.  AVX-512 state needs XCR0 bits 1, 2 and
 * 5-7 (SSE, AVX, opmask and both halves of the upper zmm registers); AMX
 * needs bits 17 and 18 (tile configuration and data) and, on Linux, the
 * per-process permission.  The packing uses AVX-512BW, which every AMX
 * processor has.
 */
static void detect_cpu(void)
{
#if PF_X86_BF16
    unsigned a, b, c, d;
    /* vendor "AuthenticAMD" in ebx, edx, ecx */
    avx512_by_default = __get_cpuid(0, &a, &b, &c, &d) && b == 0x68747541u &&
                        d == 0x69746e65u && c == 0x444d4163u;
    if (__get_cpuid(1, &a, &b, &c, &d) && (c >> 27 & 1) && __get_cpuid_max(0, NULL) >= 7) {
        uint64_t xcr0 = read_xcr0();
        __cpuid_count(7, 0, a, b, c, d);
        int avx512 = (b >> 16 & 1) && (b >> 30 & 1) && (xcr0 & 0xe6) == 0xe6;
        int amx = (d >> 22 & 1) && (d >> 24 & 1);
        int amx_os = (xcr0 >> 17 & 3) == 3;
        __cpuid_count(7, 1, a, b, c, d);
        int avx512bf16 = a >> 5 & 1;
        why_not[PF_BF16_AVX512] = !avx512 ? "the CPU (or OS) lacks AVX-512F/BW"
                                  : !avx512bf16 ? "the CPU lacks AVX512-BF16" : NULL;
        why_not[PF_BF16_AMX] = !amx ? "the CPU lacks AMX-TILE/AMX-BF16"
                               : !avx512 ? "the CPU (or OS) lacks AVX-512F/BW"
                               : !amx_os ? "the OS does not enable the AMX state (XCR0)"
                               : NULL;
    }
    else {
        why_not[PF_BF16_AVX512] = why_not[PF_BF16_AMX] = "the CPU lacks AVX-512";
    }
#else
    why_not[PF_BF16_AVX512] = why_not[PF_BF16_AMX] = "not an x86-64 build with GCC";
#endif
}

/*
 * PYFRAME_BF16_GEMM=generic|avx512|amx caps the path (as oneDNN's
 * ONEDNN_MAX_CPU_ISA does): a way round a misbehaving instruction set, and
 * how the tests see a CPU without one.  It is read once, at detection.
 */
static void apply_cap(void)
{
    static char reason[160];
    const char *cap = getenv("PYFRAME_BF16_GEMM");
    if (cap == NULL || *cap == '\0') {
        return;
    }
    int limit = -1;
    for (int p = 0; p < PF_BF16_NPATHS; p++) {
        if (strcmp(cap, pf_bf16_path_names[p]) == 0) {
            limit = p;
        }
    }
    if (limit < 0) {
        snprintf(reason, sizeof(reason), "PYFRAME_BF16_GEMM=%.40s is not one of amx, avx512, "
                 "generic (so only the generic path is used)", cap);
        limit = PF_BF16_GENERIC;
    }
    else {
        snprintf(reason, sizeof(reason), "disabled by PYFRAME_BF16_GEMM=%s", cap);
    }
    for (int p = limit + 1; p < PF_BF16_NPATHS; p++) {
        if (why_not[p] == NULL) {
            why_not[p] = reason;
        }
    }
}

static void detect(void)
{
    detect_cpu();
    apply_cap();
#if PF_X86_BF16
    /* asked last: a path that is not used never claims the 8 KB per thread */
    if (why_not[PF_BF16_AMX] == NULL) {
        (void)request_amx(&why_not[PF_BF16_AMX]);
    }
#endif
    available[PF_BF16_AVX512] = why_not[PF_BF16_AVX512] == NULL;
    available[PF_BF16_AMX] = why_not[PF_BF16_AMX] == NULL;
    active = available[PF_BF16_AMX] ? PF_BF16_AMX
             : available[PF_BF16_AVX512] && avx512_by_default ? PF_BF16_AVX512
             : PF_BF16_GENERIC;
    detected = 1;
}

int pf_bf16_path_available(pf_bf16_path p, const char **why)
{
    if (!detected) {
        detect();
    }
    if (why != NULL) {
        *why = why_not[p];
    }
    return available[p];
}

pf_bf16_path pf_bf16_path_active(void)
{
    if (!detected) {
        detect();
    }
    return active;
}

void pf_bf16_path_set(pf_bf16_path p)
{
    if (!detected) {
        detect();
    }
    active = p;
}

#if PF_X86_BF16

#define PACK_FN __attribute__((target("avx512f,avx512bw")))
#define AVX_FN __attribute__((target("avx512f,avx512bw,avx512bf16")))
#define AMX_FN __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw")))
#define INLINE inline __attribute__((always_inline))

/*
 * GCC's tile intrinsics are asm statements that do not tell the compiler
 * which memory they read; a barrier makes stores to a buffer that a tile
 * load reads next happen first.
 */
#define COMPILER_BARRIER() __asm__ volatile("" ::: "memory")

/* ------------------------------------------------------------ packing */

/*
 * x[0..15] (16 rows of 16 32-bit words) becomes its transpose: word q of
 * row r goes to word r of row q.  Three rounds of shuffles: within 128-bit
 * lanes, pairs of words then pairs of pairs; then across lanes.
 */
static PACK_FN INLINE void transpose16_epi32(__m512i x[16])
{
    __m512i a[16], b[16];
    for (int i = 0; i < 16; i += 2) {
        a[i] = _mm512_unpacklo_epi32(x[i], x[i + 1]);
        a[i + 1] = _mm512_unpackhi_epi32(x[i], x[i + 1]);
    }
    /* b[4i + c], lane L: word 4L + c of rows 4i .. 4i + 3 */
    for (int i = 0; i < 16; i += 4) {
        b[i] = _mm512_unpacklo_epi64(a[i], a[i + 2]);
        b[i + 1] = _mm512_unpackhi_epi64(a[i], a[i + 2]);
        b[i + 2] = _mm512_unpacklo_epi64(a[i + 1], a[i + 3]);
        b[i + 3] = _mm512_unpackhi_epi64(a[i + 1], a[i + 3]);
    }
    for (int c = 0; c < 4; c++) {
        __m512i u0 = _mm512_shuffle_i32x4(b[c], b[4 + c], 0x44);
        __m512i u1 = _mm512_shuffle_i32x4(b[c], b[4 + c], 0xee);
        __m512i v0 = _mm512_shuffle_i32x4(b[8 + c], b[12 + c], 0x44);
        __m512i v1 = _mm512_shuffle_i32x4(b[8 + c], b[12 + c], 0xee);
        x[c] = _mm512_shuffle_i32x4(u0, v0, 0x88);
        x[4 + c] = _mm512_shuffle_i32x4(u0, v0, 0xdd);
        x[8 + c] = _mm512_shuffle_i32x4(u1, v1, 0x88);
        x[12 + c] = _mm512_shuffle_i32x4(u1, v1, 0xdd);
    }
}

/* Two rows of 16 bf16 (at p and p + stride) interleaved: word q = (p[q], p[stride + q]). */
static PACK_FN INLINE __m512i interleave16(const pf_bf16 *p, int64_t stride)
{
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9,
                                         24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1,
                                         16, 0);
    __m256i lo = _mm256_loadu_si256((const __m256i *)p);
    __m256i hi = _mm256_loadu_si256((const __m256i *)(p + stride));
    return _mm512_permutexvar_epi16(idx, _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1));
}

/*
 * Tile (i, c) of packed A: dst (16 x 32) = A[16i .., 32c ..], zero outside
 * (m, k).  A (m x k) has strides rs, cs in elements (any sign).
 */
static PACK_FN void pack_a_tile(const pf_bf16 *A, int64_t rs, int64_t cs, int64_t m, int64_t k,
                                int64_t i, int64_t c, pf_bf16 *dst)
{
    int64_t r0 = 16 * i, k0 = 32 * c;
    int rows = m - r0 < 16 ? (int)(m - r0) : 16, cols = k - k0 < 32 ? (int)(k - k0) : 32;
    if (rows == 16 && cols == 32 && cs == 1) {
        /* rows of A contiguous: a tile row is 64 bytes of a row of A */
        for (int r = 0; r < 16; r++) {
            _mm512_storeu_si512(dst + 32 * r, _mm512_loadu_si512(A + (r0 + r) * rs + k0));
        }
        return;
    }
    if (rows == 16 && cols == 32 && rs == 1) {
        /*
         * Columns contiguous (a transposed operand): interleaved pairs of
         * columns make 16 words per pair, one per row; the tile is the
         * transpose of those 16 x 16 words.
         */
        __m512i x[16];
        for (int s = 0; s < 16; s++) {
            x[s] = interleave16(A + (k0 + 2 * s) * cs + r0, cs);
        }
        transpose16_epi32(x);
        for (int r = 0; r < 16; r++) {
            _mm512_storeu_si512(dst + 32 * r, x[r]);
        }
        return;
    }
    memset(dst, 0, TILE_ELEMS * sizeof(pf_bf16));
    if (rs == 1) {
        for (int t = 0; t < cols; t++) {
            const pf_bf16 *src = A + (k0 + t) * cs + r0;
            for (int r = 0; r < rows; r++) {
                dst[32 * r + t] = src[r];
            }
        }
        return;
    }
    for (int r = 0; r < rows; r++) {
        const pf_bf16 *src = A + (r0 + r) * rs + k0 * cs;
        for (int t = 0; t < cols; t++) {
            dst[32 * r + t] = src[t * cs];
        }
    }
}

/*
 * Tile (j, c) of packed B: dst row r = the k-pair (32c + 2r, 32c + 2r + 1)
 * of columns 16j .. 16j + 15, interleaved (dst[32r + 2q + s] =
 * B[32c + 2r + s][16j + q]), zero outside (k, n).  B (k x n) has strides
 * rs, cs in elements.
 */
static PACK_FN void pack_b_tile(const pf_bf16 *B, int64_t rs, int64_t cs, int64_t k, int64_t n,
                                int64_t j, int64_t c, pf_bf16 *dst)
{
    int64_t n0 = 16 * j, k0 = 32 * c;
    int kr = k - k0 < 32 ? (int)(k - k0) : 32, cols = n - n0 < 16 ? (int)(n - n0) : 16;
    if (kr == 32 && cols == 16 && cs == 1) {
        /* rows of B contiguous: each tile row interleaves two of them */
        for (int r = 0; r < 16; r++) {
            _mm512_storeu_si512(dst + 32 * r, interleave16(B + (k0 + 2 * r) * rs + n0, rs));
        }
        return;
    }
    if (kr == 32 && cols == 16 && rs == 1) {
        /*
         * Columns contiguous (B = W^T of a row-major W, the Linear case): a
         * k-pair of one column is one 32-bit word of W's row, so the tile is
         * the transpose of 16 rows of 16 such words.
         */
        __m512i x[16];
        for (int q = 0; q < 16; q++) {
            x[q] = _mm512_loadu_si512(B + (n0 + q) * cs + k0);
        }
        transpose16_epi32(x);
        for (int r = 0; r < 16; r++) {
            _mm512_storeu_si512(dst + 32 * r, x[r]);
        }
        return;
    }
    memset(dst, 0, TILE_ELEMS * sizeof(pf_bf16));
    for (int kk = 0; kk < kr; kk++) {
        const pf_bf16 *src = B + (k0 + kk) * rs + n0 * cs;
        pf_bf16 *row = dst + 32 * (kk >> 1) + (kk & 1);
        for (int q = 0; q < cols; q++) {
            row[2 * q] = src[q * cs];
        }
    }
}

/* ------------------------------------------------------------ C */

/*
 * Where a micro-kernel's block of C comes from and goes to: the partial
 * sums of the earlier k steps (none on the first), and the float32 sums of
 * this one -- into C or into the thread's partial-sum block -- or, on the
 * last step of a bfloat16 C, the sums rounded to bfloat16.
 */
typedef struct {
    const float *in;    /* partial sums to start from, row stride ldin; NULL: zero */
    int64_t ldin;
    float *outf;        /* float32 destination, row stride ldout ... */
    pf_bf16 *outh;      /* ... or, when outf is NULL, bfloat16, row stride ldout */
    int64_t ldout;
    int64_t rows, cols; /* how much of the micro-kernel's block lies inside C */
} ctile;

/* A mask of the first n (<= 16) of 16 lanes. */
static inline __mmask16 lanes(int64_t n)
{
    return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1);
}

/*
 * 16 float32 rounded to bfloat16 and stored at dst under mask m: the
 * rounding of half.h (to nearest even, NaN kept quiet), so every path
 * rounds alike.
 */
static PACK_FN INLINE void store_bf16(pf_bf16 *dst, __m512 v, __mmask16 m)
{
    __m512i u = _mm512_castps_si512(v);
    __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(
        _mm512_add_epi32(u, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7fff))), 16);
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                            _mm512_set1_epi32(0x7f800000));
    __m512i q = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x0040));
    _mm512_mask_cvtepi32_storeu_epi16(dst, m, _mm512_mask_mov_epi32(r, nan, q));
}

/* A partial tile (rows x cols of 16 x 16, row stride ld) into a full one, zero-padded. */
static void edge_in(const float *c, int64_t ld, int64_t rows, int64_t cols, float *t)
{
    rows = rows < 16 ? rows : 16;
    cols = cols < 16 ? cols : 16;
    memset(t, 0, SCRATCH_FLOATS * sizeof(float));
    for (int64_t r = 0; r < rows; r++) {
        memcpy(t + 16 * r, c + r * ld, (size_t)cols * sizeof(float));
    }
}

/* The rows x cols inside C of a full tile t, to float32 (f) or bfloat16 (h) C. */
static PACK_FN void edge_out(float *f, pf_bf16 *h, int64_t ld, int64_t rows, int64_t cols,
                             const float *t)
{
    rows = rows < 16 ? rows : 16;
    for (int64_t r = 0; r < rows; r++) {
        if (f != NULL) {
            memcpy(f + r * ld, t + 16 * r, (size_t)(cols < 16 ? cols : 16) * sizeof(float));
        }
        else {
            store_bf16(h + r * ld, _mm512_loadu_ps(t + 16 * r), lanes(cols));
        }
    }
}

/* ------------------------------------------------------------ AMX */

/* The tile configuration: palette 1, every tile 16 rows of 64 bytes. */
typedef struct {
    uint8_t palette;
    uint8_t start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_config;

static AMX_FN void amx_begin(void)
{
    amx_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) {
        cfg.colsb[t] = 64;
        cfg.rows[t] = 16;
    }
    COMPILER_BARRIER();
    _tile_loadconfig(&cfg);
}

static AMX_FN void amx_end(void)
{
    _tile_release();
}

/*
 * C tile T, at row tile ti and column tile tj of the micro-kernel's block:
 * zero on the first k step, else the partial sums -- loaded straight when
 * all 16 x 16 lie inside C, through the scratch tile otherwise.
 */
#define C_IN(T, ti, tj)                                                             \
    do {                                                                            \
        int64_t r_ = ct->rows - 16 * (ti), q_ = ct->cols - 16 * (tj);               \
        if (ct->in == NULL) {                                                       \
            _tile_zero(T);                                                          \
        }                                                                           \
        else {                                                                      \
            const float *p_ = ct->in + (ti) * 16 * ct->ldin + (tj) * 16;            \
            if (r_ >= 16 && q_ >= 16) {                                             \
                _tile_loadd(T, p_, ct->ldin * (int64_t)sizeof(float));              \
            }                                                                       \
            else {                                                                  \
                edge_in(p_, ct->ldin, r_, q_, scr);                                 \
                COMPILER_BARRIER();                                                 \
                _tile_loadd(T, scr, 64);                                            \
            }                                                                       \
        }                                                                           \
    } while (0)

/* ... and out: float32 straight when whole, else (or for bfloat16) through scratch. */
#define C_OUT(T, ti, tj)                                                            \
    do {                                                                            \
        int64_t r_ = ct->rows - 16 * (ti), q_ = ct->cols - 16 * (tj);               \
        int64_t o_ = (ti) * 16 * ct->ldout + (tj) * 16;                             \
        if (ct->outf != NULL && r_ >= 16 && q_ >= 16) {                             \
            _tile_stored(T, ct->outf + o_, ct->ldout * (int64_t)sizeof(float));     \
        }                                                                           \
        else {                                                                      \
            _tile_stored(T, scr, 64);                                               \
            edge_out(ct->outf ? ct->outf + o_ : NULL, ct->outh ? ct->outh + o_ : NULL, \
                     ct->ldout, r_, q_, scr);                                       \
        }                                                                           \
    } while (0)

/*
 * The AMX micro-kernel: C (16mt x 16nt, mt and nt 1 or 2) = partial sums
 * + A (16mt x 32cn) B (32cn x 16nt).  a: packed A tile (i, c0), with row
 * tile i + 1 astep elements on; b: packed B tile (j, c0), column tile j + 1
 * bstep on; ct: C's element (16i, 16j) in and out.
 *
 * Tiles: C in tmm0 (0,0), tmm1 (0,1), tmm2 (1,0), tmm3 (1,1); A in tmm4-5;
 * B in tmm6-7.  With mt = nt = 2 each A and B tile loaded serves two
 * TDPBF16PS, four in flight, which keeps the tile unit busy.
 */
static AMX_FN INLINE void amx_micro(const int mt, const int nt, const pf_bf16 *a, int64_t astep,
                                    const pf_bf16 *b, int64_t bstep, int64_t cn,
                                    const ctile *ct, float *scr)
{
    C_IN(0, 0, 0);
    if (nt > 1) {
        C_IN(1, 0, 1);
    }
    if (mt > 1) {
        C_IN(2, 1, 0);
        if (nt > 1) {
            C_IN(3, 1, 1);
        }
    }
    for (int64_t p = 0; p < cn; p++) {
        const pf_bf16 *ap = a + p * TILE_ELEMS, *bp = b + p * TILE_ELEMS;
        _tile_loadd(4, ap, 64);
        _tile_loadd(6, bp, 64);
        _tile_dpbf16ps(0, 4, 6);
        if (nt > 1) {
            _tile_loadd(7, bp + bstep, 64);
            _tile_dpbf16ps(1, 4, 7);
        }
        if (mt > 1) {
            _tile_loadd(5, ap + astep, 64);
            _tile_dpbf16ps(2, 5, 6);
            if (nt > 1) {
                _tile_dpbf16ps(3, 5, 7);
            }
        }
    }
    C_OUT(0, 0, 0);
    if (nt > 1) {
        C_OUT(1, 0, 1);
    }
    if (mt > 1) {
        C_OUT(2, 1, 0);
        if (nt > 1) {
            C_OUT(3, 1, 1);
        }
    }
}

/* ------------------------------------------------------------ AVX512-BF16 */

/*
 * The AVX512-BF16 micro-kernel: C (8 x 16nt, nt 1 or 2) = partial sums +
 * A (8 x 32cn) B (32cn x 16nt).  a: row r0 % 16 of packed A tile
 * (r0 / 16, c0), i.e. 8 rows of 32 bf16 with the next chunk 512 elements
 * on; b and bstep as for amx_micro; ct: C's element (r0, 16j) in and out
 * (masked loads and stores at the edges).  Per k-pair: two rows of B (one
 * zmm each), then for each of the 8 rows of A its pair broadcast to all
 * lanes, two VDPBF16PS.
 */
static AVX_FN INLINE void avx_micro(const int nt, const pf_bf16 *a, const pf_bf16 *b,
                                    int64_t bstep, int64_t cn, const ctile *ct)
{
    __m512 acc0[8], acc1[8];
    __mmask16 m0 = lanes(ct->cols), m1 = ct->cols > 16 ? lanes(ct->cols - 16) : 0;
    int nr = ct->rows < 8 ? (int)ct->rows : 8;
    for (int r = 0; r < 8; r++) {
        acc0[r] = acc1[r] = _mm512_setzero_ps();
        if (ct->in != NULL && r < nr) {
            acc0[r] = _mm512_maskz_loadu_ps(m0, ct->in + r * ct->ldin);
            if (nt > 1) {
                acc1[r] = _mm512_maskz_loadu_ps(m1, ct->in + r * ct->ldin + 16);
            }
        }
    }
    for (int64_t p = 0; p < cn; p++) {
        for (int q = 0; q < 16; q++) {
            const pf_bf16 *bp = b + p * TILE_ELEMS + 32 * q, *ap = a + p * TILE_ELEMS + 2 * q;
            __m512bh b0 = (__m512bh)_mm512_loadu_si512(bp);
            __m512bh b1 = nt > 1 ? (__m512bh)_mm512_loadu_si512(bp + bstep) : b0;
            for (int r = 0; r < 8; r++) {
                int32_t pair;
                memcpy(&pair, ap + 32 * r, sizeof(pair));
                __m512bh av = (__m512bh)_mm512_set1_epi32(pair);
                acc0[r] = _mm512_dpbf16_ps(acc0[r], av, b0);
                if (nt > 1) {
                    acc1[r] = _mm512_dpbf16_ps(acc1[r], av, b1);
                }
            }
        }
    }
    for (int r = 0; r < nr; r++) {
        if (ct->outf != NULL) {
            _mm512_mask_storeu_ps(ct->outf + r * ct->ldout, m0, acc0[r]);
            if (nt > 1) {
                _mm512_mask_storeu_ps(ct->outf + r * ct->ldout + 16, m1, acc1[r]);
            }
        }
        else {
            store_bf16(ct->outh + r * ct->ldout, acc0[r], m0);
            if (nt > 1) {
                store_bf16(ct->outh + r * ct->ldout + 16, acc1[r], m1);
            }
        }
    }
}

/* ------------------------------------------------------------ blocking */

/*
 * One job's view of a product: packed A, the packed panel of B that the
 * job multiplies it by, and where the panel's columns of C start.
 */
typedef struct {
    int64_t m, kc;              /* rows of C; chunks of k */
    const pf_bf16 *ap;          /* packed A: row tile i, chunk c at ap + (i*kc + c)*512 */
    const pf_bf16 *bp;          /* packed panel: its tile j, chunk c at bp + (j*kc + c)*512 */
    float *cf;                  /* C's element (0, first column of the panel), float32 ... */
    pf_bf16 *ch;                /* ... or bfloat16 (one of the two is NULL); row stride ldc */
    int64_t ldc;
    int64_t cols;               /* columns of C from there on */
    float *part;                /* bfloat16 C over several k steps: partial sums of one block */
} job;

#define PART_LD (BLOCK_N * 16)  /* row stride of the partial-sum block */

/*
 * Where the micro-kernel at row tile i, column tile j (of the panel) of
 * block ib reads and writes on the k step [c0, c0 + cn): a float32 C
 * holds the partial sums itself; a bfloat16 C keeps them in the thread's
 * block `part` until the last step rounds them into C.
 */
static inline ctile c_of(const job *J, int64_t ib, int64_t i, int64_t j, int first, int last)
{
    ctile t;
    int64_t oc = 16 * i * J->ldc + 16 * j, op = 16 * (i - ib) * PART_LD + 16 * j;
    t.rows = J->m - 16 * i;
    t.cols = J->cols - 16 * j;
    if (J->cf != NULL) {
        t.in = first ? NULL : J->cf + oc;
        t.ldin = J->ldc;
        t.outf = J->cf + oc;
        t.outh = NULL;
        t.ldout = J->ldc;
        return t;
    }
    t.in = first ? NULL : J->part + op;
    t.ldin = PART_LD;
    t.outf = last ? NULL : J->part + op;
    t.outh = last ? J->ch + oc : NULL;
    t.ldout = last ? J->ldc : PART_LD;
    return t;
}

/*
 * Row tiles [i0, i1) of C times the panel's nj column tiles, all of k, on
 * AMX: blocks of BLOCK_M row tiles; in a block, k in steps of KB chunks
 * (the block's A for one step, 256 x 1024 bf16, stays in L2 while the
 * panel's column pairs pass), then pairs of column tiles, then pairs of
 * row tiles.
 */
static AMX_FN void amx_job(const job *J, int64_t i0, int64_t i1, int64_t nj, float *scr)
{
    const int64_t kc = J->kc, step = kc * TILE_ELEMS;
    COMPILER_BARRIER();     /* the packed tiles are written before they are loaded */
    for (int64_t ib = i0; ib < i1; ib += BLOCK_M) {
        int64_t ie = ib + BLOCK_M < i1 ? ib + BLOCK_M : i1;
        for (int64_t c0 = 0; c0 < kc; c0 += KB) {
            int64_t cn = kc - c0 < KB ? kc - c0 : KB;
            for (int64_t j = 0; j < nj; j += 2) {
                const pf_bf16 *b = J->bp + j * step + c0 * TILE_ELEMS;
                for (int64_t i = ib; i < ie; i += 2) {
                    const pf_bf16 *a = J->ap + i * step + c0 * TILE_ELEMS;
                    ctile ct = c_of(J, ib, i, j, c0 == 0, c0 + cn == kc);
                    int two_i = i + 1 < ie, two_j = j + 1 < nj;
                    if (two_i && two_j) {
                        amx_micro(2, 2, a, step, b, step, cn, &ct, scr);
                    }
                    else if (two_i) {
                        amx_micro(2, 1, a, step, b, step, cn, &ct, scr);
                    }
                    else if (two_j) {
                        amx_micro(1, 2, a, step, b, step, cn, &ct, scr);
                    }
                    else {
                        amx_micro(1, 1, a, step, b, step, cn, &ct, scr);
                    }
                }
            }
        }
    }
}

/* The same on AVX512-BF16, in steps of 8 rows. */
static AVX_FN void avx_job(const job *J, int64_t i0, int64_t i1, int64_t nj)
{
    const int64_t kc = J->kc, step = kc * TILE_ELEMS;
    for (int64_t ib = i0; ib < i1; ib += BLOCK_M) {
        int64_t ie = ib + BLOCK_M < i1 ? ib + BLOCK_M : i1;
        int64_t r1 = 16 * ie < J->m ? 16 * ie : J->m;
        for (int64_t c0 = 0; c0 < kc; c0 += KB) {
            int64_t cn = kc - c0 < KB ? kc - c0 : KB;
            for (int64_t j = 0; j < nj; j += 2) {
                const pf_bf16 *b = J->bp + j * step + c0 * TILE_ELEMS;
                for (int64_t r0 = 16 * ib; r0 < r1; r0 += 8) {
                    const pf_bf16 *a = J->ap + (r0 / 16) * step + c0 * TILE_ELEMS +
                                       32 * (r0 % 16);
                    /* the 8-row step as a tile's worth, offset by its half */
                    ctile ct = c_of(J, ib, r0 / 16, j, c0 == 0, c0 + cn == kc);
                    int64_t h = r0 % 16;
                    ct.rows -= h;
                    ct.in = ct.in ? ct.in + h * ct.ldin : NULL;
                    ct.outf = ct.outf ? ct.outf + h * ct.ldout : NULL;
                    ct.outh = ct.outh ? ct.outh + h * ct.ldout : NULL;
                    if (j + 1 < nj) {
                        avx_micro(2, a, b, step, cn, &ct);
                    }
                    else {
                        avx_micro(1, a, b, step, cn, &ct);
                    }
                }
            }
        }
    }
}

/* ------------------------------------------------------------ driver */

/*
 * How a batch is cut up.  Jobs are (panel, row range) pairs: a panel is
 * BLOCK_N column tiles of C (256 columns), a row range a run of row tiles;
 * each job packs its panel of B (k x 256, 512 KB for k = 1024) right
 * before using it, so the packed panel is read back from L2, not from
 * memory, and every row of A meets it there.
 */
typedef struct {
    const pf_gemm *g;
    pf_bf16_path path;
    int64_t mt, nt, kc;         /* row tiles, column tiles, chunks of k */
    int64_t npanel, nrange;     /* panels across, row ranges down */
    int64_t range;              /* row tiles per range (even) */
    int share_a;                /* A is the same for every batch index: packed once */
    int a_colwise, b_rowwise;   /* the packing order (pack_a, pack_panel) */
} plan;

/*
 * Packed tile t of A: t counts the tiles in the order that reads A as it
 * lies -- along its rows when they are contiguous, down its columns when
 * those are.
 */
static void pack_a(const plan *P, const pf_bf16 *A, pf_bf16 *dst, int64_t t)
{
    const pf_gemm *g = P->g;
    int64_t i = P->a_colwise ? t % P->mt : t / P->kc, c = P->a_colwise ? t / P->mt : t % P->kc;
    pack_a_tile(A, g->a.rs, g->a.cs, g->m, g->k, i, c, dst + (i * P->kc + c) * TILE_ELEMS);
}

/*
 * The panel of B of column tiles [j0, j1) into dst (tile j - j0, chunk c
 * at dst + ((j - j0)*kc + c)*512), in the order that reads B as it lies:
 * a row-major B a chunk of rows at a time across the panel (512 bytes of
 * each row), else a column tile at a time down all of k.
 */
static void pack_panel(const plan *P, const pf_bf16 *B, pf_bf16 *dst, int64_t j0, int64_t j1)
{
    const pf_gemm *g = P->g;
    int64_t kc = P->kc;
    if (P->b_rowwise) {
        for (int64_t c = 0; c < kc; c++) {
            for (int64_t j = j0; j < j1; j++) {
                pack_b_tile(B, g->b.rs, g->b.cs, g->k, g->n, j, c,
                            dst + ((j - j0) * kc + c) * TILE_ELEMS);
            }
        }
        return;
    }
    for (int64_t j = j0; j < j1; j++) {
        for (int64_t c = 0; c < kc; c++) {
            pack_b_tile(B, g->b.rs, g->b.cs, g->k, g->n, j, c,
                        dst + ((j - j0) * kc + c) * TILE_ELEMS);
        }
    }
}

/* A thread's buffers: its panel of B, the scratch tile, the partial-sum block. */
typedef struct {
    pf_bf16 *panel;
    int64_t held;               /* the panel in it; -1: none */
    float *scr, *part;
} mine;

/*
 * Job `jb` (panel jb / nrange, row range jb % nrange) of the product with
 * packed A ap, B at B and C at C (bfloat16 when g->c_bf16, else float32);
 * the thread's panel buffer is packed anew only for another panel.
 */
static void run_job(const plan *P, const pf_bf16 *ap, const pf_bf16 *B, char *C, int64_t jb,
                    mine *T)
{
    const pf_gemm *g = P->g;
    int64_t pn = jb / P->nrange, rg = jb % P->nrange;
    int64_t j0 = pn * BLOCK_N, j1 = j0 + BLOCK_N < P->nt ? j0 + BLOCK_N : P->nt;
    int64_t i0 = rg * P->range, i1 = i0 + P->range < P->mt ? i0 + P->range : P->mt;
    if (i0 >= i1) {
        return;
    }
    if (T->held != pn) {
        pack_panel(P, B, T->panel, j0, j1);
        T->held = pn;
    }
    job J = {g->m, P->kc, ap, T->panel, NULL, NULL, g->c.rs, g->n - 16 * j0, T->part};
    if (g->c_bf16) {
        J.ch = (pf_bf16 *)C + 16 * j0;
    }
    else {
        J.cf = (float *)C + 16 * j0;
    }
    if (P->path == PF_BF16_AMX) {
        amx_job(&J, i0, i1, j1 - j0, T->scr);
    }
    else {
        avx_job(&J, i0, i1, j1 - j0);
    }
}

static int shared_operand(const pf_gemm *g, const pf_gemm_mat *x)
{
    for (int d = 0; d < g->nb; d++) {
        if (g->bshape[d] > 1 && x->bstrides[d] != 0) {
            return 0;
        }
    }
    return 1;
}

static size_t round64(size_t n) { return (n + 63) & ~(size_t)63; }

/*
 * Packing buffers.  A fresh multi-megabyte allocation is fresh pages, and
 * faulting them in cost as much as the packing itself (measured: 2.2 ms
 * against 1.1 ms per 1024^3 product), so the last buffer (up to
 * WORK_CACHE_MAX) is kept for the next product.  The slot is emptied by an
 * atomic exchange while a buffer is in use, so products running at once in
 * several Python threads (the GIL is released around them) never share one.
 * A buffer's first cache line holds its size.
 */
static char *cached_work;

static char *work_take(size_t bytes)
{
    char *w = __atomic_exchange_n(&cached_work, NULL, __ATOMIC_ACQ_REL);
    if (w != NULL && *(size_t *)w >= bytes) {
        return w + PF_ALIGN;
    }
    free(w);
    if (bytes > SIZE_MAX - PF_ALIGN || posix_memalign((void **)&w, PF_ALIGN, bytes + PF_ALIGN)) {
        return NULL;
    }
    *(size_t *)w = bytes;
    return w + PF_ALIGN;
}

static void work_give(char *w)
{
    w -= PF_ALIGN;
    if (*(size_t *)w > WORK_CACHE_MAX) {
        free(w);
        return;
    }
    free(__atomic_exchange_n(&cached_work, w, __ATOMIC_ACQ_REL));
}

/*
 * The batch of g (C row-major) on P->path with nth threads.  by_item:
 * each thread takes whole batch indices, packing its own A; else the
 * threads pack each product's A together, then share out its jobs.
 * Every thread packs its own panels of B.
 */
static int64_t run_batch(const plan *P, int64_t nbatch, int nth, int by_item)
{
    const pf_gemm *g = P->g;
    size_t a_bytes = (size_t)P->mt * (size_t)P->kc * TILE_ELEMS * sizeof(pf_bf16);
    size_t p_bytes = (size_t)BLOCK_N * (size_t)P->kc * TILE_ELEMS * sizeof(pf_bf16);
    size_t na = by_item && !P->share_a ? (size_t)nth : 1;
    /* a bfloat16 C summed over several k steps keeps one block of partial sums aside */
    size_t part_bytes = g->c_bf16 && P->kc > KB ? (size_t)BLOCK_M * 16 * PART_LD * sizeof(float)
                                                : 0;
    size_t scr_bytes = round64(SCRATCH_FLOATS * sizeof(float));
    size_t per_thread = p_bytes + scr_bytes + part_bytes;
    size_t a_all, t_all, total;
    if (__builtin_mul_overflow(a_bytes, na, &a_all) ||
        __builtin_mul_overflow(per_thread, (size_t)nth, &t_all) ||
        __builtin_add_overflow(a_all, t_all, &total) || total > (size_t)INT64_MAX) {
        return INT64_MAX;
    }
    char *work = work_take(total);
    if (work == NULL) {
        return (int64_t)total;
    }
    const int64_t isz = sizeof(pf_bf16), csz = g->c_bf16 ? sizeof(pf_bf16) : sizeof(float);
    const int64_t ta = P->mt * P->kc;
    const int64_t njobs = P->npanel * P->nrange;
    const char *A = g->a.data, *B = g->b.data;
    char *C = g->c.data;
    pf_bf16 *abuf = (pf_bf16 *)work;
    (void)nth;

    #pragma omp parallel num_threads(nth) if (nth > 1)
    {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        char *own = work + a_all + (size_t)tid * per_thread;
        mine T = {(pf_bf16 *)own, -1, (float *)(own + p_bytes),
                  part_bytes ? (float *)(own + p_bytes + scr_bytes) : NULL};
        if (P->path == PF_BF16_AMX) {
            amx_begin();
        }
        /* an A shared by the whole batch is packed once, by all threads */
        if (P->share_a) {
            #pragma omp for schedule(static)
            for (int64_t t = 0; t < ta; t++) {
                pack_a(P, (const pf_bf16 *)A, abuf, t);
            }
        }
        if (by_item) {
            pf_bf16 *myA = P->share_a ? abuf : abuf + (size_t)tid * (a_bytes / isz);
            #pragma omp for schedule(dynamic, 1)
            for (int64_t bi = 0; bi < nbatch; bi++) {
                int64_t oa, ob, oc;
                pf_gemm_batch_offsets(g, bi, &oa, &ob, &oc);
                for (int64_t t = 0; t < ta && !P->share_a; t++) {
                    pack_a(P, (const pf_bf16 *)(A + oa * isz), myA, t);
                }
                T.held = -1;
                for (int64_t jb = 0; jb < njobs; jb++) {
                    run_job(P, myA, (const pf_bf16 *)(B + ob * isz), C + oc * csz, jb, &T);
                }
            }
        }
        else {
            for (int64_t bi = 0; bi < nbatch; bi++) {
                int64_t oa, ob, oc;
                pf_gemm_batch_offsets(g, bi, &oa, &ob, &oc);
                if (!P->share_a) {
                    #pragma omp for schedule(static)
                    for (int64_t t = 0; t < ta; t++) {
                        pack_a(P, (const pf_bf16 *)(A + oa * isz), abuf, t);
                    }
                }
                /*
                 * Contiguous runs of jobs per thread, so that a thread's jobs
                 * share panels; the barrier at the end keeps A until all are done.
                 */
                T.held = -1;
                #pragma omp for schedule(static)
                for (int64_t jb = 0; jb < njobs; jb++) {
                    run_job(P, abuf, (const pf_bf16 *)(B + ob * isz), C + oc * csz, jb, &T);
                }
            }
        }
        if (P->path == PF_BF16_AMX) {
            amx_end();
        }
    }
    work_give(work);
    return 0;
}

/*
 * Row ranges: all rows in one, unless there are fewer panels than two per
 * thread; then halved (never below a pair of row tiles) until there are.
 */
static void choose_jobs(plan *P, int nth, int by_item)
{
    P->npanel = (P->nt + BLOCK_N - 1) / BLOCK_N;
    P->nrange = 1;
    P->range = P->mt + (P->mt & 1);
    while (!by_item && P->npanel * P->nrange < 2 * nth && P->range > 2) {
        P->range = (P->range / 2 + 1) & ~(int64_t)1;
        P->nrange = (P->mt + P->range - 1) / P->range;
    }
}

#endif /* PF_X86_BF16 */

static void zero_c(const pf_gemm *g, int64_t nbatch)
{
    for (int64_t bi = 0; bi < nbatch; bi++) {
        int64_t oa, ob, oc;
        pf_gemm_batch_offsets(g, bi, &oa, &ob, &oc);
        for (int64_t i = 0; i < g->m; i++) {
            for (int64_t j = 0; j < g->n; j++) {
                int64_t e = oc + i * g->c.rs + j * g->c.cs;
                if (g->c_bf16) {
                    ((pf_bf16 *)g->c.data)[e] = 0;
                }
                else {
                    ((float *)g->c.data)[e] = 0.0f;
                }
            }
        }
    }
}

int64_t pf_gemm_bf16_run(const pf_gemm *g0)
{
    int64_t nbatch = pf_numel(g0->bshape, g0->nb);
    if (nbatch == 0 || g0->m == 0 || g0->n == 0) {
        return 0;
    }
    if (g0->k == 0) {
        zero_c(g0, nbatch);
        return 0;
    }
#if PF_X86_BF16
    /* the kernels write rows of C: a column-major C is computed as C^T = B^T A^T */
    pf_gemm t = *g0, f;
    if (g0->n > 1 && g0->c.cs != 1) {
        pf_gemm_transpose(g0, &t);
    }
    const pf_gemm *g = &t;
    /* A stack of A's times one B (the Dense case) is one product with more rows */
    int64_t rows, rsa, rowsc, rsc;
    if (nbatch > 1 && shared_operand(g, &g->b) && pf_gemm_stacked_rows(g, &g->a, &rows, &rsa) &&
        pf_gemm_stacked_rows(g, &g->c, &rowsc, &rsc)) {
        f = *g;
        f.nb = 0;
        f.m = rows;
        f.a.rs = rsa;
        f.c.rs = rsc;
        g = &f;
        nbatch = 1;
    }
    plan P;
    memset(&P, 0, sizeof(P));
    P.g = g;
    P.path = g->bf16_path;
    P.mt = (g->m + 15) / 16;
    P.nt = (g->n + 15) / 16;
    P.kc = (g->k + 31) / 32;
    P.share_a = nbatch > 1 && shared_operand(g, &g->a);
    P.a_colwise = g->a.rs == 1 && g->a.cs != 1;
    P.b_rowwise = g->b.cs == 1;
    double work = (double)nbatch * (double)g->m * (double)g->n * (double)g->k;
    int nth = pf_get_num_threads();
#ifdef _OPENMP
    if (omp_in_parallel()) {
        nth = 1;
    }
#endif
    if (work < BF16_GRAIN) {
        nth = 1;
    }
    int by_item = nth > 1 && nbatch >= nth && (nbatch % nth == 0 || nbatch >= 4 * nth);
    choose_jobs(&P, nth, by_item);
    return run_batch(&P, nbatch, nth, by_item);
#else
    return 0;   /* unreachable: no path but the generic one is ever available */
#endif
}

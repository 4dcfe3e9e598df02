/*
 * gemm.h -- the batched matrix-product engine behind matmul, dot, einsum and
 * tensordot (linalg.c).  It knows nothing of ops or Python: it takes
 * pointers, shapes and strides and computes C = A B for every batch index.
 */
#ifndef PF_GEMM_H
#define PF_GEMM_H

#include "kernels.h"

/* One operand: a (rows x cols) matrix per batch index.  Strides in elements. */
typedef struct {
    char *data;                     /* the matrix of batch index 0 */
    int64_t bstrides[PF_MAX_DIMS];  /* per batch dimension; 0 where the operand broadcasts */
    int64_t rs, cs;                 /* row and column strides */
} pf_gemm_mat;

/* The ways to multiply bfloat16 matrices (gemm_bf16.c), slowest first. */
typedef enum {
    PF_BF16_GENERIC = 0,    /* widen to float32, OpenBLAS sgemm (linalg.c's float32 engine) */
    PF_BF16_AVX512,         /* AVX512-BF16 VDPBF16PS */
    PF_BF16_AMX,            /* AMX-BF16 tiles */
    PF_BF16_NPATHS
} pf_bf16_path;

/*
 * C (m x n) = A (m x k) B (k x n) for every index of the batch shape.
 *
 * dtype is the engine dtype: PF_FLOAT32 and PF_FLOAT64 (all three operands)
 * go to OpenBLAS, PF_INT64 to pyframe's own loops (wrapping arithmetic;
 * bool matmul runs here on 0/1 values), PF_BFLOAT16 (A and B bfloat16, C
 * float32 or, with c_bf16, bfloat16) to gemm_bf16.c on the path bf16_path,
 * which must be available and not PF_BF16_GENERIC.  For float32/float64 A and B must be readable by
 * BLAS (pf_gemm_layout) and m, n and k must fit a BLAS int; the integer and
 * bfloat16 engines take any strides of A and B.  C must be readable either
 * way round (C^T = B^T A^T is used when only its transpose is).  k == 0
 * writes zeros.  Never touches Python, so the caller may release the GIL
 * around it.
 */
typedef struct {
    pf_dtype dtype;
    pf_bf16_path bf16_path;         /* PF_BFLOAT16 only: the kernel */
    int c_bf16;                     /* PF_BFLOAT16 only: C is bfloat16 (each element rounded
                                       once from its float32 sum), else float32 */
    int nb;
    int64_t bshape[PF_MAX_DIMS];
    int64_t m, n, k;
    pf_gemm_mat a, b, c;
} pf_gemm;

/*
 * Can BLAS read a (rows x cols) matrix with these strides as it lies?  Yes
 * when its rows are contiguous (row-major, "NoTrans", ld = rs) or its
 * columns are (column-major, "Trans", ld = cs); strides of size-1
 * dimensions do not matter.  Returns 1 and sets *trans and *ld, or 0.
 */
int pf_gemm_layout(int64_t rows, int64_t cols, int64_t rs, int64_t cs, int *trans, int *ld);

/* The largest m, n or k one BLAS call takes (its integers are 32-bit). */
#define PF_GEMM_MAX_DIM 2147483647LL

/*
 * Run g.  Returns 0, or -- only the bfloat16 engine allocates (packing
 * buffers) -- the number of bytes it could not allocate, C then unwritten.
 */
int64_t pf_gemm_run(const pf_gemm *g);

/* Element offsets of batch index bi in A, B and C. */
void pf_gemm_batch_offsets(const pf_gemm *g, int64_t bi, int64_t *oa, int64_t *ob, int64_t *oc);
/*
 * Do the rows of every batch index of x, taken in order, form one matrix
 * of *rows rows with the uniform row stride *rs?  (A batch that only moves
 * A and C is then one product with more rows.)
 */
int pf_gemm_stacked_rows(const pf_gemm *g, const pf_gemm_mat *x, int64_t *rows, int64_t *rs);
/* The same product seen transposed: C^T (n x m) = B^T (n x k) A^T (k x m). */
void pf_gemm_transpose(const pf_gemm *g, pf_gemm *t);

/* ------------------------------------------------------------ bfloat16 */

extern const char *const pf_bf16_path_names[PF_BF16_NPATHS];   /* "generic", "avx512", "amx" */
/*
 * Can this CPU and OS run path p?  The first call of any of these three
 * detects (cpuid, XCR0, and on Linux the AMX permission request); call
 * them with the GIL held.  *why (may be NULL) is set to the reason when not.
 */
int pf_bf16_path_available(pf_bf16_path p, const char **why);
/*
 * The path bfloat16 products take unless set: amx where available, else
 * avx512 on AMD CPUs (on Intel's VDPBF16PS is slower than float32 FMA),
 * else generic.
 */
pf_bf16_path pf_bf16_path_active(void);
/* Make p (which must be available) the active path. */
void pf_bf16_path_set(pf_bf16_path p);
/* The PF_BFLOAT16 engine; as pf_gemm_run. */
int64_t pf_gemm_bf16_run(const pf_gemm *g);

#endif /* PF_GEMM_H */

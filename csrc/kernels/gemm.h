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

/*
 * C (m x n) = A (m x k) B (k x n) for every index of the batch shape.
 *
 * dtype is the engine dtype of all three operands: PF_FLOAT32 and
 * PF_FLOAT64 go to OpenBLAS, PF_INT64 to pyframe's own loops (wrapping
 * arithmetic; bool matmul runs here on 0/1 values).  For the float dtypes A
 * and B must be readable by BLAS (pf_gemm_layout) and C must be readable
 * either way round (C^T = B^T A^T is used when only its transpose is);
 * m, n and k must fit a BLAS int.  The integer engine takes any strides.
 * k == 0 writes zeros.  Never fails and never touches Python, so the caller
 * may release the GIL around it.
 */
typedef struct {
    pf_dtype dtype;
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

void pf_gemm_run(const pf_gemm *g);

#endif /* PF_GEMM_H */

/*
 * kernels.h -- what the CPU kernels share with the rest of the extension.
 *
 * A kernel is a 1-D strided loop: it receives one data pointer per operand,
 * the byte stride of each operand, and a count.  It never sees ndim; the
 * iterator (iter.c) walks every other dimension.
 */
#ifndef PF_KERNELS_H
#define PF_KERNELS_H

#include "../pyframe.h"

/* data[k], strides[k] in bytes, n elements; ctx carries per-call constants */
typedef void (*pf_loop)(char **data, const int64_t *strides, int64_t n, void *ctx);

/* [source][destination]; data[0] is the source, data[1] the destination */
extern const pf_loop pf_cast_loops[PF_NDTYPES][PF_NDTYPES];
pf_loop pf_copy_loop(int itemsize);
/* data[0] is the destination; ctx points at one element in its dtype */
pf_loop pf_fill_loop(int itemsize);
void pf_cast_one(const void *src, pf_dtype sd, void *dst, pf_dtype dd);

/* ------------------------------------------------------------- iteration */

#define PF_MAX_OPERANDS 4

/*
 * The one strided iterator.  Operands are broadcast to a common shape,
 * size-1 dimensions are dropped and adjacent dimensions that are
 * contiguous in every operand are merged, so that a contiguous tensor of
 * any shape becomes a single 1-D run.
 */
typedef struct {
    int nop;
    int ndim;                                   /* after merging; >= 1 */
    int64_t shape[PF_MAX_DIMS];                 /* innermost last */
    int64_t strides[PF_MAX_OPERANDS][PF_MAX_DIMS];  /* bytes */
    char *data[PF_MAX_OPERANDS];
    int64_t numel;
} pf_iter;

/*
 * Build an iterator over `shape` for nop tensors; each must broadcast to
 * `shape` (checked by the caller).
 */
void pf_iter_build(pf_iter *it, int nop, PfTensor *const *ops, const int64_t *shape, int ndim);
/* Run `loop` over every element; split across threads above the grain size. */
void pf_iter_run(const pf_iter *it, pf_loop loop, void *ctx);

/* Below this many elements an elementwise op stays on the calling thread. */
#define PF_GRAIN 32768

#endif /* PF_KERNELS_H */

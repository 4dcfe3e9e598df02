/*
 * shape_kernels.h -- the loops behind the joining, splitting and reordering
 * ops (shape_ops.c) that are not plain strided copies: masked selection,
 * per-element repeat, triangular masks and one-hot scatter.  Plain copies go
 * through the iterator with the copy and cast loops of cast.c.
 */
#ifndef PF_SHAPE_KERNELS_H
#define PF_SHAPE_KERNELS_H

#include "kernels.h"

/*
 * masked_fill as an iterator loop by item size: data[0] the input x,
 * data[1] the bool mask, data[2] the output (may be x itself);
 * out = mask ? value : x, with ctx pointing at value in the output dtype.
 */
pf_loop pf_masked_fill_loop(int itemsize);

/*
 * np.repeat along one axis.  src (outer, n, inner) and dst (outer, total,
 * inner) are contiguous; element j of the repeated axis goes to dst rows
 * [starts[j], starts[j] + reps[j]), or, when reps and starts are NULL, to
 * rows [j * uniform, (j + 1) * uniform).
 */
void pf_repeat_blocks(const char *src, char *dst, int itemsize, int64_t outer, int64_t n,
                      int64_t inner, int64_t total, const int64_t *reps, const int64_t *starts,
                      int64_t uniform);

/*
 * tril (upper = 0) / triu (upper = 1) of `batch` matrices (m, n): src is
 * strided (batch_off[b] is the element offset of matrix b, rs and cs the
 * element strides of its rows and columns), dst contiguous (batch, m, n).
 * Kept entries are copied, the others zeroed.
 */
void pf_tri_rows(const char *src, char *dst, int itemsize, int64_t batch, int64_t m, int64_t n,
                 const int64_t *batch_off, int64_t rs, int64_t cs, int64_t k, int upper);

/*
 * one_hot: idx (outer, inner) holds class indices already checked to lie in
 * [0, classes); dst (outer, classes, inner) is written whole: zeros, and
 * `one` (one element in dst's dtype) at each index.
 */
void pf_one_hot(const int64_t *idx, char *dst, int itemsize, const void *one, int64_t outer,
                int64_t classes, int64_t inner);

#endif /* PF_SHAPE_KERNELS_H */

/*
 * iter.c -- the one strided iterator: broadcasting, dimension merging and
 * the OpenMP split.  Kernels only ever see 1-D runs.
 */
#include "kernels/kernels.h"
#ifdef _OPENMP
#include <omp.h>
#endif

void pf_iter_build(pf_iter *it, int nop, PfTensor *const *ops, const int64_t *shape, int ndim)
{
    int64_t full_strides[PF_MAX_OPERANDS][PF_MAX_DIMS];
    it->nop = nop;
    it->numel = pf_numel(shape, ndim);
    for (int k = 0; k < nop; k++) {
        const PfTensor *t = ops[k];
        int64_t isz = pf_dtypes[t->dtype].itemsize;
        int lead = ndim - t->ndim;
        for (int d = 0; d < ndim; d++) {
            int td = d - lead;
            int broadcast = td < 0 || (t->shape[td] == 1 && shape[d] != 1);
            full_strides[k][d] = broadcast ? 0 : t->strides[td] * isz;
        }
        it->data[k] = pf_tensor_data(t);
    }
    /*
     * Drop size-1 dimensions, then merge an outer dimension into the next
     * inner one wherever every operand steps over the inner one exactly.
     */
    int n = 0;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == 1) {
            continue;
        }
        int merge = n > 0;
        for (int k = 0; k < nop && merge; k++) {
            merge = it->strides[k][n - 1] == full_strides[k][d] * shape[d];
        }
        if (merge) {
            it->shape[n - 1] *= shape[d];
            for (int k = 0; k < nop; k++) {
                it->strides[k][n - 1] = full_strides[k][d];
            }
        }
        else {
            it->shape[n] = shape[d];
            for (int k = 0; k < nop; k++) {
                it->strides[k][n] = full_strides[k][d];
            }
            n++;
        }
    }
    if (n == 0) {
        it->shape[0] = 1;
        for (int k = 0; k < nop; k++) {
            it->strides[k][0] = 0;
        }
        n = 1;
    }
    it->ndim = n;
}

/* Run elements [lo, hi) in row-major order of the merged shape. */
static void run_range(const pf_iter *it, int64_t lo, int64_t hi, pf_loop loop, void *ctx)
{
    int nd = it->ndim, nop = it->nop;
    int64_t idx[PF_MAX_DIMS];
    int64_t inner_st[PF_MAX_OPERANDS];
    char *ptr[PF_MAX_OPERANDS];
    int64_t rem = lo;
    for (int d = nd - 1; d >= 0; d--) {
        idx[d] = rem % it->shape[d];
        rem /= it->shape[d];
    }
    for (int k = 0; k < nop; k++) {
        inner_st[k] = it->strides[k][nd - 1];
    }
    int64_t inner = it->shape[nd - 1];
    int64_t pos = lo;
    while (pos < hi) {
        for (int k = 0; k < nop; k++) {
            ptr[k] = it->data[k];
            for (int d = 0; d < nd; d++) {
                ptr[k] += idx[d] * it->strides[k][d];
            }
        }
        int64_t count = inner - idx[nd - 1];
        if (count > hi - pos) {
            count = hi - pos;
        }
        loop(ptr, inner_st, count, ctx);
        pos += count;
        /* carry into the outer dimensions */
        idx[nd - 1] = 0;
        for (int d = nd - 2; d >= 0; d--) {
            if (++idx[d] < it->shape[d]) {
                break;
            }
            idx[d] = 0;
        }
    }
}

void pf_iter_run(const pf_iter *it, pf_loop loop, void *ctx)
{
    if (it->numel == 0) {
        return;
    }
    int nth = pf_get_num_threads();
    if (it->numel < PF_GRAIN || nth <= 1) {
        run_range(it, 0, it->numel, loop, ctx);
        return;
    }
    if ((int64_t)nth > it->numel / (PF_GRAIN / 2)) {
        nth = (int)(it->numel / (PF_GRAIN / 2));
    }
#ifdef _OPENMP
    #pragma omp parallel num_threads(nth)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        /* contiguous, 64-element aligned chunks: each thread writes its own lines */
        int64_t chunk = (it->numel + nt - 1) / nt;
        chunk = (chunk + 63) / 64 * 64;
        int64_t lo = (int64_t)t * chunk;
        int64_t hi = lo + chunk < it->numel ? lo + chunk : it->numel;
        if (lo < hi) {
            run_range(it, lo, hi, loop, ctx);
        }
    }
#else
    run_range(it, 0, it->numel, loop, ctx);
#endif
}

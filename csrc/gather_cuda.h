/*
 * gather_cuda.h -- the CUDA path of the gathering, scattering and indexing
 * ops (gather.c, indexing.c, shape_ops.c's one_hot and masked_fill): which
 * tensors go through libpyframe_cuda.so, and the calls that fill its
 * geometry structs from pyframe's tensors (gather_cuda.c).
 *
 * A route says where an op runs: on the cpu (the ops' own loops), or
 * through the library: on the tensor's CUDA device, or -- while
 * _C._cuda_host_run runs a call, the host self-test -- on cpu tensors
 * through the library's host path, which runs the kernels' per-element
 * code in plain loops.  Validation stays in the ops' bindings: both paths
 * share it.
 */
#ifndef PF_GATHER_CUDA_H
#define PF_GATHER_CUDA_H

#include "cuda_backend.h"

typedef struct {
    const PfCudaLib *lib;
    int device;                 /* a CUDA device index, or PF_CUDA_HOST */
} pf_cu_route;

/* 1: t's op goes through the library (*r filled), 0: the cpu path, -1: raised. */
int pf_cu_route_for(const PfTensor *t, const char *op, pf_cu_route *r);
/* 1 when t would take the library's path (no loading, no raising): for skipping cpu-only prep. */
int pf_cu_wanted(const PfTensor *t);
/* Raises for a failed entry point; returns -1. */
int pf_cu_raise(const pf_cu_route *r, const char *op, int status);
/* t on the route's device: a new reference (t itself when it is there already). */
PfTensor *pf_cu_place(const pf_cu_route *r, PfTensor *t, const char *op);

/*
 * Along an axis: data, index and other are views over one iteration shape
 * (data's stride 0 along the axis), other NULL for a scalar source (the
 * item at `scalar`).  Returns 0 with bad->pos >= 0 for an index out of
 * range, or -1 raised.
 */
int pf_cu_gather_along(const pf_cu_route *r, PfTensor *out, const PfTensor *data,
                       const PfTensor *index, int64_t axis_size, int64_t axis_stride,
                       PfCudaBad *bad, const char *op);
int pf_cu_scatter_along(const pf_cu_route *r, PfTensor *data, const PfTensor *index,
                        const PfTensor *src, const void *scalar, int64_t axis_size,
                        int64_t axis_stride, int add, PfCudaBad *bad, const char *op);

/*
 * The positions of x's nonzero elements in row-major order: offsets NULL
 * gives a new int64 tensor of coordinates, (nnz, ndim), or (ndim, nnz)
 * with by_dim; otherwise a new (nnz,) tensor of byte offsets
 * sum(coordinate * offsets[k]).
 */
PfTensor *pf_cu_nonzero(const pf_cu_route *r, PfTensor *x, const int64_t *offsets, int by_dim,
                        const char *op);

/* one_hot's output (outer, classes, inner) from the index x; 0, or -1 raised */
int pf_cu_one_hot(const pf_cu_route *r, PfTensor *out, const PfTensor *x, int64_t classes,
                  int64_t inner, const void *one, PfCudaBad *bad, const char *op);

/* out = mask ? value : x over x's shape; 0 or -1 raised */
int pf_cu_masked_fill(const pf_cu_route *r, PfTensor *out, const PfTensor *x,
                      const PfTensor *mask, const void *value, const char *op);

extern PyMethodDef pf_gather_cuda_module_methods[];

#endif

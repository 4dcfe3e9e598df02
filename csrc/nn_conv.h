/*
 * nn_conv.h -- what the convolution and pooling bindings (nn_conv.c) share
 * with their backward rules (backward_conv.c): a call's arguments parsed
 * and validated into its geometry, so that a rule reads exactly the sizes,
 * strides and paddings its op ran with.
 */
#ifndef PF_NN_CONV_H
#define PF_NN_CONV_H

#include "autograd.h"
#include "cuda_backend.h"
#include "kernels/conv.h"

/*
 * A convolution-family call (conv1d, conv2d, conv_transpose2d, _conv,
 * _conv_input_grad, _conv_weight_grad) in the terms of the convolution it
 * computes or differentiates: g is that convolution's geometry (for
 * conv_transpose2d, the convolution whose input gradient it is).
 */
typedef struct {
    int nd;             /* spatial dimensions: 1 or 2 */
    int batched;        /* 0: the call's activations had no batch dimension (N = 1) */
    int has_bias;
    pf_conv_geom g;
} pf_conv_call;

/* The argument names of op's binding (NULL-terminated). */
const char *const *pf_conv_arg_names(pf_op op);
/* Parse and check op's arguments v (by pf_conv_arg_names); errors name op. */
int pf_conv_parse(pf_op op, PyObject **v, pf_conv_call *c);

/* A pooling call (max_pool*, avg_pool*, and their underscore helpers). */
typedef struct {
    int nd, batched;
    pf_pool_geom g;
    int ceil_mode;      /* avg_pool: divisor_override is g.divisor (0: none) */
} pf_pool_call;

const char *const *pf_pool_arg_names(pf_op op);
int pf_pool_parse(pf_op op, PyObject **v, pf_pool_call *c);

/*
 * Where an nn op (convolution, pooling, the norms) runs, from its tensors
 * (NULLs skipped): PF_NN_ON_CPU for the cpu kernels; a CUDA device index,
 * with *lib the loaded library; or PF_CUDA_HOST, the library's host
 * self-test, when the tests switched it on (_C._cuda_host_nn_selftest) and
 * the tensors are on the cpu.  PF_NN_ROUTE_ERROR with an exception set for
 * tensors on two devices or CUDA not usable.  Errors name op.
 */
#define PF_NN_ON_CPU (-2)
#define PF_NN_ROUTE_ERROR (-3)
int pf_nn_cuda_route(const char *op, PfTensor *const *ts, int n, const PfCudaLib **lib);
/* A float vector argument for the library: data, dtype, stride (NULL: absent). */
PfCudaVec pf_nn_cuda_vec(const PfTensor *t);
/* _C._cuda_host_nn_selftest(on): route the nn ops' cpu tensors to the host self-test. */
PyObject *pf_nn_cuda_selftest_py(PyObject *m, PyObject *on);

#endif /* PF_NN_CONV_H */

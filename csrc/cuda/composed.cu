/*
 * composed.cu -- the kernel-table entries of ops that run on a device as
 * compositions of other ops: the losses and outer.
 *
 * The losses run on a device as compositions of ops that have kernels here
 * already (csrc/nn_losses_cuda.c): elementwise ops (elementwise.cu), the
 * casts, and the reductions (reduce.cu).  They add no kernel of their own;
 * these registrations say which dtypes reach those kernels, so that the op
 * table and the library agree (tests/test_cuda_op_table.py).  Every float
 * dtype: half and bfloat16 are computed in float32 and cast back.
 */
#include "internal.cuh"

static pfc_register r_mse_loss(PFC_OP_MSE_LOSS, PFC_FLOAT_DTYPES);
static pfc_register r_l1_loss(PFC_OP_L1_LOSS, PFC_FLOAT_DTYPES);
static pfc_register r_huber_loss(PFC_OP_HUBER_LOSS, PFC_FLOAT_DTYPES);
static pfc_register r_smooth_l1_loss(PFC_OP_SMOOTH_L1_LOSS, PFC_FLOAT_DTYPES);
static pfc_register r_bce(PFC_OP_BINARY_CROSS_ENTROPY, PFC_FLOAT_DTYPES);
static pfc_register r_bce_logits(PFC_OP_BCE_WITH_LOGITS, PFC_FLOAT_DTYPES);
/* cross_entropy = log_softmax (softmax.cu: float32, float64) then the weighted sum; the
   other float dtypes are computed in float32 */
static pfc_register r_cross_entropy(PFC_OP_CROSS_ENTROPY, PFC_FLOAT_DTYPES);
static pfc_register r_nll_loss(PFC_OP_NLL_LOSS, PFC_FLOAT_DTYPES);
/* outer: a column view times a row view, the multiply kernel's dtypes (every dtype) */
static pfc_register r_outer(PFC_OP_OUTER, (1u << PF_CUDA_NDTYPES) - 1u);

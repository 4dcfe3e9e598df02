/*
 * ops.h -- the op enum generated from ops.def, op kinds, and the dispatch
 * entry points every op goes through.
 */
#ifndef PF_OPS_H
#define PF_OPS_H

#include "kernels/kernels.h"

/*
 * What an op's KIND fixes:
 *   UFLOAT    unary, float result; ints and bool compute in float32
 *   USAME     unary, result in the input dtype (bool computes as uint8)
 *   UPRED     unary predicate, bool result
 *   ULOGICAL  unary on truth values (input read as bool), bool result
 *   UBITWISE  unary on integers and bool
 *   BARITH    binary, promoted result
 *   BFLOAT    binary, float result (ints compute in float32)
 *   COMPARE   binary, bool result, compared in the promoted dtype
 *   LOGICAL   binary on truth values, bool result
 *   BITWISE   binary on integers and bool
 *   WHERE     where(cond, x, y)
 *   CUSTOM    anything else: a hand-written binding pf_op_<pyname>
 */
typedef enum {
    PF_OK_UFLOAT,
    PF_OK_USAME,
    PF_OK_UPRED,
    PF_OK_ULOGICAL,
    PF_OK_UBITWISE,
    PF_OK_BARITH,
    PF_OK_BFLOAT,
    PF_OK_COMPARE,
    PF_OK_LOGICAL,
    PF_OK_BITWISE,
    PF_OK_WHERE,
    PF_OK_CUSTOM,
} pf_opkind;

#define PF_F_M 1    /* Tensor method */
#define PF_F_I 2    /* in-place method <name>_ */
#define PF_F_D 4    /* differentiable */
/* composite: the binding runs with the caller's grad mode and the ops it calls
   record themselves (dropout is x * mask); the row records no node of its own */
#define PF_F_C 8
#define PF_F_G 16   /* runs on CUDA devices (ops.def) */

/* The reason an op has no CUDA kernel by design (ops.def PF_CPU_ONLY), or NULL. */
extern const char *const pf_op_cpu_only[];

typedef enum {
#define PF_OP(E, py, K, N, F) PF_OP_##E,
#include "ops.def"
#undef PF_OP
    PF_OP_COUNT
} pf_op;

typedef struct {
    const char *name;
    pf_opkind kind;
    int nin;
    int flags;
} pf_opinfo;

extern const pf_opinfo pf_ops[PF_OP_COUNT];

/* Scalar parameters of parametrised elementwise ops, handed to kernels as ctx. */
typedef struct {
    double p[2];
} pf_params;

typedef struct {
    int n;
    const char *names[2];
    double defaults[2];
} pf_param_spec;

extern const pf_param_spec pf_op_params[PF_OP_COUNT];

/* Elementwise kernels by op and compute dtype (NULL: dtype not supported). */
extern pf_loop pf_ew_kernels[PF_OP_COUNT][PF_NDTYPES];
void pf_ew_kernels_init(void);
int pf_ops_check_kernels(void);

/*
 * Elementwise dispatch.  Inputs are Python objects: tensors, Python scalars
 * (weak: they adapt to the tensor's dtype, NEP 50) or anything pf.asarray
 * takes.  `out` may be NULL (allocate), or a tensor to write (out= and the
 * in-place methods).  Returns a new reference.
 */
PyObject *pf_elementwise(pf_op op, PyObject *const *inputs, PfTensor *out, const pf_params *p);

/*
 * The device check every op passes (dispatch.c).  Finds the one device of
 * all the tensors among args (and inside list/tuple args) and stores it in
 * *dev (may be NULL): 0 when it is the cpu, 1 when it is a CUDA device and
 * allow_cuda is set (the op has a CUDA path: its row carries G).  Else -1
 * with RuntimeError for tensors on two devices, NotImplementedError for
 * tensors on a CUDA device the op cannot run on.  Errors name `name`.
 */
int pf_dispatch_device(const char *name, int allow_cuda, PyObject *const *args, Py_ssize_t n,
                       pf_device *dev);
/* pf_dispatch_device for paths with no CUDA code: 0 (all on the cpu) or -1. */
int pf_dispatch_devices(const char *name, PyObject *const *args, Py_ssize_t n);

/* The dtype an elementwise op computes in and returns, or -1 with TypeError. */
int pf_ew_dtypes(pf_op op, const pf_dtype *in, int nin, pf_dtype *compute, pf_dtype *result);

/* Parse the generic elementwise call: inputs, params, out=. */
PyObject *pf_py_elementwise(pf_op op, PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                            PyObject *kwnames, int inplace);

/*
 * Helpers for hand-written (CUSTOM) bindings.  A binding has the vectorcall
 * signature  PyObject *pf_op_<pyname>(PyObject *m, PyObject *const *args,
 * Py_ssize_t nargs, PyObject *kwnames);  as a method, self arrives as args[0].
 */
/* Map positional + keyword args onto `names` (NULL-terminated); the first
   nrequired must be present.  `dim`/`keepdim` are accepted for `axis`/`keepdims`. */
int pf_parse_args(const char *op, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                  const char *const *names, int nrequired, PyObject **out);
/* None (all axes), an int or a tuple of ints -> mask[PF_MAX_DIMS] of reduced axes. */
int pf_parse_axes(PyObject *axis, int ndim, const char *op, int *mask);
int pf_parse_bool(PyObject *o, const char *op, const char *what, int dflt, int *out);
/*
 * The test-only "host self-test" bindings (_cuda_host_matmul, _cuda_host_reduce):
 * args[0] names one of `entries`; that binding is called with the rest of the
 * arguments while *route_flag is set, so its CPU tensors take the CUDA
 * library's host path.  Errors name `who` and say the name is not `kind`
 * `what` ("a product" "that runs through cuBLAS").
 */
typedef struct {
    const char *name;
    PyObject *(*fn)(PyObject *, PyObject *const *, Py_ssize_t, PyObject *);
} pf_named_binding;
PyObject *pf_call_routed(const char *who, const char *kind, const char *what,
                         const pf_named_binding *entries, size_t n, int *route_flag,
                         PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);

/* Run an elementwise op on Python objects (b may be NULL for unary ops). */
PyObject *pf_call_ew(pf_op op, PyObject *a, PyObject *b);

PyMethodDef *pf_ops_module_methods(void);
PyMethodDef *pf_ops_tensor_methods(void);
void pf_ops_install_slots(PyTypeObject *type);
extern PyMethodDef pf_ops_info_methods[];

/* ------------------------------------------ linear algebra (linalg.c) */

/* The @ and @= operators (installed by pf_ops_install_slots). */
PyObject *pf_nb_matmul(PyObject *a, PyObject *b);
PyObject *pf_nb_inplace_matmul(PyObject *a, PyObject *b);
/* _bf16_gemm_path, _bf16_gemm_paths, _set_bf16_gemm_path */
extern PyMethodDef pf_linalg_module_methods[];

/* ---------------------------------------------------------- elementwise */

/*
 * pf_elementwise, with every error message naming `name` instead of the op:
 * for composites (clip with tensor bounds, isclose) whose user never called
 * the elementwise op they are built from.
 */
PyObject *pf_elementwise_as(pf_op op, PyObject *const *inputs, PfTensor *out, const pf_params *p,
                            const char *name);

/*
 * Where an elementwise op runs: the cpu loops, the CUDA kernels of
 * libpyframe_cuda.so on the operands' device, or the same kernels' element
 * code over host buffers (the host self-test, _C._cuda_host_ew).
 */
typedef enum { PF_EW_CPU, PF_EW_CUDA, PF_EW_CUDA_HOST } pf_ew_target;

/*
 * The CUDA part of pf_elementwise (ew_cuda.c), once dispatch has fixed the
 * dtypes, the broadcast shape and dst: t[k] are the inputs (weak[k] >= 0:
 * a Python scalar in a 0-d host tensor), want[k] the dtype the kernel reads
 * for input k and writes (want[nin]).  Operands of other dtypes are
 * converted on their device first, dst through a temporary.  0 or -1.
 */
int pf_ew_cuda_run(pf_op op, PfTensor *const *t, const int *weak, int nin, PfTensor *dst,
                   const pf_dtype *want, const int64_t *shape, int ndim, const pf_params *p,
                   pf_ew_target target, const char *name);
/* 1 when libpyframe_cuda.so has op's kernel for dtype, 0 when not, -1 (raised) without it. */
int pf_ew_cuda_has_kernel(pf_op op, pf_dtype dtype, pf_ew_target target, const char *name);
/* pf_elementwise on cpu tensors through the CUDA kernels' host code (tests only). */
PyObject *pf_elementwise_host_selftest(pf_op op, PyObject *const *inputs, PfTensor *out,
                                       const pf_params *p);
extern PyMethodDef pf_ew_cuda_module_methods[];


/* ---------------- gathering, scattering, sorting, searching (gather.c, indexing.c) */

/* What an out-of-range index does: raise IndexError, wrap around, or clip (np.take's mode). */
typedef enum { PF_IDX_RAISE, PF_IDX_WRAP, PF_IDX_CLIP } pf_idx_mode;

/*
 * The nonzero elements of mask (any dtype; NaN counts as nonzero) as byte
 * offsets: sum over dims of coordinate * strides[dim] (bytes), in C order,
 * into a new 1-D int64 tensor *out.
 */
int pf_nonzero_offsets(PfTensor *mask, const int64_t *strides, PfTensor **out, const char *op);

/*
 * x[(:,) * axis + (index,)]: the elements of x at `index` (any integer
 * dtype, any shape) along `axis`; the result has x's shape with that axis
 * replaced by index's shape.  A copy.  Errors name `op`.
 */
PfTensor *pf_index_take(PfTensor *x, int axis, PfTensor *index, pf_idx_mode mode,
                        const char *op);

/* reduce.c: _C._cuda_host_reduce, the host self-test of the CUDA reductions (tests only) */
extern PyMethodDef pf_reduce_module_methods[];
/* linalg.c: the float32 precision switch, the cuBLAS probe, _C._cuda_host_matmul (tests) */
extern PyMethodDef pf_linalg_module_methods[];

#endif /* PF_OPS_H */

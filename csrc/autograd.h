/*
 * autograd.h -- the graph node, grad mode, recording and the backward
 * engine (autograd.c), and the backward rules (backward*.c).
 *
 * A differentiable op run on inputs that require gradients records one
 * node: the edges to the nodes (or leaf tensors) its inputs came from, the
 * inputs' shapes and dtypes, and whatever its backward rule reads later
 * (saved tensors with the storage version they had, parsed arguments).
 * Outputs point back at the node through grad_fn / output_nr.  Nothing in
 * the graph points from a node to its own outputs, so the graph has no
 * reference cycles: a saved output is kept as a detached alias and given
 * its grad_fn again only while a create_graph backward reads it.
 *
 * Backward rules are written with forward ops.  The engine runs them with
 * grad mode set to create_graph, so a rule run under create_graph=True
 * records its own nodes, and higher-order gradients need nothing more.
 */
#ifndef PF_AUTOGRAD_H
#define PF_AUTOGRAD_H

#include "pyframe.h"
#include "ops.h"

/* Node kinds beyond the op table (an op node's kind is its pf_op). */
enum {
    PF_NODE_RESHAPE = PF_OP_COUNT, /* reshape, view, flatten, squeeze, unsqueeze, ravel */
    PF_NODE_PERMUTE,               /* transpose, permute, swapaxes, T, mT */
    PF_NODE_EXPAND,                /* expand, broadcast_to */
    PF_NODE_GETITEM,               /* x[key] */
    PF_NODE_SETITEM,               /* x[key] = v */
    PF_NODE_IDENTITY,              /* clone, contiguous, astype, to */
    PF_NODE_COPY_,                 /* x.copy_(src) */
    PF_NODE_FILL_,                 /* x.fill_(v), x.zero_() */
    PF_NODE_PYFUNC,                /* pf.autograd.Function */
    PF_NODE_ACCUMULATE,            /* a leaf, as seen in next_functions */
    PF_NODE_KINDS
};

/* Shape, dtype and device of a node input or output: enough to make zeros
   of it and to bring a gradient back to it (summed over broadcast axes,
   cast, copied to its device).  Zero-initialised, a meta is on the cpu. */
typedef struct {
    int64_t shape[PF_MAX_DIMS];
    int ndim;
    pf_dtype dtype;
    pf_device device;
} pf_meta;

/* Where an input came from: its grad_fn and output_nr, or (nr -1) the leaf
   tensor itself, whose .grad receives the gradient.  fn NULL: no gradient. */
typedef struct {
    PyObject *fn;
    int nr;
} pf_edge;

typedef struct PfNode {
    PyObject_HEAD
    int kind;
    int nin, nout;
    pf_edge *next;          /* [nin] */
    pf_meta *in_meta;       /* [nin] */
    pf_meta *out_meta;      /* [nout] */
    PyObject **inputs;      /* [nin] saved inputs (tensors, scalars) or NULL */
    uint64_t *in_version;   /* [nin] */
    PyObject **outputs;     /* [nout] saved outputs as detached aliases, or NULL */
    uint64_t *out_version;  /* [nout] */
    PyObject *args;         /* CUSTOM ops: the call's arguments (tuple) */
    PyObject *kwnames;      /* and their keyword names */
    pf_params params;       /* parametrised elementwise ops */
    int64_t iargs[PF_MAX_DIMS];  /* small integer arguments (a permutation) */
    int is_view;            /* outputs share their input's memory */
    int has_saved;          /* the rule reads saved values */
    int released;           /* saved values freed by a backward without retain_graph */
    PyObject *hooks;        /* dict: handle id -> (output_nr, callable) */
    PyObject *retain;       /* list of (output_nr, weakref to tensor) */
    PyObject *dict;         /* attributes of a Python Function's ctx */
    PyObject *pycls;        /* the Function subclass (PF_NODE_PYFUNC) */
    PyObject *weakreflist;
    /* engine scratch, valid while a backward pass runs over this node */
    uint64_t run;
    Py_ssize_t idx;
} PfNode;

extern PyTypeObject PfNode_Type;
#define PfNode_Check(op) PyObject_TypeCheck(op, &PfNode_Type)

/* ------------------------------------------------------------ grad mode */

extern _Thread_local int pf_grad_disabled;
static inline int pf_grad_enabled(void) { return !pf_grad_disabled; }

static inline int pf_needs_grad(PyObject *o)
{
    return PfTensor_Check(o) && ((PfTensor *)o)->requires_grad;
}

/* ------------------------------------------------------------ recording */

PfNode *pf_node_new(int kind, int nin, int nout);
/*
 * Input i of the node: the edge from obj when it requires a gradient, its
 * meta when it is a tensor, and a saved reference (with the storage
 * version) when `save`.  Scalars are saved as they are.
 */
int pf_node_set_input(PfNode *n, int i, PyObject *obj, int save);
/* Output i: meta, grad_fn/output_nr/requires_grad on out, a saved alias when `save`. */
int pf_node_set_output(PfNode *n, int i, PfTensor *out, int save);

/*
 * In-place writes.  pf_ag_inplace_begin checks that writing into t is
 * allowed under autograd (not a leaf that requires grad, not a view of a
 * tensor in the graph) and, when the op must be recorded, returns a
 * detached alias carrying t's old history (grad_fn, output_nr) and version
 * to be used as the node's input; *alias is NULL when nothing is recorded.
 * `record` says whether the op will be recorded (grad mode on and t or an
 * input requires grad).  `differentiable`: 0 raises when recording would
 * be needed.
 */
int pf_ag_inplace_begin(PfTensor *t, int record, int differentiable, const char *op,
                        PyObject **alias);
/* After the write: t takes the node's history (output 0). */
int pf_ag_inplace_finish(PfNode *n, PfTensor *t, int save_output);

/*
 * Elementwise ops: pf_elementwise_as calls begin before its kernel runs
 * (so saved versions are those before an in-place write) and end with the
 * result.  begin returns 0 (nothing to record), 1 (*node set) or -1.
 */
int pf_ag_ew_begin(pf_op op, PyObject *const *inputs, int nin, PfTensor *out,
                   const pf_params *p, const char *name, PfNode **node);
int pf_ag_ew_end(PfNode *n, PyObject *result);

/* CUSTOM ops: the generated binding calls this for differentiable rows. */
typedef PyObject *(*pf_fastcall)(PyObject *, PyObject *const *, Py_ssize_t, PyObject *);
PyObject *pf_ag_custom_call(pf_op op, pf_fastcall fn, PyObject *m, PyObject *const *args,
                            Py_ssize_t nargs, PyObject *kwnames);
/* pf_ag_custom_call without autocast's casts (autocast.c calls it after them). */
PyObject *pf_ag_custom_call_raw(pf_op op, pf_fastcall fn, PyObject *m, PyObject *const *args,
                                Py_ssize_t nargs, PyObject *kwnames);

/* ------------------------------------------------------------ autocast (autocast.c) */

/* Nonzero while pf.autocast is on for some device type. */
extern int pf_autocast_on;
/* Casts the arguments op's autocast class asks for, then pf_ag_custom_call_raw. */
PyObject *pf_autocast_call(pf_op op, pf_fastcall fn, PyObject *m, PyObject *const *args,
                           Py_ssize_t nargs, PyObject *kwnames);
extern PyMethodDef pf_autocast_module_methods[];
/* True when args (including the tensors inside list/tuple arguments) hold a tensor that requires grad. */
int pf_ag_args_need_grad(PyObject *const *args, Py_ssize_t n);

/* Views and copies made by Tensor methods: out came from x by `kind`. */
PyObject *pf_ag_record_unary(int kind, PfTensor *x, PyObject *out, const int64_t *iargs,
                             int niargs);

/* ------------------------------------------------------------ saved values */

/* Saved input i / output i, version-checked; a new reference. */
PyObject *pf_node_input(PfNode *n, int i);
PyObject *pf_node_output(PfNode *n, int i);
/* Parse a CUSTOM node's saved call arguments as the op's binding does. */
int pf_node_args(PfNode *n, const char *const *names, int nreq, PyObject **out);
/* The slot of a saved input object (a tensor found in args), or -1. */
int pf_node_slot(PfNode *n, PyObject *obj);
const char *pf_node_name(PfNode *n, char *buf, size_t size);

/* ------------------------------------------------------------ backward rules */

/*
 * A rule gets the gradients of the node's outputs (gout[nout]; NULL only
 * for outputs that cannot have one, such as indices) and sets gin[i] to a
 * new reference for each input whose edge wants a gradient (the others it
 * may leave NULL).  A gradient may have the broadcast shape or dtype of
 * the computation: the engine sums it back to the input's shape and casts.
 */
typedef int (*pf_bw_fn)(PfNode *n, PyObject **gout, PyObject **gin);
int pf_bw_run(PfNode *n, PyObject **gout, PyObject **gin);
/* Which inputs (bits 0-2) and output (bit 4) an elementwise rule reads,
   given which inputs want a gradient (bits 0-2 of `wants`). */
int pf_bw_ew_saves(pf_op op, int wants);
static inline int pf_bw_wants(const PfNode *n, int i) { return n->next[i].fn != NULL; }

/* The rule tables of each family; a NULL entry means "no rule". */
int pf_bw_elementwise(PfNode *n, PyObject **gout, PyObject **gin);
int pf_bw_views(PfNode *n, PyObject **gout, PyObject **gin);
extern const pf_bw_fn pf_bw_reduce_rules[PF_OP_COUNT];
extern const pf_bw_fn pf_bw_linalg_rules[PF_OP_COUNT];
extern const pf_bw_fn pf_bw_shape_rules[PF_OP_COUNT];
extern const pf_bw_fn pf_bw_gather_rules[PF_OP_COUNT];
extern const pf_bw_fn pf_bw_conv_rules[PF_OP_COUNT];
extern const pf_bw_fn pf_bw_nnops_rules[PF_OP_COUNT];
int pf_bw_pyfunc(PfNode *n, PyObject **gout, PyObject **gin);

/* -------------------------------------------- helpers for writing rules */

/* Call an op of the table through its binding (so it records under create_graph). */
PyObject *pf_call(pf_op op, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *pf_call_kw(pf_op op, PyObject *const *args, Py_ssize_t nargs, const char *kw1,
                     PyObject *v1, const char *kw2, PyObject *v2);
PyObject *pf_ew1(pf_op op, PyObject *a);
PyObject *pf_ew2(pf_op op, PyObject *a, PyObject *b);
PyObject *pf_ew3(pf_op op, PyObject *a, PyObject *b, PyObject *c);
PyObject *pf_ew_p(pf_op op, PyObject *a, double p0, double p1);
/* Tensor methods (recorded): reshape(shape), permute(perm), astype(dtype). */
PyObject *pf_reshape(PyObject *t, const int64_t *shape, int ndim);
PyObject *pf_permute(PyObject *t, const int *perm, int ndim);
PyObject *pf_astype(PyObject *t, pf_dtype d);
PyObject *pf_zeros_meta(const pf_meta *m);
PyObject *pf_zeros_like_t(PyObject *t);
/* g summed over broadcast axes to shape m (or broadcast up to it when g is
   constant along some axes of m), cast to m's dtype. */
PyObject *pf_sum_to(PyObject *g, const pf_meta *m);
/* sum(g, axis=mask, keepdims=1) */
PyObject *pf_sum_axes(PyObject *g, const int *mask, int ndim, int keepdims);
/* Reduced-shape gradient back to the input: unsqueeze the reduced axes (when
   keepdims was false) so that it broadcasts against the input. */
PyObject *pf_unreduce(PyObject *g, const int *mask, const pf_meta *in, int keepdims);

/* ------------------------------------------------------------ module */

int pf_autograd_init(PyObject *module);
extern PyMethodDef pf_autograd_module_methods[];
extern PyMethodDef pf_autograd_tensor_methods[];
extern PyGetSetDef pf_autograd_tensor_getset[];

#endif /* PF_AUTOGRAD_H */

/*
 * autograd.c -- the tape: nodes, edges, saved tensors, and the backward
 * walk. The derivatives of the ops live beside their ops (ad_*.c, plugins).
 *
 * The walk: collect the nodes reachable from the root, count for each how
 * many edges point at it, then process nodes whose count reached zero
 * (Kahn's order, a LIFO so the newest node goes first). A node's output
 * gradients are complete when it is processed; its backward produces input
 * gradients, which are added into the next nodes or into leaves' .grad.
 * The order depends only on the graph, so a backward is deterministic.
 *
 * Dependencies run one way: this file calls the kernels (elementwise.c,
 * reduce.c) and tensor.c, and nothing below calls back here. A tensor
 * drops its grad_fn through the release function stored in the node's
 * head (internal.h), not by naming usg_node_release.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "usagi/autograd.h"

typedef struct edge {
    usg_node *node;       /* the input's grad_fn, retained, or NULL */
    usg_tensor *leaf;     /* or the leaf requiring grad, retained, or NULL */
    int output_nr;
} edge;

struct usg_node {
    usg_node_head head;   /* first: tensor.c releases a grad_fn through it */
    long refcount;
    const usg_op *op;
    void *ctx;
    int n_in, n_out, n_saved;
    edge next[USG_NODE_MAX_INPUTS];
    int in_ndim[USG_NODE_MAX_INPUTS];
    int64_t in_shape[USG_NODE_MAX_INPUTS][USG_MAX_DIMS];
    usg_dtype in_dtype[USG_NODE_MAX_INPUTS];
    usg_tensor *saved[USG_NODE_MAX_SAVED];
    long saved_version[USG_NODE_MAX_SAVED];
    bool released;        /* saved tensors freed by a backward */
    /* the walk's scratch */
    usg_tensor *grad[USG_NODE_MAX_OUTPUTS];
    int pending;
    bool seen;
    usg_node *link;       /* worklist link */
};

/* ==== Grad mode ========================================================= */

static _Thread_local bool grad_disabled;

bool usg_grad_enabled(void) { return !grad_disabled; }

bool usg_set_grad_enabled(bool on)
{
    bool was = !grad_disabled;
    grad_disabled = !on;
    return was;
}

bool usg_grad_needed(int n, usg_tensor *const *inputs)
{
    if (grad_disabled) return false;
    for (int i = 0; i < n; i++)
        if (inputs[i] && inputs[i]->requires_grad) return true;
    return false;
}

/* ==== Node lifetime ===================================================== */

void usg_node_retain(usg_node *n) { if (n) n->refcount++; }

static void free_saved(usg_node *n)
{
    for (int i = 0; i < n->n_saved; i++) {
        usg_tensor_release(n->saved[i]);
        n->saved[i] = NULL;
    }
    if (n->ctx) {
        if (n->op->free_ctx) n->op->free_ctx(n->ctx);
        else usg_free(n->ctx);
        n->ctx = NULL;
    }
    n->released = true;
}

/* Iterative, so freeing the graph of a 100,000-step loop cannot overflow
 * the C stack. */
void usg_node_release(usg_node *n)
{
    if (!n || --n->refcount > 0) return;
    usg_node *work = n;
    n->link = NULL;
    while (work) {
        usg_node *x = work;
        work = x->link;
        free_saved(x);
        for (int i = 0; i < USG_NODE_MAX_OUTPUTS; i++) usg_tensor_release(x->grad[i]);
        for (int i = 0; i < x->n_in; i++) {
            usg_tensor_release(x->next[i].leaf);
            usg_node *m = x->next[i].node;
            if (m && --m->refcount == 0) { m->link = work; work = m; }
        }
        usg_free(x);
    }
}

/* ==== Recording ========================================================= */

/* A ctx that no node took. */
static void free_ctx(const usg_op *op, void *ctx)
{
    if (!ctx) return;
    if (op->free_ctx) op->free_ctx(ctx);
    else usg_free(ctx);
}

usg_status usg_node_begin(usg_node **node, const usg_op *op, int n_in,
                          usg_tensor *const *inputs, void *ctx)
{
    *node = NULL;
    if (!usg_grad_needed(n_in, inputs)) {
        free_ctx(op, ctx);
        return USG_OK;
    }
    if (n_in > USG_NODE_MAX_INPUTS) {
        free_ctx(op, ctx);
        return usg_fail(USG_ARG, "%s: %d inputs, at most %d can be recorded", op->name, n_in,
                        USG_NODE_MAX_INPUTS);
    }
    usg_node *n = usg_alloc(sizeof *n);
    if (!n) {
        free_ctx(op, ctx);
        return USG_NOMEM;
    }
    memset(n, 0, sizeof *n);
    n->head.release = usg_node_release;
    n->refcount = 1;
    n->op = op;
    n->ctx = ctx;
    n->n_in = n_in;
    for (int i = 0; i < n_in; i++) {
        usg_tensor *t = inputs[i];
        if (!t) continue;
        n->in_ndim[i] = t->ndim;
        memcpy(n->in_shape[i], t->shape, sizeof n->in_shape[i]);
        n->in_dtype[i] = t->dtype;
        if (!t->requires_grad) continue;
        if (t->grad_fn) {
            n->next[i].node = t->grad_fn;
            n->next[i].output_nr = t->output_nr;
            usg_node_retain(t->grad_fn);
        } else {
            n->next[i].leaf = t;
            usg_tensor_retain(t);
        }
    }
    *node = n;
    return USG_OK;
}

usg_status usg_detach(usg_tensor **out, usg_tensor *t)
{
    usg_status s = usg_view(out, t, t->ndim, t->shape);
    if (s != USG_OK) return s;
    /* a view keeps offset and strides: copy them exactly */
    (*out)->offset = t->offset;
    memcpy((*out)->stride, t->stride, sizeof t->stride);
    return USG_OK;
}

usg_status usg_node_save(usg_node *n, usg_tensor *t)
{
    if (n->n_saved >= USG_NODE_MAX_SAVED)
        return usg_fail(USG_ARG, "%s: more than %d saved tensors", n->op->name, USG_NODE_MAX_SAVED);
    usg_tensor *alias;
    usg_status s = usg_detach(&alias, t);
    if (s != USG_OK) return s;
    n->saved_version[n->n_saved] = t->storage->version;
    n->saved[n->n_saved++] = alias;
    return USG_OK;
}

usg_status usg_node_finish(usg_node *n, int n_out, usg_tensor *const *outputs, usg_status status)
{
    if (!n) return status;
    if (status == USG_OK && n_out > USG_NODE_MAX_OUTPUTS)
        status = usg_fail(USG_ARG, "%s: %d outputs, at most %d can be recorded", n->op->name,
                          n_out, USG_NODE_MAX_OUTPUTS);
    if (status != USG_OK) { usg_node_release(n); return status; }
    n->n_out = n_out;
    for (int i = 0; i < n_out; i++) {
        usg_tensor *t = outputs[i];
        usg_node_release(t->grad_fn);      /* an output is new: normally none */
        t->grad_fn = n;
        t->output_nr = i;
        t->requires_grad = true;
        if (i > 0) usg_node_retain(n);
    }
    if (n_out == 0) usg_node_release(n);
    return USG_OK;
}

/* The one recording every op of the core and of the plugins goes through,
 * so that the rules (when to record, who frees the ctx, what a failure
 * leaves behind) are written once. */
usg_status usg_record(const usg_op *op, int n_in, usg_tensor *const *in, int n_out,
                      usg_tensor **out, int n_save, usg_tensor *const *save,
                      void *ctx, size_t ctx_size)
{
    bool want = usg_grad_needed(n_in, in);
    /* an integer result has no gradient (nor would PyTorch let it require one) */
    for (int i = 0; want && i < n_out; i++) want = usg_dtype_is_float(out[i]->dtype);
    if (!want) {
        if (ctx_size == 0) free_ctx(op, ctx);
        return USG_OK;
    }
    usg_status s = USG_OK;
    usg_node *n = NULL;
    void *c = ctx;
    if (ctx_size > 0) {
        /* the copy is freed by the node, so it must come from usg_alloc */
        if ((c = usg_alloc(ctx_size)) != NULL) memcpy(c, ctx, ctx_size);
        else s = USG_NOMEM;
    }
    if (s == USG_OK) s = usg_node_begin(&n, op, n_in, in, c);    /* owns c from here */
    for (int i = 0; s == USG_OK && n && i < n_save; i++)
        if (save[i]) s = usg_node_save(n, save[i]);
    s = usg_node_finish(n, n_out, out, s);
    if (s != USG_OK)
        for (int i = 0; i < n_out; i++) {
            usg_tensor_release(out[i]);
            out[i] = NULL;
        }
    return s;
}

/* ==== Inside a backward ================================================= */

void *usg_node_ctx(const usg_node *n) { return n->ctx; }
usg_tensor *usg_node_saved(const usg_node *n, int i) { return i < n->n_saved ? n->saved[i] : NULL; }
const char *usg_node_name(const usg_node *n) { return n->op->name; }
usg_dtype usg_node_input_dtype(const usg_node *n, int i) { return n->in_dtype[i]; }

bool usg_node_needs_grad(const usg_node *n, int i)
{
    return i < n->n_in && (n->next[i].node || n->next[i].leaf);
}

usg_status usg_node_zero_grad(usg_tensor **g, const usg_node *n, int i)
{
    int nd;
    *g = NULL;
    if (!usg_node_needs_grad(n, i)) return USG_OK;
    const int64_t *shape = usg_node_input_shape(n, i, &nd);
    return usg_tensor_zeros(g, usg_node_input_dtype(n, i), nd, shape);
}

usg_status usg_grad_for_kernel(usg_tensor **out, usg_tensor *g, usg_dtype dt)
{
    *out = NULL;
    if (!g) return USG_OK;
    usg_tensor *c;
    usg_status s = usg_to_dtype(&c, g, dt);
    if (s != USG_OK) return s;
    s = usg_contiguous(out, c);
    usg_tensor_release(c);
    return s;
}

const int64_t *usg_node_input_shape(const usg_node *n, int i, int *ndim)
{
    *ndim = n->in_ndim[i];
    return n->in_shape[i];
}

usg_status usg_sum_to(usg_tensor **out, const usg_tensor *g, int ndim, const int64_t *shape)
{
    usg_tensor *cur = (usg_tensor *)g, *next;
    usg_status s;
    usg_tensor_retain(cur);
    /* leading dims that broadcasting added */
    while (cur->ndim > ndim) {
        s = usg_sum(&next, cur, 0, false);
        usg_tensor_release(cur);
        if (s != USG_OK) return s;
        cur = next;
    }
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == 1 && cur->shape[d] != 1) {
            s = usg_sum(&next, cur, d, true);
            usg_tensor_release(cur);
            if (s != USG_OK) return s;
            cur = next;
        }
    }
    *out = cur;
    return USG_OK;
}

usg_status usg_check_inplace(const usg_tensor *t, const char *fn)
{
    if (!grad_disabled && t->requires_grad)
        return usg_fail(USG_ARG, "%s: cannot write in place into a tensor that requires grad "
                        "(%s); use the out-of-place form, or do it inside usagi.no_grad",
                        fn, t->grad_fn ? "it is part of a graph" : "a leaf");
    return USG_OK;
}

/* ==== The walk ========================================================== */

/* dst = dst + g (dst may be NULL: takes g). g's reference is consumed. */
static usg_status accumulate(usg_tensor **dst, usg_tensor *g)
{
    if (!g) return USG_OK;
    if (!*dst) { *dst = g; return USG_OK; }
    usg_tensor *sum;
    usg_status s = usg_binary(&sum, USG_ADD, *dst, g);
    usg_tensor_release(g);
    if (s != USG_OK) return s;
    usg_tensor_release(*dst);
    *dst = sum;
    return USG_OK;
}

/* Into a leaf's .grad: in place when it exists (so optimizers holding it see
 * the sum), in the leaf's dtype and shape. */
static usg_status accumulate_leaf(usg_tensor *leaf, usg_tensor *g)
{
    usg_status s = USG_OK;
    if (!leaf->grad) {
        if (g->dtype == leaf->dtype && usg_same_shape(g, leaf) && usg_tensor_is_contiguous(g) &&
            g->refcount == 1 && g->storage->refcount == 1 && !g->grad_fn) {
            /* only a gradient nobody else sees, not even through a view */
            leaf->grad = g;
            return USG_OK;
        }
        s = usg_tensor_empty(&leaf->grad, leaf->dtype, leaf->ndim, leaf->shape);
        if (s == USG_OK) s = usg_copy_(leaf->grad, g);
    } else {
        s = usg_binary_(leaf->grad, USG_ADD, g);
    }
    usg_tensor_release(g);
    return s;
}

static usg_status check_saved(usg_node *n)
{
    if (n->released)
        return usg_fail(USG_ARG, "backward: the graph through '%s' was already freed by a "
                        "backward; pass retain_graph = true to the first backward to go "
                        "through it twice", n->op->name);
    for (int i = 0; i < n->n_saved; i++)
        if (n->saved[i]->storage->version != n->saved_version[i])
            return usg_fail(USG_ARG, "backward: a tensor that '%s' saved for its gradient "
                            "was modified in place after the forward", n->op->name);
    return USG_OK;
}

/* A growable array of nodes (usg_alloc'd). */
typedef struct nodevec { usg_node **v; int n, cap; } nodevec;

static usg_status push(nodevec *a, usg_node *x)
{
    if (a->n == a->cap) {
        int cap = a->cap ? 2 * a->cap : 256;
        usg_node **v = usg_alloc((size_t)cap * sizeof *v);
        if (!v) return USG_NOMEM;
        if (a->n) memcpy(v, a->v, (size_t)a->n * sizeof *v);
        usg_free(a->v);
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    return USG_OK;
}

/* Visit every node reachable from root once (into *all), counting for each
 * the edges that point at it. Marks are cleared before returning. */
static usg_status collect(usg_node *root, nodevec *all)
{
    nodevec stack = {0};
    usg_status s = push(&stack, root);
    root->seen = true;
    root->pending = 0;
    while (s == USG_OK && stack.n > 0) {
        usg_node *n = stack.v[--stack.n];
        if ((s = push(all, n)) != USG_OK) break;
        for (int i = 0; i < n->n_in && s == USG_OK; i++) {
            usg_node *m = n->next[i].node;
            if (!m) continue;
            if (!m->seen) {
                m->seen = true;
                m->pending = 0;
                s = push(&stack, m);
            }
            m->pending++;
        }
    }
    for (int i = 0; i < all->n; i++) all->v[i]->seen = false;
    for (int i = 0; i < stack.n; i++) stack.v[i]->seen = false;
    usg_free(stack.v);
    return s;
}

/* ==== Leaves done: the gradient-ready hook ============================== */

static usg_grad_ready_fn ready_fn;
static void *ready_ud;

void usg_set_grad_ready_hook(usg_grad_ready_fn fn, void *ud) { ready_fn = fn, ready_ud = ud; }

/* The leaves of a walk, sorted by address, each with the number of edges
 * into it that have not run yet (usg_alloc'd arrays). */
typedef struct leafcount { usg_tensor **leaf; int *left; int n; } leafcount;

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)*(usg_tensor *const *)a, y = (uintptr_t)*(usg_tensor *const *)b;
    return x < y ? -1 : x > y;
}

static usg_status count_leaves(const nodevec *all, leafcount *lc)
{
    int edges = 0;
    for (int i = 0; i < all->n; i++)
        for (int k = 0; k < all->v[i]->n_in; k++) edges += all->v[i]->next[k].leaf != NULL;
    if (edges == 0) return USG_OK;
    lc->leaf = usg_alloc((size_t)edges * sizeof *lc->leaf);
    lc->left = usg_alloc((size_t)edges * sizeof *lc->left);
    if (!lc->leaf || !lc->left) return USG_NOMEM;
    int e = 0;
    for (int i = 0; i < all->n; i++)
        for (int k = 0; k < all->v[i]->n_in; k++)
            if (all->v[i]->next[k].leaf) lc->leaf[e++] = all->v[i]->next[k].leaf;
    qsort(lc->leaf, (size_t)edges, sizeof *lc->leaf, cmp_ptr);
    for (int i = 0; i < edges; i++) {                /* unique, with counts */
        if (lc->n > 0 && lc->leaf[lc->n - 1] == lc->leaf[i]) { lc->left[lc->n - 1]++; continue; }
        lc->leaf[lc->n] = lc->leaf[i];
        lc->left[lc->n++] = 1;
    }
    return USG_OK;
}

/* One edge into leaf has run: the hook when it was the last. */
static void leaf_edge_done(leafcount *lc, usg_tensor *leaf)
{
    usg_tensor **p = bsearch(&leaf, lc->leaf, (size_t)lc->n, sizeof *lc->leaf, cmp_ptr);
    if (p && --lc->left[p - lc->leaf] == 0 && ready_fn) ready_fn(leaf, ready_ud);
}

static usg_status run_node(usg_node *n, bool retain, leafcount *lc)
{
    usg_tensor *gin[USG_NODE_MAX_INPUTS] = {NULL};
    usg_status s = check_saved(n);
    bool any = false;
    for (int i = 0; i < n->n_out; i++) any |= n->grad[i] != NULL;
    /* no gradient reached this node: its inputs get none from it */
    if (s == USG_OK && any) s = n->op->backward(n, n->grad, gin);
    for (int i = 0; i < USG_NODE_MAX_OUTPUTS; i++) { usg_tensor_release(n->grad[i]); n->grad[i] = NULL; }
    for (int i = 0; i < n->n_in; i++) {
        usg_tensor *g = gin[i];
        if (!g) continue;
        if (s != USG_OK || (!n->next[i].node && !n->next[i].leaf)) { usg_tensor_release(g); continue; }
        if (n->next[i].node) s = accumulate(&n->next[i].node->grad[n->next[i].output_nr], g);
        else s = accumulate_leaf(n->next[i].leaf, g);
    }
    if (lc->n > 0 && s == USG_OK)
        for (int i = 0; i < n->n_in; i++)
            if (n->next[i].leaf) leaf_edge_done(lc, n->next[i].leaf);
    if (!retain) free_saved(n);
    return s;
}

usg_status usg_backward(usg_tensor *root, usg_tensor *grad, bool retain_graph)
{
    if (!root->requires_grad)
        return usg_fail(USG_ARG, "backward: the tensor does not require grad (no input of "
                        "its computation had requires_grad set)");
    usg_tensor *g;
    usg_status s;
    if (grad) {
        if (!usg_same_shape(grad, root)) {
            char b1[256], b2[256];
            return usg_fail(USG_SHAPE, "backward: gradient %s does not match the tensor %s",
                            usg_shape_str(b1, sizeof b1, grad->ndim, grad->shape),
                            usg_shape_str(b2, sizeof b2, root->ndim, root->shape));
        }
        s = usg_to_dtype(&g, grad, root->dtype);
    } else {
        if (usg_tensor_numel(root) != 1) {
            char b[256];
            return usg_fail(USG_SHAPE, "backward: the tensor has shape %s; without a gradient "
                            "argument it must have one element (a loss)",
                            usg_shape_str(b, sizeof b, root->ndim, root->shape));
        }
        s = usg_tensor_full(&g, root->dtype, root->ndim, root->shape, 1);
    }
    if (s != USG_OK) return s;
    if (!root->grad_fn) return accumulate_leaf(root, g);

    nodevec all = {0};
    if ((s = collect(root->grad_fn, &all)) != USG_OK) {
        usg_free(all.v);
        usg_tensor_release(g);
        return s;
    }
    root->grad_fn->grad[root->output_nr] = g;
    leafcount lc = {0};
    if (ready_fn && (s = count_leaves(&all, &lc)) != USG_OK) lc.n = 0;

    /* Kahn's order over the pending counts, LIFO; backward functions run
     * with grad mode off, so their own ops record nothing */
    bool mode = usg_set_grad_enabled(false);
    usg_node *ready = root->grad_fn;
    ready->link = NULL;
    while (ready && s == USG_OK) {
        usg_node *n = ready;
        ready = n->link;
        s = run_node(n, retain_graph, &lc);
        for (int i = 0; i < n->n_in; i++) {
            usg_node *m = n->next[i].node;
            if (m && --m->pending == 0) { m->link = ready; ready = m; }
        }
    }
    usg_set_grad_enabled(mode);
    /* on failure, drop what gradients were left on the way */
    for (int i = 0; i < all.n; i++)
        for (int k = 0; k < USG_NODE_MAX_OUTPUTS; k++) {
            usg_tensor_release(all.v[i]->grad[k]);
            all.v[i]->grad[k] = NULL;
        }
    usg_free(all.v);
    usg_free(lc.leaf);
    usg_free(lc.left);
    return s;
}

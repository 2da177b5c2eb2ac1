/* launch.c — the launch engine: binding arguments, resolving size
 * symbols, creating the buffers of unbound parameters, and running a
 * kernel through the context's backend.
 *
 * A launch keeps everything a run needs (resolved sizes, its own output
 * buffers, the argument arrays, the backend's prepared program) and
 * rebuilds it only when a binding changes, so repeated runs are a submit
 * and a wait with no allocation. From px_launch_run to the device:
 * px_launch_submit → px_launch_prepare (sizes, buffers) → record (the
 * backend's prog_prepare: dispatch counts, limits, scratch, command buffer)
 * → ops->submit; px_launch_wait → ops->wait. */
#include "rt.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The host arrays of a launch and the launch itself (l may be NULL or
 * partly allocated). Device objects are released by px_launch_destroy. */
static void launch_free(PxLaunch *l)
{
    if (!l) return;
    free(l->p);
    free(l->s);
    free(l->symv);
    free(l->paramv);
    free(l->scalars);
    free(l->bufs);
    free(l->stage_ns);
    free(l);
}

PxResult px_launch_create(PxKernel *k, PxLaunch **out)
{
    if (out) *out = NULL;
    if (!k || !out) return PX_ERR_INVALID;
    PxContext *c = k->m->ctx;
    PxLaunch *l = calloc(1, sizeof *l);
    int np = k->ir->params.n, ns = k->ir->syms.n, nst = k->ir->stages.n;
    if (l) {
        l->p = calloc((size_t)np + 1, sizeof *l->p);
        l->s = calloc((size_t)ns + 1, sizeof *l->s);
        l->symv = calloc((size_t)ns + 1, sizeof *l->symv);
        l->paramv = calloc((size_t)np + 1, sizeof *l->paramv);
        l->scalars = calloc((size_t)np + 1, sizeof *l->scalars);
        l->bufs = calloc((size_t)np + 1, sizeof *l->bufs);
        l->stage_ns = calloc((size_t)nst + 1, sizeof *l->stage_ns);
    }
    if (!l || !l->p || !l->s || !l->symv || !l->paramv || !l->scalars || !l->bufs || !l->stage_ns) {
        launch_free(l);
        return rt_fail(&c->log, PX_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    l->k = k;
    l->untimed = !c->timed;
    l->c = c;
    l->total_ns = -1;
    l->pred_ns = -1;
    for (int i = 0; i < nst; i++) l->stage_ns[i] = -1;
    *out = l;
    return PX_OK;
}

void px_launch_destroy(PxLaunch *l)
{
    if (!l) return;
    PxContext *c = l->c;
    if (l->pending) {
        c->ops->wait(c->dev, l->prog);
        c->inflight--;
    }
    c->ops->prog_destroy(c->dev, l->prog);
    for (int i = 0; i < l->k->ir->params.n; i++) px_buffer_destroy(l->p[i].own);
    launch_free(l);
}

static int find_param(const PxLaunch *l, const char *name)
{
    if (!name) return -1;
    for (int i = 0; i < l->k->ir->params.n; i++)
        if (!strcmp(l->k->ir->params.v[i].name, name)) return i;
    return -1;
}

static PxResult no_param(PxLaunch *l, const char *name)
{
    return rt_fail(&l->c->log, PX_ERR_NOT_FOUND, "kernel %s has no parameter named %s", l->k->ir->name,
                   name ? name : "(null)");
}

PxResult px_launch_bind(PxLaunch *l, const char *param, PxBuffer *b, const char *origin)
{
    if (!l) return PX_ERR_INVALID;
    int i = find_param(l, param);
    if (i < 0) return no_param(l, param);
    if (!l->k->ir->params.v[i].is_buffer)
        return rt_fail(&l->c->log, PX_ERR_INVALID, "%s is a scalar parameter of %s, not a buffer", param,
                       l->k->ir->name);
    LParam *p = &l->p[i];
    uint64_t id = b ? b->id : 0;
    if (p->bound != b || p->bound_id != id) l->prepared = l->recorded = 0;
    p->bound = b;
    p->bound_id = id;
    if (origin) snprintf(p->origin, sizeof p->origin, "%s", origin);
    else snprintf(p->origin, sizeof p->origin, "buffer bound to %s", param);
    return PX_OK;
}

static PxResult set_scalar(PxLaunch *l, const char *param, ScalarType t, uint32_t bits)
{
    if (!l) return PX_ERR_INVALID;
    int i = find_param(l, param);
    if (i < 0) return no_param(l, param);
    const IrParam *ip = &l->k->ir->params.v[i];
    if (ip->is_buffer)
        return rt_fail(&l->c->log, PX_ERR_INVALID, "%s is a buffer parameter of %s, not a scalar", param,
                       l->k->ir->name);
    if (ip->type != t)
        return rt_fail(&l->c->log, PX_ERR_SHAPE, "scalar parameter %s is %s, not %s", param,
                       fe_type_name(ip->type), fe_type_name(t));
    LParam *p = &l->p[i];
    if (!p->set || p->bits != bits) {
        /* int/uint scalars may enter group counts, so they re-prepare */
        if (t == TY_INT || t == TY_UINT) l->prepared = 0;
        l->recorded = 0;
    }
    p->bits = bits;
    p->set = 1;
    return PX_OK;
}

PxResult px_launch_set_float(PxLaunch *l, const char *param, float v)
{
    uint32_t b;
    memcpy(&b, &v, 4);
    return set_scalar(l, param, TY_FLOAT, b);
}

PxResult px_launch_set_half(PxLaunch *l, const char *param, float v)
{
    /* half scalars travel as a float (cg.h), rounded to half here so the
     * kernel sees exactly the half value */
    float r = px_half_to_float(px_float_to_half(v));
    uint32_t b;
    memcpy(&b, &r, 4);
    return set_scalar(l, param, TY_HALF, b);
}

PxResult px_launch_set_int(PxLaunch *l, const char *param, int32_t v)
{
    return set_scalar(l, param, TY_INT, (uint32_t)v);
}

PxResult px_launch_set_uint(PxLaunch *l, const char *param, uint32_t v)
{
    return set_scalar(l, param, TY_UINT, v);
}

PxResult px_launch_set_scalar_text(PxLaunch *l, const char *param, const char *text)
{
    if (!l || !text) return PX_ERR_INVALID;
    int i = find_param(l, param);
    if (i < 0) return no_param(l, param);
    const IrParam *ip = &l->k->ir->params.v[i];
    if (ip->is_buffer)
        return rt_fail(&l->c->log, PX_ERR_INVALID,
                       "%s is a buffer parameter: give it a .npy file, not the value '%s'", param, text);
    /* px_parse_int/px_parse_float: the numbers pxrun reads everywhere */
    switch (ip->type) {
    case TY_FLOAT:
    case TY_HALF: {
        int half = ip->type == TY_HALF;
        double v;
        int e = px_parse_float(text, half ? PX_HALF_MAX : PX_FLOAT_MAX, &v);
        if (e == 1)
            return rt_fail(&l->c->log, PX_ERR_INVALID, "scalar %s is %s but '%s' is not a number", param,
                           fe_type_name(ip->type), text);
        if (e)
            return rt_fail(&l->c->log, PX_ERR_INVALID, "scalar %s is %s but %s is beyond its range (%s)", param,
                           fe_type_name(ip->type), text, half ? "65504" : "3.4028235e38");
        return half ? px_launch_set_half(l, param, (float)v) : px_launch_set_float(l, param, (float)v);
    }
    case TY_INT: {
        int64_t v;
        int e = px_parse_int(text, INT32_MIN, INT32_MAX, &v);
        if (e == 1)
            return rt_fail(&l->c->log, PX_ERR_INVALID,
                           "scalar %s is int but '%s' is not an integer (decimal or 0x hex)", param, text);
        if (e)
            return rt_fail(&l->c->log, PX_ERR_INVALID, "scalar %s is int but %s does not fit in 32 bits", param,
                           text);
        return px_launch_set_int(l, param, (int32_t)v);
    }
    case TY_UINT: {
        int64_t v;
        int e = text[0] == '-' ? 1 : px_parse_int(text, 0, UINT32_MAX, &v);
        if (e == 1)
            return rt_fail(&l->c->log, PX_ERR_INVALID,
                           "scalar %s is uint but '%s' is not an unsigned integer (decimal or 0x hex)", param, text);
        if (e)
            return rt_fail(&l->c->log, PX_ERR_INVALID, "scalar %s is uint but %s does not fit in 32 bits", param,
                           text);
        return px_launch_set_uint(l, param, (uint32_t)v);
    }
    default: return rt_fail(&l->c->log, PX_ERR_INVALID, "scalar %s has no settable type", param);
    }
}

PxResult px_launch_set_size(PxLaunch *l, const char *sym, int64_t value, const char *origin)
{
    if (!l || !sym) return PX_ERR_INVALID;
    for (int i = 0; i < l->k->ir->syms.n; i++) {
        if (strcmp(l->k->ir->syms.v[i].name, sym)) continue;
        if (value < 0 || value > UINT32_MAX)
            return rt_fail(&l->c->log, PX_ERR_INVALID, "size %s = %lld is out of range (0 to 4294967295)", sym,
                           (long long)value);
        LSym *s = &l->s[i];
        if (!s->has_given || s->given != value) l->prepared = l->recorded = 0;
        s->given = value;
        s->has_given = 1;
        if (origin) snprintf(s->given_origin, sizeof s->given_origin, "%s", origin);
        else snprintf(s->given_origin, sizeof s->given_origin, "size %s set to %lld", sym, (long long)value);
        return PX_OK;
    }
    return rt_fail(&l->c->log, PX_ERR_NOT_FOUND, "kernel %s has no size symbol named %s", l->k->ir->name, sym);
}

/* Binds symbol si to v from `origin`; an earlier different value is an
 * error naming both places. */
static PxResult bind_sym(PxLaunch *l, int si, int64_t v, const char *origin)
{
    LSym *s = &l->s[si];
    const char *name = l->k->ir->syms.v[si].name;
    if (s->has_val && s->val != v)
        return rt_fail(&l->c->log, PX_ERR_SHAPE, "size %s is %lld from %s but %lld from %s", name,
                       (long long)s->val, s->origin, (long long)v, origin);
    if (!s->has_val) {
        if (v > UINT32_MAX)
            return rt_fail(&l->c->log, PX_ERR_TOO_LARGE, "size %s = %lld from %s does not fit in a uint", name,
                           (long long)v, origin);
        s->val = v;
        s->has_val = 1;
        snprintf(s->origin, sizeof s->origin, "%s", origin);
    }
    return PX_OK;
}

static void shape_text(char *buf, size_t n, int rank, const int64_t *shape)
{
    size_t o = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < rank && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, "%lld%s", (long long)shape[i], rank == 1 ? "," : i + 1 < rank ? ", " : "");
    if (o < n) snprintf(buf + o, n - o, ")");
}

static PxResult prepare_sizes(PxLaunch *l)
{
    const IrKernel *k = l->k->ir;
    for (int i = 0; i < k->syms.n; i++) {
        LSym *s = &l->s[i];
        s->has_val = 0;
        s->flex_rank = 0;
        if (s->has_given) {
            s->val = s->given;
            s->has_val = 1;
            snprintf(s->origin, sizeof s->origin, "%s", s->given_origin);
        }
    }
    PxResult r;
    for (int i = 0; i < k->params.n; i++) {
        const IrParam *p = &k->params.v[i];
        PxBuffer *b = l->p[i].bound;
        if (!p->is_buffer || !b) continue;
        const char *org = l->p[i].origin;
        char sh[96];
        shape_text(sh, sizeof sh, b->rank, b->shape);
        if (b->dtype != rt_dtype_of(p->type))
            return rt_fail(&l->c->log, PX_ERR_SHAPE, "%s holds %s data but parameter %s is %s", org,
                           px_dtype_name(b->dtype), p->name, fe_type_name(p->type));
        if (p->flags & IR_P_FLEX) {
            /* any rank: the one extent is the element count */
            char where[200];
            snprintf(where, sizeof where, "%s (all %lld elements)", org, (long long)b->count);
            const IrSize *d0 = p->dims[0];
            int64_t c;
            if (ir_size_is_const(d0, &c)) {
                if (c != b->count)
                    return rt_fail(&l->c->log, PX_ERR_SHAPE, "parameter %s has %lld elements but %s has shape %s",
                                   p->name, (long long)c, org, sh);
            } else if (d0->op == SZ_SYM) {
                if ((r = bind_sym(l, d0->sym, b->count, where))) return r;
                LSym *s = &l->s[d0->sym];
                if (!s->flex_rank) {
                    s->flex_rank = b->rank ? b->rank : 1;
                    for (int d = 0; d < b->rank; d++) s->flex_shape[d] = b->shape[d];
                    if (!b->rank) s->flex_shape[0] = 1;
                }
            }
            continue;
        }
        if (b->rank != p->rank)
            return rt_fail(&l->c->log, PX_ERR_SHAPE, "parameter %s is %d-D but %s has shape %s (%d-D)", p->name,
                           p->rank, org, sh, b->rank);
        for (int d = 0; d < p->rank; d++) {
            int64_t c;
            if (ir_size_is_const(p->dims[d], &c)) {
                if (c != b->shape[d])
                    return rt_fail(&l->c->log, PX_ERR_SHAPE,
                                   "dim %d of parameter %s is %lld but %s has shape %s", d, p->name,
                                   (long long)c, org, sh);
            } else if (p->dims[d]->op == SZ_SYM) {
                char where[200];
                snprintf(where, sizeof where, "%s (dim %d)", org, d);
                if ((r = bind_sym(l, p->dims[d]->sym, b->shape[d], where))) return r;
            }
        }
    }
    /* every size symbol some unbound buffer needs must now have a value */
    for (int si = 0; si < k->syms.n; si++) {
        if (l->s[si].has_val) continue;
        char users[400] = "";
        size_t o = 0;
        int nu = 0;
        for (int i = 0; i < k->params.n; i++) {
            const IrParam *p = &k->params.v[i];
            if (!p->is_buffer) continue;
            for (int d = 0; d < p->rank; d++)
                if (p->dims[d]->op == SZ_SYM && p->dims[d]->sym == si) {
                    if (o < sizeof users - 1)
                        o += (size_t)snprintf(users + o, sizeof users - o, "%s%s", nu ? ", " : "", p->name);
                    nu++;
                    break;
                }
        }
        const IrSym *sy = &k->syms.v[si];
        if (sy->implicit)
            return rt_fail(&l->c->log, PX_ERR_UNBOUND,
                           "the shape of %s is not known: bind data to it or to a buffer of the same shape",
                           nu ? users : sy->name);
        return rt_fail(&l->c->log, PX_ERR_UNBOUND,
                       "size %s is not bound: %s need%s it (bind a buffer with that extent, or set the size)",
                       sy->name, nu ? users : "the kernel", nu == 1 ? "s" : "");
    }
    for (int i = 0; i < k->syms.n; i++) l->symv[i] = l->s[i].val;
    /* scalars */
    for (int i = 0; i < k->params.n; i++) {
        const IrParam *p = &k->params.v[i];
        if (p->is_buffer) continue;
        if (!l->p[i].set)
            return rt_fail(&l->c->log, PX_ERR_UNBOUND, "scalar parameter %s (%s) has no value", p->name,
                           fe_type_name(p->type));
        l->paramv[i] = p->type == TY_INT ? (int64_t)(int32_t)l->p[i].bits
                       : p->type == TY_UINT ? (int64_t)l->p[i].bits : 0;
    }
    return PX_OK;
}

/* The rank and shape of the buffer param i gets when unbound, at the
 * resolved sizes: a flexible one takes the shape of the data that bound
 * its symbol, others their declared extents. */
static int unbound_shape(const PxLaunch *l, int i, int64_t shape[4])
{
    const IrParam *p = &l->k->ir->params.v[i];
    if ((p->flags & IR_P_FLEX) && p->dims[0]->op == SZ_SYM && l->s[p->dims[0]->sym].flex_rank) {
        const LSym *fs = &l->s[p->dims[0]->sym];
        memcpy(shape, fs->flex_shape, 4 * sizeof *shape);
        return fs->flex_rank;
    }
    for (int d = 0; d < p->rank; d++) shape[d] = ir_size_eval(p->dims[d], l->symv, l->paramv);
    return p->rank;
}

PxResult rt_launch_resolve(PxLaunch *l) { return prepare_sizes(l); }

int rt_launch_unbound_shape(const PxLaunch *l, int param, int64_t shape[4])
{
    const IrParam *p = &l->k->ir->params.v[param];
    if (!p->is_buffer || l->p[param].bound) return -1;
    return unbound_shape(l, param, shape);
}

/* Creates (or keeps, when the shape is unchanged) buffers of unbound params. */
static PxResult prepare_buffers(PxLaunch *l)
{
    const IrKernel *k = l->k->ir;
    PxResult r;
    for (int i = 0; i < k->params.n; i++) {
        const IrParam *p = &k->params.v[i];
        LParam *lp = &l->p[i];
        if (!p->is_buffer || lp->bound) {
            if (lp->own) {
                px_buffer_destroy(lp->own);
                lp->own = NULL;
            }
            continue;
        }
        int64_t shape[4];
        int rank = unbound_shape(l, i, shape);
        PxBuffer *o = lp->own;
        int same = o && o->dtype == rt_dtype_of(p->type) && o->rank == rank;
        for (int d = 0; same && d < rank; d++) same = o->shape[d] == shape[d];
        /* an unbound buffer starts zero-filled on every prepare */
        if (same && (r = l->c->ops->buffer_zero(l->c->dev, o->rb))) return r;
        if (!same) {
            px_buffer_destroy(lp->own);
            lp->own = NULL;
            if ((r = px_buffer_create(l->c, rt_dtype_of(p->type), rank, shape, &lp->own))) {
                char sh[96];
                shape_text(sh, sizeof sh, rank, shape);
                return rt_fail(&l->c->log, r, "buffer %s of shape %s: %s", p->name, sh, l->c->log.last);
            }
        }
    }
    return PX_OK;
}

PxResult px_launch_prepare(PxLaunch *l)
{
    if (!l) return PX_ERR_INVALID;
    if (l->pending) {
        PxResult r = px_launch_wait(l);
        if (r) return r;
    }
    /* the last run's times stay readable but teach nothing: the prediction
     * to learn against is at the sizes being replaced */
    if (l->unread) l->unread_cold = 1;
    PxResult r = prepare_sizes(l);
    if (!r) r = prepare_buffers(l);
    l->prepared = r == PX_OK;
    l->recorded = 0;
    l->pred_ns = -1;
    l->budget_ok = 0;
    return r;
}

PxBuffer *px_launch_buffer(PxLaunch *l, const char *param)
{
    if (!l) return NULL;
    int i = find_param(l, param);
    if (i < 0 || !l->prepared) return NULL;
    return l->p[i].bound ? l->p[i].bound : l->p[i].own;
}

PxResult px_launch_size(PxLaunch *l, const char *sym, int64_t *value)
{
    if (!l || !sym || !value) return PX_ERR_INVALID;
    for (int i = 0; i < l->k->ir->syms.n; i++)
        if (!strcmp(l->k->ir->syms.v[i].name, sym)) {
            if (!l->prepared || !l->s[i].has_val) return PX_ERR_UNBOUND;
            *value = l->s[i].val;
            return PX_OK;
        }
    return PX_ERR_NOT_FOUND;
}

/* The backend's program for the prepared arguments. */
static PxResult record(PxLaunch *l)
{
    const IrKernel *ir = l->k->ir;
    for (int i = 0; i < ir->params.n; i++) {
        LParam *lp = &l->p[i];
        l->scalars[i] = ir->params.v[i].is_buffer ? 0 : lp->bits;
        PxBuffer *b = ir->params.v[i].is_buffer ? (lp->bound ? lp->bound : lp->own) : NULL;
        l->bufs[i] = b ? b->rb : NULL;
    }
    RtArgs a = {l->bufs, l->scalars, l->symv, l->paramv, l->untimed, &l->cancel};
    PxResult r = l->c->ops->prog_prepare(l->c->dev, l->k->m->code, l->k->index, &a, &l->prog);
    if (r) return r;
    l->recorded = 1;
    l->nruns = 0; /* the next run is cold again (learn) */
    return PX_OK;
}

/* PxLimits.launch_budget_ns: the whole kernel's roofline prediction at the
 * bound sizes, once per prepare. A cost the analysis cannot state (an
 * overflow, or no figures) is refused as well: nothing bounds it. */
static PxResult check_budget(PxLaunch *l)
{
    double budget = l->c->limits.launch_budget_ns;
    if (l->budget_ok || !(budget > 0)) return PX_OK;
    const char *name = l->k->ir->name;
    PxCost pc;
    PxResult r = px_launch_cost(l, -1, &pc);
    if (r || !(pc.predicted_ns >= 0) || !isfinite(pc.predicted_ns))
        return rt_fail(&l->c->log, PX_ERR_LIMIT,
                       "kernel '%s': its cost at these sizes is too large to state, so the launch budget "
                       "(%.3g s) refuses it",
                       name, budget * 1e-9);
    if (pc.predicted_ns > budget)
        return rt_fail(&l->c->log, PX_ERR_LIMIT,
                       "kernel '%s': predicted %.3g s at these sizes, more than the launch budget of %.3g s",
                       name, pc.predicted_ns * 1e-9, budget * 1e-9);
    l->budget_ok = 1;
    return PX_OK;
}

PxResult px_launch_cancel(PxLaunch *l)
{
    if (!l) return PX_ERR_INVALID;
    /* no log here: it may run on another thread than the context's */
    if (!l->c->caps.can_cancel) return PX_ERR_UNSUPPORTED;
    __atomic_store_n(&l->cancel, 1, __ATOMIC_SEQ_CST);
    return PX_OK;
}

PxResult rt_launch_ready(PxLaunch *l)
{
    PxResult r;
    if (l->pending && (r = px_launch_wait(l))) return r;
    if (!l->prepared && (r = px_launch_prepare(l))) return r;
    if ((r = check_budget(l))) return r;
    return l->recorded ? PX_OK : record(l);
}

void rt_launch_forget(PxLaunch *l)
{
    l->c->ops->prog_destroy(l->c->dev, l->prog);
    l->prog = NULL;
    l->recorded = 0;
    l->pending = 0;
}

PxResult px_launch_submit(PxLaunch *l)
{
    if (!l) return PX_ERR_INVALID;
    PxResult r;
    if (l->pending && (r = px_launch_wait(l))) return r;
    if (!l->prepared && (r = px_launch_prepare(l))) return r;
    if ((r = check_budget(l))) return r;
    if (l->unread) {
        l->unread = 0;
        l->total_ns = -1;
        for (int i = 0; i < l->k->ir->stages.n; i++) l->stage_ns[i] = -1;
    }
    if (!l->recorded && (r = record(l))) return r;
    if ((r = l->c->ops->submit(l->c->dev, l->prog))) return r;
    l->pending = 1;
    l->c->inflight++;
    return PX_OK;
}

PxResult px_launch_wait(PxLaunch *l)
{
    if (!l) return PX_ERR_INVALID;
    if (!l->pending) {
        if (l->ran) return PX_OK;
        return rt_fail(&l->c->log, PX_ERR_NOT_READY, "px_launch_wait: nothing was submitted");
    }
    l->pending = 0;
    l->c->inflight--;
    PxResult r = l->c->ops->wait(l->c->dev, l->prog);
    if (r) return r;
    l->ran = 1;
    /* the repeat-run path ends here: times stay unread until asked for */
    l->unread = 1;
    l->unread_cold = l->nruns++ == 0;
    return PX_OK;
}

PxResult px_launch_set_timing(PxLaunch *l, int on)
{
    if (!l) return PX_ERR_INVALID;
    if (l->untimed != !on) {
        /* re-recorded, so the next run is cold (learn) on either backend */
        l->recorded = 0;
        l->nruns = 0;
    }
    l->untimed = !on;
    return PX_OK;
}

PxResult px_launch_run(PxLaunch *l)
{
    PxResult r = px_launch_submit(l);
    return r ? r : px_launch_wait(l);
}

int px_launch_stage_count(const PxLaunch *l) { return l ? l->k->ir->stages.n : 0; }
const char *px_launch_stage_name(const PxLaunch *l, int i) { return l ? px_kernel_stage_name(l->k, i) : NULL; }

/* l is logically const: reading the times only fills in what the last run
 * measured. */
double px_launch_stage_time_ns(const PxLaunch *cl, int i)
{
    PxLaunch *l = (PxLaunch *)cl;
    if (!l || !l->ran) return -1;
    rt_read_times(l);
    if (i < 0) return l->total_ns;
    return i < l->k->ir->stages.n ? l->stage_ns[i] : -1;
}

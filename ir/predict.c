/* predict.c — device profiles and prediction, pure computation: the
 * default profile and its text form, the roofline prediction of a stage
 * and a kernel, the learned correction, and fitting a profile to
 * calibration samples (docs/COST.md, "Prediction" and "Calibration").
 * Reading and writing profile files, and running the calibration
 * kernels, is the runtime's (runtime/profile.c, runtime/calibrate.c). */
#include "ir.h"

#include <math.h>
#include <stdlib.h>

/* ---- device profile -------------------------------------------------------- */

void ir_profile_default(IrDeviceProfile *p)
{
    memset(p, 0, sizeof *p);
    strcpy(p->device, "default");
    p->bytes_per_s = 2e9;      /* a slow CPU memory path */
    p->flops_per_s = 1e9;
    p->intops_per_s = 1e9;
    p->accesses_per_s = 1e9;   /* a CPU rasteriser gathers lane by lane */
    p->checked_per_s = 1e9;
    p->dispatch_s = 50e-6;     /* lavapipe-class launch overhead */
    p->barrier_s = 10e-6;
    p->group_s = 0;
    for (int i = 0; i < IR_LIB_N; i++)
        p->lib_slowdown[i] = p->lib_vec4_access[i] = 1, p->lib_fixed_s[i] = p->lib_group_s[i] = 0;
    p->calibrated = 0;
}

int ir_profile_parse(IrDeviceProfile *p, const char *text)
{
    IrDeviceProfile q;
    ir_profile_default(&q);
    q.calibrated = 0;
    /* seen bits: all eight figures (rates and overheads) must be present */
    int seen = 0;
    const char *s = text;
    while (*s) {
        const char *e = strchr(s, '\n');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        char line[256];
        if (len < sizeof line && *s != '#') {
            memcpy(line, s, len);
            line[len] = 0;
            char *val = strchr(line, ' ');
            if (val) {
                *val++ = 0;
                char *end;
                double x = strtod(val, &end);
                int num = end != val && *end == 0 && isfinite(x);
                static const char *const keys[] = {"bytes_per_s", "flops_per_s", "intops_per_s",
                                                   "accesses_per_s", "checked_per_s", "dispatch_s",
                                                   "barrier_s", "group_s"};
                double *dst[] = {&q.bytes_per_s,     &q.flops_per_s, &q.intops_per_s, &q.accesses_per_s,
                                 &q.checked_per_s,  &q.dispatch_s,  &q.barrier_s,    &q.group_s};
                if (!strcmp(line, "device")) {
                    snprintf(q.device, sizeof q.device, "%s", val);
                } else if (!strcmp(line, "calibrated") && num) {
                    q.calibrated = x != 0;
                } else if (!strcmp(line, "stream_accesses_per_s")) {
                    /* optional (older files: 0, the gather rate) */
                    if (!num || x < 0) return -1;
                    q.stream_accesses_per_s = x;

                } else if (!strncmp(line, "slowdown_", 9) || !strncmp(line, "fixed_s_", 8) ||
                           !strncmp(line, "group_s_", 8) || !strncmp(line, "vec4_access_", 12)) {
                    /* optional (files from before the per-group figure have
                     * none: 0; from before the vec4 figure: 1, what they
                     * were fitted with); unknown classes are skipped so
                     * that newer files still load */
                    int slow = line[0] == 's', vec = line[0] == 'v';
                    const char *cls = line + (slow ? 9 : vec ? 12 : 8);
                    double *fig = slow  ? q.lib_slowdown
                                  : vec ? q.lib_vec4_access
                                  : line[0] == 'f' ? q.lib_fixed_s
                                                   : q.lib_group_s;
                    for (int i = 1; i < IR_LIB_N; i++)
                        if (!strcmp(cls, ir_lib_class_names[i])) {
                            if (!num || (slow ? x <= 0 : vec ? x < 1 || x > 4 : x < 0)) return -1;
                            fig[i] = x;
                        }
                } else {
                    for (int i = 0; i < 8; i++)
                        if (!strcmp(line, keys[i])) {
                            /* rates must be positive, overheads non-negative */
                            if (!num || (i < 5 ? x <= 0 : x < 0)) return -1;
                            *dst[i] = x;
                            seen |= 1 << i;
                        }
                }
            }
        }
        s += len;
        if (*s == '\n') s++;
    }
    if (seen != 0xff) return -1;
    *p = q;
    return 0;
}

/* ---- prediction ------------------------------------------------------------- */

static double roofline_s(const IrCostValues *v, const IrDeviceProfile *p)
{
    double ops = v->v[IR_COST_FLOPS] / p->flops_per_s + v->v[IR_COST_INTOPS] / p->intops_per_s +
                 v->v[IR_COST_ACCESSES] / p->accesses_per_s + v->v[IR_COST_CHECKED] / p->checked_per_s;
    double mem = (v->v[IR_COST_BYTES_READ] + v->v[IR_COST_BYTES_WRITTEN]) / p->bytes_per_s;
    IrLibClass c = (unsigned)v->lib < IR_LIB_N ? v->lib : IR_LIB_NONE;
    double groups = v->groups > 0 ? v->groups : 0;
    double per_group = c == IR_LIB_NONE ? p->group_s : p->lib_group_s[c];
    return (ops > mem ? ops : mem) * p->lib_slowdown[c] + p->lib_fixed_s[c] + groups * per_group;
}

static double overhead_s(double dispatches, const IrDeviceProfile *p)
{
    if (dispatches <= 0) return 0;
    return dispatches * p->dispatch_s + (dispatches - 1) * p->barrier_s;
}

double ir_predict_stage_s(const IrCostValues *v, const IrDeviceProfile *p)
{
    return roofline_s(v, p) + overhead_s(v->v[IR_COST_DISPATCHES], p);
}

double ir_predict_kernel_s(const IrCostValues *total, const IrCostValues *stages, int n,
                           const IrDeviceProfile *p)
{
    double work = 0;
    if (stages && n > 0)
        for (int i = 0; i < n; i++) work += roofline_s(&stages[i], p);
    else
        work = roofline_s(total, p);
    return work + overhead_s(total->v[IR_COST_DISPATCHES], p);
}

void ir_correction_init(IrCorrection *c)
{
    c->factor = 1.0;
    c->samples = 0;
    for (int i = 0; i < IR_CORRECTION_WINDOW; i++) c->ratio[i] = 1.0;
}

double ir_correction_apply(const IrCorrection *c, double predicted_s) { return predicted_s * c->factor; }

void ir_correction_update(IrCorrection *c, double predicted_s, double measured_s)
{
    if (!(predicted_s > 0) || !(measured_s > 0) || !isfinite(predicted_s) || !isfinite(measured_s)) return;
    double r = measured_s / predicted_s;
    /* One wild sample (a preempted run) must not swing the factor far. */
    if (r < 1e-6) r = 1e-6;
    if (r > 1e6) r = 1e6;
    c->ratio[c->samples % IR_CORRECTION_WINDOW] = r;
    c->samples++;
    int n = c->samples < IR_CORRECTION_WINDOW ? c->samples : IR_CORRECTION_WINDOW;
    double v[IR_CORRECTION_WINDOW];
    for (int i = 0; i < n; i++) v[i] = c->ratio[i];
    for (int i = 1; i < n; i++) /* insertion sort: n <= the window */
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    c->factor = n % 2 ? v[n / 2] : sqrt(v[n / 2 - 1] * v[n / 2]);
}

/* ---- fitting a profile to calibration samples ------------------------------- */

const IrLibClass ir_calib_lib[IR_CALIB_N] = {
#define X(e, s, l) l,
    IR_CALIB_MEASURES(X)
#undef X
};

double ir_calib_vec4_access(double t_small, double t_vec4, double t_scalar)
{
    double wv = t_vec4 - t_small, ws = t_scalar - t_small;
    if (!(wv > 0) || !(ws > 0)) return 1;
    double f = 4 * wv / ws;
    return f < 1 ? 1 : f > 4 ? 4 : f;
}

/* Seconds of sample b that the profile does not explain once the term of
 * `what` is left out (the figure being fitted; IR_COST_N: none): b's time
 * less overheads, workgroups and every other term of the ops side. */
static double unexplained_s(const IrCalibSample *b, const IrDeviceProfile *p, IrCostMetric what)
{
    IrCostValues v = b->cost;
    v.lib = IR_LIB_NONE;
    if (what < IR_COST_N) v.v[what] = 0;
    v.v[IR_COST_BYTES_READ] = v.v[IR_COST_BYTES_WRITTEN] = 0; /* these kernels are not memory-bound */
    return b->seconds - overhead_s(v.v[IR_COST_DISPATCHES], p) - roofline_s(&v, p);
}

/* Time of sample b less its dispatch overheads, and its roofline work on
 * the figures fitted so far (no groups term: that is fitted here). */
static double lib_point(const IrCalibSample *b, const IrDeviceProfile *p, double *roof)
{
    IrCostValues v = b->cost;
    v.lib = IR_LIB_NONE;
    v.groups = 0;
    *roof = roofline_s(&v, p);
    return b->seconds - overhead_s(v.v[IR_COST_DISPATCHES], p);
}

/* Library class c from its samples: t = fixed + slowdown * roofline, plus
 * groups * group_s when the many-rows sample `wd` is there. Each figure
 * comes from the pair of samples that differ in it: the per-group cost
 * from lo and wd (the same short rows, 6x as many), the fixed part from
 * lo, the slowdown from hi (long rows), and round again, since each
 * sample has a little of every term. (Solving the three equations at once
 * lets hi's extra column blocks, cheaper groups than a scan's per-row
 * ones, take the per-group figure and drive the slowdown below zero.) A
 * figure that noise drives below zero is clamped. Without wd, the line
 * through lo and hi; a noisy small run that tilts it below zero leaves
 * the large run alone to decide, with no fixed part. Returns 0 when
 * nothing could be fitted. */
static int fit_library(IrDeviceProfile *p, IrLibClass c, const IrCalibSample *lo, const IrCalibSample *hi,
                       const IrCalibSample *wd)
{
    double rl, rh, rw = 0;
    double tl = lib_point(lo, p, &rl), th = lib_point(hi, p, &rh), tw = wd ? lib_point(wd, p, &rw) : 0;
    if (!(rh > rl) || !(rl >= 0)) return 0;
    double gl = lo->cost.groups, gh = hi->cost.groups, gw = wd ? wd->cost.groups : 0;
    double slow, fixed, group = 0;
    if (wd && gw > gl) {
        slow = 0;
        for (int round = 0; round < 3; round++) {
            group = (tw - tl - slow * (rw - rl)) / (gw - gl);
            if (!(group > 0)) group = 0;
            fixed = tl - group * gl - slow * rl;
            if (!(fixed > 0)) fixed = 0;
            slow = (th - fixed - group * gh) / rh;
            if (!(slow > 1e-3)) slow = 1e-3;
        }
    } else {
        slow = (th - tl) / (rh - rl);
        if (slow > 0) {
            fixed = tl - slow * rl;
        } else {
            slow = th > 0 ? th / rh : 1;
            fixed = 0;
        }
        if (slow < 1e-3) slow = 1e-3;
    }
    p->lib_slowdown[c] = slow;
    p->lib_fixed_s[c] = fixed > 0 ? fixed : 0;
    p->lib_group_s[c] = group;
    return 1;
}

int ir_profile_fit(IrDeviceProfile *p, const char *device, const IrCalibSample *s, int n)
{
    /* Best (shortest) time per measure; overheads first, since every other
     * figure is what remains after them. */
    const IrCalibSample *best[IR_CALIB_N] = {0}, *small[IR_CALIB_N] = {0}, *wide[IR_CALIB_N] = {0},
                        *scalar[IR_CALIB_N] = {0};
    for (int i = 0; i < n; i++) {
        if ((unsigned)s[i].what >= IR_CALIB_N || !(s[i].seconds > 0) || !isfinite(s[i].seconds)) continue;
        /* library classes: best at the small size and best at the large;
         * row classes also at many rows */
        const IrCalibSample **slot = s[i].at == IR_CALIB_AT_MANY_ROWS ? &wide[s[i].what]
                                     : s[i].at == IR_CALIB_AT_SMALL   ? &small[s[i].what]
                                     : s[i].at == IR_CALIB_AT_SCALAR  ? &scalar[s[i].what]
                                                                      : &best[s[i].what];
        if (!*slot || s[i].seconds < (*slot)->seconds) *slot = &s[i];
    }
    snprintf(p->device, sizeof p->device, "%s", device ? device : "default");
    p->lib_slowdown[IR_LIB_NONE] = 1; /* the plain roofline, by definition */
    int set = 0;
    const IrCalibSample *b;
    if ((b = best[IR_CALIB_DISPATCH])) {
        double d = b->cost.v[IR_COST_DISPATCHES];
        p->dispatch_s = b->seconds / (d > 0 ? d : 1);
        set++;
    }
    if ((b = best[IR_CALIB_BARRIER]) && b->cost.v[IR_COST_DISPATCHES] > 1) {
        double d = b->cost.v[IR_COST_DISPATCHES];
        double x = (b->seconds - d * p->dispatch_s) / (d - 1);
        p->barrier_s = x > 0 ? x : 0;
        set++;
    }
    /* Each rate is its kernel's work over the time the other figures leave
     * unexplained. Each kernel is dominated by one term, but every term is
     * in every kernel (the access kernel adds floats, the flops kernel
     * loads and stores, all launch workgroups), so the fits go round to a
     * fixed point; three rounds settle it to well under 1 %. A figure
     * whose kernel's time is all explained already keeps its value, except
     * a check, which is then free. */
    const struct {
        IrCalibMeasure what;
        IrCostMetric metric;
        double *rate;
    } rates[] = {
        {IR_CALIB_FLOPS, IR_COST_FLOPS, &p->flops_per_s},
        {IR_CALIB_INTOPS, IR_COST_INTOPS, &p->intops_per_s},
        {IR_CALIB_ACCESS, IR_COST_ACCESSES, &p->accesses_per_s},
        {IR_CALIB_CHECKED, IR_COST_CHECKED, &p->checked_per_s},
    };
    int nr = (int)(sizeof rates / sizeof rates[0]);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < nr; i++) {
            if (!(b = best[rates[i].what]) || !(b->cost.v[rates[i].metric] > 0)) continue;
            double t = unexplained_s(b, p, rates[i].metric);
            if (t > 0) *rates[i].rate = b->cost.v[rates[i].metric] / t;
            else if (rates[i].metric == IR_COST_CHECKED) *rates[i].rate = 1e18;
            set += round == 0;
        }
        if ((b = best[IR_CALIB_GROUPS]) && b->cost.groups > 0) {
            double keep = p->group_s;
            p->group_s = 0;
            double t = unexplained_s(b, p, IR_COST_N);
            p->group_s = t > 0 ? t / b->cost.groups : keep;
            set += round == 0;
        }
    }
    /* The bandwidth kernel is taken as memory-bound: what a streaming
     * stage's bytes cost at least, whatever bounds the kernel itself. */
    if ((b = best[IR_CALIB_BANDWIDTH])) {
        double work = b->cost.v[IR_COST_BYTES_READ] + b->cost.v[IR_COST_BYTES_WRITTEN];
        double g = b->cost.groups > 0 ? b->cost.groups : 0;
        double t = b->seconds - overhead_s(b->cost.v[IR_COST_DISPATCHES], p) - g * p->group_s;
        if (work > 0 && t > 0) {
            p->bytes_per_s = work / t;
            set++;
        }
    }
    /* The vec4 access first: the library samples' run figures were taken
     * with it (runtime/calibrate.c), so the classes are fitted on it. */
    for (int w = 0; w < IR_CALIB_N; w++)
        if (scalar[w] && small[w] && best[w] && ir_calib_lib[w] != IR_LIB_NONE) {
            p->lib_vec4_access[ir_calib_lib[w]] =
                ir_calib_vec4_access(small[w]->seconds, best[w]->seconds, scalar[w]->seconds);
            set++;
        }
    /* The scalar variant of the bandwidth map streams its accesses one
     * element each: their rate is its accesses over the time its other
     * figures leave (it is not memory-bound: on lavapipe it takes about
     * twice the vec4 map's time over the same bytes). */
    if ((b = scalar[IR_CALIB_BANDWIDTH]) && b->cost.v[IR_COST_ACCESSES] > 0) {
        double t = unexplained_s(b, p, IR_COST_ACCESSES); /* less overheads, groups, operations */
        if (t > 0) {
            p->stream_accesses_per_s = b->cost.v[IR_COST_ACCESSES] / t;
            set++;
        }
    }
    for (int w = 0; w < IR_CALIB_N; w++) {
        IrLibClass c = ir_calib_lib[w];
        if (c != IR_LIB_NONE && small[w] && best[w] && fit_library(p, c, small[w], best[w], wide[w])) set++;
    }
    p->calibrated = set > 0;
    return set;
}

/* first_calibration.h — calibration on first use, shared by pxrun and
 * pxhvd: a device with no saved profile is calibrated once, the first time
 * a tool opens it, so that the first prediction a user sees comes from the
 * device rather than from the deliberately slow default profile (5x off on
 * lavapipe). The profile is saved where every later context for the
 * device loads it (runtime/profile.c), so it happens once per device.
 *
 * The library never does this behind the caller's back: the tool asks,
 * says so in one plain line, and reads the environment itself.
 * PX_AUTO_CALIBRATE=0 skips it (tests/run.sh sets it, so make check does
 * not calibrate; bench/cost.sh drives the library directly). */
#ifndef PX_FIRST_CALIBRATION_H
#define PX_FIRST_CALIBRATION_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "px.h"

/* Runs per micro-kernel: fewer than pxrun --calibrate's 5, to keep the
 * first run to a few seconds; the median of 3 is already past one
 * outlier. */
#define PX_FIRST_CALIBRATION_RUNS 3

/* If *ctx (created from cfg) has no calibrated profile and
 * PX_AUTO_CALIBRATE is not "0": calibrate its device, saving the profile,
 * and reopen *ctx from cfg so that it loads it. say(user, line) gets the
 * lines to show. A calibration that fails only leaves the default profile
 * (said through say); 0 then as on success. Non-zero, with a message in
 * err, only when the context cannot be reopened (*ctx is then NULL). */
static inline int px_first_calibration(PxContext **ctx, const PxConfig *cfg, void (*say)(void *, const char *),
                                       void *user, char *err, size_t errsz)
{
    const char *env = getenv("PX_AUTO_CALIBRATE");
    if (env && !strcmp(env, "0")) return 0;
    PxProfile pp;
    px_context_profile(*ctx, &pp);
    if (pp.calibrated) return 0;
    PxDeviceInfo di;
    px_device_info(*ctx, &di);
    char line[1400];
    snprintf(line, sizeof line,
             "no saved profile for %s: calibrating it once for the cost model (a few seconds; "
             "PX_AUTO_CALIBRATE=0 skips this)",
             di.name);
    say(user, line);
    PxProfile p;
    if (px_calibrate(*ctx, PX_FIRST_CALIBRATION_RUNS, &p)) {
        snprintf(line, sizeof line, "calibration failed: %s; predictions use the default profile",
                 px_last_error(*ctx));
        say(user, line);
        return 0;
    }
    snprintf(line, sizeof line, "profile saved to %s", p.source);
    say(user, line);
    px_context_destroy(*ctx);
    *ctx = NULL;
    char *e = NULL;
    if (px_context_create(cfg, ctx, &e)) {
        snprintf(err, errsz, "reopening the device after calibrating it: %s", e ? e : "failed");
        px_free(e);
        *ctx = NULL;
        return 1;
    }
    return 0;
}

#endif

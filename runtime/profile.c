/* profile.c — device profiles on disk: where a device's profile lives
 * ($XDG_CACHE_HOME or $HOME), writing it and reading it back (the text
 * form is ir_profile_parse's). */
#include "rt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int rt_profile_path(char *buf, size_t n, const char *device)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char name[128];
    size_t j = 0;
    for (const char *s = device ? device : "default"; *s && j + 1 < sizeof name; s++) {
        char ch = *s;
        int ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' ||
                 ch == '_' || ch == '-';
        name[j++] = ok ? ch : '_';
    }
    name[j] = 0;
    if (!j || name[0] == '.') name[0] = '_', name[j ? j : 1] = 0;
    int r;
    if (xdg && *xdg == '/') r = snprintf(buf, n, "%s/px/%s.profile", xdg, name);
    else if (home && *home) r = snprintf(buf, n, "%s/.cache/px/%s.profile", home, name);
    else return 0;
    return r > 0 && (size_t)r < n;
}

/* mkdir -p of path's directory. */
static int make_dirs(const char *path)
{
    char d[4096];
    size_t n = strlen(path);
    if (n >= sizeof d) return -1;
    memcpy(d, path, n + 1);
    char *slash = strrchr(d, '/');
    if (!slash || slash == d) return 0;
    *slash = 0;
    for (char *p = d + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(d, 0755) && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(d, 0755) && errno != EEXIST) return -1;
    return 0;
}

int rt_profile_save(const IrDeviceProfile *p, const char *path)
{
    if (make_dirs(path)) return -1;
    char tmp[4200];
    /* one temporary file per process: two tools calibrating the same device
     * on first use at once each rename a whole file into place */
    if (snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid()) >= (int)sizeof tmp) return -1;
    FILE *f = fopen(tmp, "w");
    if (!f) return -1;
    fprintf(f, "# px device profile 2\n");
    fprintf(f, "device %s\n", p->device);
    fprintf(f, "bytes_per_s %.17g\nflops_per_s %.17g\nintops_per_s %.17g\n", p->bytes_per_s, p->flops_per_s,
            p->intops_per_s);
    fprintf(f, "accesses_per_s %.17g\nchecked_per_s %.17g\nstream_accesses_per_s %.17g\n", p->accesses_per_s,
            p->checked_per_s, p->stream_accesses_per_s);
    fprintf(f, "dispatch_s %.17g\nbarrier_s %.17g\ncalibrated %d\n", p->dispatch_s, p->barrier_s, p->calibrated);
    fprintf(f, "group_s %.17g\n", p->group_s);
    for (int i = 1; i < IR_LIB_N; i++)
        fprintf(f, "slowdown_%s %.17g\nfixed_s_%s %.17g\ngroup_s_%s %.17g\nvec4_access_%s %.17g\n",
                ir_lib_class_names[i], p->lib_slowdown[i], ir_lib_class_names[i], p->lib_fixed_s[i],
                ir_lib_class_names[i], p->lib_group_s[i], ir_lib_class_names[i], p->lib_vec4_access[i]);
    int bad = ferror(f);
    if (fclose(f) || bad || rename(tmp, path)) {
        remove(tmp);
        return -1;
    }
    return 0;
}

int rt_profile_load(IrDeviceProfile *p, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    if (memchr(buf, 0, n)) return -1;
    return ir_profile_parse(p, buf);
}

/* llvm_load.c — loads the LLVM backend (llvm.c, built as libpx-llvm.so.0)
 * on first use and forwards the cg.h entry points to it (cg.h, "llvm_load.c"). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dladdr */
#endif
#include "cg.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const CgLlvmApi *api;  /* set once, never unloaded */
static char why[1024];        /* why it could not be loaded */

/* Tries dir/rel; 1 when the plugin is loaded. */
static int try_dir(const char *dir, size_t dirlen, const char *rel, void **h)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%.*s%s" CG_LLVM_PLUGIN, (int)dirlen, dir, rel) >= (int)sizeof path) return 0;
    if (access(path, R_OK) != 0) return 0;
    *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!*h) snprintf(why, sizeof why, "%s", dlerror());
    return *h != NULL;
}

/* Beside the object at `file`, in ../lib from it (an installed tree) and
 * in .. (the build tree: tests live in build/tests). */
static int try_near(const char *file, void **h)
{
    const char *slash = file ? strrchr(file, '/') : NULL;
    if (!slash) return 0;
    size_t n = (size_t)(slash - file) + 1;
    return try_dir(file, n, "", h) || try_dir(file, n, "../lib/", h) || try_dir(file, n, "../", h);
}

static void load(void)
{
    void *h = NULL;
    Dl_info di;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) exe[n] = 0;
    if (!(dladdr((void *)cg_llvm_load, &di) && try_near(di.dli_fname, &h)) && !(n > 0 && try_near(exe, &h)) &&
        !why[0] && !(h = dlopen(CG_LLVM_PLUGIN, RTLD_NOW | RTLD_LOCAL)))
        snprintf(why, sizeof why, "%s", dlerror());
    if (!h) return;
    const CgLlvmApi *a = dlsym(h, "cg_llvm_api");
    if (!a || a->abi != CG_LLVM_ABI) {
        snprintf(why, sizeof why, "%s: %s", CG_LLVM_PLUGIN, a ? "built for another version of PX" : dlerror());
        dlclose(h);
        return;
    }
    api = a;
}

const CgLlvmApi *cg_llvm_load(char **err)
{
    pthread_once(&once, load);
    if (!api && err) {
        size_t len = strlen(why) + 64;
        if ((*err = malloc(len))) snprintf(*err, len, "cannot load the LLVM backend: %s", why[0] ? why : "?");
    }
    return api;
}

CgCpuJit *cg_cpu_jit_create(char **err)
{
    *err = NULL;
    const CgLlvmApi *a = cg_llvm_load(err);
    return a ? a->jit_create(err) : NULL;
}

/* A JIT or module exists only if the plugin loaded: no load here. */
void cg_cpu_jit_destroy(CgCpuJit *j)
{
    if (j) api->jit_destroy(j);
}

void cg_cpu_destroy(CgCpuModule *cm)
{
    if (cm) api->destroy(cm);
}

CgCpuModule *cg_cpu_compile_in(CgCpuJit *j, const IrModule *m, int opt_level, char **err)
{
    *err = NULL;
    return api->compile_in(j, m, opt_level, err);
}

CgCpuModule *cg_cpu_compile(const IrModule *m, int opt_level, char **err)
{
    *err = NULL;
    const CgLlvmApi *a = cg_llvm_load(err);
    return a ? a->compile(m, opt_level, err) : NULL;
}

char *cg_llvm_emit(Arena *a, const IrModule *m, int opt_level, char **err)
{
    *err = NULL;
    const CgLlvmApi *p = cg_llvm_load(err);
    return p ? p->emit(a, m, opt_level, err) : NULL;
}

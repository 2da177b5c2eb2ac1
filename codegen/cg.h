/*
 * cg.h — code generation: IR -> SPIR-V for Vulkan (spirv*.c), the launch
 * metadata a host needs to run the result (meta.c). Sections are named
 * after the .c files; the LLVM backend adds its own section.
 *
 * Module layout
 * -------------
 * cg_spirv() turns a whole IrModule (after ir_optimize, so every stage has
 * a strategy) into ONE SPIR-V module. Every kernel gets its own CgLaunch;
 * every stage of a kernel becomes one or more compute entry points (a
 * multi-pass reduce or scan has several), all named
 * `<kernel>__s<stage>_<pass>` (e.g. `sum__s0_partial`), listed in launch
 * order in CgLaunch.dispatches.
 *
 * Resources of one kernel (all its entry points share one layout, so a
 * host makes one VkDescriptorSetLayout + VkPipelineLayout per kernel and one
 * VkPipeline per dispatch):
 *  - descriptor set 0; binding b = CgLaunch.bindings.v[b] (binding numbers
 *    are dense from 0): first every buffer parameter in parameter order,
 *    then the scratch buffers. All are VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
 *    tightly packed arrays of the element type (std430: float/int/uint 4
 *    bytes, half 2 bytes). `readonly` bindings are decorated NonWritable.
 *    A buffer parameter is bound with its whole data; its extents are the
 *    size symbols of its dims (the shader never reads the buffer's length).
 *  - one push-constant block (stage flags COMPUTE, offset 0, push_size
 *    bytes, push_size <= 128): CgLaunch.push lists each member, 4 bytes
 *    each: every scalar parameter (float/int/uint as themselves; half
 *    scalars travel as a 32-bit float and are converted in the shader),
 *    then every size symbol as a uint, then (when some entry point needs
 *    them) the dispatch's three group counts as uints (CG_PUSH_GROUPS). A
 *    host fills them from the launch's scalar arguments, bound size-symbol
 *    values and each dispatch's group counts.
 *
 * Dispatches: for each, the host binds the pipeline of `entry` and calls
 * vkCmdDispatch(groups[0], groups[1], groups[2]), each an IrSize formula of
 * size symbols and int/uint scalar params (ir_size_eval). Workgroups of a
 * dispatch are independent: none reads NumWorkgroups or another group's
 * writes, so a host may run a dispatch as several vkCmdDispatchBase calls
 * over boxes of its groups (pipelines made with DISPATCH_BASE) and get the
 * same bytes. When
 * barrier_before is set, a compute->compute memory barrier (shader write ->
 * shader read|write) must precede it; the first dispatch never has one. A
 * dispatch whose group count is 0 in any dimension is skipped by the host
 * (it would do nothing). Some stages emit alternative variants of a pass
 * (e.g. a vec4 one for rows of a multiple of 4 elements and a scalar one,
 * or a scan pass with and without its row and block loops): their group
 * counts carry a 0/1 factor so that exactly one of them is nonzero for any
 * sizes, and the second has barrier_before 0. Dispatches that write
 * disjoint parts of an output and read nothing another writes may also
 * follow one another with barrier_before 0, and both run. A variant using subgroup
 * operations is only emitted when CgTarget.subgroups is set (the runtime
 * sets it from VkPhysicalDeviceSubgroupProperties; pxcc's default target
 * has it off, so its output needs no subgroup support). Group counts never exceed CgTarget.max_groups in
 * any dimension for any sizes: strategies loop (grid-stride) instead.
 * Scratch buffers hold bytes() bytes each (an IrSize formula; at least 4 —
 * a host should round a zero size up to 4); their contents need not be
 * initialised and are dead after the kernel.
 *
 * JSON (pxcc --emit=meta, cg_meta_print): one object
 *   { "spirv_version": "1.3", "target_env": "vulkan1.1",
 *     "kernels": [ {
 *        "name": "sum",
 *        "params": [ {"index":0, "name":"a", "kind":"buffer", "type":"float",
 *                     "dims":["N"]} , {"index":1,"name":"s","kind":"scalar",
 *                     "type":"float"} ],
 *        "size_symbols": ["N"],
 *        "bindings": [ {"binding":0, "kind":"param"|"scratch", "index":0,
 *                       "readonly":true, "elem":"float", "elem_size":4} ],
 *        "scratch": [ {"index":0, "bytes":"(min(ceildiv(N, 4096), 1024) * 4)"} ],
 *        "push_constants": { "size": 8, "members": [
 *             {"offset":0, "kind":"param"|"sym"|"groups", "index":1, "name":"s",
 *              "type":"float"} ] },
 *        "dispatches": [ {"entry":"sum__s0_partial", "stage":0,
 *             "local_size":[256,1,1], "groups":["min(ceildiv(N, 4096), 1024)","1","1"],
 *             "barrier_before":false, "loop_iters": "..."} ] } ] }
 * Formulas are ir_size_str text (size symbols and params by name).
 */
#ifndef PX_CG_H
#define PX_CG_H

#include "../ir/ir.h"

/* ===== spirv.c: target description ===== */

#define CG_TARGET_ENVS(X)                                             \
    X(CG_ENV_VULKAN_1_1, "vulkan1.1") /* SPIR-V 1.3, the default */   \
    X(CG_ENV_VULKAN_1_2, "vulkan1.2") /* SPIR-V 1.5 */                \
    X(CG_ENV_VULKAN_1_3, "vulkan1.3") /* SPIR-V 1.6 */
typedef enum {
#define X(e, s) e,
    CG_TARGET_ENVS(X)
#undef X
} CgTargetEnv;
extern const char *const cg_target_env_names[];

/* What the target device can do; strategies and checks read it. The
 * defaults (cg_target_default) describe a generic Vulkan 1.1 GPU with
 * 16-bit float support; the runtime fills it from the real device. */
typedef struct CgTarget {
    CgTargetEnv env;
    int float16;       /* shaderFloat16 + storageBuffer16BitAccess: needed by half */
    int subgroups;     /* subgroup arithmetic in compute shaders */
    int subgroup_size; /* 0: unknown */
    int shared_bytes;  /* maxComputeSharedMemorySize */
    int max_groups;    /* maxComputeWorkGroupCount per dimension (>= 65535) */
} CgTarget;

void cg_target_default(CgTarget *t, CgTargetEnv env);
int cg_target_env_parse(const char *s, CgTargetEnv *out); /* 0 when unknown */
/* The SPIR-V version word (e.g. 0x00010300) and SPIRV-Tools env of a target. */
uint32_t cg_spirv_version(CgTargetEnv env);

/* ===== meta.c types: the launch metadata (see the header comment) ===== */

typedef enum { CG_BIND_PARAM, CG_BIND_SCRATCH } CgBindKind;

typedef struct CgBinding {
    int binding;       /* descriptor set 0 */
    CgBindKind kind;
    int index;         /* IrKernel.params index, or CgLaunch.scratch index */
    int readonly;      /* no entry point writes it (decorated NonWritable) */
    ScalarType elem;   /* element type as stored */
    int elem_size;     /* bytes per element: 4, or 2 for half */
} CgBinding;

typedef struct CgScratch {
    IrSize *bytes;     /* size in bytes; a host rounds 0 up to 4 */
    ScalarType elem;   /* what it holds (for debugging) */
} CgScratch;

/* CG_PUSH_GROUPS: the group count, in dimension `index`, of the dispatch
 * being run, i.e. that dispatch's groups[index] at the bound sizes. It
 * differs per dispatch, so a host pushes the block before each one. The
 * shaders read it instead of NumWorkgroups (grid-stride strides), so a
 * dispatch may run as several vkCmdDispatchBase pieces (sliced execution)
 * with the results of one vkCmdDispatch. */
typedef enum { CG_PUSH_PARAM, CG_PUSH_SYM, CG_PUSH_GROUPS } CgPushKind;

typedef struct CgPush {
    int offset;        /* bytes from the block start; 4 bytes each */
    CgPushKind kind;
    int index;         /* IrKernel.params index, IrKernel.syms index, or
                        * the dimension 0..2 (CG_PUSH_GROUPS) */
    ScalarType type;   /* as passed: float for float and half params, int, uint */
} CgPush;

typedef struct CgDispatch {
    const char *entry; /* OpEntryPoint name */
    int stage;         /* IrKernel.stages index it implements */
    int local[3];      /* LocalSize */
    IrSize *groups[3]; /* group counts; never above CgTarget.max_groups */
    int barrier_before;
    /* Upper bound on the loop back-edges one invocation executes, all
     * loops of the entry point together (grid-stride, library and user
     * `for` loops; loops.c states the counting model). Drivers with a
     * per-invocation loop budget (lavapipe: 65535) refuse a launch above
     * it (runtime/limits.c). Every dispatch has one. */
    IrSize *loop_iters;
    /* Elements one buffer access of this entry point moves: 4 in the vec4
     * variant of an elementwise stage or of a library stage that also has
     * a scalar one (scan data passes, softmax rows, transpose blocks,
     * matmul tiles), else 1 (0 reads as 1). The cost prediction counts
     * accesses as the device executes them. */
    int vec_width;
} CgDispatch;

typedef struct CgLaunch {
    const IrKernel *kernel;
    FE_VEC(CgBinding) bindings;
    FE_VEC(CgScratch) scratch;
    FE_VEC(CgPush) push;
    int push_size;
    FE_VEC(CgDispatch) dispatches;
} CgLaunch;

typedef struct CgModule {
    const IrModule *ir;
    CgTarget target;
    uint32_t *words;   /* the validated SPIR-V binary; none (nwords 0)
                        * when no kernel has a stage */
    size_t nwords;
    FE_VEC(CgLaunch) kernels; /* one per IrModule kernel, same order */
} CgModule;

/* ===== loops.c: loop back-edge bounds (CgDispatch.loop_iters) ===== */

/* A loop entered once, running `trips` iterations whose body costs `body`
 * (NULL: nothing): trips * (1 + body) + 1 (the leaving pass counts too). */
IrSize *cg_loops_for(Arena *a, IrSize *trips, IrSize *body);
/* Iterations of a grid-stride loop over [0, extent) whose stride is
 * groups * per_group: ceildiv(extent, groups * per_group) at most. */
IrSize *cg_loops_strided(Arena *a, IrSize *extent, IrSize *groups, int per_group);
/* x + y where either may be NULL (nothing). */
IrSize *cg_loops_sum(Arena *a, IrSize *x, IrSize *y);
/* The loop of a group reduction/scan of `group` invocations: with subgroup
 * arithmetic, a fold over the NumSubgroups slots; else none (unrolled). */
IrSize *cg_loops_group_fold(Arena *a, const CgTarget *t, int group);
/* Back-edges of one run of a grid-stage body block: its FOR loops by their
 * trip formulas, nested loops multiplied, sequential ones and both arms of
 * an IF added. */
IrSize *cg_loops_block(Arena *a, const IrKernel *k, const IrBlock *b);
/* Sets loop_iters of the dispatches [first, n) of l that stage `stage`
 * (a grid stage) added, from their group counts and local sizes. */
void cg_loops_grid_stage(Arena *a, const IrKernel *k, int stage, CgLaunch *l, int first);
/* Sets loop_iters of the last dispatch of l (the one just added). */
void cg_dispatch_set_loops(CgLaunch *l, IrSize *iters);
/* A loop_iters value at bound sizes and params (as ir_size_eval), without
 * wrapping: saturates at INT64_MAX; negative or NULL gives 0. */
int64_t cg_loops_eval(const IrSize *s, const int64_t *syms, const int64_t *params);

/* ===== spirv.c: the backend ===== */

typedef struct CgOptions {
    CgTarget target;
    int opt_level;     /* 0..2 */
    int no_validate;   /* skip the in-process validator (tests of the validator only) */
} CgOptions;

/* Lowers a whole module. User errors (half without float16) go to d and
 * the result is NULL. The binary is validated in-process with SPIRV-Tools
 * before it is returned; a module that fails is an internal error
 * (fe_die: it unwinds to the caller's fe_protect) naming the entry point. */
CgModule *cg_spirv(Arena *a, Diags *d, const IrModule *m, const CgOptions *o);

/* In-process SPIRV-Tools validation for env. Returns 1 when valid; else 0
 * and *msg (arena text) says why. */
int cg_spirv_validate(Arena *a, const uint32_t *w, size_t n, CgTargetEnv env, char **msg);
/* SPIRV-Tools disassembly with its header comment (version, generator,
 * bound), friendly names and indentation, stable across runs: the
 * --emit=spvasm text. NULL on failure. */
char *cg_spirv_disasm(Arena *a, const uint32_t *w, size_t n, CgTargetEnv env);

/* ===== meta.c: JSON of the launch metadata ===== */

void cg_meta_print(FILE *out, const CgModule *m);
/* Binding index of buffer param p in l, or -1. */
int cg_launch_param_binding(const CgLaunch *l, int param);

/* ===== llvm.c: the CPU backend (LLVM-C, ORC LLJIT) =====
 *
 * The same IR as spirv.c, JIT-compiled to native code for the host. Every
 * stage becomes one or more steps, run in order with a barrier between
 * them; each step is a native function
 *
 *     void step(const CgCpuArgs *args, int64_t begin, int64_t end);
 *
 * that does the items [begin, end) of the step's domain [0, count). A host
 * may split a domain into slices any way it likes and call them on any
 * threads at once: items are independent and results do not depend on the
 * split (reductions keep fixed partial boundaries, CG_CPU_CHUNK elements,
 * so float sums are reproducible whatever the thread count).
 *   grid stage:  items are the points of the index space, linearised
 *                row-major over (hi_k - lo_k) per dimension;
 *   matmul:      items are rows of the output;
 *   reduce/scan/softmax over rank > 1: items are rows (all leading dims);
 *   reduce/scan rank 1: step 0 items are chunks (partials into scratch),
 *                step 1 is one item (combine), scan step 2 chunks again;
 *   transpose:   items are tiles of CG_CPU_TILE input rows.
 * Semantics are the IR's (ir.h) exactly: bounds checks, x/0 = 0, INT_MIN/-1
 * = INT_MIN, shifts mod 32, float->int saturating (NaN -> 0), round half
 * away from zero. Library stages on half data accumulate in float.
 */

#define CG_CPU_CHUNK 16384 /* elements per partial of a rank-1 reduce/scan */
#define CG_CPU_TILE 32     /* transpose tile edge */

typedef struct CgCpuArgs {
    void *const *buf;        /* [param] buffer base; NULL for scalars */
    const uint32_t *scalar;  /* [param] scalar bits: float/int/uint as
                                themselves, half as a 32-bit float (as the
                                SPIR-V push constants) */
    const int64_t *sym;      /* [size symbol] bound value */
    void *scratch;           /* CgCpuStage.scratch bytes, shared by the steps */
    /* Non-zero: stop (px_launch_cancel). The code polls it at every FOR
     * back-edge and returns; a host checks it between calls. NULL in a
     * call to cg_cpu_run means never (it passes a zero to the code). */
    const volatile int32_t *cancel;
} CgCpuArgs;

typedef void (*CgCpuFn)(const CgCpuArgs *args, int64_t begin, int64_t end);

typedef struct CgCpuStep {
    CgCpuFn fn;
    const char *name;        /* its symbol (cg_cpu_compile_in) */
    IrSize *count;           /* domain size (ir_size_eval with syms, params) */
    int64_t grain;           /* fewest items worth a slice of their own */
} CgCpuStep;

typedef struct CgCpuStage {
    FE_VEC(CgCpuStep) steps;
    IrSize *scratch;         /* bytes; const 0 when none */
} CgCpuStage;

typedef struct CgCpuKernel {
    const IrKernel *ir;
    FE_VEC(CgCpuStage) stages;
    /* compile time of this kernel (its own LLVM module), wall ms: */
    double gen_ms;           /* IR -> LLVM IR */
    double opt_ms;           /* default<On> pipeline */
    double codegen_ms;       /* native code (the JIT's first lookup) */
    double compile_ms;       /* the three together */
} CgCpuKernel;

/* One ORC LLJIT and the host's TargetMachine, shared by every module
 * compiled in it (a runtime context keeps one). Not thread-safe: one
 * thread at a time compiles or destroys modules of a JIT. */
typedef struct CgCpuJit CgCpuJit;

typedef struct CgCpuModule {
    Arena *arena;            /* owned: steps, formulas */
    const IrModule *ir;      /* borrowed: must outlive the module */
    FE_VEC(CgCpuKernel) kernels; /* one per IrModule kernel, same order */
    double compile_ms;       /* the whole module */
    CgCpuJit *jit;           /* where its code lives */
    int owns_jit;            /* made by cg_cpu_compile: destroyed with it */
    void *tracker;           /* LLVMOrcResourceTrackerRef of its code */
} CgCpuModule;

/* NULL on failure with *err (malloc'd) saying why. */
CgCpuJit *cg_cpu_jit_create(char **err);
/* Modules compiled in j should be destroyed first; when some are left,
 * the last of them frees j. */
void cg_cpu_jit_destroy(CgCpuJit *j); /* NULL is fine */
/* Compiles every kernel of m into j; step symbols are
 * m<serial>_k<kernel>_<name>__s<stage>_<step>, unique within j. opt_level
 * 0..3 selects LLVM's default<O0..O3> pipeline. NULL on failure with *err
 * (malloc'd) saying why. */
CgCpuModule *cg_cpu_compile_in(CgCpuJit *j, const IrModule *m, int opt_level, char **err);
/* The same in a JIT of its own (tests, tools). */
CgCpuModule *cg_cpu_compile(const IrModule *m, int opt_level, char **err);
/* Frees the module's code in its JIT; NULL is fine. */
void cg_cpu_destroy(CgCpuModule *cm);

/* Runs a slice set of a step: a host thread pool implements it; NULL
 * means run serially in the calling thread. */
typedef void (*CgCpuParallelFor)(void *pool, const CgCpuStep *st, const CgCpuArgs *a,
                                 int64_t count);
/* Runs every stage of k in order (args->scratch is ignored: scratch is
 * allocated here). stage_ns, when not NULL, gets each stage's wall time.
 * Returns 0, or -1 when scratch cannot be allocated. */
int cg_cpu_run(const CgCpuKernel *k, const CgCpuArgs *args, CgCpuParallelFor pf, void *pool,
               double *stage_ns);
/* int64 values of the int/uint scalar params (for ir_size_eval). */
void cg_cpu_param_values(const IrKernel *k, const uint32_t *scalar, int64_t *out);

/* The optimised LLVM IR text (pxcc --emit=llvm); NULL and *err on failure. */
char *cg_llvm_emit(Arena *a, const IrModule *m, int opt_level, char **err);

/* ===== llvm_load.c: the LLVM backend as a plugin =====
 *
 * llvm.c is built as its own shared object, libpx-llvm.so.0, loaded on
 * first use, so a program that never JIT-compiles (pxcc writing SPIR-V, a
 * Vulkan-only host) never pays for loading libLLVM. The functions above
 * are llvm_load.c's: they load the plugin (once per process, thread-safe)
 * and call through its one exported table. When it cannot be loaded they
 * fail like any LLVM failure: NULL and *err saying why. The plugin is
 * looked up beside the executable or libpx.so that holds this code, in
 * ../lib and .. from there, then by the dynamic linker's search path. It uses the
 * host's copy of the compiler library (executables export it: -rdynamic),
 * so fe_protect and arenas are shared with its caller. */
#define CG_LLVM_ABI 1          /* bumped when CgLlvmApi or a type it takes changes */
#define CG_LLVM_PLUGIN "libpx-llvm.so.0"
typedef struct CgLlvmApi {
    int abi;
    CgCpuJit *(*jit_create)(char **err);
    void (*jit_destroy)(CgCpuJit *j);
    CgCpuModule *(*compile_in)(CgCpuJit *j, const IrModule *m, int opt_level, char **err);
    CgCpuModule *(*compile)(const IrModule *m, int opt_level, char **err);
    void (*destroy)(CgCpuModule *cm);
    char *(*emit)(Arena *a, const IrModule *m, int opt_level, char **err);
} CgLlvmApi;
/* The plugin's table, or NULL with *err (malloc'd) saying why. */
const CgLlvmApi *cg_llvm_load(char **err);

/* ===== compile.c: the compile driver =====
 *
 * The one pipeline from source text to IR, cost figures and code; pxcc,
 * the runtime and the tests all call it. */

typedef enum CgEmit {
    CG_EMIT_IR,            /* stop after ir_optimize (and the cost analysis) */
    CG_EMIT_SPIRV,         /* + one validated SPIR-V module and launch metadata */
    CG_EMIT_CPU,           /* + native code in CgCompileOptions.jit */
    CG_EMIT_LLVM_TEXT,     /* + the optimised LLVM IR as text */
} CgEmit;

typedef struct CgCompileOptions {
    const char *file;      /* the name diagnostics print (NULL: "<source>") */
    const char *only_kernel; /* NULL: every kernel */
    int opt_level;         /* 0..2: IR passes; LLVM runs cg_llvm_level of it */
    int werror;            /* warnings are errors */
    int verify;            /* ir_verify after every pass (debug builds: always) */
    int cost;              /* run the cost analysis (CgCompiled.src, .cost) */
    CgEmit emit;
    CgTarget target;       /* SPIR-V and the strategy choice */
    CgCpuJit *jit;         /* CG_EMIT_CPU: where the code goes */
    const FeLimits *limits; /* on untrusted source (docs/LANGUAGE.md, "Limits");
                              NULL: fe_limits_default */
} CgCompileOptions;

typedef struct CgCompiled {
    Diags diags;           /* warnings and errors of the source */
    IrModule *src;         /* cost: the kernel as lowered, -O0, marked by bounds */
    IrModule *opt;         /* after ir_optimize at opt_level: what runs */
    IrKernelCost **cost;   /* cost: one per kernel of opt, same order */
    CgModule *spirv;       /* CG_EMIT_SPIRV */
    CgCpuModule *cpu;      /* CG_EMIT_CPU: the caller's, cg_cpu_destroy */
    char *llvm_text;       /* CG_EMIT_LLVM_TEXT */
    FeFail fail;           /* CG_COMPILE_FAILED: what failed */
} CgCompiled;

typedef enum CgCompileStatus {
    CG_COMPILE_OK,
    CG_COMPILE_ERRORS,     /* errors in the source: diags says which */
    CG_COMPILE_FAILED,     /* internal error or out of memory: fail says which */
} CgCompileStatus;

/* Compiles src[0..len) (need not be NUL-terminated) into arena a. Never
 * exits: every failure inside is a status. On CG_COMPILE_FAILED nothing
 * but a's memory is left behind. */
CgCompileStatus cg_compile(Arena *a, const char *src, size_t len, const CgCompileOptions *o,
                           CgCompiled *out);
/* LLVM's pipeline level for a PX -O level: 0, 1, 3. */
int cg_llvm_level(int px_opt_level);

#endif

/* vkbench: the raw-Vulkan baselines PX is compared against.
 *
 * A standalone host (no PX code) that loads the hand-written GLSL twins
 * (compiled to SPIR-V by glslangValidator), runs each on one device with a
 * warm-up and N timed runs, verifies the result against a plain C reference,
 * and times a minimal submit-and-wait loop of a one-invocation dispatch.
 *
 *   vkbench --spv DIR [--runs N] [--launch-iters N] [--device N]
 *           [--only NAME] [--small] [--json FILE]
 *
 * GPU times come from timestamp queries written before the first and after
 * the last dispatch of a kernel's command buffer, so host overhead and
 * uploads are excluded; shaders are compiled by the driver at pipeline
 * creation / first dispatch, which the warm-up run absorbs.
 * Exit status: 0 all baselines verified, 1 a baseline was wrong, 2 usage or
 * Vulkan error.
 */
#include <stdarg.h>
#include <vulkan/vulkan.h>

#include "common.h"

#define VB_MAX_BUFS 4

static void vb_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "vkbench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

#define VB_CHECK(call)                                                   \
    do {                                                                 \
        VkResult vb_r_ = (call);                                         \
        if (vb_r_ != VK_SUCCESS)                                         \
            vb_die("%s failed (VkResult %d) at %s:%d", #call, (int)vb_r_, \
                   __FILE__, __LINE__);                                  \
    } while (0)

/* ---- device ---------------------------------------------------------- */

typedef struct VbCtx {
    VkInstance inst;
    VkPhysicalDevice phys;
    VkDevice dev;
    VkQueue queue;
    uint32_t qfam;
    VkCommandPool pool;
    VkCommandBuffer cmd;
    VkFence fence;
    VkQueryPool qpool;
    VkDescriptorPool dpool;
    VkPhysicalDeviceMemoryProperties mem;
    double ts_period_ns;
    uint64_t ts_mask;
    uint32_t subgroup;
    char name[VK_MAX_PHYSICAL_DEVICE_NAME_SIZE];
} VbCtx;

/* Picks device `index`, or when index < 0 the first discrete GPU, else the
 * first device: VK_DRIVER_FILES decides what is visible at all. */
static void vb_init(VbCtx *c, int index)
{
    memset(c, 0, sizeof *c);
    VkApplicationInfo app = {
        .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
        .pApplicationName = "vkbench",
        .apiVersion = VK_API_VERSION_1_1,
    };
    VkInstanceCreateInfo ici = {
        .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
        .pApplicationInfo = &app,
    };
    VB_CHECK(vkCreateInstance(&ici, NULL, &c->inst));
    uint32_t n = 0;
    VB_CHECK(vkEnumeratePhysicalDevices(c->inst, &n, NULL));
    if (n == 0)
        vb_die("no Vulkan device");
    VkPhysicalDevice devs[16];
    if (n > 16)
        n = 16;
    VkResult er = vkEnumeratePhysicalDevices(c->inst, &n, devs);
    if (er != VK_SUCCESS && er != VK_INCOMPLETE)
        vb_die("vkEnumeratePhysicalDevices failed (%d)", (int)er);
    if (index >= (int)n)
        vb_die("device %d does not exist (%u devices)", index, n);
    c->phys = devs[0];
    if (index >= 0) {
        c->phys = devs[index];
    } else {
        for (uint32_t i = 0; i < n; i++) {
            VkPhysicalDeviceProperties p;
            vkGetPhysicalDeviceProperties(devs[i], &p);
            if (p.deviceType == VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU) {
                c->phys = devs[i];
                break;
            }
        }
    }

    VkPhysicalDeviceSubgroupProperties sg = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES,
    };
    VkPhysicalDeviceProperties2 p2 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
        .pNext = &sg,
    };
    vkGetPhysicalDeviceProperties2(c->phys, &p2);
    if (p2.properties.apiVersion < VK_API_VERSION_1_1)
        vb_die("device needs Vulkan 1.1 (subgroups)");
    snprintf(c->name, sizeof c->name, "%s", p2.properties.deviceName);
    c->subgroup = sg.subgroupSize;
    const VkSubgroupFeatureFlags need = VK_SUBGROUP_FEATURE_BASIC_BIT |
                                        VK_SUBGROUP_FEATURE_ARITHMETIC_BIT;
    if (!(sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) ||
        (sg.supportedOperations & need) != need)
        vb_die("device lacks compute subgroup arithmetic");
    if (c->subgroup == 0 || c->subgroup > 64 || 64 % c->subgroup)
        vb_die("unsupported subgroup size %u", c->subgroup);
    c->ts_period_ns = p2.properties.limits.timestampPeriod;
    vkGetPhysicalDeviceMemoryProperties(c->phys, &c->mem);

    uint32_t nq = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(c->phys, &nq, NULL);
    VkQueueFamilyProperties qf[32];
    if (nq > 32)
        nq = 32;
    vkGetPhysicalDeviceQueueFamilyProperties(c->phys, &nq, qf);
    c->qfam = UINT32_MAX;
    for (uint32_t i = 0; i < nq; i++) {
        if ((qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) && qf[i].timestampValidBits) {
            c->qfam = i;
            break;
        }
    }
    if (c->qfam == UINT32_MAX)
        vb_die("no compute queue with timestamps");
    uint32_t bits = qf[c->qfam].timestampValidBits;
    c->ts_mask = bits >= 64 ? UINT64_MAX : ((uint64_t)1 << bits) - 1;

    float prio = 1.0f;
    VkDeviceQueueCreateInfo qci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
        .queueFamilyIndex = c->qfam,
        .queueCount = 1,
        .pQueuePriorities = &prio,
    };
    VkDeviceCreateInfo dci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
        .queueCreateInfoCount = 1,
        .pQueueCreateInfos = &qci,
    };
    VB_CHECK(vkCreateDevice(c->phys, &dci, NULL, &c->dev));
    vkGetDeviceQueue(c->dev, c->qfam, 0, &c->queue);

    VkCommandPoolCreateInfo cpi = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
        .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
        .queueFamilyIndex = c->qfam,
    };
    VB_CHECK(vkCreateCommandPool(c->dev, &cpi, NULL, &c->pool));
    VkCommandBufferAllocateInfo cai = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = c->pool,
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = 1,
    };
    VB_CHECK(vkAllocateCommandBuffers(c->dev, &cai, &c->cmd));
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    VB_CHECK(vkCreateFence(c->dev, &fci, NULL, &c->fence));
    VkQueryPoolCreateInfo qpi = {
        .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
        .queryType = VK_QUERY_TYPE_TIMESTAMP,
        .queryCount = 2,
    };
    VB_CHECK(vkCreateQueryPool(c->dev, &qpi, NULL, &c->qpool));
    VkDescriptorPoolSize ps = {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 64};
    VkDescriptorPoolCreateInfo dpi = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
        .flags = VK_DESCRIPTOR_POOL_CREATE_FREE_DESCRIPTOR_SET_BIT,
        .maxSets = 16,
        .poolSizeCount = 1,
        .pPoolSizes = &ps,
    };
    VB_CHECK(vkCreateDescriptorPool(c->dev, &dpi, NULL, &c->dpool));
}

static void vb_fini(VbCtx *c)
{
    vkDestroyDescriptorPool(c->dev, c->dpool, NULL);
    vkDestroyQueryPool(c->dev, c->qpool, NULL);
    vkDestroyFence(c->dev, c->fence, NULL);
    vkDestroyCommandPool(c->dev, c->pool, NULL);
    vkDestroyDevice(c->dev, NULL);
    vkDestroyInstance(c->inst, NULL);
}

/* Submits c->cmd (already ended) and waits for it. */
static void vb_submit_wait(VbCtx *c)
{
    VkSubmitInfo si = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
        .commandBufferCount = 1,
        .pCommandBuffers = &c->cmd,
    };
    VB_CHECK(vkQueueSubmit(c->queue, 1, &si, c->fence));
    VB_CHECK(vkWaitForFences(c->dev, 1, &c->fence, VK_TRUE, UINT64_MAX));
    VB_CHECK(vkResetFences(c->dev, 1, &c->fence));
}

static void vb_begin(VbCtx *c)
{
    VB_CHECK(vkResetCommandBuffer(c->cmd, 0));
    VkCommandBufferBeginInfo bi = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
        .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
    };
    VB_CHECK(vkBeginCommandBuffer(c->cmd, &bi));
}

/* ---- buffers --------------------------------------------------------- */

typedef struct VbBuffer {
    VkBuffer buf;
    VkDeviceMemory mem;
    VkDeviceSize size;
} VbBuffer;

/* A memory type allowed by `bits` with all of `want`, else one with `fallback`. */
static uint32_t vb_memtype(VbCtx *c, uint32_t bits, VkMemoryPropertyFlags want,
                           VkMemoryPropertyFlags fallback)
{
    for (int pass = 0; pass < 2; pass++) {
        VkMemoryPropertyFlags f = pass ? fallback : want;
        for (uint32_t i = 0; i < c->mem.memoryTypeCount; i++)
            if ((bits & (1u << i)) && (c->mem.memoryTypes[i].propertyFlags & f) == f)
                return i;
    }
    vb_die("no suitable memory type");
    return 0;
}

static VbBuffer vb_buffer(VbCtx *c, VkDeviceSize size, int host)
{
    VbBuffer b = {.size = size};
    VkBufferCreateInfo bci = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
        .size = size,
        .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                 VK_BUFFER_USAGE_TRANSFER_DST_BIT,
        .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
    };
    VB_CHECK(vkCreateBuffer(c->dev, &bci, NULL, &b.buf));
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(c->dev, b.buf, &req);
    VkMemoryPropertyFlags hv = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
                               VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    VkMemoryAllocateInfo mai = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
        .allocationSize = req.size,
        .memoryTypeIndex = host ? vb_memtype(c, req.memoryTypeBits, hv, hv)
                                : vb_memtype(c, req.memoryTypeBits,
                                             VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0),
    };
    VB_CHECK(vkAllocateMemory(c->dev, &mai, NULL, &b.mem));
    VB_CHECK(vkBindBufferMemory(c->dev, b.buf, b.mem, 0));
    return b;
}

static void vb_buffer_free(VbCtx *c, VbBuffer *b)
{
    vkDestroyBuffer(c->dev, b->buf, NULL);
    vkFreeMemory(c->dev, b->mem, NULL);
    memset(b, 0, sizeof *b);
}

/* Copies between host memory and a device-local buffer through a staging
 * buffer (device-local memory need not be mappable on a real GPU).
 * data == NULL with to_dev zero-fills. */
static void vb_transfer(VbCtx *c, VbBuffer *b, void *data, int to_dev)
{
    VbBuffer st = vb_buffer(c, b->size, 1);
    void *map;
    VB_CHECK(vkMapMemory(c->dev, st.mem, 0, b->size, 0, &map));
    if (to_dev) {
        if (data)
            memcpy(map, data, b->size);
        else
            memset(map, 0, b->size);
    }
    vb_begin(c);
    VkBufferCopy region = {.size = b->size};
    if (to_dev)
        vkCmdCopyBuffer(c->cmd, st.buf, b->buf, 1, &region);
    else
        vkCmdCopyBuffer(c->cmd, b->buf, st.buf, 1, &region);
    VB_CHECK(vkEndCommandBuffer(c->cmd));
    vb_submit_wait(c);
    if (!to_dev)
        memcpy(data, map, b->size);
    vkUnmapMemory(c->dev, st.mem);
    vb_buffer_free(c, &st);
}

/* ---- kernels ----------------------------------------------------------- */

typedef struct VbKernel {
    VkShaderModule mod;
    VkDescriptorSetLayout dsl;
    VkPipelineLayout layout;
    VkPipeline pipe;
    uint32_t nbuf;
    uint32_t push_size;
} VbKernel;

static VbKernel vb_kernel(VbCtx *c, const char *dir, const char *name, uint32_t nbuf,
                          uint32_t push_size)
{
    VbKernel k = {.nbuf = nbuf, .push_size = push_size};
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.spv", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        vb_die("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (len <= 0 || len % 4)
        vb_die("%s is not a SPIR-V module", path);
    uint32_t *code = malloc((size_t)len);
    if (!code || fread(code, 1, (size_t)len, f) != (size_t)len)
        vb_die("cannot read %s", path);
    fclose(f);
    VkShaderModuleCreateInfo smi = {
        .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
        .codeSize = (size_t)len,
        .pCode = code,
    };
    VB_CHECK(vkCreateShaderModule(c->dev, &smi, NULL, &k.mod));
    free(code);

    VkDescriptorSetLayoutBinding binds[VB_MAX_BUFS];
    for (uint32_t i = 0; i < nbuf; i++)
        binds[i] = (VkDescriptorSetLayoutBinding){
            .binding = i,
            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .descriptorCount = 1,
            .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
        };
    VkDescriptorSetLayoutCreateInfo dli = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
        .bindingCount = nbuf,
        .pBindings = binds,
    };
    VB_CHECK(vkCreateDescriptorSetLayout(c->dev, &dli, NULL, &k.dsl));
    VkPushConstantRange pr = {VK_SHADER_STAGE_COMPUTE_BIT, 0, push_size};
    VkPipelineLayoutCreateInfo pli = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
        .setLayoutCount = 1,
        .pSetLayouts = &k.dsl,
        .pushConstantRangeCount = push_size ? 1 : 0,
        .pPushConstantRanges = &pr,
    };
    VB_CHECK(vkCreatePipelineLayout(c->dev, &pli, NULL, &k.layout));
    VkComputePipelineCreateInfo cpi = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {
            .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
            .stage = VK_SHADER_STAGE_COMPUTE_BIT,
            .module = k.mod,
            .pName = "main",
        },
        .layout = k.layout,
    };
    VB_CHECK(vkCreateComputePipelines(c->dev, VK_NULL_HANDLE, 1, &cpi, NULL, &k.pipe));
    return k;
}

static void vb_kernel_free(VbCtx *c, VbKernel *k)
{
    vkDestroyPipeline(c->dev, k->pipe, NULL);
    vkDestroyPipelineLayout(c->dev, k->layout, NULL);
    vkDestroyDescriptorSetLayout(c->dev, k->dsl, NULL);
    vkDestroyShaderModule(c->dev, k->mod, NULL);
}

/* One dispatch of a kernel with its own buffers and push constants. */
typedef struct VbPass {
    VbKernel *k;
    VkDescriptorSet set;
    uint32_t push[8];
    uint32_t gx, gy;
} VbPass;

static VbPass vb_pass(VbCtx *c, VbKernel *k, VbBuffer *const *bufs, uint32_t gx,
                      uint32_t gy)
{
    VbPass p = {.k = k, .gx = gx, .gy = gy};
    VkDescriptorSetAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
        .descriptorPool = c->dpool,
        .descriptorSetCount = 1,
        .pSetLayouts = &k->dsl,
    };
    VB_CHECK(vkAllocateDescriptorSets(c->dev, &ai, &p.set));
    VkDescriptorBufferInfo bi[VB_MAX_BUFS];
    VkWriteDescriptorSet w[VB_MAX_BUFS];
    for (uint32_t i = 0; i < k->nbuf; i++) {
        bi[i] = (VkDescriptorBufferInfo){bufs[i]->buf, 0, VK_WHOLE_SIZE};
        w[i] = (VkWriteDescriptorSet){
            .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
            .dstSet = p.set,
            .dstBinding = i,
            .descriptorCount = 1,
            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .pBufferInfo = &bi[i],
        };
    }
    vkUpdateDescriptorSets(c->dev, k->nbuf, w, 0, NULL);
    return p;
}

static void vb_record(VbCtx *c, const VbPass *ps, int np)
{
    for (int i = 0; i < np; i++) {
        if (i > 0) {
            VkMemoryBarrier mb = {
                .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
                .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT,
            };
            vkCmdPipelineBarrier(c->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                                 VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &mb, 0,
                                 NULL, 0, NULL);
        }
        vkCmdBindPipeline(c->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, ps[i].k->pipe);
        vkCmdBindDescriptorSets(c->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, ps[i].k->layout,
                                0, 1, &ps[i].set, 0, NULL);
        if (ps[i].k->push_size)
            vkCmdPushConstants(c->cmd, ps[i].k->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0,
                               ps[i].k->push_size, ps[i].push);
        vkCmdDispatch(c->cmd, ps[i].gx, ps[i].gy, 1);
    }
}

/* Runs the passes once in one command buffer; returns the GPU time in ms
 * between a timestamp before the first and one after the last dispatch, and
 * the host round trip (record excluded) in *wall_ms. */
static double vb_run(VbCtx *c, const VbPass *ps, int np, double *wall_ms)
{
    vb_begin(c);
    vkCmdResetQueryPool(c->cmd, c->qpool, 0, 2);
    vkCmdWriteTimestamp(c->cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, c->qpool, 0);
    vb_record(c, ps, np);
    vkCmdWriteTimestamp(c->cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, c->qpool, 1);
    VB_CHECK(vkEndCommandBuffer(c->cmd));
    double t0 = bench_now_ms();
    vb_submit_wait(c);
    *wall_ms = bench_now_ms() - t0;
    uint64_t ts[2];
    VB_CHECK(vkGetQueryPoolResults(c->dev, c->qpool, 0, 2, sizeof ts, ts, sizeof ts[0],
                                   VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT));
    uint64_t d = (ts[1] - ts[0]) & c->ts_mask;
    return (double)d * c->ts_period_ns / 1e6;
}

/* ---- the benchmarks ------------------------------------------------------ */

/* Warm-up run (the verified one, from fresh inputs) is done by the caller;
 * this does the `runs` timed ones. */
static void vb_time(VbCtx *c, const VbPass *ps, int np, BenchResult *r)
{
    for (int i = 0; i < r->runs; i++)
        r->gpu_ms[i] = vb_run(c, ps, np, &r->wall_ms[i]);
    bench_summarise(r);
}

static void bench_saxpy(VbCtx *c, const BenchOpts *o, BenchResult *r)
{
    uint32_t n = BENCH_N(o->small);
    float a = 2.5f;
    float *x = bench_xmalloc(n * 4ull), *y = bench_xmalloc(n * 4ull),
          *out = bench_xmalloc(n * 4ull);
    snprintf(r->shape, sizeof r->shape, "%u float", n);
    bench_fill_uniform(x, n, -1, 1, 1);
    bench_fill_uniform(y, n, -1, 1, 2);
    VbBuffer bx = vb_buffer(c, n * 4ull, 0), by = vb_buffer(c, n * 4ull, 0);
    vb_transfer(c, &bx, x, 1);
    vb_transfer(c, &by, y, 1);
    VbKernel k = vb_kernel(c, o->dir, "saxpy", 2, 8);
    /* 4 vec4 per invocation: enough work to amortise the loop, enough
     * workgroups to keep every core busy. */
    uint32_t n4 = n / 4, groups = (n4 + 1023) / 1024;
    if (groups > 65535)
        groups = 65535;
    VbPass p = vb_pass(c, &k, (VbBuffer *const[]){&bx, &by}, groups, 1);
    memcpy(&p.push[0], &a, 4);
    p.push[1] = n4;

    double w;
    vb_run(c, &p, 1, &w);
    vb_transfer(c, &by, out, 0);
    r->verified = bench_check_saxpy(a, x, y, out, n, &r->max_err);
    vb_time(c, &p, 1, r);
    vb_kernel_free(c, &k);
    vb_buffer_free(c, &bx);
    vb_buffer_free(c, &by);
    free(x), free(y), free(out);
}

static void bench_sum(VbCtx *c, const BenchOpts *o, BenchResult *r)
{
    uint32_t n = BENCH_N(o->small);
    float *x = bench_xmalloc(n * 4ull);
    snprintf(r->shape, sizeof r->shape, "%u float", n);
    bench_fill_uniform(x, n, -1, 1, 3);
    /* ~16 grid-stride iterations per invocation; the partial count is a
     * multiple of 4 so pass 2 reads whole vec4s (the rest stays zero). */
    uint32_t n4 = n / 4, groups = (n4 + 256 * 16 - 1) / (256 * 16);
    groups = (groups + 3) & ~3u;
    if (groups > 4096)
        vb_die("sum: too many partials");
    VbBuffer bx = vb_buffer(c, n * 4ull, 0), bp = vb_buffer(c, groups * 4ull, 0),
             br = vb_buffer(c, 16, 0);
    vb_transfer(c, &bx, x, 1);
    vb_transfer(c, &bp, NULL, 1);
    VbKernel k = vb_kernel(c, o->dir, "sum", 2, 4);
    VbPass p[2] = {
        vb_pass(c, &k, (VbBuffer *const[]){&bx, &bp}, groups, 1),
        vb_pass(c, &k, (VbBuffer *const[]){&bp, &br}, 1, 1),
    };
    p[0].push[0] = n4;
    p[1].push[0] = groups / 4;

    double w;
    float got[4];
    vb_run(c, p, 2, &w);
    vb_transfer(c, &br, got, 0);
    r->verified = bench_check_sum(x, n, got[0], &r->max_err);
    vb_time(c, p, 2, r);
    /* Coverage: with all ones every partial is an exact integer below 2^24
     * and so is n, so the result must be exactly n. */
    for (uint32_t i = 0; i < n; i++)
        x[i] = 1.0f;
    vb_transfer(c, &bx, x, 1);
    vb_run(c, p, 2, &w);
    vb_transfer(c, &br, got, 0);
    if (got[0] != (float)n) {
        fprintf(stderr, "vkbench: sum of %u ones gave %.1f\n", n, got[0]);
        r->verified = 0;
    }
    vb_kernel_free(c, &k);
    vb_buffer_free(c, &bx);
    vb_buffer_free(c, &bp);
    vb_buffer_free(c, &br);
    free(x);
}

static void bench_matmul(VbCtx *c, const BenchOpts *o, BenchResult *r)
{
    uint32_t n = BENCH_MM(o->small);
    size_t nn = (size_t)n * n;
    float *a = bench_xmalloc(nn * 4), *b = bench_xmalloc(nn * 4), *out = bench_xmalloc(nn * 4);
    snprintf(r->shape, sizeof r->shape, "%ux%ux%u", n, n, n);
    bench_fill_uniform(a, nn, -1, 1, 4);
    bench_fill_uniform(b, nn, -1, 1, 5);
    VbBuffer ba = vb_buffer(c, nn * 4, 0), bb = vb_buffer(c, nn * 4, 0),
             bc = vb_buffer(c, nn * 4, 0);
    vb_transfer(c, &ba, a, 1);
    vb_transfer(c, &bb, b, 1);
    VbKernel k = vb_kernel(c, o->dir, "matmul", 3, 12);
    VbPass p = vb_pass(c, &k, (VbBuffer *const[]){&ba, &bb, &bc}, n / 128, n / 128);
    p.push[0] = p.push[1] = p.push[2] = n;

    double w;
    vb_run(c, &p, 1, &w);
    vb_transfer(c, &bc, out, 0);
    r->verified = bench_check_matmul(a, b, out, n, &r->max_err);
    vb_time(c, &p, 1, r);
    vb_kernel_free(c, &k);
    vb_buffer_free(c, &ba);
    vb_buffer_free(c, &bb);
    vb_buffer_free(c, &bc);
    free(a), free(b), free(out);
}

static void bench_transpose(VbCtx *c, const BenchOpts *o, BenchResult *r)
{
    uint32_t m = BENCH_TR(o->small), n = m;
    size_t nn = (size_t)m * n;
    float *a = bench_xmalloc(nn * 4), *out = bench_xmalloc(nn * 4);
    snprintf(r->shape, sizeof r->shape, "%ux%u", m, n);
    bench_fill_uniform(a, nn, -1, 1, 8);
    VbBuffer ba = vb_buffer(c, nn * 4, 0), bb = vb_buffer(c, nn * 4, 0);
    vb_transfer(c, &ba, a, 1);
    VbKernel k = vb_kernel(c, o->dir, "transpose", 2, 8);
    VbPass p = vb_pass(c, &k, (VbBuffer *const[]){&ba, &bb}, (n + 15) / 16, (m + 15) / 16);
    p.push[0] = m;
    p.push[1] = n;

    double w;
    vb_run(c, &p, 1, &w);
    vb_transfer(c, &bb, out, 0);
    r->verified = bench_check_transpose(a, out, m, n, &r->max_err);
    vb_time(c, &p, 1, r);
    vb_kernel_free(c, &k);
    vb_buffer_free(c, &ba);
    vb_buffer_free(c, &bb);
    free(a), free(out);
}

/* Matmul at any size through matmul_any.comp: one group per 128x128 tile,
 * partial tiles at the edges. */
static void bench_gemm(VbCtx *c, const BenchOpts *o, const BenchGemm *g, BenchResult *r)
{
    uint32_t m = o->small ? g->sm : g->m, k = o->small ? g->sk : g->k, n = o->small ? g->sn : g->n;
    size_t na = (size_t)m * k, nb = (size_t)k * n, nc = (size_t)m * n;
    float *a = bench_xmalloc(na * 4), *b = bench_xmalloc(nb * 4), *out = bench_xmalloc(nc * 4);
    snprintf(r->shape, sizeof r->shape, "%ux%ux%u", m, k, n);
    bench_fill_uniform(a, na, -1, 1, 4);
    bench_fill_uniform(b, nb, -1, 1, 5);
    VbBuffer ba = vb_buffer(c, na * 4, 0), bb = vb_buffer(c, nb * 4, 0),
             bc = vb_buffer(c, nc * 4, 0);
    vb_transfer(c, &ba, a, 1);
    vb_transfer(c, &bb, b, 1);
    VbKernel kk = vb_kernel(c, o->dir, "matmul_any", 3, 12);
    VbPass p = vb_pass(c, &kk, (VbBuffer *const[]){&ba, &bb, &bc}, (n + 127) / 128, (m + 127) / 128);
    p.push[0] = m;
    p.push[1] = n;
    p.push[2] = k;

    double w;
    vb_run(c, &p, 1, &w);
    vb_transfer(c, &bc, out, 0);
    r->verified = bench_check_gemm(a, b, out, m, k, n, &r->max_err);
    vb_time(c, &p, 1, r);
    vb_kernel_free(c, &kk);
    vb_buffer_free(c, &ba);
    vb_buffer_free(c, &bb);
    vb_buffer_free(c, &bc);
    free(a), free(b), free(out);
}

static void bench_softmax(VbCtx *c, const BenchOpts *o, BenchResult *r)
{
    uint32_t rows = BENCH_SM_ROWS(o->small), cols = BENCH_SM_COLS;
    size_t nn = (size_t)rows * cols;
    float *a = bench_xmalloc(nn * 4), *out = bench_xmalloc(nn * 4);
    snprintf(r->shape, sizeof r->shape, "%ux%u", rows, cols);
    bench_fill_uniform(a, nn, -10, 10, 6);
    VbBuffer ba = vb_buffer(c, nn * 4, 0), bb = vb_buffer(c, nn * 4, 0);
    vb_transfer(c, &ba, a, 1);
    VbKernel k = vb_kernel(c, o->dir, "softmax", 2, 8);
    uint32_t rows_per_group = 64 / c->subgroup;
    VbPass p = vb_pass(c, &k, (VbBuffer *const[]){&ba, &bb},
                       (rows + rows_per_group - 1) / rows_per_group, 1);
    p.push[0] = rows;
    p.push[1] = cols / 4;

    double w;
    vb_run(c, &p, 1, &w);
    vb_transfer(c, &bb, out, 0);
    r->verified = bench_check_softmax(a, out, rows, cols, &r->max_err);
    vb_time(c, &p, 1, r);
    vb_kernel_free(c, &k);
    vb_buffer_free(c, &ba);
    vb_buffer_free(c, &bb);
    free(a), free(out);
}

static void bench_scan(VbCtx *c, const BenchOpts *o, BenchResult *r)
{
    const uint32_t block = 4096;   /* ints per workgroup in scan_*.comp */
    uint32_t n = BENCH_N(o->small);
    uint32_t nblocks = (n + block - 1) / block;
    if (nblocks > block || n % 4)
        vb_die("scan: n must be a multiple of 4 and at most %u", block * block);
    int32_t *x = bench_xmalloc(n * 4ull), *out = bench_xmalloc(n * 4ull);
    snprintf(r->shape, sizeof r->shape, "%u int", n);
    bench_fill_ints(x, n, 7);
    uint32_t nb4 = (nblocks + 3) / 4;
    VbBuffer bx = vb_buffer(c, n * 4ull, 0), by = vb_buffer(c, n * 4ull, 0),
             bs = vb_buffer(c, nb4 * 16ull, 0), bi = vb_buffer(c, nb4 * 16ull, 0);
    vb_transfer(c, &bx, x, 1);
    vb_transfer(c, &bs, NULL, 1);
    VbKernel kr = vb_kernel(c, o->dir, "scan_reduce", 2, 4);
    VbKernel kb = vb_kernel(c, o->dir, "scan_block", 3, 8);
    /* Pass 2 binds the block sums as its (unused) offset buffer too. */
    VbPass p[3] = {
        vb_pass(c, &kr, (VbBuffer *const[]){&bx, &bs}, nblocks, 1),
        vb_pass(c, &kb, (VbBuffer *const[]){&bs, &bi, &bs}, 1, 1),
        vb_pass(c, &kb, (VbBuffer *const[]){&bx, &by, &bi}, nblocks, 1),
    };
    p[0].push[0] = n / 4;
    p[1].push[0] = nb4;
    p[1].push[1] = 0;
    p[2].push[0] = n / 4;
    p[2].push[1] = 1;

    double w;
    vb_run(c, p, 3, &w);
    vb_transfer(c, &by, out, 0);
    r->verified = bench_check_scan(x, out, n, &r->max_err);
    vb_time(c, p, 3, r);
    vb_kernel_free(c, &kr);
    vb_kernel_free(c, &kb);
    vb_buffer_free(c, &bx);
    vb_buffer_free(c, &by);
    vb_buffer_free(c, &bs);
    vb_buffer_free(c, &bi);
    free(x), free(out);
}

/* Per-launch overhead: the same pre-recorded one-invocation dispatch
 * submitted and waited for `iters` times; per-iteration host times. */
static void bench_launch(VbCtx *c, const BenchOpts *o, BenchLaunch *l)
{
    VbBuffer bo = vb_buffer(c, 16, 0);
    vb_transfer(c, &bo, NULL, 1);
    VbKernel k = vb_kernel(c, o->dir, "tiny", 1, 0);
    VbPass p = vb_pass(c, &k, (VbBuffer *const[]){&bo}, 1, 1);
    VB_CHECK(vkResetCommandBuffer(c->cmd, 0));
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    VB_CHECK(vkBeginCommandBuffer(c->cmd, &bi));
    vb_record(c, &p, 1);
    VB_CHECK(vkEndCommandBuffer(c->cmd));
    l->iters = o->launch_iters;
    int warm = l->iters / 10 + 1;
    double *t = bench_xmalloc(sizeof *t * (size_t)l->iters);
    for (int i = -warm; i < l->iters; i++) {
        double t0 = bench_now_ms();
        vb_submit_wait(c);
        if (i >= 0)
            t[i] = (bench_now_ms() - t0) * 1e3;
    }
    l->median_us = bench_median(t, l->iters);
    l->min_us = t[0];
    free(t);
    float got[4];
    vb_transfer(c, &bo, got, 0);
    l->verified = got[0] == 1.0f;
    vkFreeDescriptorSets(c->dev, c->dpool, 1, &p.set);
    vb_kernel_free(c, &k);
    vb_buffer_free(c, &bo);
}

typedef struct VbBench {
    const char *name;
    void (*run)(VbCtx *, const BenchOpts *, BenchResult *);
} VbBench;

/* The benchmark set; names match bench/px/NAME.px and pxbench's. */
static const VbBench vb_benches[] = {
    {"saxpy", bench_saxpy},     /* memory bound, 1 pass */
    {"sum", bench_sum},         /* reduction, 2 passes */
    {"matmul", bench_matmul},   /* compute bound, 128x128 tiles */
    {"softmax", bench_softmax}, /* row reduce + map, 1 pass */
    {"scan", bench_scan},       /* 3 passes */
    {"transpose", bench_transpose}, /* naive: one element per invocation */
};
#define VB_NBENCH ((int)(sizeof vb_benches / sizeof vb_benches[0]))

int main(int argc, char **argv)
{
    BenchOpts o;
    if (bench_parse(argc, argv, "--spv", &o) < 0)
        return 2;
    VbCtx c;
    vb_init(&c, o.device);
    BenchResult res[VB_NBENCH + BENCH_NGEMM];
    int nr = 0, bad = 0;
    printf("vkbench device: %s (subgroup %u)\n", c.name, c.subgroup);
    for (int i = 0; i < VB_NBENCH; i++) {
        if (!bench_selected(&o, vb_benches[i].name))
            continue;
        BenchResult *r = &res[nr++];
        memset(r, 0, sizeof *r);
        r->name = vb_benches[i].name;
        r->runs = o.runs;
        vb_benches[i].run(&c, &o, r);
        bad |= !r->verified;
        bench_print(r);
    }
    for (int i = 0; i < BENCH_NGEMM; i++) {
        if (!bench_selected(&o, bench_gemms[i].name))
            continue;
        BenchResult *r = &res[nr++];
        memset(r, 0, sizeof *r);
        r->name = bench_gemms[i].name;
        r->runs = o.runs;
        bench_gemm(&c, &o, &bench_gemms[i], r);
        bad |= !r->verified;
        bench_print(r);
    }
    BenchLaunch launch = {0};
    int have_launch = bench_selected(&o, "launch");
    if (have_launch) {
        bench_launch(&c, &o, &launch);
        bad |= !launch.verified;
        printf("launch   %-16d median %9.3f us  min %9.3f us  %s\n", launch.iters,
               launch.median_us, launch.min_us, launch.verified ? "verified" : "WRONG");
    }
    if (o.json && bench_write_json(o.json, "vkbench", c.name, c.subgroup, o.runs, res, nr,
                                   have_launch ? &launch : NULL) != 0)
        vb_die("cannot write %s", o.json);
    vb_fini(&c);
    return bad ? 1 : 0;
}

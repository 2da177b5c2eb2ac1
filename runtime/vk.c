/* vk.c — the Vulkan device layer: instance and device set-up, buffers,
 * cached compute pipelines, and programs (dispatch lists recorded into one
 * command buffer). Every VkResult is checked and turned into a PxResult;
 * every create path undoes what it made when a later step fails. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define PX_PIN_DRIVERS 1
#endif
#if defined(PX_PIN_DRIVERS) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* dl_iterate_phdr, for pin_drivers */
#endif
#include "vk.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(PX_PIN_DRIVERS)
#include <dlfcn.h>
#include <link.h>
#endif

/* ---- messages --------------------------------------------------------------- */

#define RT_VK_RESULTS(X)                                                  \
    X(VK_SUCCESS) X(VK_NOT_READY) X(VK_TIMEOUT) X(VK_INCOMPLETE)           \
    X(VK_ERROR_OUT_OF_HOST_MEMORY) X(VK_ERROR_OUT_OF_DEVICE_MEMORY)        \
    X(VK_ERROR_INITIALIZATION_FAILED) X(VK_ERROR_DEVICE_LOST)              \
    X(VK_ERROR_MEMORY_MAP_FAILED) X(VK_ERROR_LAYER_NOT_PRESENT)            \
    X(VK_ERROR_EXTENSION_NOT_PRESENT) X(VK_ERROR_FEATURE_NOT_PRESENT)      \
    X(VK_ERROR_INCOMPATIBLE_DRIVER) X(VK_ERROR_TOO_MANY_OBJECTS)           \
    X(VK_ERROR_FORMAT_NOT_SUPPORTED) X(VK_ERROR_FRAGMENTED_POOL)           \
    X(VK_ERROR_UNKNOWN) X(VK_ERROR_OUT_OF_POOL_MEMORY)                     \
    X(VK_ERROR_INVALID_SHADER_NV)

const char *rt_vk_result_name(VkResult vr)
{
    switch (vr) {
#define X(e) case e: return #e;
        RT_VK_RESULTS(X)
#undef X
    default: return "VkResult";
    }
}

PxResult rt_vk_fail(RtLog *log, VkResult vr, const char *what)
{
    PxResult r;
    const char *why;
    switch (vr) {
    case VK_ERROR_DEVICE_LOST: r = PX_ERR_DEVICE_LOST; why = "the device was lost"; break;
    case VK_ERROR_OUT_OF_HOST_MEMORY: r = PX_ERR_OUT_OF_MEMORY; why = "out of host memory"; break;
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: r = PX_ERR_OUT_OF_MEMORY; why = "out of device memory"; break;
    case VK_ERROR_OUT_OF_POOL_MEMORY:
    case VK_ERROR_FRAGMENTED_POOL: r = PX_ERR_OUT_OF_MEMORY; why = "descriptor pool exhausted"; break;
    case VK_ERROR_INCOMPATIBLE_DRIVER:
        r = PX_ERR_NO_DEVICE;
        why = "no Vulkan driver found (install mesa-vulkan-drivers for a CPU device)";
        break;
    default: r = PX_ERR_VULKAN; why = "Vulkan call failed"; break;
    }
    return rt_fail(log, r, "%s: %s (%s, %d)", what, why, rt_vk_result_name(vr), (int)vr);
}

#define VK_TRY(d, call, what)                                      \
    do {                                                           \
        VkResult vr_ = (call);                                     \
        if (vr_ != VK_SUCCESS) return rt_vk_fail((d)->log, vr_, what); \
    } while (0)

/* ---- device ----------------------------------------------------------------- */

/* Picks a physical device index: explicit index, name, else the first
 * GPU, else device 0. -1 with a message when the pick names nothing. */
static int pick_device(RtDevice *d, VkPhysicalDevice *pd, uint32_t n, const RtDeviceConfig *cfg,
                       PxResult *r)
{
    VkPhysicalDeviceProperties p;
    const char *name = cfg ? cfg->name : NULL;
    int index = cfg ? cfg->index : -1;
    const char *how = cfg && cfg->origin ? cfg->origin : "config";
    if (index >= 0) {
        if ((uint32_t)index >= n) {
            *r = rt_fail(d->log, PX_ERR_NO_DEVICE,
                         "device %d requested (%s) but there %s only %u Vulkan device%s", index,
                         how, n == 1 ? "is" : "are", n, n == 1 ? "" : "s");
            return -1;
        }
        return index;
    }
    if (name) {
        for (uint32_t i = 0; i < n; i++) {
            vkGetPhysicalDeviceProperties(pd[i], &p);
            if (rt_ci_contains(p.deviceName, name)) return (int)i;
        }
        *r = rt_fail(d->log, PX_ERR_NO_DEVICE, "no Vulkan device matches \"%s\" (%s)", name, how);
        return -1;
    }
    for (uint32_t i = 0; i < n; i++) {
        vkGetPhysicalDeviceProperties(pd[i], &p);
        if (p.deviceType == VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU ||
            p.deviceType == VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU)
            return (int)i;
    }
    return 0;
}

#if defined(PX_PIN_DRIVERS)
/* Sanitizer builds only (make asan, make tsan): the Vulkan loader unloads the
 * driver at vkDestroyInstance, after which LeakSanitizer cannot name the
 * module of a leak inside the driver (lavapipe leaks 128 bytes per
 * instance), and tests/lsan.supp can only suppress driver leaks by module
 * name, and ThreadSanitizer stops when a library its suppressions name is
 * unloaded. Loaded drivers are marked NODELETE so they stay mapped until
 * exit; our own code is unaffected. */
static int pin_one(struct dl_phdr_info *info, size_t size, void *user)
{
    (void)size;
    (void)user;
    if (info->dlpi_name && strstr(info->dlpi_name, "libvulkan_"))
        dlopen(info->dlpi_name, RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE);
    return 0;
}
static void pin_drivers(void) { dl_iterate_phdr(pin_one, NULL); }
#else
static void pin_drivers(void) {}
#endif

static PxResult create_instance(RtDevice *d)
{
    VkApplicationInfo app = {
        .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
        .pApplicationName = "px",
        .pEngineName = "px",
        .apiVersion = VK_API_VERSION_1_2,
    };
    VkInstanceCreateInfo ici = {
        .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
        .pApplicationInfo = &app,
    };
    VkResult vr = vkCreateInstance(&ici, NULL, &d->instance);
    if (vr == VK_ERROR_INCOMPATIBLE_DRIVER || vr == VK_ERROR_INITIALIZATION_FAILED)
        return rt_fail(d->log, PX_ERR_NO_DEVICE,
                       "no Vulkan driver found (install mesa-vulkan-drivers for a CPU device)");
    if (vr != VK_SUCCESS) {
        d->instance = VK_NULL_HANDLE;
        return rt_vk_fail(d->log, vr, "creating the Vulkan instance");
    }
    return PX_OK;
}

PxResult rt_device_create(RtDevice *d, RtLog *log, const RtDeviceConfig *cfg)
{
    memset(d, 0, sizeof *d);
    d->log = log;
    PxResult r = create_instance(d);
    if (r) return r;

    uint32_t n = 0;
    VkResult vr = vkEnumeratePhysicalDevices(d->instance, &n, NULL);
    if (vr != VK_SUCCESS && vr != VK_INCOMPLETE) {
        r = rt_vk_fail(log, vr, "listing Vulkan devices");
        goto fail;
    }
    if (n == 0) {
        r = rt_fail(log, PX_ERR_NO_DEVICE,
                    "no Vulkan driver found (install mesa-vulkan-drivers for a CPU device)");
        goto fail;
    }
    VkPhysicalDevice pds[32];
    if (n > 32) n = 32;
    vr = vkEnumeratePhysicalDevices(d->instance, &n, pds);
    if (vr != VK_SUCCESS && vr != VK_INCOMPLETE) {
        r = rt_vk_fail(log, vr, "listing Vulkan devices");
        goto fail;
    }
    int idx = pick_device(d, pds, n, cfg, &r);
    if (idx < 0) goto fail;
    d->phys = pds[idx];
    vkGetPhysicalDeviceProperties(d->phys, &d->props);
    vkGetPhysicalDeviceMemoryProperties(d->phys, &d->mem);
    d->dispatch_base = d->props.apiVersion >= VK_API_VERSION_1_1;

    /* queue family: the first with compute */
    uint32_t nq = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(d->phys, &nq, NULL);
    VkQueueFamilyProperties qf[16];
    if (nq > 16) nq = 16;
    vkGetPhysicalDeviceQueueFamilyProperties(d->phys, &nq, qf);
    int fam = -1;
    for (uint32_t i = 0; i < nq && fam < 0; i++)
        if (qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) fam = (int)i;
    if (fam < 0) {
        r = rt_fail(log, PX_ERR_NO_DEVICE, "Vulkan device %s has no compute queue",
                    d->props.deviceName);
        goto fail;
    }
    d->qfamily = (uint32_t)fam;
    uint32_t tsbits = qf[fam].timestampValidBits;
    d->timestamps = tsbits > 0 && d->props.limits.timestampPeriod > 0;
    d->ts_mask = tsbits >= 64 ? ~0ull : ((1ull << tsbits) - 1);

    /* optional features: 16-bit storage and arithmetic, when present */
    VkPhysicalDeviceVulkan12Features f12 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
    VkPhysicalDeviceVulkan11Features f11 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
                                            .pNext = &f12};
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f11};
    int v12 = d->props.apiVersion >= VK_API_VERSION_1_2;
    if (v12) vkGetPhysicalDeviceFeatures2(d->phys, &f2);
    VkPhysicalDeviceVulkan12Features e12 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
                                            .shaderFloat16 = f12.shaderFloat16,
                                            .shaderInt8 = f12.shaderInt8,
                                            .storageBuffer8BitAccess = f12.storageBuffer8BitAccess,
                                            .vulkanMemoryModel = f12.vulkanMemoryModel};
    VkPhysicalDeviceVulkan11Features e11 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
                                            .pNext = &e12,
                                            .storageBuffer16BitAccess = f11.storageBuffer16BitAccess,
                                            .uniformAndStorageBuffer16BitAccess =
                                                f11.uniformAndStorageBuffer16BitAccess};
    VkPhysicalDeviceFeatures2 e2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &e11};
    e2.features.shaderInt16 = v12 ? f2.features.shaderInt16 : 0;
    e2.features.shaderInt64 = v12 ? f2.features.shaderInt64 : 0;

    /* subgroup size (1.1 properties) */
    VkPhysicalDeviceVulkan11Properties p11 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_PROPERTIES};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &p11};
    if (v12) vkGetPhysicalDeviceProperties2(d->phys, &p2);

    float prio = 1.0f;
    VkDeviceQueueCreateInfo qci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
        .queueFamilyIndex = d->qfamily,
        .queueCount = 1,
        .pQueuePriorities = &prio,
    };
    VkDeviceCreateInfo dci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
        .pNext = v12 ? &e2 : NULL,
        .queueCreateInfoCount = 1,
        .pQueueCreateInfos = &qci,
    };
    vr = vkCreateDevice(d->phys, &dci, NULL, &d->dev);
    if (vr != VK_SUCCESS) {
        d->dev = VK_NULL_HANDLE;
        r = rt_vk_fail(log, vr, "creating the Vulkan device");
        goto fail;
    }
    vkGetDeviceQueue(d->dev, d->qfamily, 0, &d->queue);
    pin_drivers();

    VkCommandPoolCreateInfo cpi = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
        .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
        .queueFamilyIndex = d->qfamily,
    };
    if ((vr = vkCreateCommandPool(d->dev, &cpi, NULL, &d->pool)) != VK_SUCCESS) {
        d->pool = VK_NULL_HANDLE;
        r = rt_vk_fail(log, vr, "creating a command pool");
        goto fail;
    }
    VkPipelineCacheCreateInfo pci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO};
    if ((vr = vkCreatePipelineCache(d->dev, &pci, NULL, &d->pcache)) != VK_SUCCESS) {
        d->pcache = VK_NULL_HANDLE;
        r = rt_vk_fail(log, vr, "creating a pipeline cache");
        goto fail;
    }
    VkCommandBufferAllocateInfo cai = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = d->pool,
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = 1,
    };
    if ((vr = vkAllocateCommandBuffers(d->dev, &cai, &d->xfer_cmd)) != VK_SUCCESS) {
        d->xfer_cmd = VK_NULL_HANDLE;
        r = rt_vk_fail(log, vr, "allocating a command buffer");
        goto fail;
    }
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    if ((vr = vkCreateFence(d->dev, &fci, NULL, &d->xfer_fence)) != VK_SUCCESS) {
        d->xfer_fence = VK_NULL_HANDLE;
        r = rt_vk_fail(log, vr, "creating a fence");
        goto fail;
    }

    PxDeviceInfo *in = &d->info;
    snprintf(in->name, sizeof in->name, "%s", d->props.deviceName);
    in->index = idx;
    in->is_cpu = d->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
    in->has_half = v12 && f12.shaderFloat16 && f11.storageBuffer16BitAccess;
    in->has_timestamps = d->timestamps;
    in->timestamp_period_ns = d->props.limits.timestampPeriod;
    in->max_storage_buffer_range = d->props.limits.maxStorageBufferRange;
    in->subgroup_size = v12 ? p11.subgroupSize : 0;
    if (v12 && (p11.subgroupSupportedStages & VK_SHADER_STAGE_COMPUTE_BIT))
        d->subgroup_ops = p11.subgroupSupportedOperations;
    in->max_shared_bytes = d->props.limits.maxComputeSharedMemorySize;
    for (uint32_t i = 0; i < d->mem.memoryHeapCount; i++)
        if (d->mem.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)
            in->device_local_bytes += d->mem.memoryHeaps[i].size;
    rt_log(log, PX_LOG_INFO, "px: using Vulkan device %d: %s", idx, in->name);
    return PX_OK;
fail:
    rt_device_destroy(d);
    return r;
}

struct RtPipeline {
    uint64_t hash;
    size_t nwords;
    char entry[64];
    int nbindings;
    uint32_t push_bytes;
    VkShaderModule mod;
    VkDescriptorSetLayout dsl;
    VkPipelineLayout layout;
    VkPipeline pipe;
};

static void pipeline_free(RtDevice *d, RtPipeline *p)
{
    if (!p) return;
    if (p->pipe) vkDestroyPipeline(d->dev, p->pipe, NULL);
    if (p->layout) vkDestroyPipelineLayout(d->dev, p->layout, NULL);
    if (p->dsl) vkDestroyDescriptorSetLayout(d->dev, p->dsl, NULL);
    if (p->mod) vkDestroyShaderModule(d->dev, p->mod, NULL);
    free(p);
}

void rt_device_destroy(RtDevice *d)
{
    if (d->dev) {
        vkDeviceWaitIdle(d->dev);
        for (int i = 0; i < d->npipes; i++) pipeline_free(d, d->pipes[i]);
        if (d->xfer_fence) vkDestroyFence(d->dev, d->xfer_fence, NULL);
        if (d->pcache) vkDestroyPipelineCache(d->dev, d->pcache, NULL);
        if (d->pool) vkDestroyCommandPool(d->dev, d->pool, NULL);
        vkDestroyDevice(d->dev, NULL);
    }
    free(d->pipes);
    if (d->instance) vkDestroyInstance(d->instance, NULL);
    RtLog *log = d->log;
    memset(d, 0, sizeof *d);
    d->log = log;
}

/* ---- buffers ------------------------------------------------------------------ */

static int find_memory(const RtDevice *d, uint32_t bits, VkMemoryPropertyFlags want)
{
    for (uint32_t i = 0; i < d->mem.memoryTypeCount; i++)
        if ((bits & (1u << i)) && (d->mem.memoryTypes[i].propertyFlags & want) == want) return (int)i;
    return -1;
}

/* Creates buffer + memory; host_only asks for host-visible memory (staging). */
static PxResult buffer_make(RtDevice *d, VkDeviceSize bytes, int host_only, RtBuffer *b)
{
    memset(b, 0, sizeof *b);
    if (bytes < 16) bytes = 16;
    bytes = (bytes + 15) & ~(VkDeviceSize)15;
    VkBufferCreateInfo bci = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
        .size = bytes,
        .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                 VK_BUFFER_USAGE_TRANSFER_DST_BIT,
        .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
    };
    VkResult vr = vkCreateBuffer(d->dev, &bci, NULL, &b->buf);
    if (vr != VK_SUCCESS) {
        b->buf = VK_NULL_HANDLE;
        return rt_vk_fail(d->log, vr, "creating a buffer");
    }
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(d->dev, b->buf, &req);
    const VkMemoryPropertyFlags DL = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT,
                                HV = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT,
                                HC = VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    int mt = -1;
    if (!host_only) {
        /* device-local and mappable (unified memory, lavapipe) avoids staging */
        mt = find_memory(d, req.memoryTypeBits, DL | HV | HC);
        if (mt < 0) mt = find_memory(d, req.memoryTypeBits, DL);
    }
    if (mt < 0) mt = find_memory(d, req.memoryTypeBits, HV | HC);
    if (mt < 0) mt = find_memory(d, req.memoryTypeBits, HV);
    if (mt < 0) mt = find_memory(d, req.memoryTypeBits, 0);
    if (mt < 0) {
        vkDestroyBuffer(d->dev, b->buf, NULL);
        b->buf = VK_NULL_HANDLE;
        return rt_fail(d->log, PX_ERR_VULKAN, "no memory type fits a storage buffer");
    }
    VkMemoryAllocateInfo mai = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
        .allocationSize = req.size,
        .memoryTypeIndex = (uint32_t)mt,
    };
    vr = vkAllocateMemory(d->dev, &mai, NULL, &b->mem);
    if (vr != VK_SUCCESS) {
        vkDestroyBuffer(d->dev, b->buf, NULL);
        memset(b, 0, sizeof *b);
        return rt_vk_fail(d->log, vr, "allocating buffer memory");
    }
    if ((vr = vkBindBufferMemory(d->dev, b->buf, b->mem, 0)) != VK_SUCCESS) goto vkfail;
    b->size = bytes;
    VkMemoryPropertyFlags fl = d->mem.memoryTypes[mt].propertyFlags;
    if (fl & HV) {
        if ((vr = vkMapMemory(d->dev, b->mem, 0, VK_WHOLE_SIZE, 0, &b->map)) != VK_SUCCESS) {
            b->map = NULL;
            goto vkfail;
        }
        b->coherent = (fl & HC) != 0;
    }
    return PX_OK;
vkfail:
    vkFreeMemory(d->dev, b->mem, NULL);
    vkDestroyBuffer(d->dev, b->buf, NULL);
    memset(b, 0, sizeof *b);
    return rt_vk_fail(d->log, vr, "binding or mapping buffer memory");
}

void rt_buffer_destroy(RtDevice *d, RtBuffer *b)
{
    if (!b || !d->dev) return;
    if (b->map) vkUnmapMemory(d->dev, b->mem);
    if (b->buf) vkDestroyBuffer(d->dev, b->buf, NULL);
    if (b->mem) vkFreeMemory(d->dev, b->mem, NULL);
    memset(b, 0, sizeof *b);
}

/* Runs one recorded transfer on the device's one-shot command buffer. */
static PxResult xfer_begin(RtDevice *d)
{
    VK_TRY(d, vkResetCommandBuffer(d->xfer_cmd, 0), "resetting a command buffer");
    VkCommandBufferBeginInfo bi = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
        .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
    };
    VK_TRY(d, vkBeginCommandBuffer(d->xfer_cmd, &bi), "recording a transfer");
    return PX_OK;
}

static PxResult xfer_run(RtDevice *d)
{
    VK_TRY(d, vkEndCommandBuffer(d->xfer_cmd), "recording a transfer");
    VkSubmitInfo si = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
        .commandBufferCount = 1,
        .pCommandBuffers = &d->xfer_cmd,
    };
    VK_TRY(d, vkResetFences(d->dev, 1, &d->xfer_fence), "resetting a fence");
    VK_TRY(d, vkQueueSubmit(d->queue, 1, &si, d->xfer_fence), "submitting a transfer");
    VK_TRY(d, vkWaitForFences(d->dev, 1, &d->xfer_fence, VK_TRUE, UINT64_MAX), "waiting for a transfer");
    return PX_OK;
}

PxResult rt_buffer_create(RtDevice *d, VkDeviceSize bytes, RtBuffer *b)
{
    PxResult r = buffer_make(d, bytes, 0, b);
    if (r) return r;
    if ((r = rt_buffer_zero(d, b))) rt_buffer_destroy(d, b);
    return r;
}

PxResult rt_buffer_zero(RtDevice *d, RtBuffer *b)
{
    PxResult r;
    if (b->map) {
        memset(b->map, 0, b->size);
        if (!b->coherent) {
            VkMappedMemoryRange mr = {.sType = VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE,
                                      .memory = b->mem, .size = VK_WHOLE_SIZE};
            VK_TRY(d, vkFlushMappedMemoryRanges(d->dev, 1, &mr), "flushing buffer memory");
        }
        return PX_OK;
    }
    if (!(r = xfer_begin(d))) {
        vkCmdFillBuffer(d->xfer_cmd, b->buf, 0, VK_WHOLE_SIZE, 0);
        r = xfer_run(d);
    }
    return r;
}

PxResult rt_buffer_write(RtDevice *d, RtBuffer *b, const void *src, size_t bytes)
{
    if (bytes > b->size) return rt_fail(d->log, PX_ERR_INVALID, "write of %zu bytes into a %llu-byte buffer",
                                        bytes, (unsigned long long)b->size);
    if (b->map) {
        memcpy(b->map, src, bytes);
        if (!b->coherent) {
            VkMappedMemoryRange mr = {.sType = VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE,
                                      .memory = b->mem, .size = VK_WHOLE_SIZE};
            VK_TRY(d, vkFlushMappedMemoryRanges(d->dev, 1, &mr), "flushing buffer memory");
        }
        return PX_OK;
    }
    RtBuffer st;
    PxResult r = buffer_make(d, bytes, 1, &st);
    if (r) return r;
    if (!st.map) {
        rt_buffer_destroy(d, &st);
        return rt_fail(d->log, PX_ERR_VULKAN, "no host-visible memory for staging");
    }
    r = rt_buffer_write(d, &st, src, bytes);
    if (!r && !(r = xfer_begin(d))) {
        VkBufferCopy c = {.size = bytes ? bytes : 4};
        vkCmdCopyBuffer(d->xfer_cmd, st.buf, b->buf, 1, &c);
        r = xfer_run(d);
    }
    rt_buffer_destroy(d, &st);
    return r;
}

PxResult rt_buffer_read(RtDevice *d, RtBuffer *b, void *dst, size_t bytes)
{
    if (bytes > b->size) return rt_fail(d->log, PX_ERR_INVALID, "read of %zu bytes from a %llu-byte buffer",
                                        bytes, (unsigned long long)b->size);
    if (b->map) {
        if (!b->coherent) {
            VkMappedMemoryRange mr = {.sType = VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE,
                                      .memory = b->mem, .size = VK_WHOLE_SIZE};
            VK_TRY(d, vkInvalidateMappedMemoryRanges(d->dev, 1, &mr), "invalidating buffer memory");
        }
        memcpy(dst, b->map, bytes);
        return PX_OK;
    }
    RtBuffer st;
    PxResult r = buffer_make(d, bytes, 1, &st);
    if (r) return r;
    if (!st.map) {
        rt_buffer_destroy(d, &st);
        return rt_fail(d->log, PX_ERR_VULKAN, "no host-visible memory for staging");
    }
    if (!(r = xfer_begin(d))) {
        VkBufferCopy c = {.size = bytes ? bytes : 4};
        vkCmdCopyBuffer(d->xfer_cmd, b->buf, st.buf, 1, &c);
        if (!(r = xfer_run(d))) r = rt_buffer_read(d, &st, dst, bytes);
    }
    rt_buffer_destroy(d, &st);
    return r;
}

/* ---- pipelines ------------------------------------------------------------------- */

PxResult rt_pipeline_get(RtDevice *d, const uint32_t *words, size_t nwords, const char *entry,
                         int nbindings, uint32_t push_bytes, RtPipeline **out)
{
    *out = NULL;
    if (nbindings < 0 || nbindings > 16) return rt_fail(d->log, PX_ERR_INVALID, "%d bindings (at most 16)", nbindings);
    if (push_bytes > d->props.limits.maxPushConstantsSize)
        return rt_fail(d->log, PX_ERR_UNSUPPORTED, "kernel needs %u bytes of push constants, device allows %u",
                       push_bytes, d->props.limits.maxPushConstantsSize);
    uint64_t h = rt_hash(words, nwords * 4, 0);
    for (int i = 0; i < d->npipes; i++) {
        RtPipeline *p = d->pipes[i];
        if (p->hash == h && p->nwords == nwords && !strcmp(p->entry, entry) &&
            p->nbindings == nbindings && p->push_bytes == push_bytes) {
            *out = p;
            return PX_OK;
        }
    }
    if (d->npipes == d->cappipes) {
        int nc = d->cappipes ? 2 * d->cappipes : 16;
        RtPipeline **np = realloc(d->pipes, (size_t)nc * sizeof *np);
        if (!np) return rt_fail(d->log, PX_ERR_OUT_OF_MEMORY, "out of host memory");
        d->pipes = np;
        d->cappipes = nc;
    }
    RtPipeline *p = calloc(1, sizeof *p);
    if (!p) return rt_fail(d->log, PX_ERR_OUT_OF_MEMORY, "out of host memory");
    p->hash = h;
    p->nwords = nwords;
    snprintf(p->entry, sizeof p->entry, "%s", entry);
    p->nbindings = nbindings;
    p->push_bytes = push_bytes;
    VkResult vr;
    const char *what;
    VkShaderModuleCreateInfo smi = {
        .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
        .codeSize = nwords * 4,
        .pCode = words,
    };
    what = "creating a shader module";
    if ((vr = vkCreateShaderModule(d->dev, &smi, NULL, &p->mod)) != VK_SUCCESS) goto fail;
    VkDescriptorSetLayoutBinding lb[16];
    for (int i = 0; i < nbindings; i++)
        lb[i] = (VkDescriptorSetLayoutBinding){
            .binding = (uint32_t)i,
            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .descriptorCount = 1,
            .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
        };
    VkDescriptorSetLayoutCreateInfo dli = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
        .bindingCount = (uint32_t)nbindings,
        .pBindings = lb,
    };
    what = "creating a descriptor set layout";
    if ((vr = vkCreateDescriptorSetLayout(d->dev, &dli, NULL, &p->dsl)) != VK_SUCCESS) goto fail;
    VkPushConstantRange pr = {.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .size = push_bytes};
    VkPipelineLayoutCreateInfo pli = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
        .setLayoutCount = 1,
        .pSetLayouts = &p->dsl,
        .pushConstantRangeCount = push_bytes ? 1 : 0,
        .pPushConstantRanges = &pr,
    };
    what = "creating a pipeline layout";
    if ((vr = vkCreatePipelineLayout(d->dev, &pli, NULL, &p->layout)) != VK_SUCCESS) goto fail;
    VkComputePipelineCreateInfo cpi = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        /* sliced runs issue parts of a dispatch with vkCmdDispatchBase */
        .flags = d->dispatch_base ? VK_PIPELINE_CREATE_DISPATCH_BASE_BIT : 0,
        .stage = {
            .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
            .stage = VK_SHADER_STAGE_COMPUTE_BIT,
            .module = p->mod,
            .pName = p->entry,
        },
        .layout = p->layout,
    };
    what = "creating a compute pipeline";
    if ((vr = vkCreateComputePipelines(d->dev, d->pcache, 1, &cpi, NULL, &p->pipe)) != VK_SUCCESS) {
        p->pipe = VK_NULL_HANDLE;
        goto fail;
    }
    d->pipes[d->npipes++] = p;
    *out = p;
    return PX_OK;
fail:
    pipeline_free(d, p);
    return rt_vk_fail(d->log, vr, what);
}

/* ---- programs ----------------------------------------------------------------------- */

static void program_release(RtDevice *d, RtProgram *p)
{
    if (p->dpool) vkDestroyDescriptorPool(d->dev, p->dpool, NULL);
    if (p->qpool) vkDestroyQueryPool(d->dev, p->qpool, NULL);
    free(p->sets);
    free(p->disp_stage);
    free(p->set_of);
    p->dpool = VK_NULL_HANDLE;
    p->qpool = VK_NULL_HANDLE;
    p->sets = NULL;
    p->disp_stage = NULL;
    p->set_of = NULL;
    p->nsets = p->nqueries = p->ndispatch = p->nrecorded = p->slice_q = 0;
}

void rt_program_destroy(RtDevice *d, RtProgram *p)
{
    if (!p || !d->dev) return;
    if (p->pending) rt_program_wait(d, p);
    program_release(d, p);
    if (p->fence) vkDestroyFence(d->dev, p->fence, NULL);
    if (p->cmd) vkFreeCommandBuffers(d->dev, d->pool, 1, &p->cmd);
    if (p->slice_cmd) vkFreeCommandBuffers(d->dev, d->pool, 1, &p->slice_cmd);
    memset(p, 0, sizeof *p);
}

PxResult rt_program_record(RtDevice *d, RtProgram *p, const RtDispatch *ds, int n)
{
    PxResult r = PX_OK;
    if (p->pending && (r = rt_program_wait(d, p))) return r;
    program_release(d, p);
    if (!p->cmd) {
        VkCommandBufferAllocateInfo cai = {
            .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
            .commandPool = d->pool,
            .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
            .commandBufferCount = 1,
        };
        VK_TRY(d, vkAllocateCommandBuffers(d->dev, &cai, &p->cmd), "allocating a command buffer");
    }
    if (!p->fence) {
        VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
        VK_TRY(d, vkCreateFence(d->dev, &fci, NULL, &p->fence), "creating a fence");
    }
    int nact = 0, nbind = 0;
    for (int i = 0; i < n; i++)
        if (ds[i].groups[0] && ds[i].groups[1] && ds[i].groups[2]) {
            nact++;
            nbind += ds[i].nbind;
        }
    p->sets = calloc((size_t)(nact ? nact : 1), sizeof *p->sets);
    p->disp_stage = calloc((size_t)(nact ? nact : 1), sizeof *p->disp_stage);
    p->set_of = calloc((size_t)(n > 0 ? n : 1), sizeof *p->set_of);
    if (!p->sets || !p->disp_stage || !p->set_of) {
        program_release(d, p);
        return rt_fail(d->log, PX_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    if (nact) {
        VkDescriptorPoolSize ps = {.type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                   .descriptorCount = (uint32_t)(nbind ? nbind : 1)};
        VkDescriptorPoolCreateInfo dpi = {
            .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
            .maxSets = (uint32_t)nact,
            .poolSizeCount = 1,
            .pPoolSizes = &ps,
        };
        VkResult vr = vkCreateDescriptorPool(d->dev, &dpi, NULL, &p->dpool);
        if (vr != VK_SUCCESS) {
            p->dpool = VK_NULL_HANDLE;
            program_release(d, p);
            return rt_vk_fail(d->log, vr, "creating a descriptor pool");
        }
    }
    if (d->timestamps && !p->untimed && nact) {
        /* two per dispatch, then two for a slice (rt_program_submit_slice) */
        VkQueryPoolCreateInfo qpi = {
            .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
            .queryType = VK_QUERY_TYPE_TIMESTAMP,
            .queryCount = (uint32_t)(2 * nact + 2),
        };
        VkResult vr = vkCreateQueryPool(d->dev, &qpi, NULL, &p->qpool);
        if (vr != VK_SUCCESS) {
            p->qpool = VK_NULL_HANDLE;
            program_release(d, p);
            return rt_vk_fail(d->log, vr, "creating a timestamp query pool");
        }
        p->nqueries = 2 * nact;
        p->slice_q = 2 * nact;
    }
    /* descriptor sets */
    int k = 0;
    for (int i = 0; i < n; i++) {
        const RtDispatch *x = &ds[i];
        p->set_of[i] = -1;
        if (!(x->groups[0] && x->groups[1] && x->groups[2])) continue;
        p->set_of[i] = k;
        VkDescriptorSetAllocateInfo dai = {
            .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
            .descriptorPool = p->dpool,
            .descriptorSetCount = 1,
            .pSetLayouts = &x->pipe->dsl,
        };
        VkResult vr = vkAllocateDescriptorSets(d->dev, &dai, &p->sets[k]);
        if (vr != VK_SUCCESS) {
            program_release(d, p);
            return rt_vk_fail(d->log, vr, "allocating descriptor sets");
        }
        VkDescriptorBufferInfo bi[16];
        VkWriteDescriptorSet w[16];
        for (int j = 0; j < x->nbind; j++) {
            bi[j] = (VkDescriptorBufferInfo){.buffer = x->bind[j]->buf, .range = VK_WHOLE_SIZE};
            w[j] = (VkWriteDescriptorSet){
                .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                .dstSet = p->sets[k],
                .dstBinding = (uint32_t)j,
                .descriptorCount = 1,
                .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                .pBufferInfo = &bi[j],
            };
        }
        vkUpdateDescriptorSets(d->dev, (uint32_t)x->nbind, w, 0, NULL);
        p->disp_stage[k] = x->stage;
        k++;
    }
    p->ndispatch = nact;
    p->nrecorded = n;

    VkResult vr;
    if ((vr = vkResetCommandBuffer(p->cmd, 0)) != VK_SUCCESS) goto vkfail;
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    if ((vr = vkBeginCommandBuffer(p->cmd, &bi)) != VK_SUCCESS) goto vkfail;
    if (p->qpool) vkCmdResetQueryPool(p->cmd, p->qpool, 0, (uint32_t)p->nqueries);
    /* Writes from the host (mapped memory, or staging copies already waited
     * for) are visible at submit; the barrier between dispatches orders
     * shader writes before the next dispatch's reads and writes. */
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_SHADER_READ_BIT,
        .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT,
    };
    k = 0;
    for (int i = 0; i < n; i++) {
        const RtDispatch *x = &ds[i];
        if (x->groups[0] && x->groups[1] && x->groups[2]) {
            vkCmdBindPipeline(p->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, x->pipe->pipe);
            vkCmdBindDescriptorSets(p->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, x->pipe->layout, 0, 1,
                                    &p->sets[k], 0, NULL);
            if (x->pipe->push_bytes)
                vkCmdPushConstants(p->cmd, x->pipe->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0,
                                   x->pipe->push_bytes, x->push);
            /* A dispatch's start stamp is bottom-of-pipe so that it waits for
             * what came before, except the first: nothing of this command
             * buffer comes before it, and top-of-pipe spares lavapipe a
             * flush (a rasterizer round trip) on every run. */
            if (p->qpool)
                vkCmdWriteTimestamp(p->cmd, k ? VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT : VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT,
                                    p->qpool, (uint32_t)(2 * k));
            vkCmdDispatch(p->cmd, x->groups[0], x->groups[1], x->groups[2]);
            if (p->qpool)
                vkCmdWriteTimestamp(p->cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, p->qpool,
                                    (uint32_t)(2 * k + 1));
            k++;
        }
        if (x->barrier_after || i == n - 1) {
            /* the last barrier makes results visible to host reads and to
             * transfers (staging copies) after the fence */
            VkMemoryBarrier hb = mb;
            VkPipelineStageFlags dst = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT;
            if (i == n - 1) {
                hb.dstAccessMask = VK_ACCESS_HOST_READ_BIT | VK_ACCESS_TRANSFER_READ_BIT;
                dst = VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
            }
            vkCmdPipelineBarrier(p->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, dst, 0, 1, &hb, 0,
                                 NULL, 0, NULL);
        }
    }
    if ((vr = vkEndCommandBuffer(p->cmd)) != VK_SUCCESS) goto vkfail;
    return PX_OK;
vkfail:
    program_release(d, p);
    return rt_vk_fail(d->log, vr, "recording a command buffer");
}

PxResult rt_program_submit(RtDevice *d, RtProgram *p)
{
    PxResult r;
    if (p->pending && (r = rt_program_wait(d, p))) return r;
    if (!p->cmd) return rt_fail(d->log, PX_ERR_INVALID, "program not recorded");
    VK_TRY(d, vkResetFences(d->dev, 1, &p->fence), "resetting a fence");
    VkSubmitInfo si = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
        .commandBufferCount = 1,
        .pCommandBuffers = &p->cmd,
    };
    VK_TRY(d, vkQueueSubmit(d->queue, 1, &si, p->fence), "submitting a launch");
    p->pending = 1;
    p->last_slice = 0;
    return PX_OK;
}

PxResult rt_program_wait(RtDevice *d, RtProgram *p)
{
    if (!p->pending) return PX_OK;
    p->pending = 0;
    VK_TRY(d, vkWaitForFences(d->dev, 1, &p->fence, VK_TRUE, UINT64_MAX), "waiting for a launch");
    return PX_OK;
}

/* Timestamps first..first+n-1 of p's pool into ts, after its fence: the
 * results are there by then, and asking with WAIT_BIT first costs
 * lavapipe tens of µs a read (it flushes), a run's worth of overhead for
 * a small launch; the wait only when they are not ready. */
static VkResult query_results(RtDevice *d, RtProgram *p, uint32_t first, uint32_t n, uint64_t *ts)
{
    size_t size = n * sizeof *ts;
    VkResult vr = vkGetQueryPoolResults(d->dev, p->qpool, first, n, size, ts, sizeof *ts, VK_QUERY_RESULT_64_BIT);
    if (vr == VK_NOT_READY)
        vr = vkGetQueryPoolResults(d->dev, p->qpool, first, n, size, ts, sizeof *ts,
                                   VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
    return vr;
}

void rt_program_times(RtDevice *d, RtProgram *p, int nstages, double *stage_ns, double *total_ns)
{
    for (int i = 0; i < nstages; i++) stage_ns[i] = -1;
    *total_ns = -1;
    if (!p->qpool || !p->nqueries || p->last_slice) return;
    uint64_t ts[512];
    int nq = p->nqueries > 512 ? 512 : p->nqueries;
    VkResult vr = query_results(d, p, 0, (uint32_t)nq, ts);
    if (vr != VK_SUCCESS) {
        rt_log(d->log, PX_LOG_WARN, "px: timestamps unavailable (%s)", rt_vk_result_name(vr));
        return;
    }
    double per = d->props.limits.timestampPeriod;
    for (int k = 0; k < nq / 2; k++) {
        int s = p->disp_stage[k];
        uint64_t dt = ((ts[2 * k + 1] - ts[2 * k]) & d->ts_mask);
        if (s >= 0 && s < nstages) stage_ns[s] = (stage_ns[s] < 0 ? 0 : stage_ns[s]) + (double)dt * per;
    }
    *total_ns = (double)((ts[nq - 1] - ts[0]) & d->ts_mask) * per;
}

/* Issues groups [lo, hi) (0 <= lo < hi <= the product of g) of a dispatch
 * of g groups, numbered x fastest, as boxes: the rest of a partial row,
 * whole rows of a plane, whole planes, whole rows, a partial row (at most
 * 5 calls). WorkgroupId includes each box's base; the shaders never read
 * NumWorkgroups (codegen/cg.h), so each group computes what it would in
 * one vkCmdDispatch. */
static void dispatch_range(VkCommandBuffer cmd, const uint32_t g[3], uint64_t lo, uint64_t hi)
{
    uint64_t X = g[0], XY = (uint64_t)g[0] * g[1];
    while (lo < hi) {
        uint32_t x = (uint32_t)(lo % X), y = (uint32_t)(lo / X % g[1]), z = (uint32_t)(lo / XY);
        uint64_t left = hi - lo, n;
        if (x != 0 || left < X) {
            n = X - x < left ? X - x : left;
            vkCmdDispatchBase(cmd, x, y, z, (uint32_t)n, 1, 1);
        } else if (y != 0 || left < XY) {
            uint64_t rows = left / X, room = g[1] - (uint64_t)y;
            if (rows > room) rows = room;
            vkCmdDispatchBase(cmd, 0, y, z, (uint32_t)X, (uint32_t)rows, 1);
            n = rows * X;
        } else {
            uint64_t planes = left / XY;
            vkCmdDispatchBase(cmd, 0, 0, z, (uint32_t)X, g[1], (uint32_t)planes);
            n = planes * XY;
        }
        lo += n;
    }
}

PxResult rt_program_submit_slice(RtDevice *d, RtProgram *p, const RtDispatch *ds, int n, uint64_t begin,
                                 uint64_t end)
{
    PxResult r;
    if (p->pending && (r = rt_program_wait(d, p))) return r;
    if (!p->cmd || n != p->nrecorded) return rt_fail(d->log, PX_ERR_INVALID, "program not recorded");
    if (!d->dispatch_base)
        return rt_fail(d->log, PX_ERR_UNSUPPORTED, "sliced runs need Vulkan 1.1 (vkCmdDispatchBase); %s has %u.%u",
                       d->props.deviceName, VK_API_VERSION_MAJOR(d->props.apiVersion),
                       VK_API_VERSION_MINOR(d->props.apiVersion));
    p->last_slice = -1;
    if (begin >= end) return PX_OK;
    if (!p->slice_cmd) {
        VkCommandBufferAllocateInfo cai = {
            .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
            .commandPool = d->pool,
            .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
            .commandBufferCount = 1,
        };
        VK_TRY(d, vkAllocateCommandBuffers(d->dev, &cai, &p->slice_cmd), "allocating a command buffer");
    }
    VkCommandBuffer cmd = p->slice_cmd;
    VK_TRY(d, vkResetCommandBuffer(cmd, 0), "recording a slice");
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    VK_TRY(d, vkBeginCommandBuffer(cmd, &bi), "recording a slice");
    /* Top-of-pipe start stamp, as for a whole run's first dispatch (no
     * lavapipe flush): exact when the queue is idle at submit, as under a
     * scheduler that waits for each slice; work of others still running
     * on the queue would count in. */
    if (p->qpool) {
        vkCmdResetQueryPool(cmd, p->qpool, (uint32_t)p->slice_q, 2);
        vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, p->qpool, (uint32_t)p->slice_q);
    }
    /* the previous slice's shader writes (earlier in submission order)
     * before this slice's reads and writes, as between dispatches */
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_SHADER_READ_BIT,
        .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT,
    };
    vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &mb,
                         0, NULL, 0, NULL);
    uint64_t pos = 0;
    int ran = 0, barrier = 0;
    for (int i = 0; i < n && pos < end; i++) {
        const RtDispatch *x = &ds[i];
        uint64_t g = (uint64_t)x->groups[0] * x->groups[1] * x->groups[2];
        uint64_t lo = begin > pos ? begin - pos : 0, hi = end - pos < g ? end - pos : g;
        if (lo < hi && p->set_of[i] >= 0) {
            /* a barrier where the program has one, when this slice ran
             * something before it (the first barrier covers the rest) */
            if (barrier)
                vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                                     0, 1, &mb, 0, NULL, 0, NULL);
            barrier = 0;
            vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, x->pipe->pipe);
            vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, x->pipe->layout, 0, 1,
                                    &p->sets[p->set_of[i]], 0, NULL);
            if (x->pipe->push_bytes)
                vkCmdPushConstants(cmd, x->pipe->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, x->pipe->push_bytes,
                                   x->push);
            dispatch_range(cmd, x->groups, lo, hi);
            ran = 1;
        }
        pos += g;
        if (x->barrier_after && ran) barrier = 1;
    }
    if (p->qpool) vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, p->qpool, (uint32_t)p->slice_q + 1);
    /* results visible to host reads and transfers after the fence */
    VkMemoryBarrier hb = mb;
    hb.dstAccessMask = VK_ACCESS_HOST_READ_BIT | VK_ACCESS_TRANSFER_READ_BIT;
    vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                         VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &hb, 0, NULL, 0, NULL);
    VK_TRY(d, vkEndCommandBuffer(cmd), "recording a slice");
    VK_TRY(d, vkResetFences(d->dev, 1, &p->fence), "resetting a fence");
    VkSubmitInfo si = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
        .commandBufferCount = 1,
        .pCommandBuffers = &cmd,
    };
    VK_TRY(d, vkQueueSubmit(d->queue, 1, &si, p->fence), "submitting a slice");
    p->pending = 1;
    p->last_slice = 1;
    return PX_OK;
}

double rt_program_slice_ns(RtDevice *d, RtProgram *p)
{
    if (!p->qpool || p->last_slice != 1 || p->pending) return -1;
    uint64_t ts[2];
    VkResult vr = query_results(d, p, (uint32_t)p->slice_q, 2, ts);
    if (vr != VK_SUCCESS) {
        rt_log(d->log, PX_LOG_WARN, "px: timestamps unavailable (%s)", rt_vk_result_name(vr));
        return -1;
    }
    return (double)((ts[1] - ts[0]) & d->ts_mask) * d->props.limits.timestampPeriod;
}

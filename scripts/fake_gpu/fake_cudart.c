/*
 * fake_cudart.c -- a fake CUDA runtime (libcudart.so.13) for running llama.cpp's real ggml-cuda
 * backend on a machine without a GPU. qwenfit's own code; no NVIDIA or llama.cpp source is copied.
 *
 * Purpose: let ggml-cuda's host code (device enumeration, buffer types, supports_op, offload_op,
 * get_alloc_size, the scheduler's splits and reservations) run unchanged, in llama.cpp's no_alloc
 * mode (llama-fit-params / qwenfit-gpuprobe), where nothing large is allocated and no kernel is
 * launched.
 *
 * Devices come from the environment:
 *   QWENFIT_FAKE_CUDA_DEVICES="name|total_mib|free_mib|cc|n_sm[;...]"
 *     e.g. "NVIDIA GeForce RTX 3090|24576|24000|8.6|82;NVIDIA GeForce RTX 3090|24576|24000|8.6|82"
 *     (free_mib 0 = total; cc as major.minor). Default: one "NVIDIA GeForce RTX 3090|24576|24000|8.6|82";
 *     "none": no device at all (cudaGetDeviceCount fails -> ggml-cuda registers 0 devices, a CPU-only run).
 *   QWENFIT_FAKE_CUDA_VERBOSE=1  log every call that touches memory to stderr.
 *
 * Memory: cudaMalloc/cudaMallocHost/cudaHostAlloc/cudaMallocManaged hand out host memory from
 * mmap(MAP_NORESERVE) (so a huge reservation costs nothing until touched); memcpy/memset calls are
 * carried out on that host memory. Streams/events/graphs are opaque dummies. Kernel launches are
 * refused with cudaErrorNotSupported (ggml's CUDA_CHECK then aborts loudly): a probe that launches a
 * kernel is not a no_alloc probe any more.
 *
 * Property values that are not in the environment (shared memory per block opt-in, L2 size, ...)
 * are typical values of the named compute capability; they are only read by ggml-cuda for kernel
 * selection (e.g. the flash-attention kernel, which decides the FA workspace in the compute buffer).
 */
#define _GNU_SOURCE
#include <cuda_runtime_api.h>
#include <cuda.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/mman.h>
#include <pthread.h>

#define FAKE_MAX_DEV 16
#define EXPORT __attribute__((visibility("default")))

typedef struct {
    char   name[256];
    size_t total;
    size_t free_;
    int    major, minor;
    int    nsm;
} fake_dev;

static fake_dev g_dev[FAKE_MAX_DEV];
static int g_ndev = -1;
static __thread int g_cur = 0;
static int g_verbose = 0;
static pthread_mutex_t g_mtx = PTHREAD_MUTEX_INITIALIZER;
static size_t g_dev_used[FAKE_MAX_DEV];
static size_t g_host_used = 0;

static void fake_init(void) {
    if (g_ndev >= 0) return;
    pthread_mutex_lock(&g_mtx);
    if (g_ndev >= 0) { pthread_mutex_unlock(&g_mtx); return; }
    g_verbose = getenv("QWENFIT_FAKE_CUDA_VERBOSE") && atoi(getenv("QWENFIT_FAKE_CUDA_VERBOSE"));
    const char * env = getenv("QWENFIT_FAKE_CUDA_DEVICES");
    if (!env || !*env) env = "NVIDIA GeForce RTX 3090|24576|24000|8.6|82";
    if (strcmp(env, "none") == 0) env = "";  /* no device: ggml-cuda registers 0 devices (CPU-only run) */
    char * buf = strdup(env);
    int n = 0;
    char * save1 = NULL;
    for (char * dev = strtok_r(buf, ";", &save1); dev && n < FAKE_MAX_DEV; dev = strtok_r(NULL, ";", &save1)) {
        char * f[5] = {0};
        int nf = 0;
        char * p = dev;
        while (nf < 5) {
            f[nf++] = p;
            char * bar = strchr(p, '|');
            if (!bar) break;
            *bar = 0;
            p = bar + 1;
        }
        if (nf < 5) {
            fprintf(stderr, "fake_cudart: bad device spec '%s' (want name|total_mib|free_mib|cc|n_sm)\n", dev);
            abort();
        }
        fake_dev * d = &g_dev[n];
        snprintf(d->name, sizeof(d->name), "%s", f[0]);
        d->total = (size_t) strtoull(f[1], NULL, 10) * 1024 * 1024;
        size_t fr = (size_t) strtoull(f[2], NULL, 10) * 1024 * 1024;
        d->free_ = fr ? fr : d->total;
        if (sscanf(f[3], "%d.%d", &d->major, &d->minor) != 2) { fprintf(stderr, "fake_cudart: bad cc '%s'\n", f[3]); abort(); }
        d->nsm = atoi(f[4]);
        n++;
    }
    free(buf);
    g_ndev = n;
    if (g_verbose) {
        for (int i = 0; i < n; i++) {
            fprintf(stderr, "fake_cudart: device %d: %s, %zu MiB (free %zu MiB), cc %d.%d, %d SMs\n",
                    i, g_dev[i].name, g_dev[i].total >> 20, g_dev[i].free_ >> 20, g_dev[i].major, g_dev[i].minor, g_dev[i].nsm);
        }
    }
    pthread_mutex_unlock(&g_mtx);
}

/* ---- memory: mmap(MAP_NORESERVE) with a one-page header holding the size ---- */
#define HDR 4096
static void * fake_alloc(size_t size) {
    size_t total = size + HDR;
    void * p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return NULL;
    *(size_t *) p = total;
    return (char *) p + HDR;
}
static size_t fake_size(void * ptr) { return *(size_t *) ((char *) ptr - HDR) - HDR; }
static void fake_release(void * ptr) {
    if (!ptr) return;
    char * base = (char *) ptr - HDR;
    munmap(base, *(size_t *) base);
}

/* ---- device management ---- */
EXPORT cudaError_t cudaGetDeviceCount(int * count) { fake_init(); *count = g_ndev; return g_ndev > 0 ? cudaSuccess : cudaErrorNoDevice; }
EXPORT cudaError_t cudaSetDevice(int device) { fake_init(); if (device < 0 || device >= g_ndev) return cudaErrorInvalidDevice; g_cur = device; return cudaSuccess; }
EXPORT cudaError_t cudaGetDevice(int * device) { fake_init(); *device = g_cur; return cudaSuccess; }
EXPORT cudaError_t cudaSetDeviceFlags(unsigned int flags) { (void) flags; return cudaSuccess; }
EXPORT cudaError_t cudaDeviceSynchronize(void) { return cudaSuccess; }
EXPORT cudaError_t cudaDeviceReset(void) { return cudaSuccess; }
EXPORT cudaError_t cudaDriverGetVersion(int * v) { *v = 13000; return cudaSuccess; }
EXPORT cudaError_t cudaRuntimeGetVersion(int * v) { *v = 13000; return cudaSuccess; }
EXPORT cudaError_t cudaDeviceCanAccessPeer(int * can, int dev, int peer) { (void) dev; (void) peer; *can = 0; return cudaSuccess; }
EXPORT cudaError_t cudaDeviceEnablePeerAccess(int peer, unsigned int flags) { (void) peer; (void) flags; return cudaSuccess; }
EXPORT cudaError_t cudaDeviceDisablePeerAccess(int peer) { (void) peer; return cudaSuccess; }
EXPORT cudaError_t cudaDeviceGetPCIBusId(char * pci, int len, int device) {
    snprintf(pci, (size_t) len, "00000000:%02x:00.0", 1 + device);
    return cudaSuccess;
}

/* typical per-cc values (shared memory per block opt-in, per SM, L2, max threads per SM) */
static void cc_defaults(int major, int minor, size_t * smpbo, size_t * smpsm, int * l2, int * thr_sm, int * regs_sm) {
    int cc = 10 * major + minor;
    *regs_sm = 65536;
    if (cc >= 120)      { *smpbo = 101376; *smpsm = 102400; *l2 = 64 << 20; *thr_sm = 1536; }
    else if (cc >= 100) { *smpbo = 232448; *smpsm = 233472; *l2 = 126 << 20; *thr_sm = 2048; }
    else if (cc >= 90)  { *smpbo = 232448; *smpsm = 233472; *l2 = 50 << 20; *thr_sm = 2048; }
    else if (cc == 89)  { *smpbo = 101376; *smpsm = 102400; *l2 = 72 << 20; *thr_sm = 1536; }
    else if (cc == 87 || cc == 80) { *smpbo = 166912; *smpsm = 167936; *l2 = 40 << 20; *thr_sm = 2048; }
    else if (cc >= 86)  { *smpbo = 101376; *smpsm = 102400; *l2 = 6 << 20; *thr_sm = 1536; }
    else if (cc >= 75)  { *smpbo = 65536;  *smpsm = 65536;  *l2 = 6 << 20; *thr_sm = 1024; }
    else if (cc >= 70)  { *smpbo = 98304;  *smpsm = 98304;  *l2 = 6 << 20; *thr_sm = 2048; }
    else                { *smpbo = 49152;  *smpsm = 98304;  *l2 = 4 << 20; *thr_sm = 2048; }
}

EXPORT cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp * prop, int device) {
    fake_init();
    if (device < 0 || device >= g_ndev) return cudaErrorInvalidDevice;
    const fake_dev * d = &g_dev[device];
    memset(prop, 0, sizeof(*prop));
    size_t smpbo, smpsm; int l2, thr_sm, regs_sm;
    cc_defaults(d->major, d->minor, &smpbo, &smpsm, &l2, &thr_sm, &regs_sm);
    snprintf(prop->name, sizeof(prop->name), "%s", d->name);
    for (int i = 0; i < 16; i++) prop->uuid.bytes[i] = (char) (0x40 + device + i);
    prop->totalGlobalMem = d->total;
    prop->sharedMemPerBlock = 49152;
    prop->regsPerBlock = 65536;
    prop->warpSize = 32;
    prop->memPitch = SIZE_MAX / 2;
    prop->maxThreadsPerBlock = 1024;
    prop->maxThreadsDim[0] = 1024; prop->maxThreadsDim[1] = 1024; prop->maxThreadsDim[2] = 64;
    prop->maxGridSize[0] = 2147483647; prop->maxGridSize[1] = 65535; prop->maxGridSize[2] = 65535;
    prop->totalConstMem = 65536;
    prop->major = d->major;
    prop->minor = d->minor;
    prop->textureAlignment = 512;
    prop->texturePitchAlignment = 32;
    prop->multiProcessorCount = d->nsm;
    prop->integrated = 0;
    prop->canMapHostMemory = 1;
    prop->concurrentKernels = 1;
    prop->pciBusID = 1 + device;
    prop->asyncEngineCount = 2;
    prop->unifiedAddressing = 1;
    prop->l2CacheSize = l2;
    prop->maxThreadsPerMultiProcessor = thr_sm;
    prop->sharedMemPerMultiprocessor = smpsm;
    prop->regsPerMultiprocessor = regs_sm;
    prop->managedMemory = 1;
    prop->concurrentManagedAccess = 1;
    prop->sharedMemPerBlockOptin = smpbo;
    prop->maxBlocksPerMultiProcessor = 16;
    prop->memoryBusWidth = 384;
    return cudaSuccess;
}

EXPORT cudaError_t cudaDeviceGetAttribute(int * value, enum cudaDeviceAttr attr, int device) {
    fake_init();
    if (device < 0 || device >= g_ndev) return cudaErrorInvalidDevice;
    struct cudaDeviceProp p;
    cudaGetDeviceProperties(&p, device);
    switch (attr) {
        case cudaDevAttrCooperativeLaunch:              *value = 1; break;
        case cudaDevAttrComputeCapabilityMajor:         *value = p.major; break;
        case cudaDevAttrComputeCapabilityMinor:         *value = p.minor; break;
        case cudaDevAttrMultiProcessorCount:            *value = p.multiProcessorCount; break;
        case cudaDevAttrWarpSize:                       *value = 32; break;
        case cudaDevAttrMaxSharedMemoryPerBlockOptin:   *value = (int) p.sharedMemPerBlockOptin; break;
        case cudaDevAttrMaxSharedMemoryPerBlock:        *value = (int) p.sharedMemPerBlock; break;
        case cudaDevAttrMaxSharedMemoryPerMultiprocessor: *value = (int) p.sharedMemPerMultiprocessor; break;
        case cudaDevAttrL2CacheSize:                    *value = p.l2CacheSize; break;
        case cudaDevAttrMaxThreadsPerBlock:             *value = 1024; break;
        case cudaDevAttrIntegrated:                     *value = 0; break;
        case cudaDevAttrMemoryPoolsSupported:           *value = 0; break;
        default:                                        *value = 0; break;
    }
    return cudaSuccess;
}

EXPORT cudaError_t cudaMemGetInfo(size_t * free_, size_t * total) {
    fake_init();
    const fake_dev * d = &g_dev[g_cur];
    size_t used = g_dev_used[g_cur];
    *total = d->total;
    *free_ = d->free_ > used ? d->free_ - used : 0;
    return cudaSuccess;
}

/* ---- memory ---- */
EXPORT cudaError_t cudaMalloc(void ** ptr, size_t size) {
    fake_init();
    const fake_dev * d = &g_dev[g_cur];
    if (g_dev_used[g_cur] + size > d->free_) {
        if (g_verbose) fprintf(stderr, "fake_cudart: cudaMalloc(%zu) on device %d: out of memory\n", size, g_cur);
        return cudaErrorMemoryAllocation;
    }
    *ptr = fake_alloc(size);
    if (!*ptr) return cudaErrorMemoryAllocation;
    pthread_mutex_lock(&g_mtx); g_dev_used[g_cur] += size; pthread_mutex_unlock(&g_mtx);
    if (g_verbose) fprintf(stderr, "fake_cudart: cudaMalloc(%zu) on device %d -> %p\n", size, g_cur, *ptr);
    return cudaSuccess;
}
EXPORT cudaError_t cudaMallocManaged(void ** ptr, size_t size, unsigned int flags) { (void) flags; return cudaMalloc(ptr, size); }
EXPORT cudaError_t cudaFree(void * ptr) {
    if (!ptr) return cudaSuccess;
    size_t s = fake_size(ptr);
    pthread_mutex_lock(&g_mtx); g_dev_used[g_cur] -= (g_dev_used[g_cur] >= s ? s : g_dev_used[g_cur]); pthread_mutex_unlock(&g_mtx);
    if (g_verbose) fprintf(stderr, "fake_cudart: cudaFree(%p, %zu)\n", ptr, s);
    fake_release(ptr);
    return cudaSuccess;
}
EXPORT cudaError_t cudaMallocHost(void ** ptr, size_t size) {
    *ptr = fake_alloc(size);
    if (!*ptr) return cudaErrorMemoryAllocation;
    pthread_mutex_lock(&g_mtx); g_host_used += size; pthread_mutex_unlock(&g_mtx);
    if (g_verbose) fprintf(stderr, "fake_cudart: cudaMallocHost(%zu) -> %p\n", size, *ptr);
    return cudaSuccess;
}
EXPORT cudaError_t cudaHostAlloc(void ** ptr, size_t size, unsigned int flags) { (void) flags; return cudaMallocHost(ptr, size); }
EXPORT cudaError_t cudaFreeHost(void * ptr) {
    if (g_verbose && ptr) fprintf(stderr, "fake_cudart: cudaFreeHost(%p, %zu)\n", ptr, fake_size(ptr));
    fake_release(ptr);
    return cudaSuccess;
}
EXPORT cudaError_t cudaHostRegister(void * ptr, size_t size, unsigned int flags) { (void) ptr; (void) size; (void) flags; return cudaSuccess; }
EXPORT cudaError_t cudaHostUnregister(void * ptr) { (void) ptr; return cudaSuccess; }
EXPORT cudaError_t cudaHostGetDevicePointer(void ** pdev, void * phost, unsigned int flags) { (void) flags; *pdev = phost; return cudaSuccess; }
EXPORT cudaError_t cudaMemAdvise(const void * p, size_t n, enum cudaMemoryAdvise a, struct cudaMemLocation loc) { (void) p; (void) n; (void) a; (void) loc; return cudaSuccess; }

EXPORT cudaError_t cudaMemcpy(void * dst, const void * src, size_t n, enum cudaMemcpyKind kind) { (void) kind; if (n) memmove(dst, src, n); return cudaSuccess; }
EXPORT cudaError_t cudaMemcpyAsync(void * dst, const void * src, size_t n, enum cudaMemcpyKind kind, cudaStream_t s) { (void) s; return cudaMemcpy(dst, src, n, kind); }
EXPORT cudaError_t cudaMemcpyPeer(void * dst, int dd, const void * src, int sd, size_t n) { (void) dd; (void) sd; if (n) memmove(dst, src, n); return cudaSuccess; }
EXPORT cudaError_t cudaMemcpyPeerAsync(void * dst, int dd, const void * src, int sd, size_t n, cudaStream_t s) { (void) s; return cudaMemcpyPeer(dst, dd, src, sd, n); }
EXPORT cudaError_t cudaMemcpy2D(void * dst, size_t dpitch, const void * src, size_t spitch, size_t width, size_t height, enum cudaMemcpyKind kind) {
    (void) kind;
    for (size_t r = 0; r < height; r++) memmove((char *) dst + r * dpitch, (const char *) src + r * spitch, width);
    return cudaSuccess;
}
EXPORT cudaError_t cudaMemcpy2DAsync(void * dst, size_t dpitch, const void * src, size_t spitch, size_t width, size_t height, enum cudaMemcpyKind kind, cudaStream_t s) {
    (void) s; return cudaMemcpy2D(dst, dpitch, src, spitch, width, height, kind);
}
EXPORT cudaError_t cudaMemset(void * p, int v, size_t n) { if (n) memset(p, v, n); return cudaSuccess; }
EXPORT cudaError_t cudaMemsetAsync(void * p, int v, size_t n, cudaStream_t s) { (void) s; return cudaMemset(p, v, n); }

/* ---- streams, events, graphs: opaque dummies ---- */
static void * dummy_handle(void) { return calloc(1, 64); }
EXPORT cudaError_t cudaStreamCreate(cudaStream_t * s) { *s = (cudaStream_t) dummy_handle(); return cudaSuccess; }
EXPORT cudaError_t cudaStreamCreateWithFlags(cudaStream_t * s, unsigned int f) { (void) f; return cudaStreamCreate(s); }
EXPORT cudaError_t cudaStreamCreateWithPriority(cudaStream_t * s, unsigned int f, int prio) { (void) f; (void) prio; return cudaStreamCreate(s); }
EXPORT cudaError_t cudaStreamDestroy(cudaStream_t s) { free(s); return cudaSuccess; }
EXPORT cudaError_t cudaStreamSynchronize(cudaStream_t s) { (void) s; return cudaSuccess; }
EXPORT cudaError_t cudaStreamQuery(cudaStream_t s) { (void) s; return cudaSuccess; }
EXPORT cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned int f) { (void) s; (void) e; (void) f; return cudaSuccess; }
EXPORT cudaError_t cudaStreamIsCapturing(cudaStream_t s, enum cudaStreamCaptureStatus * st) { (void) s; *st = cudaStreamCaptureStatusNone; return cudaSuccess; }
EXPORT cudaError_t cudaStreamBeginCapture(cudaStream_t s, enum cudaStreamCaptureMode m) { (void) s; (void) m; return cudaErrorNotSupported; }
EXPORT cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t * g) { (void) s; *g = NULL; return cudaErrorNotSupported; }
EXPORT cudaError_t cudaEventCreate(cudaEvent_t * e) { *e = (cudaEvent_t) dummy_handle(); return cudaSuccess; }
EXPORT cudaError_t cudaEventCreateWithFlags(cudaEvent_t * e, unsigned int f) { (void) f; return cudaEventCreate(e); }
EXPORT cudaError_t cudaEventDestroy(cudaEvent_t e) { free(e); return cudaSuccess; }
EXPORT cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) { (void) e; (void) s; return cudaSuccess; }
EXPORT cudaError_t cudaEventSynchronize(cudaEvent_t e) { (void) e; return cudaSuccess; }
EXPORT cudaError_t cudaEventQuery(cudaEvent_t e) { (void) e; return cudaSuccess; }
EXPORT cudaError_t cudaEventElapsedTime(float * ms, cudaEvent_t a, cudaEvent_t b) { (void) a; (void) b; *ms = 0.0f; return cudaSuccess; }
EXPORT cudaError_t cudaGraphInstantiate(cudaGraphExec_t * ge, cudaGraph_t g, unsigned long long f) { (void) g; (void) f; *ge = NULL; return cudaErrorNotSupported; }
EXPORT cudaError_t cudaGraphExecUpdate(cudaGraphExec_t ge, cudaGraph_t g, cudaGraphExecUpdateResultInfo * r) { (void) ge; (void) g; (void) r; return cudaErrorNotSupported; }
EXPORT cudaError_t cudaGraphExecDestroy(cudaGraphExec_t ge) { (void) ge; return cudaSuccess; }
EXPORT cudaError_t cudaGraphDestroy(cudaGraph_t g) { (void) g; return cudaSuccess; }
EXPORT cudaError_t cudaGraphLaunch(cudaGraphExec_t ge, cudaStream_t s) { (void) ge; (void) s; return cudaErrorNotSupported; }

/* ---- errors ---- */
EXPORT cudaError_t cudaGetLastError(void) { return cudaSuccess; }
EXPORT cudaError_t cudaPeekAtLastError(void) { return cudaSuccess; }
EXPORT const char * cudaGetErrorString(cudaError_t e) {
    switch (e) {
        case cudaSuccess:               return "no error";
        case cudaErrorMemoryAllocation: return "out of memory (fake_cudart)";
        case cudaErrorNotSupported:     return "operation not supported by fake_cudart (kernel launch / graph)";
        case cudaErrorNoDevice:         return "no CUDA-capable device is detected (fake_cudart)";
        case cudaErrorInvalidDevice:    return "invalid device ordinal (fake_cudart)";
        default:                        return "fake_cudart error";
    }
}
EXPORT const char * cudaGetErrorName(cudaError_t e) { (void) e; return "cudaErrorFake"; }

/* ---- kernels: attributes answered, launches refused ---- */
EXPORT cudaError_t cudaFuncGetAttributes(struct cudaFuncAttributes * a, const void * f) {
    (void) f; memset(a, 0, sizeof(*a)); a->maxThreadsPerBlock = 1024; a->numRegs = 32; a->ptxVersion = 86; a->binaryVersion = 86;
    return cudaSuccess;
}
EXPORT cudaError_t cudaFuncSetAttribute(const void * f, enum cudaFuncAttribute a, int v) { (void) f; (void) a; (void) v; return cudaSuccess; }
EXPORT cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int * n, const void * f, int bs, size_t sm) { (void) f; (void) bs; (void) sm; *n = 1; return cudaSuccess; }
EXPORT cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(int * n, const void * f, int bs, size_t sm, unsigned int fl) { (void) fl; return cudaOccupancyMaxActiveBlocksPerMultiprocessor(n, f, bs, sm); }

static cudaError_t refuse_launch(const char * what) {
    fprintf(stderr, "fake_cudart: %s refused (no kernels run on the fake GPU)\n", what);
    return cudaErrorNotSupported;
}
EXPORT cudaError_t cudaLaunchKernel(const void * f, dim3 g, dim3 b, void ** args, size_t sm, cudaStream_t s) {
    (void) f; (void) g; (void) b; (void) args; (void) sm; (void) s; return refuse_launch("cudaLaunchKernel");
}
EXPORT cudaError_t cudaLaunchKernelExC(const cudaLaunchConfig_t * c, const void * f, void ** args) {
    (void) c; (void) f; (void) args; return refuse_launch("cudaLaunchKernelExC");
}
EXPORT cudaError_t cudaLaunchCooperativeKernel(const void * f, dim3 g, dim3 b, void ** args, size_t sm, cudaStream_t s) {
    (void) f; (void) g; (void) b; (void) args; (void) sm; (void) s; return refuse_launch("cudaLaunchCooperativeKernel");
}
EXPORT cudaError_t cudaLaunchHostFunc(cudaStream_t s, cudaHostFn_t fn, void * ud) { (void) s; fn(ud); return cudaSuccess; }

/* ---- nvcc registration hooks: no-ops ---- */
static void * g_fatbin_handle[4];
EXPORT void ** __cudaRegisterFatBinary(void * fatCubin) { (void) fatCubin; return g_fatbin_handle; }
EXPORT void __cudaRegisterFatBinaryEnd(void ** h) { (void) h; }
EXPORT void __cudaUnregisterFatBinary(void ** h) { (void) h; }
EXPORT void __cudaRegisterFunction(void ** h, const char * hostFun, char * devFun, const char * devName, int tl,
                                   uint3 * tid, uint3 * bid, dim3 * bDim, dim3 * gDim, int * wSize) {
    (void) h; (void) hostFun; (void) devFun; (void) devName; (void) tl; (void) tid; (void) bid; (void) bDim; (void) gDim; (void) wSize;
}
EXPORT void __cudaRegisterVar(void ** h, char * hostVar, char * devAddr, const char * devName, int ext, size_t size, int constant, int global) {
    (void) h; (void) hostVar; (void) devAddr; (void) devName; (void) ext; (void) size; (void) constant; (void) global;
}
EXPORT void __cudaRegisterManagedVar(void ** h, void ** hostVarPtrAddress, char * devAddr, const char * devName, int ext, size_t size, int constant, int global) {
    (void) h; (void) hostVarPtrAddress; (void) devAddr; (void) devName; (void) ext; (void) size; (void) constant; (void) global;
}
EXPORT char __cudaInitModule(void ** h) { (void) h; return 0; }
EXPORT unsigned __cudaPushCallConfiguration(dim3 g, dim3 b, size_t sm, struct CUstream_st * s) { (void) g; (void) b; (void) sm; (void) s; return 0; }
/* CUDA 13 launch path of nvcc's host stubs (crt/device_functions.h: __cudaGetKernel + __cudaLaunchKernel) */
EXPORT cudaError_t __cudaGetKernel(cudaKernel_t * k, const void * fun) { *k = (cudaKernel_t) fun; return cudaSuccess; }
EXPORT cudaError_t __cudaLaunchKernel(cudaKernel_t k, dim3 g, dim3 b, void ** args, size_t sm, cudaStream_t s) {
    (void) k; (void) g; (void) b; (void) args; (void) sm; (void) s; return refuse_launch("__cudaLaunchKernel");
}
EXPORT cudaError_t __cudaLaunchKernel_ptsz(cudaKernel_t k, dim3 g, dim3 b, void ** args, size_t sm, cudaStream_t s) {
    (void) k; (void) g; (void) b; (void) args; (void) sm; (void) s; return refuse_launch("__cudaLaunchKernel_ptsz");
}
EXPORT cudaError_t __cudaPopCallConfiguration(dim3 * g, dim3 * b, size_t * sm, void * s) {
    g->x = g->y = g->z = 1; b->x = b->y = b->z = 1; *sm = 0; *(void **) s = NULL; return cudaSuccess;
}

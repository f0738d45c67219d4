/*
 * launch_count.c -- LD_PRELOAD companion of the fake CUDA runtime (scripts/fake_gpu/fake_cudart.c),
 * qwenfit's own code. The fake runtime refuses kernel launches; this library accepts them instead
 * and COUNTS them (the kernels do not run: device memory keeps whatever was written by memcpy/memset),
 * so that ggml-cuda's real host code can evaluate a graph and the number of launches it issues can be
 * read per node or per layer. cuBLAS entry points are answered (handle creation) and their GEMM calls
 * counted. Everything else (memory, streams, devices) is the fake runtime's, reached with RTLD_NEXT.
 *
 * Counters (exported array qf_counts, read by the runner through dlsym):
 *   0 kernel launches (__cudaLaunchKernel[_ptsz], cudaLaunchKernel, cudaLaunchKernelExC, cooperative)
 *   1 cuBLAS GEMM calls (each issues at least one kernel on a real GPU; not included in 0)
 *   2 device->host copies (cudaMemcpy*, kind DeviceToHost)
 *   3 device->device copies (cudaMemcpy*, kind DeviceToDevice: e.g. a contiguous CPY/CONT)
 *   4 memsets (cudaMemset*)
 *   5 other copies (HostToDevice, Default, ...)
 */
#define _GNU_SOURCE
#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <stdlib.h>

#define EXPORT __attribute__((visibility("default")))

EXPORT volatile long qf_counts[8];

EXPORT cudaError_t __cudaLaunchKernel(cudaKernel_t k, dim3 g, dim3 b, void ** args, size_t sm, cudaStream_t s) {
    (void) k; (void) g; (void) b; (void) args; (void) sm; (void) s; qf_counts[0]++; return cudaSuccess;
}
EXPORT cudaError_t __cudaLaunchKernel_ptsz(cudaKernel_t k, dim3 g, dim3 b, void ** args, size_t sm, cudaStream_t s) {
    (void) k; (void) g; (void) b; (void) args; (void) sm; (void) s; qf_counts[0]++; return cudaSuccess;
}
EXPORT cudaError_t cudaLaunchKernel(const void * f, dim3 g, dim3 b, void ** args, size_t sm, cudaStream_t s) {
    (void) f; (void) g; (void) b; (void) args; (void) sm; (void) s; qf_counts[0]++; return cudaSuccess;
}
EXPORT cudaError_t cudaLaunchKernelExC(const cudaLaunchConfig_t * c, const void * f, void ** args) {
    (void) c; (void) f; (void) args; qf_counts[0]++; return cudaSuccess;
}
EXPORT cudaError_t cudaLaunchCooperativeKernel(const void * f, dim3 g, dim3 b, void ** args, size_t sm, cudaStream_t s) {
    (void) f; (void) g; (void) b; (void) args; (void) sm; (void) s; qf_counts[0]++; return cudaSuccess;
}

/* copies and memsets: counted, then done by the fake runtime */
#define KIND(k) ((k) == cudaMemcpyDeviceToHost ? 2 : (k) == cudaMemcpyDeviceToDevice ? 3 : 5)
#define NEXT(name) static __typeof__(name) * next; if (!next) next = (__typeof__(name) *) dlsym(RTLD_NEXT, #name)
EXPORT cudaError_t cudaMemcpyAsync(void * d, const void * s, size_t n, enum cudaMemcpyKind k, cudaStream_t st) {
    NEXT(cudaMemcpyAsync); qf_counts[KIND(k)]++; return next(d, s, n, k, st);
}
EXPORT cudaError_t cudaMemcpy(void * d, const void * s, size_t n, enum cudaMemcpyKind k) {
    NEXT(cudaMemcpy); qf_counts[KIND(k)]++; return next(d, s, n, k);
}
EXPORT cudaError_t cudaMemcpy2DAsync(void * d, size_t dp, const void * s, size_t sp, size_t w, size_t h, enum cudaMemcpyKind k, cudaStream_t st) {
    NEXT(cudaMemcpy2DAsync); qf_counts[KIND(k)]++; return next(d, dp, s, sp, w, h, k, st);
}
EXPORT cudaError_t cudaMemsetAsync(void * p, int v, size_t n, cudaStream_t s) {
    NEXT(cudaMemsetAsync); qf_counts[4]++; return next(p, v, n, s);
}
EXPORT cudaError_t cudaMemset(void * p, int v, size_t n) {
    NEXT(cudaMemset); qf_counts[4]++; return next(p, v, n);
}

/* cuBLAS (loose C signatures like fake_cublas.c; the handle is the only output ggml reads) */
EXPORT int cublasCreate_v2(void ** h) { *h = calloc(1, 64); return 0; }
EXPORT int cublasDestroy_v2(void * h) { free(h); return 0; }
EXPORT int cublasSetStream_v2(void) { return 0; }
EXPORT int cublasSetWorkspace_v2(void) { return 0; }
EXPORT int cublasSetMathMode(void) { return 0; }
EXPORT int cublasLoggerConfigure(void) { return 0; }
EXPORT int cublasGemmEx(void) { qf_counts[1]++; return 0; }
EXPORT int cublasGemmBatchedEx(void) { qf_counts[1]++; return 0; }
EXPORT int cublasGemmStridedBatchedEx(void) { qf_counts[1]++; return 0; }
EXPORT int cublasSgemm_v2(void) { qf_counts[1]++; return 0; }
EXPORT int cublasSgemmBatched(void) { qf_counts[1]++; return 0; }
EXPORT int cublasSgemmStridedBatched(void) { qf_counts[1]++; return 0; }
EXPORT int cublasStrsmBatched(void) { qf_counts[1]++; return 0; }

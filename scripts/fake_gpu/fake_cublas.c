/*
 * fake_cublas.c -- link-time stand-in for libcublas.so.13 (qwenfit's own code).
 * ggml-cuda only calls cuBLAS while computing a graph (mat-muls), which never happens in llama.cpp's
 * no_alloc memory probe; every entry point here returns CUBLAS_STATUS_NOT_SUPPORTED (15) so that a
 * stray call aborts loudly through ggml's CUBLAS_CHECK. Signatures are declared loosely (C ABI,
 * pointer-sized/int arguments are ignored), which is fine because none of them is ever executed.
 */
#include <stdio.h>

#define EXPORT __attribute__((visibility("default")))
#define CUBLAS_STATUS_SUCCESS 0
#define CUBLAS_STATUS_NOT_SUPPORTED 15

static int refuse(const char * fn) {
    fprintf(stderr, "fake_cublas: %s called (not supported on the fake GPU)\n", fn);
    return CUBLAS_STATUS_NOT_SUPPORTED;
}

#define STUB(name) EXPORT int name(void) { return refuse(#name); }

STUB(cublasCreate_v2)
STUB(cublasDestroy_v2)
STUB(cublasSetStream_v2)
STUB(cublasSetWorkspace_v2)
STUB(cublasSetMathMode)
STUB(cublasGemmEx)
STUB(cublasGemmBatchedEx)
STUB(cublasGemmStridedBatchedEx)
STUB(cublasSgemm_v2)
STUB(cublasSgemmBatched)
STUB(cublasSgemmStridedBatched)
STUB(cublasStrsmBatched)
STUB(cublasLoggerConfigure)

EXPORT const char * cublasGetStatusString(int status) { (void) status; return "fake_cublas: not supported"; }

/* The products' precision (engine.h: ct_precision, ct_bf16_available,
 * ct_engine_precision) and the dispatch between OpenBLAS sgemm, our
 * AVX-512 float32 kernel and the bfloat16 kernel (gemm/gemm.h). Compiled
 * at the baseline: it only reads cpuid and the environment. */
#include "gemm/gemm.h"

#include <cblas.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *ct_precision_name(ct_precision p) {
    switch (p) {
    case CT_PRECISION_FP32: return "fp32";
    case CT_PRECISION_BF16: return "bf16";
    }
    return "?";
}

/* CT__BF16_FLAGS: the portable build compiles gemm_bf16.c with
 * -mavx512bf16 (sdk/CMakeLists.txt); a native build has the flag or not for
 * every file alike. Defined here, in a file compiled at the baseline, so
 * that asking runs no AVX-512 instruction. */
bool ct__bf16_built(void) {
#if defined(CT__BF16_FLAGS) || (defined(__AVX512BF16__) && defined(__AVX512BW__) && defined(__AVX512VL__))
    return true;
#else
    return false;
#endif
}

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
/* AVX512_BF16: cpuid leaf 7 sub-leaf 1, EAX bit 5 (its register state is
 * the AVX-512 state, checked by ct_simd_cpu(CT_SIMD_AVX512)). */
static bool ct__bf16_cpuid(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || a < 1) return false;
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return false;
    return (a >> 5) & 1u;
}
#else
static bool ct__bf16_cpuid(void) { return false; }
#endif

static pthread_once_t ct__bf16_once = PTHREAD_ONCE_INIT;
static bool ct__bf16_cpu;

static void ct__bf16_detect(void) { ct__bf16_cpu = ct_simd_cpu(CT_SIMD_AVX512) && ct__bf16_cpuid(); }

bool ct_bf16_available(void) {
    pthread_once(&ct__bf16_once, ct__bf16_detect);
    return ct__bf16_built() && ct__bf16_cpu && ct_simd_built(CT_SIMD_AVX512);
}

/* Why bf16 cannot run with options o (NULL: it can). */
static const char *ct__bf16_missing(const ct_engine_opts *o) {
    pthread_once(&ct__bf16_once, ct__bf16_detect);
    if (!ct__bf16_built()) return "this build has no AVX512-BF16 kernel (the compiler lacked -mavx512bf16, or a CONTRAST_NATIVE build for a processor without it)";
    if (!ct__bf16_cpu) return "this processor has no AVX512-BF16";
    if (!ct_simd_built(CT_SIMD_AVX512)) return "this build holds no AVX-512 kernel level";
    if (ct_engine_simd(o) != CT_SIMD_AVX512) return "the kernel level is below avx512 (CT_SIMD)";
    return NULL;
}

static atomic_flag ct__bf16_said = ATOMIC_FLAG_INIT;

ct_precision ct_engine_precision(const ct_engine_opts *o) {
    if (!o || o->precision != CT_PRECISION_BF16) return CT_PRECISION_FP32;
    const char *why = ct__bf16_missing(o);
    if (!why) return CT_PRECISION_BF16;
    if (!atomic_flag_test_and_set(&ct__bf16_said))
        fprintf(stderr,
                "contrast: warning: precision bf16 asked for, but %s: convolutions and matrix products run in "
                "float32\n",
                why);
    return CT_PRECISION_FP32;
}

/* CT__SGEMM_FLAGS: the portable build compiles sgemm_avx512.c with
 * -march=x86-64-v4 (sdk/CMakeLists.txt); a native build has AVX-512F for
 * every file or for none. */
bool ct__sgemm_built(void) {
#if defined(CT__SGEMM_FLAGS) || defined(__AVX512F__)
    return true;
#else
    return false;
#endif
}

/* CT_GEMM=openblas: float32 products through OpenBLAS whatever the kernel
 * level (read once, so one process measures one choice). */
static pthread_once_t ct__gemm_env_once = PTHREAD_ONCE_INIT;
static bool ct__gemm_env_blas;

static void ct__gemm_env_read(void) {
    const char *e = getenv("CT_GEMM");
    ct__gemm_env_blas = e && !strcmp(e, "openblas");
    if (e && *e && !ct__gemm_env_blas && strcmp(e, "auto"))
        fprintf(stderr, "contrast: warning: CT_GEMM=%s is neither auto nor openblas: auto\n", e);
}

ct__gemm_kind ct__gemm_kind_opts(const ct_engine_opts *o) {
    if (ct_engine_precision(o) == CT_PRECISION_BF16) return CT__GEMM_BF16;
    return ct__gemm_f32_kind_opts(o);
}

ct__gemm_kind ct__gemm_f32_kind_opts(const ct_engine_opts *o) {
    pthread_once(&ct__gemm_env_once, ct__gemm_env_read);
    if (ct__gemm_env_blas || !ct__sgemm_built() || ct_engine_simd(o) != CT_SIMD_AVX512) return CT__GEMM_OPENBLAS;
    return CT__GEMM_F32_AVX512;
}

ct__gemm_kind ct__gemm_kind_of(const ct_graph *g) { return ct__gemm_kind_opts(g ? ct_graph_engine(g) : NULL); }

ct__gemm_kind ct__gemm_f32_kind_of(const ct_graph *g) { return ct__gemm_f32_kind_opts(g ? ct_graph_engine(g) : NULL); }

/* Whether OpenBLAS itself runs AVX-512 kernels (its core name), read once:
 * not when OPENBLAS_CORETYPE pins it lower (the shell of the AMD EPYC in
 * bench/README.md sets Haswell). */
static pthread_once_t ct__blas512_once = PTHREAD_ONCE_INIT;
static bool ct__blas512;

static void ct__blas512_read(void) {
    static const char *const names[] = {"SkylakeX", "Cooperlake", "SapphireRapids"};
    const char *core = openblas_get_corename();
    for (size_t i = 0; core && i < sizeof names / sizeof *names; i++)
        if (!strcasecmp(core, names[i])) ct__blas512 = true;
}

/* Measured on an AMD EPYC Zen 5, one thread, the reference step's shapes
 * (im2col, 1x1, Winograd and head products; bench/README.md): against
 * OpenBLAS 0.3.21's AVX2 (Haswell) kernels ours is 1.3-2.7x on every
 * shape; against its AVX-512 (Cooperlake) kernels 0.97-1.5x wherever m is
 * at least 64, but 0.54-0.76x at m = 32 (the 32-channel layers' forward
 * and data-gradient products: OpenBLAS's wider-m kernel) and 0.41x at the
 * stem's m = 9. When OpenBLAS runs several threads the caller relies on
 * them (conv2d.c loops serially then), and ours has one. */
bool ct__sgemm_takes(int64_t m, int64_t n, int64_t k) {
    (void)n;
    if (openblas_get_num_threads() != 1) return false;
    pthread_once(&ct__blas512_once, ct__blas512_read);
    return !ct__blas512 || (m >= 64 && k >= 16);
}

void ct__gemm(void *pack, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
              const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    if (pack) {
        const ct__gemm_kind kind = (ct__gemm_kind) * (const int32_t *)pack;
        void *scratch = (char *)pack + CT__GEMM_PACK_HEAD;
        if (kind == CT__GEMM_BF16) {
            ct__gemm_bf16(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, scratch);
            return;
        }
        if (kind == CT__GEMM_F32_AVX512 && ct__sgemm_takes(m, n, k)) {
            ct__sgemm_avx512(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, scratch);
            return;
        }
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k,
                alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

/* Kernel levels (engine.h: ct_simd_*) and the kernel table a graph's ops
 * use (core/kernels.h): what this library holds, what the processor runs,
 * and the choice between them. */
#include <pthread.h>
#include <stddef.h>

#include "contrast/engine.h"
#include "core/kernels.h"

/* The tables this library holds (core/kernels.c, one per level copy;
 * CT__KERNELS_X86: the portable x86-64 build's three). */
#if defined(CT__KERNELS_X86)
extern const ct__kernels ct__kernels_generic, ct__kernels_avx2, ct__kernels_avx512;
static const ct__kernels *const ct__tables[] = {&ct__kernels_generic, &ct__kernels_avx2, &ct__kernels_avx512};
#else
extern const ct__kernels ct__kernels_native;
static const ct__kernels *const ct__tables[] = {&ct__kernels_native};
#endif
#define CT__N_TABLES (sizeof ct__tables / sizeof *ct__tables)

const char *ct_simd_name(ct_simd_level level) {
    switch (level) {
    case CT_SIMD_AUTO: return "auto";
    case CT_SIMD_GENERIC: return "generic";
    case CT_SIMD_AVX2: return "avx2";
    case CT_SIMD_AVX512: return "avx512";
    }
    return "?";
}

/* ---- what the processor runs ------------------------------------------- */

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static unsigned ct__bit(unsigned reg, int bit) { return (reg >> bit) & 1u; }

/* XCR0: the register state the OS saves on a context switch. Only read
 * when cpuid says OSXSAVE (xgetbv faults otherwise). */
static uint64_t ct__xcr0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

/* The highest psABI level (x86-64-v3 / -v4, the flags the kernel copies
 * are compiled with) this processor and OS run: every feature the level
 * lets the compiler use, and the OS saving the YMM (and for AVX-512 the
 * opmask and ZMM) state. Read from cpuid directly rather than through
 * __builtin_cpu_supports, whose level names older compilers lack. */
static ct_simd_level ct__detect(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return CT_SIMD_GENERIC;
    const unsigned c1 = c;
    /* v2 and v3 features of leaf 1: SSE3 0, SSSE3 9, FMA 12, CX16 13,
     * SSE4.1 19, SSE4.2 20, MOVBE 22, POPCNT 23, OSXSAVE 27, AVX 28,
     * F16C 29. */
    static const int leaf1[] = {0, 9, 12, 13, 19, 20, 22, 23, 27, 28, 29};
    for (size_t i = 0; i < sizeof leaf1 / sizeof *leaf1; i++)
        if (!ct__bit(c1, leaf1[i])) return CT_SIMD_GENERIC;
    const uint64_t xcr0 = ct__xcr0();
    if ((xcr0 & 0x6) != 0x6) return CT_SIMD_GENERIC; /* XMM and YMM state */
    if (!__get_cpuid(0x80000001u, &a, &b, &c, &d) || !ct__bit(c, 0) || !ct__bit(c, 5))
        return CT_SIMD_GENERIC; /* LAHF/SAHF, LZCNT */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return CT_SIMD_GENERIC;
    if (!ct__bit(b, 3) || !ct__bit(b, 5) || !ct__bit(b, 8)) return CT_SIMD_GENERIC; /* BMI1, AVX2, BMI2 */
    /* AVX-512 F 16, DQ 17, CD 28, BW 30, VL 31; opmask, ZMM0-15 upper
     * halves and ZMM16-31 state (XCR0 bits 5-7). */
    if (ct__bit(b, 16) && ct__bit(b, 17) && ct__bit(b, 28) && ct__bit(b, 30) && ct__bit(b, 31) &&
        (xcr0 & 0xE0) == 0xE0)
        return CT_SIMD_AVX512;
    return CT_SIMD_AVX2;
}
#else
static ct_simd_level ct__detect(void) { return CT_SIMD_GENERIC; }
#endif

static pthread_once_t ct__cpu_once = PTHREAD_ONCE_INIT;
static ct_simd_level ct__cpu_level = CT_SIMD_GENERIC;
static ct_simd_level ct__best = CT_SIMD_GENERIC;

static void ct__cpu_init(void) {
    ct__cpu_level = ct__detect();
    /* The best available table; a native build run on a processor without
     * its level has nothing better to offer than its only table. */
    ct__best = ct__tables[0]->level;
    for (size_t i = 0; i < CT__N_TABLES; i++)
        if (ct__tables[i]->level <= ct__cpu_level && ct__tables[i]->level > ct__best) ct__best = ct__tables[i]->level;
}

bool ct_simd_cpu(ct_simd_level level) {
    pthread_once(&ct__cpu_once, ct__cpu_init);
    return level >= CT_SIMD_GENERIC && level <= ct__cpu_level;
}

bool ct_simd_built(ct_simd_level level) {
    for (size_t i = 0; i < CT__N_TABLES; i++)
        if (ct__tables[i]->level == level) return true;
    return false;
}

bool ct_simd_available(ct_simd_level level) {
    return level == CT_SIMD_AUTO || (ct_simd_built(level) && ct_simd_cpu(level));
}

ct_simd_level ct_simd_best(void) {
    pthread_once(&ct__cpu_once, ct__cpu_init);
    return ct__best;
}

ct_simd_level ct_engine_simd(const ct_engine_opts *o) {
    ct_simd_level want = o ? o->simd : CT_SIMD_AUTO;
    if (want < CT_SIMD_GENERIC || want > CT_SIMD_AVX512) return ct_simd_best();
    for (int l = (int)want; l >= CT_SIMD_GENERIC; l--)
        if (ct_simd_available((ct_simd_level)l)) return (ct_simd_level)l;
    return ct_simd_best();
}

/* ---- the tables --------------------------------------------------------- */

const ct__kernels *ct__kernels_at(ct_simd_level level) {
    for (size_t i = 0; i < CT__N_TABLES; i++)
        if (ct__tables[i]->level == level) return ct__tables[i];
    return ct__kernels_at(ct_simd_best());
}

const ct__kernels *ct__kernels_of(const ct_graph *g) {
    return ct__kernels_at(ct_engine_simd(g ? ct_graph_engine(g) : NULL));
}

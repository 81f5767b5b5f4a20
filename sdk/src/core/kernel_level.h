/* CT__LEVEL_NAME(name): name_<level> in a kernel file, which the build
 * compiles once per SIMD level with CT__SIMD_LEVEL set to the level's name
 * (core/kernels.h says why and which files). Included by the kernel files'
 * headers, before their declarations, only when CT__SIMD_LEVEL is set. */
#ifndef CT_CORE_KERNEL_LEVEL_H
#define CT_CORE_KERNEL_LEVEL_H

#define CT__LEVEL_CAT2(a, b) a##_##b
#define CT__LEVEL_CAT(a, b) CT__LEVEL_CAT2(a, b)
#define CT__LEVEL_NAME(name) CT__LEVEL_CAT(name, CT__SIMD_LEVEL)

#endif

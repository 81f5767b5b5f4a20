/* Philox4x32-10: known-answer vectors, determinism, distribution sanity. */
#include <math.h>
#include <stdlib.h>

#include <contrast/contrast.h>

#include "ct_test.h"

/* Known-answer tests from Random123's kat_vectors (philox4x32_10). */
START_TEST(philox_known_answers) {
    uint32_t out[4];
    ct_philox4x32((const uint32_t[]){0, 0}, (const uint32_t[]){0, 0, 0, 0}, out);
    ck_assert_uint_eq(out[0], 0x6627e8d5u);
    ck_assert_uint_eq(out[1], 0xe169c58du);
    ck_assert_uint_eq(out[2], 0xbc57ac4cu);
    ck_assert_uint_eq(out[3], 0x9b00dbd8u);
    ct_philox4x32((const uint32_t[]){0xffffffffu, 0xffffffffu},
                  (const uint32_t[]){0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, out);
    ck_assert_uint_eq(out[0], 0x408f276du);
    ck_assert_uint_eq(out[1], 0x41c83b0eu);
    ck_assert_uint_eq(out[2], 0xa20bc7c6u);
    ck_assert_uint_eq(out[3], 0x6d5451fdu);
    ct_philox4x32((const uint32_t[]){0xa4093822u, 0x299f31d0u},
                  (const uint32_t[]){0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, out);
    ck_assert_uint_eq(out[0], 0xd16cfe09u);
    ck_assert_uint_eq(out[1], 0x94fdccebu);
    ck_assert_uint_eq(out[2], 0x5001e420u);
    ck_assert_uint_eq(out[3], 0x24126ea1u);
}
END_TEST

START_TEST(streams_are_deterministic_and_distinct) {
    ct_rng a, b, c;
    ct_rng_init(&a, 42, 7);
    ct_rng_init(&b, 42, 7);
    ct_rng_init(&c, 42, 8);
    int same_ac = 0;
    for (int i = 0; i < 1000; i++) {
        uint32_t x = ct_rng_u32(&a), y = ct_rng_u32(&b), z = ct_rng_u32(&c);
        ck_assert_uint_eq(x, y);
        same_ac += x == z;
    }
    ck_assert_int_lt(same_ac, 3);
    /* A copied stream continues identically (value semantics). */
    ct_rng d = a;
    ck_assert_uint_eq(ct_rng_u32(&a), ct_rng_u32(&d));
}
END_TEST

/* Keyed streams: the same (seed, epoch, item, view) gives the same numbers
 * whatever other streams were drawn before; neighbours differ. */
START_TEST(keyed_streams_independent_of_order) {
    ct_rng r1, r2, other;
    ct_rng_init_keyed(&other, 1, 0, 5, 1);
    for (int i = 0; i < 17; i++) ct_rng_u32(&other);
    ct_rng_init_keyed(&r1, 1, 3, 123456, 0);
    ct_rng_init_keyed(&r2, 1, 3, 123456, 0);
    for (int i = 0; i < 100; i++) ck_assert_uint_eq(ct_rng_u32(&r1), ct_rng_u32(&r2));
    uint64_t keys[][3] = {{3, 123456, 1}, {3, 123457, 0}, {4, 123456, 0}, {0, 0, 0}};
    ct_rng_init_keyed(&r1, 1, 3, 123456, 0);
    uint32_t ref = ct_rng_u32(&r1);
    for (int k = 0; k < 4; k++) {
        ct_rng_init_keyed(&r2, 1, keys[k][0], keys[k][1], keys[k][2]);
        ck_assert_uint_ne(ct_rng_u32(&r2), ref);
    }
    ct_rng_init_keyed(&r2, 2, 3, 123456, 0); /* another seed */
    ck_assert_uint_ne(ct_rng_u32(&r2), ref);
}
END_TEST

START_TEST(uniform_and_normal_moments) {
    ct_rng r;
    ct_rng_init(&r, 2024, 0);
    const int n = 200000;
    double su = 0, su2 = 0, sn = 0, sn2 = 0, sn4 = 0;
    for (int i = 0; i < n; i++) {
        float u = ct_rng_uniform(&r);
        ck_assert(u >= 0.0f && u < 1.0f);
        su += u;
        su2 += (double)u * u;
        double z = ct_rng_normal(&r);
        ck_assert(isfinite(z));
        sn += z;
        sn2 += z * z;
        sn4 += z * z * z * z;
    }
    ck_assert_double_eq_tol(su / n, 0.5, 0.005);
    ck_assert_double_eq_tol(su2 / n - (su / n) * (su / n), 1.0 / 12.0, 0.002);
    ck_assert_double_eq_tol(sn / n, 0.0, 0.01);
    ck_assert_double_eq_tol(sn2 / n, 1.0, 0.015);
    ck_assert_double_eq_tol(sn4 / n, 3.0, 0.1); /* kurtosis of a Gaussian */
    for (int i = 0; i < 1000; i++) {
        float x = ct_rng_uniform_range(&r, -2.0f, 3.0f);
        ck_assert(x >= -2.0f && x < 3.0f);
    }
}
END_TEST

START_TEST(below_is_unbiased_and_in_range) {
    ct_rng r;
    ct_rng_init(&r, 9, 9);
    int counts[7] = {0};
    const int n = 70000;
    for (int i = 0; i < n; i++) {
        uint32_t v = ct_rng_below(&r, 7);
        ck_assert_uint_lt(v, 7);
        counts[v]++;
    }
    double chi2 = 0;
    for (int k = 0; k < 7; k++) chi2 += (counts[k] - n / 7.0) * (counts[k] - n / 7.0) / (n / 7.0);
    ck_assert_double_lt(chi2, 22.5); /* p ~ 0.001 for 6 degrees of freedom */
    ck_assert_uint_eq(ct_rng_below(&r, 1), 0);
    int ones = 0;
    for (int i = 0; i < 10000; i++) ones += ct_rng_bernoulli(&r, 0.25f);
    ck_assert_int_gt(ones, 2300);
    ck_assert_int_lt(ones, 2700);
}
END_TEST

START_TEST(shuffle_is_a_permutation) {
    ct_rng r;
    ct_rng_init(&r, 5, 0);
    int64_t idx[100];
    for (int i = 0; i < 100; i++) idx[i] = i;
    ct_rng_shuffle(&r, idx, 100);
    int seen[100] = {0}, fixed = 0;
    for (int i = 0; i < 100; i++) {
        ck_assert(idx[i] >= 0 && idx[i] < 100);
        seen[idx[i]]++;
        fixed += idx[i] == i;
    }
    for (int i = 0; i < 100; i++) ck_assert_int_eq(seen[i], 1);
    ck_assert_int_lt(fixed, 10);
}
END_TEST

int main(void) {
    Suite *s = suite_create("rng");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, philox_known_answers);
    tcase_add_test(tc, streams_are_deterministic_and_distinct);
    tcase_add_test(tc, keyed_streams_independent_of_order);
    tcase_add_test(tc, uniform_and_normal_moments);
    tcase_add_test(tc, below_is_unbiased_and_in_range);
    tcase_add_test(tc, shuffle_is_a_permutation);
    suite_add_tcase(s, tc);
    return ct_test_main(s);
}

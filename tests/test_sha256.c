/* SHA-256 against the FIPS 180-4 / NIST example vectors. */
#include <stdio.h>
#include <string.h>

#include "ct_test.h"
#include "training/sha256.h"

static void expect(const void *data, size_t n, const char *want) {
    char hex[65];
    ct_sha256_hex(data, n, hex);
    ck_assert_str_eq(hex, want);
}

START_TEST(test_empty) {
    expect("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}
END_TEST

START_TEST(test_abc) {
    expect("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
END_TEST

START_TEST(test_two_blocks) {
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    expect(m, strlen(m), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}
END_TEST

START_TEST(test_896_bits) {
    const char *m = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
                    "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    expect(m, strlen(m), "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}
END_TEST

START_TEST(test_million_a_incremental) {
    /* One million 'a' fed in uneven pieces exercises the block buffering. */
    ct_sha256 s;
    char chunk[997];
    memset(chunk, 'a', sizeof chunk);
    ct_sha256_init(&s);
    size_t left = 1000000;
    while (left > 0) {
        size_t n = left < sizeof chunk ? left : sizeof chunk;
        ct_sha256_update(&s, chunk, n);
        left -= n;
    }
    uint8_t d[32];
    ct_sha256_final(&s, d);
    char hex[65];
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
    ck_assert_str_eq(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}
END_TEST

START_TEST(test_length_boundaries) {
    /* 55, 56 and 64 bytes straddle the padding boundary. */
    char m[64];
    memset(m, 'a', sizeof m);
    expect(m, 55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
    expect(m, 56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
    expect(m, 64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}
END_TEST

int main(void) {
    Suite *s = suite_create("sha256");
    TCase *tc = tcase_create("vectors");
    tcase_add_test(tc, test_empty);
    tcase_add_test(tc, test_abc);
    tcase_add_test(tc, test_two_blocks);
    tcase_add_test(tc, test_896_bits);
    tcase_add_test(tc, test_million_a_incremental);
    tcase_add_test(tc, test_length_boundaries);
    suite_add_tcase(s, tc);
    return ct_test_main(s);
}

/*
 * test.h - the unit-test harness used by every tests/test_*.c file.
 *
 * A test file defines cases with TEST(name) { ... } and ends with
 * TEST_MAIN().  Each case prints one line, "PASS <file>:<name>" or
 * "FAIL <file>:<name>: <why>", which tests/run.sh counts.  A failed CHECK
 * ends its case but not the file.  Cases run in the order they are defined.
 */
#ifndef SHARD_TEST_H
#define SHARD_TEST_H

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*test_fn)(void);

struct test_case {
    const char *name;
    test_fn fn;
};

#define TEST_MAX 256
static struct test_case test_cases[TEST_MAX];
static int test_count;
static jmp_buf test_jump;
static char test_why[512];

#define TEST(name)                                                          \
    static void test_##name(void);                                          \
    __attribute__((constructor)) static void test_register_##name(void)     \
    {                                                                       \
        if (test_count < TEST_MAX)                                          \
            test_cases[test_count++] = (struct test_case){#name,           \
                                                          test_##name};     \
    }                                                                       \
    static void test_##name(void)

#define FAILF(...)                                                          \
    do {                                                                    \
        snprintf(test_why, sizeof(test_why), __VA_ARGS__);                  \
        longjmp(test_jump, 1);                                              \
    } while (0)

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond))                                                        \
            FAILF("%s:%d: check failed: %s", __FILE__, __LINE__, #cond);    \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                  \
    do {                                                                    \
        long long test_a_ = (long long)(a), test_b_ = (long long)(b);       \
        if (test_a_ != test_b_)                                             \
            FAILF("%s:%d: %s == %lld, expected %lld", __FILE__, __LINE__,   \
                  #a, test_a_, test_b_);                                    \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                  \
    do {                                                                    \
        const char *test_a_ = (a), *test_b_ = (b);                          \
        if (!test_a_ || !test_b_ || strcmp(test_a_, test_b_) != 0)          \
            FAILF("%s:%d: %s == \"%s\", expected \"%s\"", __FILE__,         \
                  __LINE__, #a, test_a_ ? test_a_ : "(null)",               \
                  test_b_ ? test_b_ : "(null)");                            \
    } while (0)

#define TEST_MAIN()                                                         \
    int main(void)                                                          \
    {                                                                       \
        volatile int failed = 0;                                            \
        for (volatile int i = 0; i < test_count; i++) {                     \
            test_why[0] = '\0';                                             \
            if (setjmp(test_jump) == 0) {                                   \
                test_cases[i].fn();                                         \
                printf("PASS %s:%s\n", __FILE__, test_cases[i].name);       \
            } else {                                                        \
                printf("FAIL %s:%s: %s\n", __FILE__, test_cases[i].name,    \
                       test_why);                                           \
                failed++;                                                   \
            }                                                               \
            fflush(stdout);                                                 \
        }                                                                   \
        return failed ? 1 : 0;                                              \
    }

#endif

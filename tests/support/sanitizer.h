/* UNDER_TSAN and UNDER_ASAN: 1 in a build with ThreadSanitizer or
 * AddressSanitizer (gcc defines __SANITIZE_*__, clang answers
 * __has_feature), else 0. For the few checks a sanitizer's runtime makes
 * impossible; each use says why next to it. */
#ifndef HS_TESTS_SUPPORT_SANITIZER_H
#define HS_TESTS_SUPPORT_SANITIZER_H

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

#endif

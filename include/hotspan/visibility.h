/* hotspan — symbol export macro. The library is built with
 * -fvisibility=hidden; only declarations marked HOTSPAN_API are exported. */
#ifndef HOTSPAN_VISIBILITY_H
#define HOTSPAN_VISIBILITY_H

#if defined(__GNUC__) || defined(__clang__)
#define HOTSPAN_API __attribute__((visibility("default")))
#else
#define HOTSPAN_API
#endif

#endif /* HOTSPAN_VISIBILITY_H */

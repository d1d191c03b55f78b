/* Who this process is: the one place the tracer, the profiler and the
 * exporters ask for the service, env, version, global tags, runtime id
 * and pid they report.
 *
 * Resolution (hs_identity_resolve): values given in code win, then
 * HOTSPAN_*, then DD_* / OTEL_*, then the program's name as service; tags
 * from OTEL_RESOURCE_ATTRIBUTES < DD_TAGS < HOTSPAN_TAGS < code (later
 * ones overwrite). Every variable is listed in docs/configuration.md.
 *
 * The process identity (hs_identity_current) is the one the first tracer
 * of the process published (hotspan_tracer_new, with what its
 * hotspan_config set in code); it stays after that tracer is freed. Until
 * a tracer publishes one, it is resolved from the environment alone. The
 * runtime id (a UUID v4) belongs to the process: traces and profiles carry
 * the same one, and a forked child gets a new one. */
#ifndef HS_CONTEXT_IDENTITY_H
#define HS_CONTEXT_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

typedef struct hs_kv {
  char *key;
  char *value;
} hs_kv;

typedef struct hs_identity {
  char *service; /* never NULL once resolved */
  char *env;     /* NULL: none */
  char *version; /* NULL: none */
  hs_kv *tags;
  size_t ntags;
} hs_identity;

/* What a program set in code; NULL: not set. tags is in DD_TAGS form
 * ("k1:v1,k2:v2"). */
typedef struct hs_identity_code {
  const char *service;
  const char *env;
  const char *version;
  const char *tags;
} hs_identity_code;

#define HS_IDENTITY_MAX_TAGS 128

/* Resolves an identity from code (may be NULL) and, when use_env, the
 * environment. Bad entries in tag lists are logged and skipped. Returns
 * HOTSPAN_OK or HOTSPAN_ENOMEM (out is then empty). */
int hs_identity_resolve(const hs_identity_code *code, int use_env,
                        hs_identity *out);
void hs_identity_free(hs_identity *id);

/* Makes id (copied) the process identity unless one was published
 * already. Returns 1 if id became it, 0 if not, -1 out of memory. */
int hs_identity_publish(const hs_identity *id);
/* A copy of the process identity; when none was published, one resolved
 * from the environment (use_env) or from defaults. HOTSPAN_OK or
 * HOTSPAN_ENOMEM. Thread-safe. */
int hs_identity_current(int use_env, hs_identity *out);

/* The process's runtime id, 36 characters and a NUL. Thread-safe. */
void hs_identity_runtime_id(char out[37]);

/* getpid() without a system call each time: cached, and read again in a
 * forked child. Thread-safe. */
int64_t hs_process_id(void);

/* The host name (gethostname), "" if unknown. Thread-safe. */
void hs_identity_host(char *out, size_t cap);

#endif

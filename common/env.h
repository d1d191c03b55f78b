/* Environment lookups used by configuration. Values that are empty count
 * as unset. Not async-signal-safe; call at start-up. */
#ifndef HS_COMMON_ENV_H
#define HS_COMMON_ENV_H

#include <stdint.h>

/* Value of name, or NULL if unset or empty. */
const char *hs_env_get(const char *name);

/* First set variable among names (NULL-terminated list); stores which one
 * in *which if non-NULL. */
const char *hs_env_first(const char *const *names, const char **which);

/* Parsers: return 0 and store on success, 1 if unset, -1 if set but
 * invalid (then *out is untouched and a warning is logged naming the
 * variable). Booleans accept true/false/1/0/yes/no/on/off. */
int hs_env_bool(const char *name, int *out);
int hs_env_double(const char *name, double *out);
int hs_env_u64(const char *name, uint64_t *out);

/* String parsers behind the env ones (no logging); 0 ok, -1 invalid. */
int hs_parse_bool(const char *s, int *out);
int hs_parse_double(const char *s, double *out);
int hs_parse_u64(const char *s, uint64_t *out);

#endif

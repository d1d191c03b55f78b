/* Environment lookups used by configuration. Values that are empty count
 * as unset. Not async-signal-safe; call at start-up. */
#ifndef HS_COMMON_ENV_H
#define HS_COMMON_ENV_H

#include <stddef.h>
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

/* Like hs_env_u64 / hs_env_double, and a value outside [lo, hi] is
 * ignored too, with a warning naming the variable and the range (return
 * -1). */
int hs_env_u64_in(const char *name, uint64_t lo, uint64_t hi, uint64_t *out);
int hs_env_double_in(const char *name, double lo, double hi, double *out);

/* A name of a list and the bits it stands for. */
typedef struct hs_name_bits {
  const char *name;
  unsigned bits;
} hs_name_bits;

/* The one list parser of the configuration (exporter lists, ...): names
 * separated by commas and/or blanks, compared without case against table
 * (ended by a NULL name); "none" stands for no bits. Sets *out to the OR
 * of the known names, also when one is unknown. Returns the number of
 * names read, or -1 if one is unknown (the first, up to 64 bytes, is then
 * copied to bad when badlen > 0). */
int hs_parse_name_list(const char *list, const hs_name_bits *table,
                       unsigned *out, char *bad, size_t badlen);

/* String parsers behind the env ones (no logging); 0 ok, -1 invalid. */
int hs_parse_bool(const char *s, int *out);
int hs_parse_double(const char *s, double *out);
int hs_parse_u64(const char *s, uint64_t *out);

#endif

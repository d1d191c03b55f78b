/* multipart/form-data (RFC 7578) splitting, enough for profile uploads:
 * the boundary from the Content-Type, and per part the Content-Disposition
 * name and filename, the Content-Type and the raw bytes. Parts are not
 * decoded (no Content-Transfer-Encoding). Thread-safe. */
#ifndef HS_AGENT_MULTIPART_H
#define HS_AGENT_MULTIPART_H

#include <stddef.h>
#include <stdint.h>

#include "agent/ingest.h"

typedef struct hs_agent_part {
  const char *name;         /* Content-Disposition name, never NULL */
  const char *filename;     /* or NULL */
  const char *content_type; /* or NULL */
  const uint8_t *data;      /* points into the body */
  size_t len;
} hs_agent_part;

#define HS_AGENT_MAX_PARTS 64

/* Nonzero if content_type is multipart/form-data (any parameters). */
int hs_agent_is_multipart(const char *content_type);

/* Splits body into parts (array and strings in arena a; data points into
 * body). Returns HS_AGENT_OK or HS_AGENT_EINVAL with a message (no
 * boundary, no opening or closing delimiter, a part without headers end
 * or without a name, more than HS_AGENT_MAX_PARTS parts), or the arena's
 * error. */
int hs_agent_multipart_parse(const char *content_type, const uint8_t *body,
                             size_t len, hs_agent_arena *a,
                             hs_agent_part **parts, size_t *nparts, char *err,
                             size_t errlen);

/* The first part whose name equals name, or NULL. */
const hs_agent_part *hs_agent_part_find(const hs_agent_part *parts, size_t n,
                                        const char *name);

#endif

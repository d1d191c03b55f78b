/* Profiles that say who made them: the process identity
 * (context/identity.h) as pprof comments (profiler/profile.h). */
#include <stdio.h>
#include <stdlib.h>

#include "context/identity.h"
#include "hotspan/error.h"
#include "profiler/profile.h"
#include "wire/pprof_labels.h"

int hs_profile_encode_identified(hs_profile *p, hs_symbolizer *sym,
                                 uint64_t end_unix_ns, hs_buf *out) {
  hs_identity id;
  if (hs_identity_current(1, &id) != HOTSPAN_OK)
    return hs_profile_encode(p, sym, end_unix_ns, out); /* out of memory */
  char rid[37];
  hs_identity_runtime_id(rid);
  char *c[4] = {NULL, NULL, NULL, NULL};
  int oom = asprintf(&c[0], HS_PPROF_COMMENT_SERVICE "%s", id.service) < 0;
  if (id.env != NULL)
    oom |= asprintf(&c[1], HS_PPROF_COMMENT_ENV "%s", id.env) < 0;
  if (id.version != NULL)
    oom |= asprintf(&c[2], HS_PPROF_COMMENT_VERSION "%s", id.version) < 0;
  oom |= asprintf(&c[3], HS_PPROF_COMMENT_RUNTIME_ID "%s", rid) < 0;
  hs_identity_free(&id);
  int rc = HOTSPAN_ENOMEM;
  if (!oom)
    rc = hs_profile_encode_with(p, sym, end_unix_ns, (const char *const *)c, 4,
                                out);
  for (int i = 0; i < 4; i++)
    free(c[i]);
  return rc;
}

/* A tag of a profile upload (service, env, user tags...), shared by the
 * Datadog and Pyroscope request builders. Borrowed strings. */
#ifndef HS_EXPORTER_PROFILE_TAGS_H
#define HS_EXPORTER_PROFILE_TAGS_H

typedef struct hs_profile_tag {
  const char *key;
  const char *value;
} hs_profile_tag;

#endif

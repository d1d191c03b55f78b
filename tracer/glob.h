/* Datadog's glob patterns, as sampling rules use them (service, name,
 * resource): '*' matches any run of characters (also none), '?' exactly
 * one UTF-8 character, everything else itself, ASCII letters without
 * regard to case. No escapes. */
#ifndef HS_TRACER_GLOB_H
#define HS_TRACER_GLOB_H

/* 1 if subject matches pattern. O(|pattern| * |subject|) at worst, no
 * recursion. */
int hs_glob_match(const char *pattern, const char *subject);

/* A rule field: a NULL pattern is unconstrained; a NULL subject (the span
 * has no such value) is matched only by a pattern of stars. */
int hs_glob_field_matches(const char *pattern, const char *subject);

#endif

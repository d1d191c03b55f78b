#include "support/pprof_read.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

void pr_free(pr_set *set) {
  for (size_t i = 0; i < set->n; i++)
    free(set->s[i].fns);
  for (size_t i = 0; i < set->nmsgs; i++)
    perftools__profiles__profile__free_unpacked(set->msgs[i], NULL);
  free(set->s);
  free(set->msgs);
  memset(set, 0, sizeof *set);
}

static int pr_gunzip(const char *path, uint8_t **out, size_t *len) {
  FILE *f = fopen(path, "rb");
  unsigned char magic[2] = {0, 0};
  if (f == NULL || fread(magic, 1, 2, f) != 2 || magic[0] != 0x1f ||
      magic[1] != 0x8b) {
    fprintf(stderr, "pprof_read: %s: not a gzip file\n", path);
    if (f != NULL)
      fclose(f);
    return -1;
  }
  fclose(f);
  gzFile gz = gzopen(path, "rb");
  if (gz == NULL)
    return -1;
  size_t cap = 1 << 16, n = 0;
  uint8_t *buf = malloc(cap);
  int r = 0;
  while (buf != NULL) {
    if (n == cap) {
      uint8_t *nb = realloc(buf, cap * 2);
      if (nb == NULL) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = nb;
      cap *= 2;
    }
    r = gzread(gz, buf + n, (unsigned)(cap - n));
    if (r <= 0)
      break;
    n += (size_t)r;
  }
  int closed = gzclose(gz);
  if (buf == NULL || r < 0 || closed != Z_OK) {
    fprintf(stderr, "pprof_read: %s: truncated or corrupt gzip\n", path);
    free(buf);
    return -1;
  }
  *out = buf;
  *len = n;
  return 0;
}

static const char *pr_str(const Perftools__Profiles__Profile *p, int64_t i) {
  return i >= 0 && (size_t)i < p->n_string_table ? p->string_table[i] : NULL;
}

static const Perftools__Profiles__Location *
pr_location(const Perftools__Profiles__Profile *p, uint64_t id) {
  /* hotspan numbers locations 1..n in order; fall back to a scan. */
  if (id >= 1 && id <= p->n_location && p->location[id - 1]->id == id)
    return p->location[id - 1];
  for (size_t i = 0; i < p->n_location; i++)
    if (p->location[i]->id == id)
      return p->location[i];
  return NULL;
}

static const Perftools__Profiles__Function *
pr_function(const Perftools__Profiles__Profile *p, uint64_t id) {
  if (id >= 1 && id <= p->n_function && p->function[id - 1]->id == id)
    return p->function[id - 1];
  for (size_t i = 0; i < p->n_function; i++)
    if (p->function[i]->id == id)
      return p->function[i];
  return NULL;
}

static int pr_add_profile(pr_set *set, Perftools__Profiles__Profile *p,
                          const char *path) {
  for (size_t i = 0; i < p->n_sample; i++) {
    const Perftools__Profiles__Sample *ps = p->sample[i];
    if (ps->n_value != 2) {
      fprintf(stderr, "pprof_read: %s: sample with %zu values\n", path,
              ps->n_value);
      return -1;
    }
    if (set->n == set->cap) {
      size_t cap = set->cap ? set->cap * 2 : 1024;
      pr_sample *ns = realloc(set->s, cap * sizeof *ns);
      if (ns == NULL)
        return -1;
      set->s = ns;
      set->cap = cap;
    }
    pr_sample *s = &set->s[set->n];
    memset(s, 0, sizeof *s);
    s->count = ps->value[0];
    s->nanos = ps->value[1];
    size_t nfns = 0;
    for (size_t k = 0; k < ps->n_location_id; k++) {
      const Perftools__Profiles__Location *loc =
          pr_location(p, ps->location_id[k]);
      if (loc == NULL) {
        fprintf(stderr, "pprof_read: %s: unknown location id\n", path);
        return -1;
      }
      nfns += loc->n_line;
    }
    s->fns = calloc(nfns ? nfns : 1, sizeof *s->fns);
    if (s->fns == NULL)
      return -1;
    set->n++; /* from here on pr_free releases s->fns */
    for (size_t k = 0; k < ps->n_location_id; k++) {
      const Perftools__Profiles__Location *loc =
          pr_location(p, ps->location_id[k]);
      for (size_t l = 0; l < loc->n_line; l++) {
        const Perftools__Profiles__Function *fn =
            pr_function(p, loc->line[l]->function_id);
        const char *name = fn ? pr_str(p, fn->name) : NULL;
        if (name == NULL) {
          fprintf(stderr, "pprof_read: %s: bad function reference\n", path);
          return -1;
        }
        s->fns[s->nfns++] = name;
      }
    }
    int seen[7] = {0};
    for (size_t k = 0; k < ps->n_label; k++) {
      const Perftools__Profiles__Label *lb = ps->label[k];
      const char *key = pr_str(p, lb->key);
      const char *str = pr_str(p, lb->str);
      if (key == NULL || str == NULL) {
        fprintf(stderr, "pprof_read: %s: bad label string index\n", path);
        return -1;
      }
      int which = -1;
      if (strcmp(key, "span id") == 0) {
        which = 0;
        s->has_span = 1;
        s->span_id = (uint64_t)lb->num;
      } else if (strcmp(key, "local root span id") == 0) {
        which = 1;
        s->has_root = 1;
        s->root_id = (uint64_t)lb->num;
      } else if (strcmp(key, "thread id") == 0) {
        which = 2;
        s->has_tid = 1;
        s->tid = lb->num;
      } else if (strcmp(key, "trace endpoint") == 0) {
        which = 3;
        s->endpoint = str;
      } else if (strcmp(key, "span_id") == 0) {
        which = 4;
        s->span_hex = str;
      } else if (strcmp(key, "trace_id") == 0) {
        which = 5;
        s->trace_hex = str;
      } else if (strcmp(key, "thread name") == 0) {
        which = 6;
      }
      if (which >= 0 && seen[which]++)
        s->dup_labels++;
    }
  }
  return 0;
}

int pr_load_dir(pr_set *set, const char *dir, const char *type) {
  char prefix[64];
  snprintf(prefix, sizeof prefix, "hotspan.%s.", type);
  DIR *d = opendir(dir);
  if (d == NULL)
    return -1;
  int files = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t len = strlen(e->d_name);
    if (strncmp(e->d_name, prefix, strlen(prefix)) != 0 || len < 6 ||
        strcmp(e->d_name + len - 6, ".pb.gz") != 0)
      continue;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    uint8_t *raw;
    size_t n;
    if (pr_gunzip(path, &raw, &n) != 0) {
      files = -1;
      break;
    }
    Perftools__Profiles__Profile *p =
        perftools__profiles__profile__unpack(NULL, n, raw);
    free(raw);
    if (p == NULL) {
      fprintf(stderr, "pprof_read: %s: not a pprof message\n", path);
      files = -1;
      break;
    }
    Perftools__Profiles__Profile **nm =
        realloc(set->msgs, (set->nmsgs + 1) * sizeof *nm);
    if (nm == NULL) {
      perftools__profiles__profile__free_unpacked(p, NULL);
      files = -1;
      break;
    }
    set->msgs = nm;
    set->msgs[set->nmsgs++] = p;
    if (pr_add_profile(set, p, path) != 0) {
      files = -1;
      break;
    }
    files++;
  }
  closedir(d);
  return files;
}

int pr_has_fn(const pr_sample *s, const char *fn) {
  size_t len = strlen(fn);
  for (size_t i = 0; i < s->nfns; i++)
    if (strncmp(s->fns[i], fn, len) == 0 &&
        (s->fns[i][len] == '\0' || s->fns[i][len] == '.'))
      return 1;
  return 0;
}

void pr_stack_str(const pr_sample *s, char *out, size_t cap) {
  size_t at = 0;
  out[0] = '\0';
  for (size_t i = 0; i < s->nfns && at + 1 < cap; i++) {
    int w = snprintf(out + at, cap - at, "%s%s", i ? ";" : "", s->fns[i]);
    if (w < 0)
      break;
    at += (size_t)w;
  }
}

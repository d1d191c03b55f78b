/* hotspan — command line tool.
 *
 *   hotspan run [--output DIR] [--hz N] [--wall-hz N] [--] PROGRAM [ARGS...]
 *   hotspan traces | trace | hotspots | endpoints | profile | diff |
 *           versions ...
 *
 * The query commands ask hotspan-agent's JSON API, or read a store file
 * with --db; they live in cmd_query.c (docs/cli.md).
 *
 * `run` profiles a program that knows nothing of hotspan: it sets
 * LD_PRELOAD to libhotspan.so and the HOTSPAN_* variables the library reads
 * at start (see docs/profiling.md), then replaces itself with the program.
 * The library is HOTSPAN_LIBRARY if set, else found next to this binary:
 * ../lib*(/<multiarch>)/libhotspan.so of an installation, or the build tree
 * (../libhotspan.so from cli/).
 *
 * Exit status: the program's own; 2 for usage errors; 127 if the program
 * or the library cannot be found, 126 if the program cannot be run. */
#include <errno.h>
#include <glob.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/clock.h"
#include "hotspan/version.h"

#define EXIT_USAGE 2
#define EXIT_NOT_FOUND 127
#define EXIT_CANNOT_RUN 126
#define DEFAULT_OUTPUT "hotspan-profiles"

static void usage(FILE *f) {
  fprintf(f, "usage: hotspan run [--output DIR] [--hz N] [--wall-hz N] [--] "
             "PROGRAM [ARGS...]\n"
             "       hotspan --help | --version\n");
  hs_cli_query_usage(f);
  fprintf(f,
          "\n"
          "run      Profile PROGRAM (CPU and wall time, every thread) and "
          "write\n"
          "         gzip-compressed pprof files to DIR when it exits (and "
          "every\n"
          "         HOTSPAN_PROFILING_UPLOAD_PERIOD seconds while it runs).\n"
          "  --output DIR   where profiles go (default: $HOTSPAN_OUTPUT_DIR, "
          "else\n"
          "                 ./" DEFAULT_OUTPUT ")\n"
          "  --hz N         CPU samples per second of CPU time per thread, "
          "1..1000\n"
          "                 (default 99)\n"
          "  --wall-hz N    wall-clock samples per second per thread, "
          "1..1000\n"
          "                 (default 19)\n"
          "\n"
          "Other settings are read from the environment; see "
          "docs/profiling.md.\n"
          "HOTSPAN_LIBRARY overrides where libhotspan.so is taken from.\n"
          "\n"
          "traces, trace, hotspots, endpoints, profile, diff, versions: ask "
          "hotspan-agent\n"
          "         (--agent URL) or read its store file (--db PATH); "
          "'hotspan CMD\n"
          "         --help' describes each. Exit status: 0 ok, 1 not found "
          "or empty,\n"
          "         2 usage error, 3 agent unreachable or store error.\n");
}

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt,
                                                             ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "hotspan: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\nTry 'hotspan --help'.\n");
  va_end(ap);
  return EXIT_USAGE;
}

/* A rate in 1..1000, as the library accepts it. */
static int valid_hz(const char *s) {
  char *end = NULL;
  errno = 0;
  double v = strtod(s, &end);
  return end != s && *end == '\0' && errno == 0 && v >= 1.0 && v <= 1000.0;
}

static int readable_file(const char *path) {
  return access(path, R_OK) == 0;
}

/* Finds libhotspan.so; writes its absolute path into out. */
static int find_library(char *out, size_t n) {
  const char *env = getenv("HOTSPAN_LIBRARY");
  if (env != NULL && *env != '\0') {
    if (!readable_file(env)) {
      fprintf(stderr, "hotspan: HOTSPAN_LIBRARY=%s: %s\n", env,
              strerror(errno));
      return -1;
    }
    if (realpath(env, out) == NULL)
      snprintf(out, n, "%s", env);
    return 0;
  }
  char self[PATH_MAX];
  ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
  if (len <= 0) {
    fprintf(stderr, "hotspan: cannot find this program's location\n");
    return -1;
  }
  self[len] = '\0';
  char *dir = dirname(self);
  static const char *const suffixes[] = {
      "/../lib/libhotspan.so",   "/../lib64/libhotspan.so",
      "/../lib/*/libhotspan.so", "/../libhotspan.so",
      "/libhotspan.so",
  };
  for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
    char pat[PATH_MAX + 64];
    snprintf(pat, sizeof pat, "%s%s", dir, suffixes[i]);
    glob_t g;
    if (glob(pat, 0, NULL, &g) == 0) {
      for (size_t k = 0; k < g.gl_pathc; k++)
        if (readable_file(g.gl_pathv[k]) && realpath(g.gl_pathv[k], out)) {
          globfree(&g);
          return 0;
        }
      globfree(&g);
    }
  }
  fprintf(stderr,
          "hotspan: cannot find libhotspan.so next to %s; set "
          "HOTSPAN_LIBRARY\n",
          dir);
  return -1;
}

static int cmd_run(int argc, char **argv) {
  const char *output = NULL, *hz = NULL, *wall_hz = NULL;
  int i = 0;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    }
    if (a[0] != '-')
      break;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      return 0;
    }
    const char **dst = strcmp(a, "--output") == 0    ? &output
                       : strcmp(a, "--hz") == 0      ? &hz
                       : strcmp(a, "--wall-hz") == 0 ? &wall_hz
                                                     : NULL;
    if (dst == NULL)
      return usage_error("run: unknown option '%s'", a);
    if (i + 1 >= argc)
      return usage_error("run: option '%s' needs a value", a);
    *dst = argv[++i];
  }
  if (i >= argc)
    return usage_error("run: no program given");
  if (hz != NULL && !valid_hz(hz))
    return usage_error("run: --hz '%s': not a number in 1..1000", hz);
  if (wall_hz != NULL && !valid_hz(wall_hz))
    return usage_error("run: --wall-hz '%s': not a number in 1..1000", wall_hz);
  if (output != NULL && *output == '\0')
    return usage_error("run: --output needs a directory");

  char lib[PATH_MAX];
  if (find_library(lib, sizeof lib) != 0)
    return EXIT_NOT_FOUND;

  /* Ours first, so that our pthread_create is found before libc's. */
  const char *old = getenv("LD_PRELOAD");
  size_t plen = strlen(lib) + (old ? strlen(old) : 0) + 2;
  char *preload = malloc(plen);
  if (preload == NULL)
    return EXIT_CANNOT_RUN;
  snprintf(preload, plen, "%s%s%s", lib, old && *old ? ":" : "",
           old ? old : "");
  if (output == NULL) {
    const char *env = getenv("HOTSPAN_OUTPUT_DIR");
    output = env != NULL && *env != '\0' ? env : DEFAULT_OUTPUT;
  }
  if (setenv("LD_PRELOAD", preload, 1) != 0 ||
      setenv("HOTSPAN_PROFILING_ENABLED", "true", 1) != 0 ||
      setenv("HOTSPAN_OUTPUT_DIR", output, 1) != 0 ||
      (hz != NULL && setenv("HOTSPAN_PROFILING_CPU_HZ", hz, 1) != 0) ||
      (wall_hz != NULL &&
       setenv("HOTSPAN_PROFILING_WALL_HZ", wall_hz, 1) != 0)) {
    fprintf(stderr, "hotspan: cannot set the environment: %s\n",
            strerror(errno));
    free(preload);
    return EXIT_CANNOT_RUN;
  }
  free(preload);
  execvp(argv[i], argv + i);
  int e = errno;
  fprintf(stderr, "hotspan: cannot run %s: %s\n", argv[i], strerror(e));
  return e == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_RUN;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return EXIT_USAGE;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 ||
      strcmp(cmd, "help") == 0) {
    usage(stdout);
    return 0;
  }
  if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
    printf("hotspan %s\n", HOTSPAN_VERSION_STRING);
    return 0;
  }
  if (strcmp(cmd, "run") == 0)
    return cmd_run(argc - 2, argv + 2);
  if (hs_cli_is_query_command(cmd))
    return hs_cli_query_main(argc - 1, argv + 1, (int64_t)hs_now_unix_ns(),
                             stdout, stderr);
  return usage_error("unknown command '%s'", cmd);
}

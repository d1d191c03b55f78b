/* Profile files written for HOTSPAN_OUTPUT_DIR: names, atomic appearance,
 * no overwrite, bad arguments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "exporter/pprof_file.h"
#include "hotspan/error.h"
#include "profiler/profile.h"

/* 2025-03-14T09:26:53.5Z */
#define START (1741944413ull * 1000000000ull + 500000000ull)
#define END (START + 60ull * 1000000000ull)

static char dir[] = "/tmp/hs_pprof_fileXXXXXX";

static int setup(void **state) {
  (void)state;
  return mkdtemp(dir) ? 0 : -1;
}

static int count_entries(void) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  int n = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL)
    if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
      n++;
  closedir(d);
  return n;
}

static int teardown(void **state) {
  (void)state;
  DIR *d = opendir(dir);
  struct dirent *de;
  char p[512];
  while (d && (de = readdir(d)) != NULL) {
    snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
    unlink(p);
  }
  if (d)
    closedir(d);
  rmdir(dir);
  return 0;
}

static void read_back(const char *path, hs_buf *b) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  char tmp[4096];
  size_t n;
  while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
    hs_buf_append(b, tmp, n);
  fclose(f);
}

static void test_write_name_content_mtime(void **state) {
  (void)state;
  hs_buf data;
  hs_buf_init(&data, 0);
  for (int i = 0; i < 10000; i++)
    hs_buf_putc(&data, (char)(i * 31));
  char *path = NULL;
  assert_int_equal(
      hs_pprof_write_file(dir, "svc", HS_PROFILE_CPU, START, END, &data, &path),
      HOTSPAN_OK);
  assert_non_null(path);
  char want[512];
  snprintf(want, sizeof want, "%s/svc.cpu.20250314T092653Z.pb.gz", dir);
  assert_string_equal(path, want);
  hs_buf back;
  hs_buf_init(&back, 0);
  read_back(path, &back);
  assert_int_equal(back.len, data.len);
  assert_memory_equal(back.data, data.data, data.len);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mtim.tv_sec, (time_t)(END / 1000000000ull));
  /* Nothing but the file: the temporary name is gone. */
  assert_int_equal(count_entries(), 1);
  free(path);
  hs_buf_free(&back);

  /* Same period and type again: a new name, the first file untouched. */
  hs_buf other;
  hs_buf_init(&other, 0);
  hs_buf_puts(&other, "second");
  assert_int_equal(hs_pprof_write_file(dir, "svc", HS_PROFILE_CPU, START, END,
                                       &other, &path),
                   HOTSPAN_OK);
  snprintf(want, sizeof want, "%s/svc.cpu.20250314T092653Z-1.pb.gz", dir);
  assert_string_equal(path, want);
  free(path);
  snprintf(want, sizeof want, "%s/svc.cpu.20250314T092653Z.pb.gz", dir);
  hs_buf_init(&back, 0);
  read_back(want, &back);
  assert_int_equal(back.len, data.len);
  hs_buf_free(&back);

  /* The wall profile of the same period, default prefix, no path out. */
  assert_int_equal(
      hs_pprof_write_file(dir, NULL, HS_PROFILE_WALL, START, END, &other, NULL),
      HOTSPAN_OK);
  snprintf(want, sizeof want, "%s/hotspan.wall.20250314T092653Z.pb.gz", dir);
  assert_int_equal(access(want, R_OK), 0);
  assert_int_equal(count_entries(), 3);

  /* An empty profile is still a file (e.g. a period with no samples is
   * encoded, never empty, but the writer does not judge). */
  hs_buf empty;
  hs_buf_init(&empty, 0);
  assert_int_equal(hs_pprof_write_file(dir, "empty", HS_PROFILE_CPU, START, END,
                                       &empty, &path),
                   HOTSPAN_OK);
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_size, 0);
  free(path);
  hs_buf_free(&data);
  hs_buf_free(&other);
}

static void test_bad_arguments(void **state) {
  (void)state;
  hs_buf data;
  hs_buf_init(&data, 0);
  hs_buf_puts(&data, "x");
  char *path = (char *)"untouched";
  int before = count_entries();
  assert_int_equal(
      hs_pprof_write_file(NULL, "p", HS_PROFILE_CPU, START, END, &data, &path),
      HOTSPAN_EINVAL);
  assert_null(path);
  assert_int_equal(
      hs_pprof_write_file("", "p", HS_PROFILE_CPU, START, END, &data, &path),
      HOTSPAN_EINVAL);
  assert_int_equal(
      hs_pprof_write_file(dir, "a/b", HS_PROFILE_CPU, START, END, &data, &path),
      HOTSPAN_EINVAL);
  assert_int_equal(hs_pprof_write_file(dir, "p", 0, START, END, &data, &path),
                   HOTSPAN_EINVAL);
  assert_int_equal(
      hs_pprof_write_file(dir, "p", HS_PROFILE_CPU, START, END, NULL, &path),
      HOTSPAN_EINVAL);
  /* A directory that does not exist: an I/O error, nothing written. */
  char missing[600];
  snprintf(missing, sizeof missing, "%s/no/such/dir", dir);
  assert_int_equal(hs_pprof_write_file(missing, "p", HS_PROFILE_CPU, START, END,
                                       &data, &path),
                   HOTSPAN_EIO);
  assert_null(path);
  /* A name longer than any path: rejected, nothing left behind. */
  char longp[5000];
  memset(longp, 'x', sizeof longp - 1);
  longp[sizeof longp - 1] = '\0';
  assert_int_equal(
      hs_pprof_write_file(dir, longp, HS_PROFILE_CPU, START, END, &data, &path),
      HOTSPAN_EINVAL);
  assert_int_equal(count_entries(), before);
  hs_buf_free(&data);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_write_name_content_mtime),
      cmocka_unit_test(test_bad_arguments),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}

/* A program using an installed hotspan the way a user would: only the
 * public umbrella header, linked through pkg-config or find_package.
 * Exit status 0 means every call behaved as documented. */
#include <hotspan/hotspan.h>
#include <stdio.h>
#include <string.h>

int main(void) {
  const char *version = hotspan_version();
  printf("hotspan %s\n", version);
  /* The header and the library come from the same installation. */
  if (version == NULL || strcmp(version, HOTSPAN_VERSION_STRING) != 0) {
    fprintf(stderr, "library version %s != header version %s\n",
            version ? version : "(null)", HOTSPAN_VERSION_STRING);
    return 1;
  }

  hotspan_config cfg;
  hotspan_config_init(&cfg);
  cfg.service = "install-consumer";
  cfg.ignore_environment = 1;
  hotspan_tracer *tracer = NULL;
  int rc = hotspan_tracer_new(&cfg, &tracer);
  if (rc != HOTSPAN_OK || tracer == NULL) {
    fprintf(stderr, "hotspan_tracer_new: %s\n", hotspan_strerror(rc));
    return 1;
  }

  hotspan_span *span = hotspan_span_start(tracer, "consumer.run", NULL);
  if (span == NULL || hotspan_span_id(span) == 0 ||
      hotspan_span_trace_id_low(span) == 0) {
    fprintf(stderr, "hotspan_span_start gave no usable span\n");
    hotspan_tracer_free(tracer);
    return 1;
  }
  rc = hotspan_span_set_tag_str(span, "consumer", "yes");
  if (rc != HOTSPAN_OK) {
    fprintf(stderr, "hotspan_span_set_tag_str: %s\n", hotspan_strerror(rc));
    hotspan_tracer_free(tracer);
    return 1;
  }
  hotspan_span_finish(span);
  hotspan_tracer_free(tracer);
  printf("span created and finished\n");
  return 0;
}

/* Writes one trace whose names, resource and tags hold the strings that
 * break naive JSON writers (quotes, backslashes, control characters,
 * invalid UTF-8, multi-byte UTF-8) into DIR/traces.jsonl, using only the
 * public API. tests/scripts/test_file_sink.sh checks the result with
 * Python's json module. Usage: file_sink_writer DIR */
#include <stdio.h>

#include "hotspan/hotspan.h"

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  hotspan_config cfg;
  hotspan_config_init(&cfg);
  cfg.ignore_environment = 1;
  cfg.log_level = 1;
  cfg.service = "svc \"quoted\"";
  cfg.env = "test";
  cfg.tags = "team:core";
  cfg.output_dir = argv[1];
  hotspan_tracer *t = NULL;
  if (hotspan_tracer_new(&cfg, &t) != HOTSPAN_OK)
    return 1;
  hotspan_span_options o;
  hotspan_span_options_init(&o);
  o.activate = 1;
  o.kind = HOTSPAN_KIND_SERVER;
  hotspan_span *root = hotspan_span_start(t, "root\n\"name\"", &o);
  hotspan_span_set_resource(root, "GET /caf\xc3\xa9/\xf0\x9f\x94\xa5");
  hotspan_span_set_tag_str(root, "bad.utf8",
                           "a\xff\xfe"
                           "b\xc3");
  hotspan_span_set_tag_str(root, "ctrl", "tab\there\x01\x1f end\\");
  hotspan_span_set_tag_int(root, "int.min", -9223372036854775807LL - 1);
  hotspan_span_set_tag_double(root, "pi", 3.141592653589793);
  hotspan_span_set_tag_double(root, "nan", 0.0 / 0.0);
  hotspan_span_set_tag_bool(root, "flag", 1);
  hotspan_span *child = hotspan_span_start(t, "child", NULL);
  hotspan_span_set_error(child, "Err\"Type", "line1\nline2", "frame \\ 1");
  hotspan_span_finish(child);
  hotspan_span_finish(root);
  hotspan_tracer_free(t);
  return 0;
}

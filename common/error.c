#include "hotspan/error.h"
#include "hotspan/version.h"

const char *hotspan_strerror(int status) {
  switch (status) {
  case HOTSPAN_OK:
    return "success";
#define HS_XX(name, value, msg)                                                \
  case HOTSPAN_##name:                                                         \
    return msg;
    HOTSPAN_ERRNO_MAP(HS_XX)
#undef HS_XX
  default:
    return "unknown error";
  }
}

const char *hotspan_err_name(int status) {
  switch (status) {
  case HOTSPAN_OK:
    return "HOTSPAN_OK";
#define HS_XX(name, value, msg)                                                \
  case HOTSPAN_##name:                                                         \
    return "HOTSPAN_" #name;
    HOTSPAN_ERRNO_MAP(HS_XX)
#undef HS_XX
  default:
    return "HOTSPAN_UNKNOWN";
  }
}

const char *hotspan_version(void) {
  return HOTSPAN_VERSION_STRING;
}

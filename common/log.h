/* The library's one logger. Writes single lines to stderr (never stdout),
 * prefixed "hotspan <level>: ". Level from HOTSPAN_LOG_LEVEL
 * (error|warn|info|debug|off), or debug when DD_TRACE_DEBUG is true;
 * default info. Thread-safe (one write(2) per line); not
 * async-signal-safe. */
#ifndef HS_COMMON_LOG_H
#define HS_COMMON_LOG_H

enum {
  HS_LOG_OFF = 0,
  HS_LOG_ERROR = 1,
  HS_LOG_WARN = 2,
  HS_LOG_INFO = 3,
  HS_LOG_DEBUG = 4
};

/* Current level (reads the environment once). */
int hs_log_level(void);
/* Overrides the level (0 = keep). */
void hs_log_set_level(int level);
void hs_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Writes msg as is (a complete line without the trailing newline) when
 * level is enabled; for preformatted JSON lines. */
void hs_log_raw(int level, const char *msg);

#define hs_log_enabled(lvl) (hs_log_level() >= (lvl))

#endif

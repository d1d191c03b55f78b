/* Strict JSON reader (RFC 8259) producing a read-only document tree.
 *
 * Strict means: exactly one value, surrounded only by JSON whitespace; no
 * comments, trailing commas, single quotes, leading zeros, '+' signs, NaN or
 * Infinity; strings must be valid UTF-8 without raw control characters;
 * \uXXXX escapes are decoded to UTF-8 and surrogate pairs are combined (a
 * lone surrogate is an error); numbers must fit a finite double; duplicate
 * keys in one object are an error (configuration must not be ambiguous).
 *
 * Limits: input size and nesting depth are capped (hs_json_limits), so a
 * hostile document costs bounded time and memory: linear in the input, at
 * worst about 50 bytes of heap per input byte while parsing (a long array
 * of one-digit numbers), less for the finished tree. The parser is iterative,
 * so the depth limit protects the consumer, not the parser's C stack.
 *
 * Errors name the byte offset (0-based) where the problem was found, e.g.
 * "invalid JSON at byte 17: expected ',' or ']' in array".
 *
 * Thread safety: parsing has no shared state; a parsed document is
 * immutable and may be read from many threads. Not async-signal-safe
 * (allocates). Numbers are converted independently of the C locale. */
#ifndef HS_COMMON_JSON_READ_H
#define HS_COMMON_JSON_READ_H

#include <stddef.h>
#include <stdint.h>

typedef enum hs_json_type {
  HS_JSON_NULL = 0,
  HS_JSON_BOOL,
  HS_JSON_NUMBER,
  HS_JSON_STRING,
  HS_JSON_ARRAY,
  HS_JSON_OBJECT
} hs_json_type;

typedef struct hs_json_value hs_json_value;
typedef struct hs_json_member hs_json_member;

struct hs_json_value {
  hs_json_type type;
  /* Byte offset of the value's first character in the input, so that
   * consumers can point at the offending value in their own messages. */
  size_t offset;
  union {
    int boolean; /* HS_JSON_BOOL: 0 or 1 */
    struct {
      double value; /* always set */
      /* The literal had no fraction or exponent and its magnitude fits in
       * 64 bits: then mag/negative hold it exactly (see hs_json_as_u64). */
      uint64_t mag;
      unsigned char is_integer;
      unsigned char negative;
    } number;
    struct {
      /* Decoded UTF-8, NUL-terminated for convenience; may contain NUL
       * bytes (from \u0000), so use len. */
      const char *ptr;
      size_t len;
    } string;
    struct {
      const hs_json_value *items;
      size_t len;
    } array;
    struct {
      const hs_json_member *members; /* in document order */
      size_t len;
    } object;
  } u;
};

struct hs_json_member {
  const char *key; /* decoded, NUL-terminated; may contain NUL bytes */
  size_t key_len;
  size_t key_offset; /* byte offset of the key's opening quote */
  hs_json_value value;
};

typedef struct hs_json_limits {
  size_t max_bytes;   /* input size cap; 0 = default 1 MiB */
  unsigned max_depth; /* containers nested deeper fail; 0 = default 64 */
} hs_json_limits;

typedef struct hs_json_doc hs_json_doc;

/* Parses len bytes of text (need not be NUL-terminated). On success stores
 * a document in *out (caller frees with hs_json_free) and returns 0. On
 * failure returns -1, leaves *out NULL and writes a one-line message naming
 * the byte offset into err (if errlen > 0); *err_offset, if non-NULL, gets
 * that offset. Running out of memory is reported the same way ("out of
 * memory"). limits may be NULL (defaults). text may be NULL only if len is
 * 0 (then it fails as empty input). */
int hs_json_parse(const char *text, size_t len, const hs_json_limits *limits,
                  hs_json_doc **out, char *err, size_t errlen,
                  size_t *err_offset);

/* The document's top-level value. Valid until hs_json_free. */
const hs_json_value *hs_json_root(const hs_json_doc *doc);

/* Frees the document and every value in it. NULL is a no-op. */
void hs_json_free(hs_json_doc *doc);

/* Member of an object by key (exact byte comparison), or NULL if v is NULL,
 * not an object, or has no such key. Linear in the object's size. */
const hs_json_value *hs_json_get(const hs_json_value *v, const char *key);

/* "null", "boolean", "number", "string", "array" or "object", for error
 * messages. */
const char *hs_json_type_name(hs_json_type t);

/* Exact integer access: 0 and *out set if v is a number written as an
 * integer literal that fits the type ("42", "-7"; not "42.0" or "4e1");
 * -1 otherwise. */
int hs_json_as_u64(const hs_json_value *v, uint64_t *out);
int hs_json_as_i64(const hs_json_value *v, int64_t *out);

#endif

/* A protobuf-c allocator with a byte budget, shared by the agent's
 * protobuf decoders (pprof, OTLP). A hostile message can make protobuf-c
 * allocate far more than its own size (a one-byte repeated element
 * becomes a struct of ~100 bytes), so the budget, not the input size,
 * bounds the memory of one decode. Not thread-safe: one budget per
 * decode. */
#ifndef HS_AGENT_PB_BUDGET_H
#define HS_AGENT_PB_BUDGET_H

#include <stddef.h>

typedef struct hs_pb_budget {
  size_t used, max;
  int exceeded; /* set when an allocation was refused for the budget */
} hs_pb_budget;

/* ProtobufCAllocator callbacks; data is an hs_pb_budget. */
void *hs_pb_budget_alloc(void *data, size_t size);
void hs_pb_budget_free(void *data, void *ptr);

#endif

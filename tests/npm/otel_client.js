'use strict'
// Sends one trace through the OpenTelemetry JS SDK (npm
// @opentelemetry/sdk-trace-node with a BatchSpanProcessor), unchanged, to
// OTLP/HTTP at $OTLP_BASE/v1/traces: a server span and a client child span
// with attributes of every simple type, the child with status ERROR, an
// exception event (recordException), a plain event and a link. The
// exporter is the protobuf one (@opentelemetry/exporter-trace-otlp-proto)
// or, with argument "json", the JSON one (exporter-trace-otlp-http).
// provider.shutdown() flushes; the program then prints one line,
// "HOTSPAN_IDS {json}", with the ids as the SDK reports them and the
// exporter's results, for tests/scripts/test_agent_otel_js.sh.
//
// Usage: OTLP_BASE=http://127.0.0.1:PORT node otel_client.js proto|json

const api = require('@opentelemetry/api')
const { NodeTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-node')
const { resourceFromAttributes } = require('@opentelemetry/resources')
const { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } = require('@opentelemetry/semantic-conventions')

const encoding = process.argv[2] || 'proto'
const { OTLPTraceExporter } = encoding === 'json'
  ? require('@opentelemetry/exporter-trace-otlp-http')
  : require('@opentelemetry/exporter-trace-otlp-proto')

const exporter = new OTLPTraceExporter({ url: process.env.OTLP_BASE + '/v1/traces' })
// Records what each export call reported (0 = success), so that a refused
// request shows up in the test and not only in the SDK's diagnostics.
const results = []
const realExport = exporter.export.bind(exporter)
exporter.export = (spans, done) => realExport(spans, (res) => {
  results.push({ code: res.code, spans: spans.length, error: res.error ? String(res.error) : null })
  done(res)
})

const provider = new NodeTracerProvider({
  resource: resourceFromAttributes({
    [ATTR_SERVICE_NAME]: 'npm-otel-client-' + encoding,
    [ATTR_SERVICE_VERSION]: '2.0.0',
    'deployment.environment': 'test',
  }),
  spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: 200 })],
})
provider.register()
const tracer = api.trace.getTracer('hotspan-client-test', '0.1.0')

function hrNs (t) {
  return (BigInt(t[0]) * 1000000000n + BigInt(t[1])).toString()
}

async function main () {
  const out = { encoding, spans: {} }
  tracer.startActiveSpan('GET /orders/:id', {
    kind: api.SpanKind.SERVER,
    attributes: { 'http.request.method': 'GET', 'http.route': '/orders/:id', 'order.id': 4711 },
  }, (parent) => {
    const child = tracer.startSpan('SELECT orders', {
      kind: api.SpanKind.CLIENT,
      attributes: {
        'db.system': 'postgresql',
        'db.rows': 7,
        'cache.hit': false,
        'load.ratio': 0.25,
        'db.tables': ['orders', 'items'],
        'span.type': 'sql',
      },
      links: [{
        context: {
          traceId: '0af7651916cd43dd8448eb211c80319c',
          spanId: 'b7ad6b7169203331',
          traceFlags: api.TraceFlags.SAMPLED,
          isRemote: true,
        },
        attributes: { 'link.kind': 'batch' },
      }],
    })
    child.addEvent('retry', { 'retry.attempt': 2 })
    const err = new Error('statement timeout')
    err.name = 'QueryTimeout'
    child.recordException(err)
    child.setStatus({ code: api.SpanStatusCode.ERROR, message: 'statement timeout' })
    const pc = parent.spanContext()
    const cc = child.spanContext()
    out.spans.parent = { trace_id: pc.traceId, span_id: pc.spanId, parent_id: '0000000000000000' }
    // The SDK's own record of the child's parent (2.x: parentSpanContext).
    const recorded = child.parentSpanContext ? child.parentSpanContext.spanId : child.parentSpanId
    out.spans.child = { trace_id: cc.traceId, span_id: cc.spanId, parent_id: recorded }
    child.end()
    parent.end()
    for (const [key, span] of [['parent', parent], ['child', child]]) {
      // Ended spans are the SDK's ReadableSpans: times as [s, ns].
      out.spans[key].start_ns = hrNs(span.startTime)
      out.spans[key].duration_ns = hrNs(span.duration)
    }
    out.spans.child.events = child.events.map((e) => ({
      name: e.name, time_ns: hrNs(e.time), attributes: e.attributes,
    }))
    out.spans.child.links = child.links.map((l) => ({
      trace_id: l.context.traceId, span_id: l.context.spanId,
      trace_flags: l.context.traceFlags, attributes: l.attributes,
    }))
  })
  await provider.shutdown()
  out.exports = results
  process.stdout.write('HOTSPAN_IDS ' + JSON.stringify(out) + '\n')
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})

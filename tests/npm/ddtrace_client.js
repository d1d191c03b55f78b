'use strict'
// Sends one trace through Datadog's Node tracer (npm dd-trace), unchanged,
// to the agent named by DD_TRACE_AGENT_URL: a root span with two child
// spans made by hand, one of them an error, the other with a span event and
// a link to a span of another trace. Then it flushes the tracer and
// prints one JSON line with the ids and names as the tracer itself reports
// them (prefixed "HOTSPAN_IDS "), for tests/scripts/test_agent_ddtrace.sh
// to compare with what the agent stored.
//
// With PROFILE_MS=N it also burns CPU for N ms inside a fourth span
// ("cpu.burn") so that the profiler, when DD_PROFILING_ENABLED=true, has
// samples to upload, then stays alive PROFILE_WAIT_MS more (default 2500)
// so that a periodic upload (DD_PROFILING_UPLOAD_PERIOD=1) happens before
// the profiler's own upload at exit.
//
// Usage: node ddtrace_client.js   (configuration from the environment)

const tracer = require('dd-trace').init({
  service: 'npm-ddtrace-client',
  env: 'test',
  version: '1.2.3',
  runtimeMetrics: false,
  startupLogs: false,
  // Flush every finished trace at once; the exporter's flush below then
  // waits for the agent's answer.
  flushInterval: 0,
})

function hexIds (span) {
  const ctx = span.context()
  const parent = ctx._parentId // internal: the tracer's own parent record
  return {
    trace_id: ctx.toTraceId(true),
    trace_id_low_dec: ctx.toTraceId(),
    span_id: ctx.toSpanId(true),
    parent_id: parent ? parent.toString(16).padStart(16, '0') : '0000000000000000',
  }
}

function burn (ms) {
  const end = Date.now() + ms
  let x = 0
  while (Date.now() < end) {
    for (let i = 0; i < 10000; i++) x = (x * 31 + i) % 1000003
  }
  return x
}

// Waits until the exporter has sent everything it holds and the agent
// answered (the exporter's flush callback), or gives up after a timeout.
function flushTraces () {
  return new Promise((resolve) => {
    const exporter = tracer._tracer && tracer._tracer._exporter
    const timer = setTimeout(() => resolve('timeout'), 10000)
    if (!exporter || typeof exporter.flush !== 'function') {
      // No flush hook in this version: the tracer flushes on exit.
      clearTimeout(timer)
      resolve('on-exit')
      return
    }
    exporter.flush((err) => {
      clearTimeout(timer)
      resolve(err ? 'error: ' + err.message : 'flushed')
    })
  })
}

async function main () {
  const out = { spans: {} }
  tracer.trace('web.request', {
    resource: 'GET /checkout',
    type: 'web',
    tags: { 'http.method': 'GET', 'http.url': '/checkout', 'customer.tier': 'gold' },
  }, (root) => {
    out.spans.root = hexIds(root)
    // A span of another trace, for the db span to link to.
    const other = tracer.startSpan('queue.consume', { childOf: null })
    out.linked = hexIds(other)
    other.finish()
    tracer.trace('db.query', { resource: 'SELECT * FROM carts WHERE id = ?', type: 'sql' },
      (child) => {
        child.setTag('db.rows', 3)
        child.addEvent('cache.miss', { 'cache.key': 'cart:7', 'cache.tries': 2 })
        child.addLink({ context: other.context(), attributes: { 'link.kind': 'follows' } })
        out.spans.db = hexIds(child)
        out.db_events = child._events.map((e) => ({ name: e.name, attributes: e.attributes }))
      })
    // startSpan with an explicit parent, the other manual API.
    const child2 = tracer.startSpan('payment.charge', {
      childOf: root,
      tags: { 'resource.name': 'charge card', 'amount.cents': 1299 },
    })
    child2.setTag('error', new Error('card declined'))
    out.spans.pay = hexIds(child2)
    child2.finish()
    if (process.env.PROFILE_MS) {
      tracer.trace('cpu.burn', { resource: 'burn' }, (span) => {
        out.spans.burn = hexIds(span)
        burn(Number(process.env.PROFILE_MS))
      })
    }
    out.tid_tag = root.context()._trace.tags['_dd.p.tid'] || null
  })
  out.flush = await flushTraces()
  process.stdout.write('HOTSPAN_IDS ' + JSON.stringify(out) + '\n')
  if (process.env.PROFILE_MS) {
    const wait = Number(process.env.PROFILE_WAIT_MS || 2500)
    await new Promise((resolve) => setTimeout(resolve, wait))
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})

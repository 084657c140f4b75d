// ONNX Runtime's time per node, for make bench-layers (bench/peers/run.sh).
//
//   node bench/peers/ort_layers.js MODEL.onnx BATCH THREADS RUNS
//
// The session as ort_session.js sets it up (the one ort_bench.js times),
// with ONNX Runtime's profiler on: RUNS runs after its warm-up runs, then one
// JSON line: per node in execution order, its op, input and output shapes and
// the median of its kernel times over the runs, in ms.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { ortSession, WARM_UP } = require('./ort_session');

async function main() {
    const [model, batch, threads, runs] = process.argv.slice(2);
    if (!runs) {
        console.error('usage: node ort_layers.js MODEL.onnx BATCH THREADS RUNS');
        process.exit(2);
    }
    const n = Number(batch);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ort-layers-'));
    const { session, feeds } = await ortSession(model, n, threads, {
        enableProfiling: true,
        profileFilePrefix: path.join(dir, 'profile'),
    });
    for (let i = 0; i < Number(runs); i++)
        await session.run(feeds);
    session.endProfiling();
    const file = fs.readdirSync(dir).find((f) => f.endsWith('.json'));
    const events = JSON.parse(fs.readFileSync(path.join(dir, file)));
    fs.rmSync(dir, { recursive: true, force: true });
    const nodes = new Map(); // name -> {op, in, out, durs}, in first-seen (execution) order
    for (const e of events) {
        if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time') || !e.args)
            continue;
        const shapes = (l) => (l || []).map((t) => Object.values(t)[0]);
        let v = nodes.get(e.name);
        if (!v) {
            v = { name: e.name.replace(/_kernel_time$/, ''), op: e.args.op_name,
                  in: shapes(e.args.input_type_shape), out: shapes(e.args.output_type_shape), durs: [] };
            nodes.set(e.name, v);
        }
        v.durs.push(e.dur / 1000);
    }
    const median = (a) => {
        a = a.slice(WARM_UP).sort((x, y) => x - y); // the profile holds the warm-up runs too
        const m = a.length >> 1;
        return a.length % 2 ? a[m] : (a[m - 1] + a[m]) / 2;
    };
    console.log(JSON.stringify({
        engine: 'onnxruntime-node ' + require('onnxruntime-node/package.json').version,
        batch: n, threads: Number(threads),
        nodes: [...nodes.values()].map((v) => ({ name: v.name, op: v.op, in: v.in, out: v.out,
                                                 ms: median(v.durs) })),
    }));
}

main().catch((e) => { console.error(e.message || e); process.exit(1); });

// ONNX Runtime peer: an ONNX ResNet on random input, timed.
//
//   node bench/peers/ort_bench.js MODEL.onnx BATCH THREADS SECONDS
//
// The session as ort_session.js sets it up. Prints one JSON line like resnet
// bench's.
'use strict';
const { ortSession } = require('./ort_session');

async function main() {
    const [path, batch, threads, seconds] = process.argv.slice(2);
    if (!seconds) {
        console.error('usage: node ort_bench.js MODEL.onnx BATCH THREADS SECONDS');
        process.exit(2);
    }
    const n = Number(batch);
    const { session, feeds } = await ortSession(path, n, threads);
    const times = [];
    const start = process.hrtime.bigint();
    const elapsed = () => Number(process.hrtime.bigint() - start) / 1e9;
    while (elapsed() < Number(seconds) || times.length < 3) {
        const t0 = process.hrtime.bigint();
        await session.run(feeds);
        times.push(Number(process.hrtime.bigint() - t0) / 1e9);
    }
    const total = times.reduce((a, b) => a + b, 0);
    times.sort((a, b) => a - b);
    const mid = times.length >> 1;
    const median = times.length % 2 ? times[mid] : (times[mid - 1] + times[mid]) / 2;
    console.log(JSON.stringify({
        engine: 'onnxruntime-node ' + require('onnxruntime-node/package.json').version,
        batch: n, threads: Number(threads),
        images_per_s: n * times.length / total, ms_per_batch_median: 1000 * median,
    }));
}

main().catch((e) => { console.error(e.message || e); process.exit(1); });

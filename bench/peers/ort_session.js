// The ONNX Runtime session both peers scripts run (ort_bench.js times it,
// ort_layers.js profiles it): graph optimisation "all" (ONNX Runtime's NCHWc
// layout transformer and conv fusions), intra-op threads = THREADS, one
// inter-op thread, sequential execution; random NCHW 224x224 input of BATCH
// images; three warm-up runs.
'use strict';
const ort = require('onnxruntime-node');

const WARM_UP = 3;

async function ortSession(model, batch, threads, extra = {}) {
    const n = Number(batch);
    const session = await ort.InferenceSession.create(model, {
        graphOptimizationLevel: 'all',
        intraOpNumThreads: Number(threads),
        interOpNumThreads: 1,
        executionMode: 'sequential',
        ...extra,
    });
    const data = new Float32Array(n * 3 * 224 * 224).map(() => Math.random() * 2 - 1);
    const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, [n, 3, 224, 224]) };
    for (let i = 0; i < WARM_UP; i++)
        await session.run(feeds);
    return { session, feeds };
}

module.exports = { ortSession, WARM_UP };

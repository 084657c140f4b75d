// ONNX Runtime on given inputs, not timed: make_qdq.py --check runs its QDQ
// model (and the FP32 graph it was made from) through the very session the
// bench times, to compare their classes with PyTorch's.
//
//   node bench/peers/ort_classify.js MODEL.onnx INPUT.f32 OUTPUT.f32 [THREADS] [HxW]
//
// INPUT.f32: N images, raw little-endian float32 NCHW [N,3,H,W] (HxW: 224x224
// unless given), already preprocessed; OUTPUT.f32: the N rows of the model's first output (logits),
// raw float32. Runs one batch of N, in the session ort_session.js sets up.
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');
const { ortSession } = require('./ort_session');

async function main() {
    const [model, input, output, threads = '2', size = '224x224'] = process.argv.slice(2);
    const m = /^(\d+)x(\d+)$/.exec(size);
    if (!output || !m) {
        console.error('usage: node ort_classify.js MODEL.onnx INPUT.f32 OUTPUT.f32 [THREADS] [HxW]');
        process.exit(2);
    }
    const [h, w] = [Number(m[1]), Number(m[2])];
    const buf = fs.readFileSync(input);
    const per = 3 * h * w;
    if (buf.length === 0 || buf.length % (4 * per)) {
        console.error(`${input}: not a whole number of float32 [3,${h},${w}] images`);
        process.exit(1);
    }
    const n = buf.length / (4 * per);
    const data = new Float32Array(buf.buffer, buf.byteOffset, n * per);
    const { session } = await ortSession(model, n, threads);
    const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, [n, 3, h, w]) };
    const out = (await session.run(feeds))[session.outputNames[0]];
    fs.writeFileSync(output, Buffer.from(out.data.buffer, out.data.byteOffset, out.data.byteLength));
}

main().catch((e) => { console.error(e.message || e); process.exit(1); });

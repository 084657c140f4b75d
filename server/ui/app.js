// The inspection page: pick or drop a photo, POST it to /v1/inspect (JSON:
// top-5, per-block numbers) and to /v1/inspect?format=png (the heat map),
// draw the two per-block charts as SVG. Nothing is loaded from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
let current = null; // {file, model, reply}
let camUrl = null;
const precision = {}; // model name -> "fp32", "bf16", "int8"

function status(msg, error) {
  const s = $("status");
  s.textContent = msg;
  s.className = error ? "error" : "";
}

async function loadModels() {
  try {
    const r = await fetch("/v1/models");
    const j = await r.json();
    const sel = $("model");
    for (const m of j.models) {
      const o = document.createElement("option");
      o.value = m.name;
      precision[m.name] = m.precision;
      const p = m.precision && m.precision !== "fp32" ? `${m.precision}, ` : "";
      o.textContent = `${m.name} (${m.arch}, ${p}${m.classes} classes)`;
      if (m.default) o.selected = true;
      sel.appendChild(o);
    }
    $("model-picker").hidden = j.models.length < 2;
    sel.addEventListener("change", () => current && inspect(current.file));
    $("orient").addEventListener("change", () => current && inspect(current.file));
  } catch (e) {
    status("cannot list the models: " + e, true);
  }
}

async function post(file, query) {
  const model = $("model").value;
  const q = new URLSearchParams(query);
  if (model) q.set("model", model);
  if ($("orient").checked) q.set("orient", "exif");
  const r = await fetch("/v1/inspect?" + q.toString(), {
    method: "POST",
    headers: { "Content-Type": file.type || "application/octet-stream" },
    body: file,
  });
  if (!r.ok) {
    let msg = r.status + " " + r.statusText;
    try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
    throw new Error(msg);
  }
  return r;
}

async function showCam(file, cls, label) {
  const r = await post(file, { format: "png", class: String(cls), lesions: "0" });
  const blob = await r.blob();
  if (camUrl) URL.revokeObjectURL(camUrl);
  camUrl = URL.createObjectURL(blob);
  const img = $("cam");
  await new Promise((ok, bad) => {
    img.onload = ok;
    img.onerror = () => bad(new Error("the heat map did not decode"));
    img.src = camUrl;
  });
  $("cam-caption").textContent = `class activation map of ${label} (class ${cls})`;
  for (const li of $("top5").children) li.classList.toggle("sel", li.dataset.index === String(cls));
}

function fmt(v, d) {
  return v === null || v === undefined ? "–" : Number(v).toFixed(d);
}

function chart(svg, blocks, value, cls, unit) {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const W = svg.clientWidth || 900, H = svg.clientHeight || 220, L = 44, B = 56, T = 10;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const defs = document.createElementNS(SVG, "defs");
  for (const [id, col] of [["hatch", "#2563eb"], ["hatch-kl", "#c2410c"]]) {
    const p = document.createElementNS(SVG, "pattern");
    p.setAttribute("id", id);
    p.setAttribute("width", "6");
    p.setAttribute("height", "6");
    p.setAttribute("patternUnits", "userSpaceOnUse");
    p.setAttribute("patternTransform", "rotate(45)");
    const l = document.createElementNS(SVG, "rect");
    l.setAttribute("width", "3");
    l.setAttribute("height", "6");
    l.setAttribute("fill", col);
    p.appendChild(l);
    defs.appendChild(p);
  }
  svg.appendChild(defs);
  const vals = blocks.map(value);
  const max = Math.max(1e-9, ...vals);
  const step = (W - L - 8) / blocks.length, bw = Math.max(2, step * 0.7);
  const add = (tag, attrs, text) => {
    const e = document.createElementNS(SVG, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    svg.appendChild(e);
    return e;
  };
  for (const f of [0, 0.5, 1]) {
    const y = T + (H - T - B) * (1 - f);
    add("line", { x1: L, x2: W - 4, y1: y, y2: y, stroke: "#eee" });
    add("text", { x: L - 4, y: y + 3, "text-anchor": "end" }, (max * f).toPrecision(2));
  }
  blocks.forEach((b, i) => {
    const h = (H - T - B) * (vals[i] / max), x = L + i * step + (step - bw) / 2;
    const r = add("rect", { x, y: T + (H - T - B) - h, width: bw, height: Math.max(h, 0.5),
                            class: cls + (b.projection ? " proj" : ""), "data-block": b.name });
    const t = document.createElementNS(SVG, "title");
    t.textContent = `${b.name}: ${vals[i].toPrecision(4)} ${unit}`;
    r.appendChild(t);
    add("text", { x: x + bw / 2, y: H - B + 10, transform: `rotate(60 ${x + bw / 2} ${H - B + 10})` }, b.name);
  });
}

function render(reply) {
  const ol = $("top5");
  ol.textContent = "";
  for (const p of reply.predictions) {
    const li = document.createElement("li");
    li.dataset.index = p.index;
    li.className = "pred";
    const name = document.createElement("span");
    name.className = "label";
    name.textContent = p.label;
    const pct = document.createElement("span");
    pct.textContent = ` ${(100 * p.score).toFixed(2)}%`;
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = Math.max(1, 100 * p.score) + "%";
    li.append(name, pct, bar);
    li.addEventListener("click", () =>
      showCam(current.file, p.index, p.label).catch((e) => status(String(e.message || e), true)));
    ol.appendChild(li);
  }
  chart($("chart-ratio"), reply.blocks, (b) => b.f_over_x, "bar", "||F||/||x||");
  chart($("chart-kl"), reply.blocks, (b) => (b.lesion ? b.lesion.kl : 0), "kl", "nats");
  const tb = $("blocks").querySelector("tbody");
  tb.textContent = "";
  for (const b of reply.blocks) {
    const tr = document.createElement("tr");
    const cells = [b.name, b.projection ? "yes" : "", fmt(b.s_norm, 1), fmt(b.f_norm, 1),
      fmt(b.f_over_s, 3), fmt(b.f_over_x, 3), fmt(b.cos_sf, 3), fmt(b.cos_xy, 3),
      b.lesion ? fmt(b.lesion.kl, 4) : "–",
      b.lesion ? `${b.lesion.top1.label} ${(100 * b.lesion.top1.score).toFixed(1)}%` : "–"];
    for (const c of cells) {
      const td = document.createElement("td");
      td.textContent = c;
      tr.appendChild(td);
    }
    tb.appendChild(tr);
  }
  const c = reply.computed;
  $("computed").textContent = `One forward pass: ${c.forward_gflops.toFixed(2)} GFLOP. ` +
    (c.lesions ? `The ${reply.blocks.length} lesions recompute ${c.lesion_gflops.toFixed(2)} GFLOP ` +
      `(${c.lesion_forwards.toFixed(2)} forward passes): only the layers after each block.` : "") +
    (precision[reply.model] === "int8" ? " INT8 model: the norms and cosines are those of its " +
      "integer tensors dequantized, F is its last convolution's int32 sums as the requantization " +
      "adds them, and the lesions run on the integer path (docs/int8.md)." : "");
  $("result").hidden = false;
}

async function inspect(file) {
  current = { file };
  status(`inspecting ${file.name}…`);
  try {
    const t0 = performance.now();
    const reply = await (await post(file, { topk: "5" })).json();
    current.reply = reply;
    render(reply);
    const top = reply.predictions[0];
    await showCam(file, top.index, top.label);
    status(`${file.name}: ${top.label}, ${(100 * top.score).toFixed(1)}% ` +
           `(model ${reply.model}, ${((performance.now() - t0) / 1000).toFixed(2)} s)`);
  } catch (e) {
    status(String(e.message || e), true);
  }
}

function setup() {
  const drop = $("drop");
  $("file").addEventListener("change", (e) => e.target.files[0] && inspect(e.target.files[0]));
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const f = e.dataTransfer.files[0];
    if (f) inspect(f);
  });
  loadModels();
}

setup();

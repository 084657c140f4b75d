// The inspection page in a real browser: Debian's chromium, headless, driven
// by playwright-core. Opens URL/, uploads PHOTO through the file input, and
// checks what a user sees: the top-1 label, one bar per residual block in
// each chart, and the heat map loaded with non-blank pixels (from a
// screenshot of the element). Also: no request leaves URL's origin, and the
// page logs no error (a CSP violation would). Prints TAP lines.
//
//   node ui.mjs URL PHOTO TOP1_LABEL N_BLOCKS [SCREENSHOT.png]
import { chromium } from "playwright-core";

const [url, photo, wantLabel, wantBlocks, shot] = process.argv.slice(2);
let failed = 0;
const ok = (good, what) => {
  console.log((good ? "ok - " : "not ok - ") + what);
  if (!good) failed = 1;
};

let browser;
try {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    timeout: 60000,
  });
} catch (e) {
  // the one case the test may skip: no browser can start on this machine
  console.log("ok - # SKIP chromium cannot start here: " + String(e.message).split("\n")[0]);
  process.exit(0);
}
try {
  const ctx = await browser.newContext({ viewport: { width: 1100, height: 1400 } });
  const page = await ctx.newPage();
  const origin = new URL(url).origin;
  const foreign = [], errors = [];
  page.on("request", (r) => { const u = r.url();
    if (!u.startsWith(origin + "/") && !u.startsWith("blob:" + origin + "/")) foreign.push(u); });
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push(String(e)));

  const resp = await page.goto(url + "/", { waitUntil: "load" });
  ok(resp && resp.status() === 200, `GET / answers 200 (${resp && resp.status()})`);
  ok((await page.title()).includes("resnetd"), "the page has its title");

  await page.setInputFiles("#file", photo);
  await page.waitForSelector("#top5 li", { timeout: 120000 });
  await page.waitForFunction(() => {
    const img = document.getElementById("cam");
    return img && img.complete && img.naturalWidth > 0;
  }, null, { timeout: 120000 });

  const label = await page.textContent("#top5 li:first-child .label");
  ok(label === wantLabel, `the top-1 label shown is ${wantLabel} (${label})`);
  const n = Number(wantBlocks);
  const bars = await page.locator("#chart-ratio rect.bar").count();
  ok(bars === n, `the ||F||/||x|| chart has one bar per block (${bars} of ${n})`);
  const kl = await page.locator("#chart-kl rect.kl").count();
  ok(kl === n, `the lesion KL chart has one bar per block (${kl} of ${n})`);
  const rows = await page.locator("#blocks tbody tr").count();
  ok(rows === n, `the table has a row per block (${rows})`);
  const status = await page.textContent("#status");
  ok(status.includes(wantLabel), `the status line names the top-1 (${status})`);

  // the heat map: a screenshot of the element, its pixels read in a blank page
  const png = await page.locator("#cam").screenshot();
  const nat = await page.evaluate(() => {
    const i = document.getElementById("cam");
    return [i.naturalWidth, i.naturalHeight];
  });
  ok(nat[0] === 224 && nat[1] === 224, `the heat map is the model's crop, 224x224 (${nat})`);
  const probe = await ctx.newPage();
  const stats = await probe.evaluate(async (b64) => {
    const img = new Image();
    img.src = "data:image/png;base64," + b64;
    await img.decode();
    const c = document.createElement("canvas");
    c.width = img.width;
    c.height = img.height;
    const g = c.getContext("2d");
    g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    let sum = 0, sum2 = 0, warm = 0;
    const colors = new Set();
    for (let i = 0; i < d.length; i += 4) {
      const y = (d[i] + d[i + 1] + d[i + 2]) / 3;
      sum += y;
      sum2 += y * y;
      if (d[i] > d[i + 2] + 60) warm++;
      colors.add((d[i] >> 3) << 10 | (d[i + 1] >> 3) << 5 | (d[i + 2] >> 3));
    }
    const n = d.length / 4, mean = sum / n;
    return { w: c.width, h: c.height, sd: Math.sqrt(sum2 / n - mean * mean), colors: colors.size,
             warm: warm / n };
  }, png.toString("base64"));
  ok(stats.sd > 10 && stats.colors > 200,
     `the heat map's screenshot is not blank (${stats.w}x${stats.h}, luminance sd ${stats.sd.toFixed(1)}, ${stats.colors} colours)`);
  ok(stats.warm > 0.01, `the heat map shows warm (hot) regions (${(100 * stats.warm).toFixed(1)}% of pixels)`);

  // another class: its map replaces the first
  const before = await page.textContent("#cam-caption");
  await page.click("#top5 li:nth-child(2)");
  // the caption changes once the new map has loaded
  await page.waitForFunction((b) => document.getElementById("cam-caption").textContent !== b, before,
                             { timeout: 60000 });
  const cap = await page.textContent("#cam-caption");
  ok(/class \d+/.test(cap) && !cap.includes(wantLabel), `clicking the second class shows its map (${cap})`);

  ok(foreign.length === 0, `nothing is loaded from elsewhere (${foreign.length} foreign requests${foreign.length ? ": " + foreign[0] : ""})`);
  ok(errors.length === 0, `the page logs no error${errors.length ? ": " + errors[0] : ""}`);
  if (shot) {
    await page.click("#top5 li:first-child");
    await page.waitForTimeout(1500);
    await page.screenshot({ path: shot, fullPage: true });
  }
} catch (e) {
  ok(false, "the browser session: " + String(e.message || e).split("\n")[0]);
} finally {
  await browser.close();
}
process.exit(failed);

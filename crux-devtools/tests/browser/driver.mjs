// Drives the crux devtools web viewer in headless Chromium for crux's tests/web_viewer.rs.
//
// The Rust test holds the assertions; this script only acts and reports. It reads one JSON
// command per line on stdin and answers each with one JSON line on stdout:
//   {"cmd":"open","url":...}              → {"ok":true,"rows":[runId...]}
//   {"cmd":"waitRow","runId":...}         → {"ok":true,"reloaded":bool,"rows":[...]}
//   {"cmd":"openRun","runId":...}         → {"ok":true,"header":text,"tree":text}
//   {"cmd":"selectSpan","name":...}       → {"ok":true,"details":text}
//   {"cmd":"timeline"}                    → {"ok":true,"text":text,"bars":n}
//   {"cmd":"search","text":...}           → {"ok":true,"rows":[runId...]}
//   {"cmd":"filter","name":...,"value":...} → {"ok":true,"rows":[runId...]}
//   {"cmd":"waitText","selector":...,"text":...} → {"ok":true,"text":text,"reloaded":bool}
//   {"cmd":"follow","selector":...}       → {"ok":true,"hash":...,"header":text,"details":text}
//   {"cmd":"xss"}                         → {"ok":true,"fired":bool,"consoleErrors":[...]}
//   {"cmd":"screenshot","path":...}       → {"ok":true}
//   {"cmd":"quit"}
// A failing command answers {"ok":false,"error":...}. Every wait is bounded (30 s).
import { createInterface } from "node:readline";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const WAIT = { timeout: 30_000 };
const executablePath = process.env.CRUX_CHROMIUM || "/usr/bin/chromium";
const profile = mkdtempSync(join(tmpdir(), "crux-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  viewport: { width: 1400, height: 900 },
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
const page = context.pages()[0] || (await context.newPage());
const consoleErrors = [];
page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
page.on("pageerror", (e) => consoleErrors.push(String(e)));
let loads = 0;
page.on("load", () => { loads += 1; });

const rows = () => page.$$eval("tr[data-run-id]", (trs) => trs.map((tr) => tr.dataset.runId));

/** Waits until the list's rows satisfy `pred` (the list re-renders on each poll). */
async function rowsWhere(pred) {
  const deadline = Date.now() + WAIT.timeout;
  for (;;) {
    const current = await rows();
    if (pred(current)) return current;
    if (Date.now() > deadline) throw new Error("rows never matched; last: " + JSON.stringify(current));
    await page.waitForTimeout(100);
  }
}

const commands = {
  async open({ url }) {
    // A fresh document each time, even when only the hash differs.
    await page.goto("about:blank");
    await page.goto(url);
    await page.waitForSelector("#runs, #no-runs, #run-header", WAIT);
    await page.evaluate(() => { window.__sameDocument = true; });
    loads = 0;
    return { rows: await rows(), title: await page.title() };
  },
  async waitRow({ runId }) {
    const found = await rowsWhere((r) => r.includes(runId));
    const same = await page.evaluate(() => window.__sameDocument === true);
    return { reloaded: !same || loads > 0, rows: found };
  },
  async openRun({ runId }) {
    await page.click(`tr[data-run-id="${runId}"] a.run-link`);
    await page.waitForSelector("#lens-tree-body", WAIT);
    return {
      header: await page.innerText("#run-header"),
      tree: await page.innerText("#lens-tree-body"),
      hash: await page.evaluate(() => location.hash),
    };
  },
  async selectSpan({ name }) {
    await page.locator("button.node", { hasText: name }).first().click();
    await page.waitForFunction((n) => {
      const h = document.querySelector("#details h2");
      return h && h.textContent === n;
    }, name, WAIT);
    return { details: await page.innerText("#details") };
  },
  async timeline() {
    await page.click("#lens-timeline");
    await page.waitForSelector("#timeline", WAIT);
    const bars = await page.$$eval(".tl-bar", (b) => b.filter((x) => x.getBoundingClientRect().width > 0).length);
    return { text: await page.innerText("#timeline"), bars };
  },
  async search({ text }) {
    await page.goto(new URL("/#/", page.url()).toString());
    await page.waitForSelector("#runs, #no-runs", WAIT);
    await page.fill('input[name="q"]', text);
    await page.waitForFunction((t) => location.hash.includes("q=" + encodeURIComponent(t).replace(/%20/g, "+")), text, WAIT);
    // The list for the new hash replaces the old one; wait for it to settle.
    await page.waitForTimeout(500);
    await page.waitForSelector("#runs, #no-runs", WAIT);
    return { rows: await rows() };
  },
  async filter({ name, value }) {
    const input = page.locator(`[name="${name}"]`);
    if ((await input.evaluate((e) => e.tagName)) === "SELECT") await input.selectOption(value);
    else await input.fill(value);
    await page.waitForFunction(([n, v]) => (new URLSearchParams(location.hash.split("?")[1] || "").get(n) || "") === v, [name, value], WAIT);
    await page.waitForTimeout(500);
    await page.waitForSelector("#runs, #no-runs", WAIT);
    return { rows: await rows() };
  },
  async waitText({ selector, text }) {
    await page.waitForFunction(([s, t]) => {
      const node = document.querySelector(s);
      return node && node.innerText.includes(t);
    }, [selector, text], WAIT);
    const same = await page.evaluate(() => window.__sameDocument === true);
    return { text: await page.innerText(selector), reloaded: !same || loads > 0 };
  },
  async follow({ selector }) {
    const before = await page.evaluate(() => location.hash);
    await page.click(selector);
    await page.waitForFunction((b) => location.hash !== b, before, WAIT);
    await page.waitForSelector("#run-header", WAIT);
    await page.waitForTimeout(300);
    return {
      hash: await page.evaluate(() => location.hash),
      header: await page.innerText("#run-header"),
      details: await page.innerText("#details"),
    };
  },
  async xss() {
    const fired = await page.evaluate(() => window.__xss === 1);
    return { fired, consoleErrors };
  },
  async screenshot({ path }) {
    await page.screenshot({ path, fullPage: true });
    return {};
  },
};

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  const command = JSON.parse(line);
  if (command.cmd === "quit") break;
  try {
    const answer = await commands[command.cmd](command);
    process.stdout.write(JSON.stringify({ ok: true, ...answer }) + "\n");
  } catch (error) {
    const where = await page.evaluate(() => location.href).catch(() => "?");
    const shown = await rows().catch(() => []);
    process.stdout.write(JSON.stringify({ ok: false, error: String(error && error.stack || error), where, rows: shown }) + "\n");
  }
}
await context.close();
rmSync(profile, { recursive: true, force: true });

// Drives engram's page in headless Chromium: search, keyboard, a memory with its picture, the
// timeline, ask, status. Prints one JSON line; any console error, page error or request to a
// host other than 127.0.0.1 is reported.
// Usage: node page.mjs URL SCREENSHOT_DIR QUERY EXPECTED_TEXT
import { chromium } from "playwright-core";

const [url, shots, query, expected] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-default-apps"],
});
const out = { errors: [], foreign: [], steps: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("console", (m) => { if (m.type() === "error") out.errors.push(m.text()); });
  page.on("pageerror", (e) => out.errors.push(String(e)));
  page.on("request", (r) => { if (new URL(r.url()).hostname !== "127.0.0.1") out.foreign.push(r.url()); });

  const start = Date.now();
  await page.goto(url);
  out.address_has_token = page.url().includes("token=");
  await page.fill("#q", query);
  await page.press("#q", "Enter");
  await page.waitForSelector("#results li", { timeout: 60000 });
  out.first_result_ms = Date.now() - start;
  out.results_text = await page.textContent("#results");
  await page.waitForSelector("#results .thumb .box", { timeout: 10000 }).catch(() => {});
  out.thumb_boxes = await page.locator("#results .thumb .box").count();
  out.steps.push("search");

  // Keyboard: leave the search box, move down and back up, open with Enter, close with Escape.
  await page.evaluate(() => document.activeElement.blur());
  await page.keyboard.press("ArrowDown");
  out.selected_after_down = await page.locator("#results li.selected").getAttribute("data-id");
  await page.keyboard.press("ArrowUp");
  await page.keyboard.press("Enter");
  await page.waitForSelector("#detail[open]", { timeout: 30000 });
  out.detail_text = await page.textContent("#detail-text");
  out.detail_has_frame = (await page.locator("#detail-frame img").count()) > 0;
  if (out.detail_has_frame) {
    await page.waitForSelector("#detail-frame .box", { timeout: 10000 }).catch(() => {});
    out.boxes = await page.locator("#detail-frame .box").count();
  }
  await page.screenshot({ path: `${shots}/search.png` });
  await page.keyboard.press("Escape");
  out.steps.push("detail");

  await page.click("nav button[data-tab=timeline]");
  await page.waitForSelector("#tl-current img", { timeout: 30000 });
  out.timeline_frames = await page.locator(".thumbs img").count();
  out.timeline_label = await page.textContent("#tl-label");
  out.timeline_caption = (await page.locator("#tl-current .caption").allTextContents()).join(" ");
  await page.screenshot({ path: `${shots}/timeline.png` });
  out.steps.push("timeline");

  await page.click("nav button[data-tab=ask]");
  await page.fill("#question", "How much is the monthly rent?");
  await page.press("#question", "Enter");
  await page.waitForSelector("#citations li", { timeout: 120000 });
  out.answer = await page.textContent("#answer");
  out.citations = await page.textContent("#citations");
  await page.screenshot({ path: `${shots}/ask.png` });
  // A time the question names: nothing was made last month, so every memory is searched.
  await page.fill("#question", "How much was the monthly rent last month?");
  await page.press("#question", "Enter");
  await page.waitForSelector("#when:not([hidden])", { timeout: 120000 });
  out.when = await page.textContent("#when");
  out.when_answer = await page.textContent("#answer");
  await page.screenshot({ path: `${shots}/ask-when.png` });
  out.steps.push("ask");

  await page.click("nav button[data-tab=status]");
  await page.waitForSelector("#status-list dd");
  await page.click("[data-pause='15']");
  await page.waitForFunction(() => document.getElementById("capture-state").textContent.includes("paused"));
  out.capture_state = await page.textContent("#capture-state");
  await page.click("[data-resume]");
  await page.waitForFunction(() => !document.getElementById("capture-state").textContent.includes("paused"));
  await page.screenshot({ path: `${shots}/status.png` });
  out.steps.push("status");
} catch (e) {
  out.errors.push("test step failed: " + e.message);
} finally {
  await browser.close();
}
out.ok = out.errors.length === 0 && out.foreign.length === 0 && (out.results_text || "").includes(expected);
console.log(JSON.stringify(out));

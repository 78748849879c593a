// Page load to first search result, in headless Chromium. Usage: node first-result.mjs URL QUERY
import { chromium } from "playwright-core";
const [url, query] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"] });
const times = [];
for (let i = 0; i < 5; i++) {
  const page = await browser.newPage();
  const t = Date.now();
  await page.goto(url);
  await page.fill("#q", query);
  await page.press("#q", "Enter");
  await page.waitForSelector("#results li");
  times.push(Date.now() - t);
  await page.close();
}
await browser.close();
times.sort((a, b) => a - b);
console.log(JSON.stringify({ runs: times, median_ms: times[2] }));

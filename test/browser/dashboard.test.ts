import { BigDecimal, Effect, Exit, Option, Scope } from "effect"
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import type { BrowserContext, Page } from "playwright-core"
import { chromium } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { UsageRecord } from "../../src/domain/UsageRecord.js"
import { usageRow } from "../support/UsageRows.js"
import { makeDashboardServer } from "./DashboardServer.js"

const chromiumPath = "/usr/bin/chromium"
const hasChromium = existsSync(chromiumPath)
if (!hasChromium) console.warn(`Skipping the dashboard's browser tests: ${chromiumPath} is missing (apt-get install chromium)`)

const TOKEN = "dashboard-test-token-0123456789"
const shots = Path.resolve("test-results/dashboard")
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8")

const d = BigDecimal.unsafeFromString
const DAY = 86_400_000
const now = Date.now()
/** `daysAgo` days before now, a minute apart per `k`, so today's rows are never in the future. */
const at = (daysAgo: number, k = 0) => new Date(now - daysAgo * DAY - (k + 1) * 60_000)

const MINI = "openai/gpt-4o-mini"
const HAIKU = "anthropic/claude-3.5-haiku"
const FLASH = "google/gemini-flash-1.5"
const LLAMA = "meta-llama/llama-3.1-8b-instruct"

/**
 * Several models and days, one failure of unknown cost, one row only the 90-day view holds, enough rows to
 * page, and two named callers beside rows made without one.
 */
const seed: ReadonlyArray<UsageRecord> = [
  usageRow({ model: MINI, createdAt: at(0, 1), costUsd: Option.some(d("0.00002415")) }),
  usageRow({ model: HAIKU, createdAt: at(0, 2), costUsd: Option.some(d("0.0012")), purpose: "summary-part" }),
  usageRow({ model: MINI, createdAt: at(1, 1), costUsd: Option.none(), costSource: "unknown", status: "error", errorCode: "502" }),
  usageRow({ model: MINI, createdAt: at(1, 2), costUsd: Option.some(d("0.1")), attempt: 2 }),
  usageRow({ model: HAIKU, createdAt: at(3, 1), costUsd: Option.some(d("0.25")), purpose: "summary-combine", caller: "alpha" }),
  usageRow({ model: FLASH, createdAt: at(3, 2), costUsd: Option.some(d("0.000001")), caller: "alpha" }),
  usageRow({ model: FLASH, createdAt: at(5), costUsd: Option.none(), costSource: "unknown", caller: "beta" }),
  usageRow({ model: LLAMA, createdAt: at(40), costUsd: Option.some(d("1.5")) }),
  ...Array.from({ length: 24 }, (_, k) => usageRow({ model: MINI, createdAt: at(2, k), costUsd: Option.some(d("0.00001")) }))
]

const env = {
  API_TOKEN: TOKEN,
  COST_ALERT_DAILY_USD: "0.002",
  COST_ALERT_MONTHLY_USD: "10",
  COST_ALERT_INTERVAL_MS: "200",
  COST_HARD_LIMIT_MONTHLY_USD: "5",
  LLM_CIRCUIT_THRESHOLD: "2",
  LLM_CIRCUIT_COOLDOWN_MS: "600000"
}

describe.skipIf(!hasChromium)(`the dashboard in Chromium${hasChromium ? "" : " (skipped: /usr/bin/chromium is missing)"}`, () => {
  let scope: Scope.CloseableScope
  let server: Effect.Effect.Success<ReturnType<typeof makeDashboardServer>>
  let browser: BrowserContext
  const consoleErrors: Array<string> = []

  const api = async (path: string): Promise<any> => {
    const response = await fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } })
    expect(response.status, path).toBe(200)
    return response.json()
  }

  const newPage = async (width = 1440, height = 1000) => {
    const page = await browser.newPage()
    await page.setViewportSize({ width, height })
    page.on("console", (m) => {
      if (m.type() === "error") consoleErrors.push(`${m.text()} (${m.location().url})`)
    })
    page.on("pageerror", (e) => consoleErrors.push(e.message))
    return page
  }

  const logIn = async (page: Page, token = TOKEN) => {
    await page.goto(`${server.url}/dashboard`)
    await page.getByLabel("API token").fill(token)
    await page.getByRole("button", { name: "Log in" }).click()
  }

  const figure = (page: Page, name: string) => page.locator(`[data-figure="${name}"]`).first().textContent()

  const seriousViolations = async (page: Page) => {
    await page.evaluate(axeSource)
    const result = await page.evaluate(() => (globalThis as any).axe.run((globalThis as any).document, { resultTypes: ["violations"] }))
    return (result.violations as Array<{ id: string; impact: string; nodes: Array<{ target: Array<string> }> }>)
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`)
  }

  beforeAll(async () => {
    scope = await Effect.runPromise(Scope.make())
    server = await Effect.runPromise(Scope.extend(makeDashboardServer(env), scope))
    await Effect.runPromise(Effect.forEach(seed, server.repo.record, { discard: true }))
    // One real summary through the emulator, so the process has an outcome to count.
    const summary = await fetch(`${server.url}/v1/summaries`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ before: "Data is kept for 30 days.", after: "Data is kept for 90 days." })
    })
    expect(summary.status).toBe(200)
    // The daily alert budget (0.002) is past its 50% level today: wait for the monitor to send it.
    for (let i = 0; i < 100; i++) {
      const report = await api("/v1/usage")
      if (report.budgets.some((b: any) => b.budget === "daily" && b.levelsAlerted.includes("0.5"))) break
      await new Promise((r) => setTimeout(r, 100))
    }
    mkdirSync(shots, { recursive: true })
    browser = await chromium.launchPersistentContext(mkdtempSync(Path.join(tmpdir(), "chromium-profile-")), {
      executablePath: chromiumPath,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-quic",
        "--no-first-run",
        "--disable-component-update",
        "--disable-sync"
      ]
    })
  }, 120_000)

  afterAll(async () => {
    await browser?.close()
    if (scope) await Effect.runPromise(Scope.close(scope, Exit.void))
  })

  it("refuses a wrong token, then logs in with the right one into an HttpOnly, SameSite=Strict session", async () => {
    const page = await newPage()
    await logIn(page, "not-the-token")
    expect(await page.getByRole("alert").textContent()).toContain("not accepted")
    expect(await page.getByRole("heading", { name: "Log in" }).count()).toBe(1)
    expect((await browser.cookies()).filter((c) => c.name === "dashboard_session")).toEqual([])

    await logIn(page)
    await page.waitForURL(`${server.url}/dashboard`)
    expect(await page.getByRole("heading", { level: 1 }).textContent()).toBe("Spend dashboard")
    const [cookie] = (await browser.cookies()).filter((c) => c.name === "dashboard_session")
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: "Strict", path: "/dashboard" })
    expect(cookie!.expires * 1000).toBeGreaterThan(Date.now() + 7 * 3600_000)
    expect(cookie!.value).not.toContain(TOKEN)
    expect(page.url()).not.toContain(TOKEN)
    expect(await page.content()).not.toContain(TOKEN)
    // Without the cookie the page is not served.
    const anonymous = await fetch(`${server.url}/dashboard`, { redirect: "manual" })
    expect([anonymous.status, anonymous.headers.get("location")]).toEqual([303, "/dashboard/login"])
    expect((await fetch(`${server.url}/dashboard/live`)).status).toBe(401)
    await page.close()
  })

  it("shows exactly the figures of /v1/usage: totals, per-model spend, budgets and the unknown count", async () => {
    const page = await newPage()
    await page.goto(`${server.url}/dashboard`)
    const today = new Date().toISOString().slice(0, 10)
    const from = new Date(Date.parse(`${today}T00:00:00Z`) - 29 * DAY).toISOString().slice(0, 10)
    const byModel = await api(`/v1/usage?from=${from}&to=${today}&groupBy=model`)

    // The seeded figures, worked out by hand (plus the summary just made, which is gpt-4o-mini's).
    expect(byModel.total.unknownCostCalls).toBe(2)
    expect(byModel.total.failedCalls).toBe(1)
    expect(byModel.groups.find((g: any) => g.key === HAIKU).costUsd).toBe("0.2512")
    expect(byModel.groups.find((g: any) => g.key === FLASH).costUsd).toBe("0.000001")
    expect(byModel.groups.map((g: any) => g.key)).not.toContain(LLAMA)

    expect(await figure(page, "period-cost")).toBe(byModel.total.costUsd)
    expect(await figure(page, "period-calls")).toBe(byModel.total.calls.toLocaleString("en-US"))
    expect(await figure(page, "period-failed")).toBe(byModel.total.failedCalls.toLocaleString("en-US"))
    expect(await figure(page, "period-unknown")).toBe(byModel.total.unknownCostCalls.toLocaleString("en-US"))
    expect(await figure(page, "period-tokens")).toBe(byModel.total.totalTokens.toLocaleString("en-US"))
    for (const group of byModel.groups) {
      expect(await figure(page, `model-cost:${group.key}`)).toBe(group.costUsd)
      const cells = await page.locator(`tr[data-model="${group.key}"] td`).allTextContents()
      expect(cells.slice(1, 4)).toEqual([group.calls, group.failedCalls, group.unknownCostCalls].map((n) => n.toLocaleString("en-US")))
    }
    // Unknown is written as unknown, never as a zero cost: beside a known part, and alone on a day of unknown cost only.
    expect(await page.locator(`tr[data-model="${MINI}"] .unknown`).textContent()).toBe("unknown (1 call)")
    const unknownDay = new Date(at(5)).toISOString().slice(0, 10)
    expect(await page.locator(`tr[data-day="${unknownDay}"] td`).first().innerText()).toBe("unknown (1 call)")

    const todayReport = await api("/v1/usage")
    expect(await figure(page, "today-cost")).toBe(todayReport.total.costUsd)
    const month = await api(`/v1/usage?from=${today.slice(0, 7)}-01&to=${today}&groupBy=month`)
    expect(await figure(page, "month-cost")).toBe(month.total.costUsd)

    expect(todayReport.budgets.map((b: any) => `${b.budget}-${b.kind}`)).toEqual(["daily-alert", "monthly-alert", "monthly-hard"])
    for (const b of todayReport.budgets) {
      const id = `budget-${b.budget}-${b.kind}`
      expect([id, await figure(page, `${id}-spent`), await figure(page, `${id}-limit`)]).toEqual([id, b.spentUsd, b.limitUsd])
      if (b.kind === "hard") expect(await figure(page, `${id}-reserved`)).toBe(b.reservedUsd)
      else {
        const sent = await page.locator(`[data-budget="${id}"] li[data-sent="true"]`).evaluateAll((els) => els.map((e) => e.getAttribute("data-level")))
        expect([id, sent]).toEqual([id, b.levelsAlerted])
      }
    }
    expect(todayReport.budgets.find((b: any) => b.budget === "daily").levelsAlerted).toContain("0.5")

    const latest = await api("/v1/usage/calls?limit=20")
    expect(await page.locator("tr[data-call]").evaluateAll((rows) => rows.slice(10).map((r) => r.getAttribute("data-call"))))
      .toEqual(latest.calls.map((c: any) => c.id))
    await page.close()
  })

  it("charts one series per model over 30 days, 90 after the switch, and hovering a bar gives the exact decimal", async () => {
    const page = await newPage()
    await page.goto(`${server.url}/dashboard`)
    const chart = page.locator("#chart[data-rendered=true]")
    await chart.waitFor()
    const models30 = (await api(`/v1/usage?from=${daysBefore(29)}&to=${daysBefore(0)}&groupBy=model`)).groups.length
    expect([await chart.getAttribute("data-series"), await chart.getAttribute("data-points")]).toEqual([String(models30), "30"])
    expect(await page.locator(".u-legend .u-series").count()).toBe(models30 + 1)

    // Off the bars the legend gives each model's exact total of the period.
    expect(await page.locator(".u-legend .u-series", { hasText: HAIKU }).textContent()).toContain("0.2512 USD in 30 days")
    // The right-most bar is today; the legend then shows each model's exact spend of the day.
    await page.locator("#chart").scrollIntoViewIfNeeded()
    const over = (await page.locator(".u-over").boundingBox())!
    await page.mouse.move(over.x + over.width * (29.5 / 30), over.y + over.height * 0.9)
    const todayByModel = await api(`/v1/usage?from=${daysBefore(0)}&to=${daysBefore(0)}&groupBy=model`)
    const haiku = todayByModel.groups.find((g: any) => g.key === HAIKU).costUsd
    await expect.poll(() => page.locator(".u-legend .u-series", { hasText: HAIKU }).textContent()).toContain(`${haiku} USD`)
    // Five days ago Flash's only call has an unknown cost: the legend says so rather than "0".
    const flashDay = 29 - (Date.parse(daysBefore(0)) - Date.parse(new Date(at(5)).toISOString().slice(0, 10))) / DAY
    await page.mouse.move(over.x + over.width * ((flashDay + 0.5) / 30), over.y + over.height * 0.9)
    await expect.poll(() => page.locator(".u-legend .u-series", { hasText: FLASH }).textContent()).toContain("unknown (1 call)")
    expect(await page.locator(".u-legend .u-series", { hasText: FLASH }).textContent()).not.toContain("0 USD")

    const colourOf = (model: string) =>
      page.locator(".u-legend .u-series", { hasText: model }).locator(".u-marker").evaluate((e) => (globalThis as any).getComputedStyle(e).backgroundColor as string)
    const colours30 = [await colourOf(MINI), await colourOf(HAIKU)]

    await page.getByRole("link", { name: "Last 90 days" }).click()
    await page.locator("#chart[data-rendered=true]").waitFor()
    // A model keeps its colour when the period changes.
    expect([await colourOf(MINI), await colourOf(HAIKU)]).toEqual(colours30)
    const models90 = (await api(`/v1/usage?from=${daysBefore(89)}&to=${daysBefore(0)}&groupBy=model`)).groups.length
    expect(models90).toBe(models30 + 1)
    expect([await page.locator("#chart").getAttribute("data-series"), await page.locator("#chart").getAttribute("data-points")])
      .toEqual([String(models90), "90"])
    await page.screenshot({ path: Path.join(shots, "dashboard-90-days-1440.png"), fullPage: true })
    await page.close()
  })

  it("filters the calls table by model, status and purpose, and pages it with the API's cursor", async () => {
    const page = await newPage()
    await page.goto(`${server.url}/dashboard`)
    const latest = page.locator("#calls table").nth(1).locator("tbody tr")

    await page.getByLabel("Status", { exact: true }).selectOption("error")
    await page.getByRole("button", { name: "Show calls" }).click()
    const errors = await api("/v1/usage/calls?status=error")
    expect(errors.calls.length).toBe(1)
    expect(await latest.evaluateAll((rows) => rows.map((r) => r.getAttribute("data-call")))).toEqual(errors.calls.map((c: any) => c.id))
    expect(await latest.first().textContent()).toContain("unknown")

    await page.getByLabel("Status", { exact: true }).selectOption("")
    await page.getByLabel("Purpose", { exact: true }).selectOption("summary-combine")
    await page.getByRole("button", { name: "Show calls" }).click()
    expect(await latest.count()).toBe(1)
    expect(await latest.first().textContent()).toContain(HAIKU)

    await page.getByLabel("Purpose", { exact: true }).selectOption("")
    await page.getByLabel("Model", { exact: true }).selectOption(MINI)
    await page.getByRole("button", { name: "Show calls" }).click()
    const first = await api(`/v1/usage/calls?limit=20&model=${encodeURIComponent(MINI)}`)
    const second = await api(`/v1/usage/calls?limit=20&model=${encodeURIComponent(MINI)}&before=${first.nextCursor}`)
    expect(await latest.evaluateAll((rows) => rows.map((r) => r.getAttribute("data-call")))).toEqual(first.calls.map((c: any) => c.id))
    await page.getByRole("link", { name: "Older calls" }).click()
    expect(await latest.evaluateAll((rows) => rows.map((r) => r.getAttribute("data-call")))).toEqual(second.calls.map((c: any) => c.id))
    expect(second.calls.length).toBeGreaterThan(0)
    expect(await page.getByLabel("Model", { exact: true }).inputValue()).toBe(MINI)
    await page.close()
  })

  it("filters the calls table by caller and shows spend per caller exactly as /v1/usage?groupBy=caller", async () => {
    const page = await newPage()
    await page.goto(`${server.url}/dashboard`)
    const latest = page.locator("#calls table").nth(1).locator("tbody tr")

    await page.getByLabel("Caller", { exact: true }).selectOption("alpha")
    await page.getByRole("button", { name: "Show calls" }).click()
    const alpha = await api("/v1/usage/calls?limit=20&caller=alpha")
    expect(alpha.calls.length).toBe(2)
    expect(await latest.evaluateAll((rows) => rows.map((r) => r.getAttribute("data-call")))).toEqual(alpha.calls.map((c: any) => c.id))
    expect(await page.getByLabel("Caller", { exact: true }).inputValue()).toBe("alpha")
    expect(new URL(await page.getByRole("link", { name: /latest 500 calls/ }).getAttribute("href") ?? "", server.url).searchParams.get("caller"))
      .toBe("alpha")

    // The summary made through the API above is the token's caller, "default"; the seeded rest have none.
    const byCaller = await api(`/v1/usage?from=${daysBefore(29)}&to=${daysBefore(0)}&groupBy=caller`)
    expect(byCaller.groups.map((g: any) => g.key)).toEqual(["(none)", "alpha", "beta", "default"])
    expect(await page.locator("tr[data-caller]").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-caller"))))
      .toEqual(byCaller.groups.map((g: any) => g.key))
    for (const group of byCaller.groups) {
      expect(await figure(page, `caller-cost:${group.key}`)).toBe(group.costUsd)
      const cells = await page.locator(`tr[data-caller="${group.key}"] td`).allTextContents()
      expect(cells.slice(1)).toEqual([group.calls, group.failedCalls, group.unknownCostCalls].map((n) => n.toLocaleString("en-US")))
    }
    expect(await page.locator(`tr[data-caller="beta"] td`).first().innerText()).toBe("unknown (1 call)")
    await page.close()
  })

  it("updates the live state without a reload when the circuit opens", async () => {
    const page = await newPage()
    await page.goto(`${server.url}/dashboard`)
    const live = page.locator("dl.live")
    expect([await live.getAttribute("data-circuit"), await live.getAttribute("data-ai")]).toEqual(["closed", "on"])
    await page.evaluate(() => ((globalThis as any).notReloaded = true))

    await Effect.runPromise(Effect.repeatN(server.circuit.recordTransientFailure, 1))
    await expect.poll(() => live.getAttribute("data-circuit"), { timeout: 10_000 }).toBe("open")
    expect(await live.getAttribute("data-ai")).toBe("off")
    expect(await page.locator('[data-live="circuit"]').textContent()).toContain("open")
    expect(await page.locator('[data-live="ai"]').textContent()).toContain("circuit is open")
    expect(await page.evaluate(() => (globalThis as any).notReloaded)).toBe(true)
    await page.close()
  })

  it("has no serious or critical axe violations and reads at 1440 and 375 px; screenshots saved", async () => {
    for (const [width, name] of [[1440, "dashboard-1440.png"], [375, "dashboard-375.png"]] as const) {
      const page = await newPage(width, 900)
      await page.goto(`${server.url}/dashboard`)
      await page.locator("#chart[data-rendered=true]").waitFor()
      expect([width, await seriousViolations(page)]).toEqual([width, []])
      // Nothing but the tables' own scrolling regions is wider than the screen.
      expect(await page.evaluate(() => (globalThis as any).document.documentElement.scrollWidth as number)).toBeLessThanOrEqual(width)
      await page.screenshot({ path: Path.join(shots, name), fullPage: true })
      if (width === 375) {
        // The tall phone page also in screen-high parts, which can be looked at one by one.
        const height = await page.evaluate(() => (globalThis as any).document.documentElement.scrollHeight as number)
        for (let y = 0, part = 1; y < height; y += 1200, part++) {
          await page.screenshot({ path: Path.join(shots, `dashboard-375-part${part}.png`), fullPage: true, clip: { x: 0, y, width, height: Math.min(1200, height - y) } })
        }
      }
      if (width === 1440) {
        // Close-ups of the parts a full-page picture shrinks too far to judge.
        await page.locator("#budgets-title").locator("..").screenshot({ path: Path.join(shots, "budgets-1440.png") })
        await page.locator(".chart-figure").screenshot({ path: Path.join(shots, "chart-1440.png") })
      }
      if (width === 1440 && process.env["DASHBOARD_README_SCREENSHOT"] === "1") {
        // The README's picture: budgets, the chart and the spend by model.
        const bottom = await page.locator("#by-model-title").evaluate((e) => e.closest("div")!.getBoundingClientRect().bottom + (globalThis as any).scrollY as number)
        await page.screenshot({ path: Path.resolve("docs/dashboard.png"), fullPage: true, clip: { x: 0, y: 0, width, height: Math.ceil(bottom) + 16 } })
      }
      await page.close()
    }
    const login = await browser.newPage()
    await login.goto(`${server.url}/dashboard/login`)
    expect(await seriousViolations(login)).toEqual([])
    await login.screenshot({ path: Path.join(shots, "login-1440.png") })
    await login.close()
  })

  it("logs out: the session ends and the page asks for the token again", async () => {
    const page = await newPage()
    await page.goto(`${server.url}/dashboard`)
    await page.getByRole("button", { name: "Log out" }).click()
    await page.waitForURL(`${server.url}/dashboard/login`)
    await page.goto(`${server.url}/dashboard`)
    expect(page.url()).toBe(`${server.url}/dashboard/login`)
    expect((await browser.cookies()).filter((c) => c.name === "dashboard_session")).toEqual([])
    await page.close()
  })

  it("logged no console error on any page", () => {
    // The refused login answers 401, which Chromium reports as a failed load: that one is expected.
    expect(consoleErrors.filter((e) => !e.includes("status of 401"))).toEqual([])
  })
})

function daysBefore(n: number) {
  const today = new Date().toISOString().slice(0, 10)
  return new Date(Date.parse(`${today}T00:00:00Z`) - n * DAY).toISOString().slice(0, 10)
}

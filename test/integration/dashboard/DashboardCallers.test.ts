import { describe, expect, it } from "@effect/vitest"
import { BigDecimal, Effect, Option } from "effect"
import { usageRow } from "../../support/UsageRows.js"
import { makeDashboardServer } from "../../browser/DashboardServer.js"

const d = BigDecimal.unsafeFromString
const now = Date.now()
/** A minute apart per `k`, newest first, never in the future. */
const at = (k: number) => new Date(now - (k + 1) * 60_000)

/** alpha: enough rows to page (one failed, of unknown cost); beta: one; and one row made without a caller. */
const seed = [
  usageRow({ caller: "alpha", createdAt: at(0), costUsd: Option.none(), costSource: "unknown", status: "error", errorCode: "502" }),
  usageRow({ caller: "beta", createdAt: at(1), costUsd: Option.some(d("0.25")) }),
  usageRow({ caller: null, createdAt: at(2), costUsd: Option.some(d("0.0012")) }),
  ...Array.from({ length: 22 }, (_, k) => usageRow({ caller: "alpha", createdAt: at(3 + k), costUsd: Option.some(d("0.00001")) }))
]

const text = (url: string) =>
  Effect.promise(async () => {
    const response = await fetch(url, { redirect: "manual" })
    expect(response.status, url).toBe(200)
    return response.text()
  })

const json = (url: string) => Effect.map(text(url), (body): any => JSON.parse(body))

/** The latest-calls table's rows, by their `data-call` ids (the most-expensive table comes before it). */
const latestIds = (html: string) => [...html.slice(html.indexOf(`id="latest-caption"`)).matchAll(/<tr data-call="([^"]+)"/g)].map((m) => m[1])

const unescape = (s: string) => s.replace(/&amp;/g, "&")

describe("the dashboard's callers", () => {
  it.live("the calls table filters by caller like /v1/usage/calls, keeping the caller in paging and export links", () =>
    Effect.gen(function*() {
      const server = yield* makeDashboardServer({})
      yield* Effect.forEach(seed, server.repo.record, { discard: true })

      const all = yield* text(`${server.url}/dashboard`)
      // The select offers the named callers only; a row without one reads "(none)" in its Caller cell.
      const select = all.slice(all.indexOf(`<label for="filter-caller">Caller</label>`))
      expect(select.slice(0, select.indexOf("</select>"))).toMatch(
        /<select id="filter-caller" name="caller"><option value="">Any<\/option><option value="alpha">alpha<\/option><option value="beta">beta<\/option>$/
      )
      const noneRow = all.slice(all.indexOf(`<tr data-call="${seed[2]!.id}"`))
      expect(noneRow.slice(0, noneRow.indexOf("</tr>"))).toContain(`<td><span class="muted">(none)</span></td>`)

      const beta = yield* text(`${server.url}/dashboard?caller=beta`)
      expect(latestIds(beta)).toEqual([seed[1]!.id])
      expect(beta).toContain(`<option value="beta" selected>beta</option>`)

      const first = yield* json(`${server.url}/v1/usage/calls?limit=20&caller=alpha`)
      const alpha = yield* text(`${server.url}/dashboard?caller=alpha`)
      expect(first.calls.every((c: any) => c.caller === "alpha")).toBe(true)
      expect(latestIds(alpha)).toEqual(first.calls.map((c: any) => c.id))
      expect(latestIds(alpha)).not.toContain(seed[1]!.id)

      // "Older calls" keeps the caller and shows the API's next page of that caller's calls.
      const older = unescape(/<a rel="next" href="([^"]+)"/.exec(alpha)![1]!)
      expect(new URL(older, server.url).searchParams.get("caller")).toBe("alpha")
      const second = yield* json(`${server.url}/v1/usage/calls?limit=20&caller=alpha&before=${first.nextCursor}`)
      expect(second.calls.length).toBe(3)
      expect(latestIds(yield* text(`${server.url}${older}`))).toEqual(second.calls.map((c: any) => c.id))

      // The CSV export link carries the filter: alpha's 23 rows and nobody else's.
      const exportLink = unescape(/href="(\/dashboard\/export\/calls\.csv[^"]*)"/.exec(alpha)![1]!)
      expect(new URL(exportLink, server.url).searchParams.get("caller")).toBe("alpha")
      const csv = (yield* text(`${server.url}${exportLink}`)).trim().split(/\r?\n/)
      const callerAt = csv[0]!.split(",").indexOf("caller")
      expect(csv.slice(1).map((line) => line.split(",")[callerAt])).toEqual(Array(23).fill("alpha"))
    }).pipe(Effect.scoped))

  it.live("the per-caller table shows exactly /v1/usage?groupBy=caller for the period", () =>
    Effect.gen(function*() {
      const server = yield* makeDashboardServer({})
      yield* Effect.forEach(seed, server.repo.record, { discard: true })
      const today = new Date().toISOString().slice(0, 10)
      const from = new Date(Date.parse(`${today}T00:00:00Z`) - 29 * 86_400_000).toISOString().slice(0, 10)
      const report = yield* json(`${server.url}/v1/usage?from=${from}&to=${today}&groupBy=caller`)
      const html = yield* text(`${server.url}/dashboard`)

      expect(report.groups.map((g: any) => g.key)).toEqual(["(none)", "alpha", "beta"])
      expect(report.groups.find((g: any) => g.key === "alpha")).toMatchObject({ calls: 23, failedCalls: 1, unknownCostCalls: 1, costUsd: "0.00022" })
      const rows = [...html.matchAll(/<tr data-caller="([^"]+)">(.*?)<\/tr>/g)]
      expect(rows.map((m) => unescape(m[1]!))).toEqual(report.groups.map((g: any) => g.key))
      for (const g of report.groups) {
        const row = rows.find((m) => unescape(m[1]!) === g.key)![2]!
        expect(row).toContain(`<span class="usd" data-figure="caller-cost:${g.key}">${g.costUsd}</span>`)
        const counts = [...row.matchAll(/<td class="num">([\d,]+)<\/td>/g)].map((m) => m[1])
        expect([g.key, counts]).toEqual([g.key, [g.calls, g.failedCalls, g.unknownCostCalls].map(String)])
      }
      expect(rows.find((m) => m[1] === "alpha")![2]).toContain("unknown (1 call)")
    }).pipe(Effect.scoped))
})

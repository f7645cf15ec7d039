import { describe, expect, it } from "@effect/vitest"
import { BigDecimal, Effect, Option } from "effect"
import { usageRow } from "../../support/UsageRows.js"
import { makeDashboardServer } from "../../browser/DashboardServer.js"

const TOKEN = "dashboard-auth-token-0123456789"

const request = (url: string, init: RequestInit = {}) =>
  Effect.promise(() => fetch(url, { redirect: "manual", ...init }))

const login = (url: string, token: string) =>
  request(`${url}/dashboard/login`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ token }).toString()
  })

describe("dashboard access", () => {
  it.live("on a loopback HOST with no API_TOKEN the page is open, like the API, with no login or logout", () =>
    Effect.gen(function*() {
      const server = yield* makeDashboardServer({})
      yield* server.repo.record(usageRow({ costUsd: Option.some(BigDecimal.unsafeFromString("0.00002415")) }))
      const page = yield* request(`${server.url}/dashboard`)
      expect(page.status).toBe(200)
      const html = yield* Effect.promise(() => page.text())
      expect(html).toContain("<h1>Spend dashboard</h1>")
      // The figures are in the HTML itself, for a browser with JavaScript off.
      expect(html).toContain(`<span class="usd" data-figure="period-cost">0.00002415</span>`)
      expect(html).toContain(`<span class="usd" data-figure="today-cost">0.00002415</span>`)
      expect(html).not.toContain("Log out")
      expect(page.headers.get("content-security-policy")).toContain("script-src 'self'")
      expect((yield* request(`${server.url}/dashboard/login`)).headers.get("location")).toBe("/dashboard")
      expect((yield* request(`${server.url}/dashboard/live`)).status).toBe(200)
      // Form bodies are let through for the dashboard's forms only; the API still takes JSON alone.
      const form = yield* request(`${server.url}/v1/summaries`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: "before=a&after=b"
      })
      expect(form.status).toBe(415)
    }).pipe(Effect.scoped))

  it.live("with API_TOKEN, only a login with that token gets a session cookie, and the cookie alone opens the page", () =>
    Effect.gen(function*() {
      const server = yield* makeDashboardServer({ API_TOKEN: TOKEN })
      expect((yield* request(`${server.url}/dashboard`)).headers.get("location")).toBe("/dashboard/login")
      expect((yield* request(`${server.url}/dashboard/export/usage.csv`)).status).toBe(401)

      const refused = yield* login(server.url, "wrong-token")
      expect(refused.status).toBe(401)
      expect(refused.headers.get("set-cookie")).toBeNull()
      expect((yield* login(server.url, "")).status).toBe(401)

      const accepted = yield* login(server.url, TOKEN)
      expect([accepted.status, accepted.headers.get("location")]).toEqual([303, "/dashboard"])
      const setCookie = accepted.headers.get("set-cookie")!
      expect(setCookie).toMatch(/^dashboard_session=[^;]+; /)
      expect(setCookie).toContain("HttpOnly")
      expect(setCookie).toContain("SameSite=Strict")
      expect(setCookie).toContain("Path=/dashboard")
      expect(setCookie).toMatch(/Max-Age=28800/)
      expect(setCookie).not.toContain(TOKEN)
      const cookie = setCookie.split(";")[0]!

      const page = yield* request(`${server.url}/dashboard`, { headers: { cookie } })
      expect(page.status).toBe(200)
      expect(yield* Effect.promise(() => page.text())).not.toContain(TOKEN)
      const csv = yield* request(`${server.url}/dashboard/export/usage.csv?groupBy=model`, { headers: { cookie } })
      expect([csv.status, csv.headers.get("content-type")]).toEqual([200, "text/csv; charset=utf-8"])

      // A cookie whose signature does not match is no session.
      const forged = cookie.replace(/.$/, (c) => (c === "A" ? "B" : "A"))
      expect((yield* request(`${server.url}/dashboard`, { headers: { cookie: forged } })).status).toBe(303)

      // Logging out ends this session on the server too, not only in the browser.
      const out = yield* request(`${server.url}/dashboard/logout`, {
        method: "POST",
        headers: { cookie, "content-type": "application/x-www-form-urlencoded" }
      })
      expect([out.status, out.headers.get("location")]).toEqual([303, "/dashboard/login"])
      expect(out.headers.get("set-cookie")).toMatch(/^dashboard_session=; .*Max-Age=0/)
      expect((yield* request(`${server.url}/dashboard`, { headers: { cookie } })).status).toBe(303)
    }).pipe(Effect.scoped))
})

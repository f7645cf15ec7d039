import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Schema } from "effect"
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { BudgetGuard, budgetStatus } from "../budget/BudgetGuard.js"
import { Config } from "../Config.js"
import { Authorization } from "../http/Authorization.js"
import { CircuitBreaker } from "../llm/CircuitBreaker.js"
import { RateLimiter } from "../llm/RateLimiter.js"
import { Pricing } from "../llm/Pricing.js"
import * as UsageHandlers from "../usage/UsageHandlers.js"
import { UsageRepo } from "../usage/UsageRepo.js"
import { isOpen, makeSessions, tokenAccepted } from "./DashboardAuth.js"
import { clientScript, stylesheet } from "./DashboardClient.js"
import type { PeriodDays } from "./DashboardData.js"
import * as DashboardData from "./DashboardData.js"
import * as DashboardQueries from "./DashboardQueries.js"
import { errorPage, liveFields, loginPage, page } from "./DashboardPage.js"

/** Scripts only from this origin, no inline code, no framing: the page holds the ledger. */
const pageHeaders = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store"
}

const html = (body: string, status = 200) => HttpServerResponse.html(body).pipe(HttpServerResponse.setStatus(status), HttpServerResponse.setHeaders(pageHeaders))

const redirect = (location: string) => HttpServerResponse.empty({ status: 303, headers: { location, "cache-control": "no-store" } })

/** uPlot as published, read from `node_modules` once at start: no CDN, no build of its own. */
const uplot = () => {
  const require = createRequire(import.meta.url)
  const file = (name: string) => readFileSync(require.resolve(`uplot/dist/${name}`), "utf8")
  return { js: file("uPlot.iife.min.js"), css: file("uPlot.min.css") }
}

const asset = (body: string, contentType: string) =>
  HttpServerResponse.text(body, {
    contentType,
    headers: { "cache-control": "public, max-age=3600", "x-content-type-options": "nosniff" }
  })

const LoginForm = Schema.Struct({ token: Schema.optionalWith(Schema.String, { default: () => "" }) })

const isUnavailable = (e: unknown) => typeof e === "object" && e !== null && "_tag" in e && e._tag === "ServiceUnavailable"

const periodOf = (days: string | undefined): PeriodDays => (days === "90" ? 90 : 30)

/**
 * `GET /dashboard` and what it needs: the login form, a session cookie, the live state as JSON,
 * CSV exports through `/v1/usage`'s own handlers and the static assets.
 */
export const DashboardHttp = HttpApiBuilder.Router.use((router) =>
  Effect.gen(function*() {
    const context = yield* Effect.context<Config | UsageRepo | BudgetGuard | CircuitBreaker | RateLimiter | Pricing | Authorization>()
    const queries = yield* DashboardQueries.make
    const sessions = yield* makeSessions
    const startedAt = new Date()
    const library = uplot()

    /** A page or data only for a logged-in browser (or anyone, when the API itself is open). */
    const guarded = <E, R>(
      handler: (request: HttpServerRequest.HttpServerRequest) => Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>,
      denied: () => HttpServerResponse.HttpServerResponse
    ) =>
      Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        return (yield* sessions.valid(request)) ? yield* handler(request) : denied()
      }).pipe(Effect.provide(context))

    const toLogin = () => redirect("/dashboard/login")
    const unauthorized = () => HttpServerResponse.unsafeJson({ _tag: "Unauthorized", message: "Log in at /dashboard/login" }, { status: 401 })

    const dashboard = (request: HttpServerRequest.HttpServerRequest) =>
      Effect.gen(function*() {
        const params = new URL(request.url, "http://dashboard").searchParams
        const given = (name: string) => params.get(name) ?? undefined
        const filter = { model: given("model"), status: given("status"), purpose: given("purpose"), caller: given("caller") }
        const view = yield* DashboardData.load(queries, startedAt, {
          days: periodOf(given("days")),
          before: given("before"),
          filter: {
            model: filter.model || undefined,
            status: filter.status === "success" || filter.status === "error" ? filter.status : undefined,
            purpose: filter.purpose || undefined,
            caller: filter.caller || undefined
          }
        })
        return html(page(view, { logout: !(yield* isOpen) }))
      }).pipe(
        Effect.catchTags({
          BadRequest: (e) => Effect.succeed(html(errorPage(e.message), 400)),
          ServiceUnavailable: (e) => Effect.succeed(html(errorPage(e.message), 503))
        })
      )

    const liveState = Effect.map(DashboardData.live, (state) =>
      HttpServerResponse.unsafeJson(
        { ai: state.ai.on ? "on" : "off", circuit: state.circuit, fields: liveFields(state) },
        { headers: { "cache-control": "no-store" } }
      ))

    const exported = <A, E, R>(run: (params: Record<string, string>) => Effect.Effect<A | HttpServerResponse.HttpServerResponse, E, R>) =>
      (request: HttpServerRequest.HttpServerRequest) =>
        run({ ...Object.fromEntries(new URL(request.url, "http://dashboard").searchParams), format: "csv" }).pipe(
          Effect.map((r) => HttpServerResponse.isServerResponse(r) ? r : HttpServerResponse.empty({ status: 500 })),
          Effect.catchAll((e) => Effect.succeed(HttpServerResponse.unsafeJson(e, { status: isUnavailable(e) ? 503 : 400 })))
        )

    const login = Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      if (yield* isOpen) return redirect("/dashboard")
      const form = yield* HttpServerRequest.schemaBodyUrlParams(LoginForm).pipe(Effect.orElseSucceed(() => ({ token: "" })))
      if (!(yield* tokenAccepted(form.token))) {
        yield* Effect.logWarning("Dashboard login refused: wrong token")
        return html(loginPage("That token is not accepted. Use the API_TOKEN the service runs with."), 401)
      }
      return yield* sessions.start(request, redirect("/dashboard"))
    }).pipe(Effect.provide(context), Effect.orDie)

    const logout = Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      return yield* sessions.end(request, redirect("/dashboard/login"))
    }).pipe(Effect.provide(context), Effect.orDie)

    yield* router.get("/dashboard", guarded(dashboard, toLogin))
    yield* router.get(
      "/dashboard/login",
      Effect.map(Effect.provide(isOpen, context), (open) => open ? redirect("/dashboard") : html(loginPage(null)))
    )
    yield* router.post("/dashboard/login", login)
    yield* router.post("/dashboard/logout", logout)
    yield* router.get("/dashboard/live", guarded(() => liveState, unauthorized))
    yield* router.get("/dashboard/export/usage.csv", guarded(exported((params) => UsageHandlers.totalsIn(params, budgetStatus)), unauthorized))
    yield* router.get("/dashboard/export/calls.csv", guarded(exported(UsageHandlers.callsIn), unauthorized))
    yield* router.get("/dashboard/assets/uPlot.iife.min.js", Effect.succeed(asset(library.js, "text/javascript; charset=utf-8")))
    yield* router.get("/dashboard/assets/uPlot.min.css", Effect.succeed(asset(library.css, "text/css; charset=utf-8")))
    yield* router.get("/dashboard/assets/dashboard.js", Effect.succeed(asset(clientScript, "text/javascript; charset=utf-8")))
    yield* router.get("/dashboard/assets/dashboard.css", Effect.succeed(asset(stylesheet, "text/css; charset=utf-8")))
  })
)

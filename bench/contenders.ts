/**
 * The processes `bench/run.ts` measures, each started as a child of its own against the same
 * upstream: a bare proxy, an SDK proxy, the Portkey gateway (installed outside the project) and
 * this service on a fresh PostgreSQL database.
 */
import { execFileSync } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import pg from "pg"
import type { LoadSpec } from "./loadgen.js"
import { type Child, freePort, projectRoot, start, stop, waitForPort } from "./processes.js"

/** What the load generator needs to drive one contender (everything but in-flight count and timing). */
export type Target = Omit<LoadSpec, "inflight" | "warmupMs" | "durationMs">

export interface Contender {
  readonly name: string
  readonly target: Target
  /** The server process, whose VmHWM is its peak memory; null when the generator is the client. */
  readonly child: Child | null
  readonly stop: () => Promise<void>
}

export const API_KEY = "sk-or-v1-bench-0123456789"

export const startUpstream = async (latencyMs = 0) => {
  const child = start("upstream", ["--expose-gc", "--import", "tsx", "bench/upstream.ts", `--latency-ms=${latencyMs}`])
  const { baseUrl } = (await child.nextLine()) as { baseUrl: string }
  return {
    child,
    baseUrl,
    /** Completion requests since the last call, then forgets them. */
    take: async (): Promise<number> => {
      const { completions } = (await child.ask("count")) as { completions: number }
      await child.ask("reset")
      return completions
    },
    sample: async (): Promise<unknown> => ((await child.ask("sample")) as { body: unknown }).body,
    calls: async (): Promise<ReadonlyArray<{ readonly at: number; readonly title: string | null; readonly body: string }>> =>
      ((await child.ask("calls")) as { calls: ReadonlyArray<{ at: number; title: string | null; body: string }> }).calls,
    reset: async (): Promise<void> => {
      await child.ask("reset")
    },
    stop: async () => {
      child.process.stdin!.end()
      await stop(child)
    }
  }
}
export type Upstream = Awaited<ReturnType<typeof startUpstream>>

const chatHeaders = { authorization: `Bearer ${API_KEY}` }

export const sdkDirect = (upstream: Upstream, body: string, fetch: "undici" | "default"): Contender => ({
  name: fetch === "undici" ? "openai SDK direct (undici fetch)" : "openai SDK direct (default fetch)",
  target: { kind: "sdk", url: upstream.baseUrl, body, fetch },
  child: null,
  stop: async () => {}
})

const nodeProxy = async (name: string, script: string, upstream: Upstream, body: string, ...args: ReadonlyArray<string>): Promise<Contender> => {
  const child = start(name, ["--import", "tsx", script, upstream.baseUrl, ...args])
  const { url } = (await child.nextLine()) as { url: string }
  return {
    name,
    target: { kind: "http", url: `${url}/v1/chat/completions`, body, headers: chatHeaders, expect: "\"choices\"" },
    child,
    stop: () => stop(child)
  }
}

export const bareProxy = (upstream: Upstream, body: string) =>
  nodeProxy("bare node:http + undici proxy", "bench/bareProxy.ts", upstream, body)

export const sdkProxy = (upstream: Upstream, body: string) =>
  nodeProxy("node:http + openai SDK proxy", "bench/sdkProxy.ts", upstream, body)

export const MINIMAL_EFFECT_NAME = "minimal Effect HttpApi + SDK + INSERT"

/** The Effect floor (bench/minimalEffect.ts), writing its rows to a table of its own in `databaseUrl`. */
export const minimalEffect = (upstream: Upstream, body: string, databaseUrl: string) =>
  nodeProxy(MINIMAL_EFFECT_NAME, "bench/minimalEffect.ts", upstream, body, databaseUrl)

const PORTKEY_VERSION = "1.15.2"
const PORTKEY_PREFIX = "/tmp/portkey-gw"
const PORTKEY_DIR = Path.join(PORTKEY_PREFIX, "node_modules/@portkey-ai/gateway")

/** Installs the gateway under /tmp, never into the project, unless that version is already there. */
const installPortkey = () => {
  const manifest = Path.join(PORTKEY_DIR, "package.json")
  const installed = existsSync(manifest) && JSON.parse(readFileSync(manifest, "utf8")).version === PORTKEY_VERSION
  if (!installed) {
    execFileSync("npm", ["install", "--prefix", PORTKEY_PREFIX, "--no-audit", "--no-fund", `@portkey-ai/gateway@${PORTKEY_VERSION}`], {
      stdio: "inherit"
    })
  }
  // The package's bin; `--headless` leaves out the console UI and its log capture.
  return Path.join(PORTKEY_DIR, JSON.parse(readFileSync(manifest, "utf8")).bin as string)
}

export const portkey = async (upstream: Upstream, body: string): Promise<Contender> => {
  const entry = installPortkey()
  const port = await freePort()
  const child = start(`Portkey gateway ${PORTKEY_VERSION}`, [entry, `--port=${port}`, "--headless"], { cwd: PORTKEY_DIR })
  await waitForPort(child, port)
  return {
    name: `Portkey gateway ${PORTKEY_VERSION}`,
    target: {
      kind: "http",
      url: `http://127.0.0.1:${port}/v1/chat/completions`,
      body,
      headers: { ...chatHeaders, "x-portkey-provider": "openai", "x-portkey-custom-host": upstream.baseUrl },
      expect: "\"choices\""
    },
    child,
    stop: () => stop(child)
  }
}

const serverUrl = process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres"

const admin = async (statement: string) => {
  const client = new pg.Client({ connectionString: serverUrl })
  await client.connect()
  try {
    return await client.query(statement)
  } finally {
    await client.end()
  }
}

/** A fresh database for the service's ledger, dropped by `drop`. */
export const serviceDatabase = async () => {
  const name = `bench_service_${process.pid}`
  await admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
  await admin(`CREATE DATABASE "${name}"`)
  const url = new URL(serverUrl)
  url.pathname = `/${name}`
  const dataDir = mkdtempSync(Path.join(tmpdir(), "bench-service-"))
  return {
    url: url.toString(),
    dataDir,
    rows: async (): Promise<number> => {
      const client = new pg.Client({ connectionString: url.toString() })
      await client.connect()
      try {
        return Number((await client.query("SELECT count(*) AS n FROM llm_api_usage")).rows[0].n)
      } finally {
        await client.end()
      }
    },
    drop: async () => {
      await admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
      rmSync(dataDir, { recursive: true, force: true })
    }
  }
}
export type ServiceDatabase = Awaited<ReturnType<typeof serviceDatabase>>

export const FIXTURE = "07-google-privacy-policy"

/** The request body for `POST /v1/summaries`: the fixture's diff and its document. */
export const summaryRequest = (): string => {
  const dir = new URL(`../test/fixtures/policy-changes/${FIXTURE}/`, import.meta.url)
  const meta = JSON.parse(readFileSync(new URL("meta.json", dir), "utf8")) as { service: string; document_type: string }
  return JSON.stringify({
    diff: readFileSync(new URL("diff.patch", dir), "utf8"),
    document: { service: meta.service, title: meta.document_type }
  })
}

/** This service as `npm start` runs it, with the cache off and the limiter out of the way. */
export const service = async (
  upstream: Upstream,
  db: ServiceDatabase,
  options: {
    readonly nodeFlags?: ReadonlyArray<string>
    /** Another build of `src/main.ts` to run with plain node (the profile's); default: `npm start`'s bundle. */
    readonly entry?: string
    /** A spool directory of its own, for a second instance running beside the first. */
    readonly dataDir?: string
    readonly name?: string
    /** Settings over the defaults below (the text-format reference sets SUMMARY_FORMAT). */
    readonly env?: Readonly<Record<string, string>>
  } = {}
): Promise<Contender> => {
  const port = await freePort()
  if (options.entry === undefined) execFileSync("npm", ["run", "-s", "build"], { cwd: projectRoot, stdio: "inherit" })
  const entry = [options.entry ?? "dist/main.js"]
  const child = start("policy-summarizer", [...(options.nodeFlags ?? []), ...entry], {
    env: {
      DATABASE_URL: db.url,
      DATA_DIR: options.dataDir ?? db.dataDir,
      OPENROUTER_BASE_URL: upstream.baseUrl,
      OPENROUTER_API_KEY: API_KEY,
      SUMMARY_CACHE_TTL_MS: "0",
      LLM_RATE_LIMIT_REQUESTS: "1000000",
      LLM_RATE_LIMIT_WINDOW_MS: "1000",
      LLM_MAX_CONCURRENCY: "64",
      LLM_QUEUE_MAX: "10000",
      LOG_LEVEL: "warning",
      HOST: "127.0.0.1",
      PORT: String(port),
      ...options.env
    }
  })
  await waitForPort(child, port)
  return {
    name: options.name ?? "policy-summarizer POST /v1/summaries",
    target: {
      kind: "http",
      url: `http://127.0.0.1:${port}/v1/summaries`,
      body: summaryRequest(),
      expect: "\"status\":\"summarized\""
    },
    child,
    stop: () => stop(child, 20_000)
  }
}

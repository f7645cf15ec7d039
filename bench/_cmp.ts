import { mkdirSync, readdirSync, rmSync } from "node:fs"
import * as Path from "node:path"
import { service, serviceDatabase, startUpstream } from "./contenders.js"
import { buildForProfile } from "./profileBuild.js"
import { durationUs, summarize } from "./profile.js"
import { start } from "./processes.js"
import { cpuMs } from "./loadgen.js"

const upstream = await startUpstream()
const db = await serviceDatabase()
const entry = await buildForProfile()
const out: Record<string, Map<string, number>> = {}
const formats = (process.argv[2] ?? "structured,text").split(",")
for (const format of formats) {
  const dir = `/tmp/prof-${format}`
  rmSync(dir, { recursive: true, force: true }); mkdirSync(dir, { recursive: true })
  const svc = await service(upstream, db, { nodeFlags: ["--cpu-prof", `--cpu-prof-dir=${dir}`], entry, env: { SUMMARY_FORMAT: format } })
  const spec = { ...svc.target, inflight: 32, warmupMs: 1500, durationMs: 5000 }
  const c0 = cpuMs(svc.child!.pid)
  const gen = start("gen", ["--import", "tsx", "bench/loadgen.ts", JSON.stringify(spec)])
  const r = (await gen.nextLine()) as any
  await gen.exited
  const c1 = cpuMs(svc.child!.pid)
  const fin = performance.now()
  await svc.stop()
  const exited = performance.now()
  const file = readdirSync(dir).find((f) => /\.\d+\.0\.\d+\.cpuprofile$/.test(f))!
  const path = Path.join(dir, file)
  const end = durationUs(path) - (exited - fin) * 1000
  const s = summarize(path, [end - 5_000_000 + 250_000, end - 250_000], 60)
  const reqs = r.requests * (4.5 / 5)
  console.log(format, "rps", r.rps?.toFixed?.(0) ?? r.requests / 5, "cpu ms/req", ((c1 - c0) / (r.requests + r.warmupRequests)).toFixed(2), "sampled", s.sampledMs)
  out[format] = new Map(s.functions.map((f) => [`${f.name} ${f.where}`, (f.selfMs * 1000) / reqs]))
  for (const p of s.places) console.log(`  ${format} place ${p.name} ${(p.selfMs * 1000 / reqs).toFixed(0)} us/req`)
}
if (formats.length === 2) {
  const [a, b] = formats.map((f) => out[f]!)
  const keys = new Set([...a!.keys(), ...b!.keys()])
  const diffs = [...keys].map((k) => [k, (a!.get(k) ?? 0) - (b!.get(k) ?? 0)] as const).sort((x, y) => y[1] - x[1])
  for (const [k, d] of diffs.slice(0, 30)) console.log(d.toFixed(0).padStart(6), "us/req", k)
}
await upstream.stop()
await db.drop()
process.exit(0)

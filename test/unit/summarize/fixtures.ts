import { readdirSync, readFileSync } from "node:fs"

const ROOT = new URL("../../fixtures/policy-changes/", import.meta.url)

export interface Fixture {
  readonly name: string
  readonly kind: "typo" | "small" | "medium" | "large" | "huge"
  readonly language: string
  readonly before: string
  readonly after: string
  readonly patch: string
}

/** The 28 real policy changes of `test/fixtures/policy-changes`, in name order. */
export const loadFixtures = (): ReadonlyArray<Fixture> =>
  readdirSync(ROOT, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort()
    .map((name) => {
      const read = (file: string) => readFileSync(new URL(`${name}/${file}`, ROOT), "utf8")
      const meta = JSON.parse(read("meta.json")) as { kind: Fixture["kind"]; language: string }
      return { name, kind: meta.kind, language: meta.language, before: read("old.md"), after: read("new.md"), patch: read("diff.patch") }
    })

export const fixture = (prefix: string): Fixture => {
  const found = loadFixtures().find((f) => f.name.startsWith(prefix))
  if (found === undefined) throw new Error(`no fixture ${prefix}`)
  return found
}

import { existsSync, readdirSync, readFileSync } from "node:fs"
import * as Path from "node:path"

/** One policy change of a cases folder: `diff.patch` (or `old.md` and `new.md`) and `meta.json`. */
export interface EvalCase {
  readonly name: string
  readonly service: string | null
  readonly documentType: string | null
  readonly kind: string | null
  /** A person's reading of the change, the reference to compare a summary against. */
  readonly notes: string | null
  readonly change: { readonly diff: string } | { readonly before: string; readonly after: string }
}

const text = (value: unknown): string | null => (typeof value === "string" && value.trim() !== "" ? value : null)

/** Every case folder of `dir`, in name order; folders with neither a diff nor both texts are skipped. */
export const loadCases = (dir: string): ReadonlyArray<EvalCase> =>
  readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort()
    .flatMap((name) => {
      const file = (f: string) => Path.join(dir, name, f)
      const read = (f: string) => readFileSync(file(f), "utf8")
      const meta = existsSync(file("meta.json")) ? (JSON.parse(read("meta.json")) as Record<string, unknown>) : {}
      const change = existsSync(file("diff.patch"))
        ? { diff: read("diff.patch") }
        : existsSync(file("old.md")) && existsSync(file("new.md"))
        ? { before: read("old.md"), after: read("new.md") }
        : null
      if (change === null) return []
      return [{
        name,
        service: text(meta["service"]),
        documentType: text(meta["document_type"]),
        kind: text(meta["kind"]),
        notes: text(meta["notes"]),
        change
      }]
    })

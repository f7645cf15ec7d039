import * as HttpServerResponse from "@effect/platform/HttpServerResponse"

export type Cell = string | number | null

/**
 * A text cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR first) gets a
 * leading `'`; numbers and decimal strings are written as they are, so they stay exact.
 */
const text = (value: string) => (/^[=+\-@\t\r]/.test(value) ? `'${value}` : value)

const quote = (value: string) => (/[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value)

const cell = (value: Cell, kind: "text" | "number") =>
  value === null ? "" : kind === "number" ? String(value) : quote(text(String(value)))

export interface Column<A> {
  readonly name: string
  readonly kind: "text" | "number"
  readonly get: (row: A) => Cell
}

/** RFC 4180 text: a header of the JSON field names, CRLF line ends, a null as an empty cell. */
export const render = <A>(columns: ReadonlyArray<Column<A>>, rows: ReadonlyArray<A>): string =>
  [columns.map((c) => c.name).join(","), ...rows.map((row) => columns.map((c) => cell(c.get(row), c.kind)).join(","))]
    .map((line) => `${line}\r\n`)
    .join("")

export const response = (body: string, filename: string, headers: Record<string, string> = {}) =>
  HttpServerResponse.text(body, {
    contentType: "text/csv; charset=utf-8",
    headers: { "content-disposition": `attachment; filename="${filename}"`, ...headers }
  })

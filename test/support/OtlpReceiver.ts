import { Effect } from "effect"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"

/** One exported span, as OTLP/JSON carries it. */
export interface OtlpSpan {
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId?: string
  readonly name: string
  readonly attributes: ReadonlyArray<{ readonly key: string; readonly value: Record<string, unknown> }>
  readonly events: ReadonlyArray<{ readonly name: string; readonly attributes: ReadonlyArray<{ readonly key: string; readonly value: Record<string, unknown> }> }>
}

export interface OtlpExport {
  readonly path: string
  readonly contentType: string
  readonly headers: Readonly<Record<string, string | Array<string> | undefined>>
  readonly body: Buffer
}

export interface OtlpReceiver {
  /** `http://127.0.0.1:PORT`, to use as OTEL_EXPORTER_OTLP_ENDPOINT. */
  readonly endpoint: string
  readonly exports: ReadonlyArray<OtlpExport>
  /** Every span of every JSON export received so far, with its resource's attributes. */
  readonly spans: () => ReadonlyArray<OtlpSpan & { readonly resource: ReadonlyArray<{ readonly key: string; readonly value: Record<string, unknown> }> }>
}

/** A local OTLP/HTTP collector: it accepts every export (200) and keeps it. */
export const makeOtlpReceiver = Effect.acquireRelease(
  Effect.async<{ readonly receiver: OtlpReceiver; readonly close: () => void }>((resume) => {
    const exports: Array<OtlpExport> = []
    const server = createServer((req, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (chunk: Buffer) => chunks.push(chunk))
      req.on("end", () => {
        exports.push({ path: req.url ?? "", contentType: req.headers["content-type"] ?? "", headers: req.headers, body: Buffer.concat(chunks) })
        res.writeHead(200, { "content-type": "application/json" }).end("{}")
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      resume(Effect.succeed({
        receiver: {
          endpoint: `http://127.0.0.1:${port}`,
          exports,
          spans: () =>
            exports.filter((e) => e.contentType.startsWith("application/json")).flatMap((e) =>
              (JSON.parse(e.body.toString("utf8")).resourceSpans as Array<any>).flatMap((rs) =>
                (rs.scopeSpans as Array<any>).flatMap((ss) => (ss.spans as Array<OtlpSpan>).map((span) => ({ ...span, resource: rs.resource.attributes })))
              )
            )
        },
        close: () => server.close()
      }))
    })
  }),
  ({ close }) => Effect.sync(close)
).pipe(Effect.map(({ receiver }) => receiver))

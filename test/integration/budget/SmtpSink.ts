import { Effect, Ref } from "effect"
import { createServer, type AddressInfo } from "node:net"
import { SMTPServer } from "smtp-server"

export interface ReceivedMail {
  readonly from: string
  readonly to: ReadonlyArray<string>
  readonly subject: string
  readonly body: string
}

/** A port that was free a moment ago: nothing listens on it until `start` is called with it. */
export const freePort = Effect.async<number>((resume) => {
  const probe = createServer()
  probe.listen(0, "127.0.0.1", () => {
    const { port } = probe.address() as AddressInfo
    probe.close(() => resume(Effect.succeed(port)))
  })
})

const header = (raw: string, name: string) => {
  const head = raw.split(/\r?\n\r?\n/)[0]!.replace(/\r?\n(?=[ \t])/g, "")
  return head.split(/\r?\n/).find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`))?.slice(name.length + 1).trim() ?? ""
}

/** A real SMTP server on `port` collecting every message, closed with the scope. */
export const start = (port: number) =>
  Effect.gen(function*() {
    const received = yield* Ref.make<ReadonlyArray<ReceivedMail>>([])
    const server = new SMTPServer({
      authOptional: true,
      disabledCommands: ["STARTTLS"],
      logger: false,
      onData(stream, session, callback) {
        const chunks: Array<Buffer> = []
        stream.on("data", (c: Buffer) => chunks.push(c))
        stream.on("end", () => {
          const raw = Buffer.concat(chunks).toString("utf8")
          const mail: ReceivedMail = {
            from: session.envelope.mailFrom === false ? "" : session.envelope.mailFrom.address,
            to: session.envelope.rcptTo.map((r) => r.address),
            subject: header(raw, "Subject"),
            body: raw.split(/\r?\n\r?\n/).slice(1).join("\n\n")
          }
          Effect.runSync(Ref.update(received, (all) => [...all, mail]))
          callback()
        })
      }
    })
    yield* Effect.acquireRelease(
      Effect.async<void>((resume) => {
        server.listen(port, "127.0.0.1", () => resume(Effect.void))
      }),
      () => Effect.async<void>((resume) => server.close(() => resume(Effect.void)))
    )
    return { received: Ref.get(received) }
  })

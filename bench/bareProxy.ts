/**
 * Floor 2 for `bench/run.ts`: the least a Node proxy can do. Every POST body is forwarded as is to
 * `<upstream base>/chat/completions` with undici, and the answer is returned as is (a stream as it arrives).
 * Run: node --import tsx bench/bareProxy.ts <upstream base url>; prints `{"url": ...}` once listening.
 */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { Pool } from "undici"

const base = new URL(process.argv[2] ?? "")
const path = `${base.pathname.replace(/\/$/, "")}/chat/completions`
const upstream = new Pool(base.origin, { connections: 128, keepAliveTimeout: 30_000 })

const readAll = async (stream: AsyncIterable<Buffer>) => {
  const chunks: Array<Buffer> = []
  for await (const chunk of stream) chunks.push(chunk)
  return Buffer.concat(chunks)
}

const server = createServer(async (req, res) => {
  try {
    const body = await readAll(req)
    const answer = await upstream.request({
      path,
      method: "POST",
      headers: {
        "content-type": req.headers["content-type"] ?? "application/json",
        authorization: req.headers.authorization ?? ""
      },
      body
    })
    if (body.includes('"stream":true')) {
      // A stream goes through chunk by chunk: the floor for time to first byte.
      res.writeHead(answer.statusCode, { "content-type": "text/event-stream", "cache-control": "no-cache" })
      for await (const chunk of answer.body) res.write(chunk)
      res.end()
      return
    }
    const data = await readAll(answer.body)
    res.writeHead(answer.statusCode, { "content-type": "application/json", "content-length": data.length })
    res.end(data)
  } catch (error) {
    res.writeHead(502, { "content-type": "application/json" })
    res.end(JSON.stringify({ error: String(error) }))
  }
})
server.keepAliveTimeout = 30_000
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })}\n`)
})

/**
 * Floor 3 for `bench/run.ts`: a node:http endpoint that parses the body and makes the call with the
 * `openai` SDK over the service's undici fetch, then serializes the completion: the least work a
 * proxy that understands the request does (the issue's "SDK-proxy floor").
 * Run: node --import tsx bench/sdkProxy.ts <upstream base url>; prints `{"url": ...}` once listening.
 */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import OpenAI from "openai"
import { makeUndiciFetch } from "./undiciFetch.js"

const client = new OpenAI({
  apiKey: "sk-bench",
  baseURL: process.argv[2] ?? "",
  maxRetries: 0,
  fetch: makeUndiciFetch({ connections: 128 })
})

const readAll = async (stream: AsyncIterable<Buffer>) => {
  const chunks: Array<Buffer> = []
  for await (const chunk of stream) chunks.push(chunk)
  return Buffer.concat(chunks).toString("utf8")
}

const server = createServer(async (req, res) => {
  try {
    const body = JSON.parse(await readAll(req)) as OpenAI.ChatCompletionCreateParamsNonStreaming
    const completion = await client.chat.completions.create(body)
    const data = JSON.stringify(completion)
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(data) })
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

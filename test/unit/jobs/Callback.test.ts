import { describe, expect, it } from "@effect/vitest"
import { Redacted } from "effect"
import { createHmac } from "node:crypto"
import { allowedCallback, signature } from "../../../src/jobs/Callback.js"

describe("callbacks", () => {
  it("the signature is the receiver's recipe: sha256= and the hex HMAC-SHA256 of \"<timestamp>.<body>\" with the secret", () => {
    const body = JSON.stringify({ jobId: "j", status: "done" })
    const expected = createHmac("sha256", "s3cret-value").update(`1765100000.${body}`).digest("hex")
    expect(signature(Redacted.make("s3cret-value"), "1765100000", body)).toBe(`sha256=${expected}`)
    expect(signature(Redacted.make("s3cret-value"), "1765100001", body)).not.toBe(`sha256=${expected}`)
  })

  it("only http(s) URLs on a named host (or host:port) are allowed; credentials in the URL, other hosts and no list refuse", () => {
    const hosts = ["hooks.example.com", "127.0.0.1:9000"]
    expect(allowedCallback("https://hooks.example.com/summaries", hosts)).toBe(true)
    expect(allowedCallback("https://HOOKS.example.com/x", hosts)).toBe(true)
    expect(allowedCallback("http://127.0.0.1:9000/hook", hosts)).toBe(true)
    expect(allowedCallback("http://127.0.0.1:9001/hook", hosts)).toBe(false)
    expect(allowedCallback("https://hooks.example.com.evil.test/x", hosts)).toBe(false)
    expect(allowedCallback("https://user:pw@hooks.example.com/x", hosts)).toBe(false)
    expect(allowedCallback("file:///etc/passwd", hosts)).toBe(false)
    expect(allowedCallback("not a url", hosts)).toBe(false)
    expect(allowedCallback("https://hooks.example.com/x", [])).toBe(false)
  })
})

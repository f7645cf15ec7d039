import type { Dispatcher } from "undici"

/** An upstream answer longer than the cap: the read stopped there and the connection was dropped. */
export class ResponseTooLarge extends Error {
  override readonly name = "ResponseTooLarge"
  constructor(readonly limitBytes: number) {
    super(`The upstream response is larger than ${limitBytes} bytes (UPSTREAM_MAX_RESPONSE_BYTES); reading stopped there`)
  }
}

/**
 * Reads a whole body, at most `limit` bytes: beyond it the read stops, the connection is dropped
 * and `ResponseTooLarge` is thrown (one bad upstream must not exhaust memory).
 */
export const readCapped = async (res: Dispatcher.ResponseData, limit: number): Promise<Buffer> => {
  const declared = Number(res.headers["content-length"])
  if (Number.isFinite(declared) && declared > limit) {
    res.body.destroy()
    throw new ResponseTooLarge(limit)
  }
  const chunks: Array<Buffer> = []
  let length = 0
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    length += chunk.length
    if (length > limit) {
      res.body.destroy()
      throw new ResponseTooLarge(limit)
    }
    chunks.push(chunk)
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length)
}

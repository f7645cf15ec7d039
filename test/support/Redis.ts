import * as net from "node:net"

/** The Redis the tests use: `REDIS_TEST_URL` (CI sets it), else the usual local one. */
export const redisTestUrl = process.env["REDIS_TEST_URL"] ?? "redis://127.0.0.1:6379"

const address = new URL(redisTestUrl)
export const redisHost = address.hostname
export const redisPort = Number(address.port || 6379)

/** Whether a Redis answers PING at `redisTestUrl` within a second; the reason when not. */
const probe = (): Promise<string | null> =>
  new Promise((resolve) => {
    const socket = net.connect({ host: redisHost, port: redisPort })
    const done = (reason: string | null) => (socket.destroy(), resolve(reason))
    socket.setTimeout(1_000, () => done("no answer within 1 s"))
    socket.on("error", (error: NodeJS.ErrnoException) => done(error.code ?? error.message))
    socket.on("connect", () => socket.write("PING\r\n"))
    socket.on("data", (data) => done(data.toString().startsWith("+PONG") ? null : `unexpected answer ${JSON.stringify(data.toString().trim())}`))
  })

/**
 * Why the Redis tests are skipped, or null to run them. With `REDIS_TEST_URL` set (as CI does)
 * Redis is mandatory: the tests run and fail if it is down, rather than skip.
 */
export const redisSkipReason: string | null = process.env["REDIS_TEST_URL"] !== undefined
  ? null
  : await probe().then((reason) =>
    reason === null ? null : `skipped: no Redis at ${redisTestUrl} (${reason}); start one or set REDIS_TEST_URL`
  )

// Said once per test file that needs Redis, beside the skipped tests, so a skip is never silent.
if (redisSkipReason !== null) console.warn(`Redis tests ${redisSkipReason}`)

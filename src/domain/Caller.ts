import { Context } from "effect"

/**
 * Who made a request: the name of the bearer token it presented (`API_TOKENS`, `API_TOKEN` being
 * `default`). Only the name is ever stored or logged, never the token. `null` when the service runs
 * without tokens (loopback only), where nobody is identified.
 */
export class CurrentCaller extends Context.Tag("CurrentCaller")<CurrentCaller, { readonly name: string | null }>() {}

/** Names end up in the ledger, logs and metric labels: short, plain, no separators. */
export const callerNamePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/

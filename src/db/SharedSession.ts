import type { PGlite } from "@electric-sql/pglite"

/** Extended-query messages that leave a statement half-run until the next Sync. */
const opensSequence = new Set([0x50, 0x42, 0x44, 0x45, 0x43, 0x48]) // P B D E C H
const closesSequence = new Set([0x53, 0x51]) // S(ync) Q(uery)

/**
 * PGlite as the socket server should see it when several connections share its one session.
 * The server's queue keeps a connection's messages together only inside an explicit transaction;
 * between a Parse and its Sync another connection's Parse would replace the unnamed statement.
 * Reporting "in transaction" until the Sync makes the queue hold that sequence together too.
 */
export const forSharing = (db: PGlite): PGlite => {
  let open = false
  const overrides: Record<PropertyKey, unknown> = {
    isInTransaction: () => open || db.isInTransaction(),
    execProtocolRawStream: (message: Uint8Array, options: Parameters<PGlite["execProtocolRawStream"]>[1]) => {
      const type = message[0] ?? 0
      if (opensSequence.has(type)) open = true
      else if (closesSequence.has(type)) open = false
      return db.execProtocolRawStream(message, options)
    },
    // The queue's ROLLBACK for a connection that left mid-sequence ends the sequence as well.
    exec: (...args: Parameters<PGlite["exec"]>) => {
      open = false
      return db.exec(...args)
    }
  }
  return new Proxy(db, {
    get(target, property) {
      if (property in overrides) return overrides[property]
      const value = Reflect.get(target, property, target)
      return typeof value === "function" ? value.bind(target) : value
    }
  })
}

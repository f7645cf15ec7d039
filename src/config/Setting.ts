import { BigDecimal, Config, ConfigError, Either, Option, Redacted } from "effect"

/**
 * One environment variable as a `Config`: its name once, how to parse its text, and its default.
 * `Config.all` accumulates the failures (`ConfigError.And`), so every bad variable is reported in
 * one run; the parsers below say what is wrong with the value and the form expected, which
 * `Config.number` & co. do not.
 */
type Parse<A> = (text: string) => Either.Either<A, string>

/** Blank counts as not set. */
const read = <A>(name: string, parse: Parse<A>, fallback: () => A): Config.Config<A> =>
  Config.option(Config.string(name)).pipe(Config.mapOrFail((raw) => {
    const text = Option.map(raw, (s) => s.trim())
    return Option.isSome(text) && text.value !== ""
      ? Either.mapLeft(parse(text.value), (problem) => ConfigError.InvalidData([name], problem))
      : Either.right(fallback())
  }))

/** A setting with a default. */
export const withDefault = <A>(name: string, parse: Parse<A>, value: A): Config.Config<A> => read(name, parse, () => value)

/** A setting that may be absent. */
export const optional = <A>(name: string, parse: Parse<A>): Config.Config<Option.Option<A>> =>
  read(name, (s) => Either.map(parse(s), Option.some), () => Option.none())

/** Each bad variable as `NAME: problem`, in the order the settings are declared. */
export const problemsOf = (error: ConfigError.ConfigError): ReadonlyArray<string> => {
  switch (error._op) {
    case "And":
    case "Or":
      return [...problemsOf(error.left), ...problemsOf(error.right)]
    case "InvalidData":
    case "MissingData":
    case "SourceUnavailable":
    case "Unsupported":
      return [error.path.length === 0 ? error.message : `${error.path.join("_")}: ${error.message}`]
  }
}

const invalid = (text: string, expected: string) => Either.left(`got "${text}": expected ${expected}`)

export const integer = (min: number, max: number): Parse<number> => (text) => {
  const n = /^-?\d+$/.test(text) ? Number(text) : Number.NaN
  return Number.isSafeInteger(n) && n >= min && n <= max
    ? Either.right(n)
    : invalid(text, max === Number.MAX_SAFE_INTEGER ? `a whole number >= ${min}` : `a whole number from ${min} to ${max}`)
}

export const decimalNumber = (min: number, max: number): Parse<number> => (text) => {
  const n = /^-?(\d+\.?\d*|\.\d+)$/.test(text) ? Number(text) : Number.NaN
  return Number.isFinite(n) && n >= min && n <= max ? Either.right(n) : invalid(text, `a number from ${min} to ${max}`)
}

/** Money and fractions: exact decimals, never floats. */
export const positiveDecimal: Parse<BigDecimal.BigDecimal> = (text) =>
  Option.match(/^\d+(\.\d+)?$/.test(text) ? BigDecimal.fromString(text) : Option.none(), {
    onNone: () => invalid(text, "a positive decimal number such as 25 or 12.50"),
    onSome: (d) => (BigDecimal.isPositive(d) ? Either.right(BigDecimal.normalize(d)) : invalid(text, "a number above 0"))
  })

export const decimalList: Parse<ReadonlyArray<BigDecimal.BigDecimal>> = (text) => {
  const parts = text.split(",").map((s) => s.trim())
  const parsed = parts.map(positiveDecimal)
  return parsed.every(Either.isRight)
    ? Either.right(parsed.map((p) => (p as Either.Right<string, BigDecimal.BigDecimal>).right))
    : invalid(text, "a comma-separated list of positive decimals such as 0.5,0.8,1.0")
}

export const boolean: Parse<boolean> = (text) => {
  const t = text.toLowerCase()
  if (["true", "1", "yes", "on"].includes(t)) return Either.right(true)
  if (["false", "0", "no", "off"].includes(t)) return Either.right(false)
  return invalid(text, "true or false")
}

export const text: Parse<string> = (s) => Either.right(s)

/**
 * Text sent as an HTTP header value: printable Latin-1 only, since a header cannot carry other
 * characters and every upstream call would otherwise fail inside the process.
 */
export const headerText: Parse<string> = (s) => {
  const bad = [...s].find((c) => !/^[\x20-\x7E\xA0-\xFF]$/.test(c))
  return bad === undefined
    ? Either.right(s)
    : invalid(s, `printable Latin-1 text for an HTTP header ("${bad}" cannot be sent; write it in Latin letters)`)
}

export const list: Parse<ReadonlyArray<string>> = (s) =>
  Either.right(s.split(",").map((x) => x.trim()).filter((x) => x !== ""))

export const oneOf = <const L extends string>(...values: ReadonlyArray<L>): Parse<L> => (s) =>
  values.includes(s as L) ? Either.right(s as L) : invalid(s, `one of ${values.join(", ")}`)

/**
 * One of `values`, case-insensitively, or one of the other spellings in `aliases` (such as `warn`
 * for `warning`); the message lists the canonical values only.
 */
export const oneOfSpelled = <const L extends string>(values: ReadonlyArray<L>, aliases: Readonly<Record<string, L>>): Parse<L> => (s) => {
  const t = s.toLowerCase()
  const found = values.find((v) => v === t) ?? aliases[t]
  return found !== undefined ? Either.right(found) : invalid(s, `one of ${values.join(", ")}`)
}

export const url = (protocols: ReadonlyArray<string>): Parse<string> => (s) => {
  const parsed = URL.canParse(s) ? new URL(s) : undefined
  return parsed !== undefined && protocols.includes(parsed.protocol)
    ? Either.right(s.replace(/\/+$/, ""))
    : invalid(s, `a URL starting with ${protocols.map((p) => `${p}//`).join(" or ")}`)
}

/** Secrets never echo their value back in an error message. */
export const redacted = <A>(parse: Parse<A>): Parse<Redacted.Redacted<A>> => (s) =>
  Either.mapBoth(parse(s), {
    onLeft: (problem) => problem.replace(/^got "[^"]*"/, "got a value that is not valid"),
    onRight: Redacted.make
  })

/** A secret text. */
export const secret = (parse: Parse<string> = text): Parse<Redacted.Redacted<string>> => redacted(parse)

/** OpenTelemetry's `key=value,key=value`, values percent-encoded (`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP_HEADERS`). */
export const keyValues: Parse<ReadonlyArray<readonly [string, string]>> = (s) => {
  const entries = s.split(",").map((e) => e.trim()).filter((e) => e !== "")
  const pairs = entries.map((entry) => {
    const at = entry.indexOf("=")
    const value = at > 0 ? Either.try(() => decodeURIComponent(entry.slice(at + 1).trim())) : Either.left(undefined)
    return Either.map(value, (v) => [entry.slice(0, at).trim(), v] as const)
  })
  return pairs.every(Either.isRight)
    ? Either.right(pairs.map((p) => (p as Either.Right<unknown, readonly [string, string]>).right))
    : invalid(s, "key=value pairs separated by commas, values percent-encoded")
}

export const json = <A>(guard: (u: unknown) => u is A, expected: string): Parse<A> => (s) =>
  Either.flatMap(
    Either.try({ try: () => JSON.parse(s) as unknown, catch: () => `got "${s}": expected ${expected}` }),
    (u) => (guard(u) ? Either.right(u) : invalid(s, expected))
  )

/** `name:value,name:value`; names as `callerNamePattern`, each once. The value's text is never echoed when `secretValues`. */
export const namedPairs = <A>(
  parseValue: Parse<A>,
  expected: string,
  options: { readonly namePattern: RegExp; readonly secretValues: boolean }
): Parse<ReadonlyArray<readonly [string, A]>> => (text) => {
  const entries = text.split(/[,\n]/).map((s) => s.trim()).filter((s) => s !== "" && !s.startsWith("#"))
  const pairs: Array<readonly [string, A]> = []
  for (const [i, entry] of entries.entries()) {
    const at = entry.indexOf(":")
    const name = at === -1 ? entry : entry.slice(0, at).trim()
    const shown = options.secretValues ? `entry ${i + 1} (${options.namePattern.test(name) ? `"${name}"` : "a bad name"})` : `"${entry}"`
    if (at === -1) return Either.left(`${shown} has no ":": expected ${expected}`)
    if (!options.namePattern.test(name)) return Either.left(`${shown}: the name must be letters, digits, "_", "." or "-" (up to 100): expected ${expected}`)
    if (pairs.some(([n]) => n === name)) return Either.left(`${shown}: the name "${name}" appears twice`)
    const value = parseValue(entry.slice(at + 1).trim())
    if (Either.isLeft(value)) return Either.left(options.secretValues ? `${shown}: ${value.left.replace(/^got "[^"]*"/, "got a value that is not valid")}` : `${shown}: ${value.left}`)
    pairs.push([name, value.right])
  }
  return Either.right(pairs)
}

/** A bearer token: any text without spaces. */
export const token: Parse<string> = (s) => (/^\S+$/.test(s) ? Either.right(s) : invalid(s, "a token without spaces"))

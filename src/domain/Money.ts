import { BigDecimal, Option } from "effect"

/**
 * A JSON number to an exact decimal. `String(n)` is the shortest text that reads back as the same
 * double, which is the text the provider wrote for any cost of up to 17 significant digits; no
 * float arithmetic ever touches the value.
 */
export const fromJsonNumber = (n: unknown): Option.Option<BigDecimal.BigDecimal> =>
  typeof n === "number" && Number.isFinite(n) && n >= 0
    ? Option.map(BigDecimal.fromString(String(n)), BigDecimal.normalize)
    : Option.none()

/** Plain decimal text (no exponent) for JSON and logs: 0.00002415, 12.5, 0. */
export const format = (d: BigDecimal.BigDecimal): string => {
  const { scale, value } = BigDecimal.normalize(d)
  if (scale <= 0) return (value * 10n ** BigInt(-scale)).toString()
  const negative = value < 0n
  const digits = (negative ? -value : value).toString().padStart(scale + 1, "0")
  return `${negative ? "-" : ""}${digits.slice(0, -scale)}.${digits.slice(-scale)}`
}

export const formatOption = (d: Option.Option<BigDecimal.BigDecimal>): string | null =>
  Option.match(d, { onNone: () => null, onSome: format })

export const sum = (values: Iterable<BigDecimal.BigDecimal>): BigDecimal.BigDecimal =>
  BigDecimal.normalize(BigDecimal.sumAll(values))

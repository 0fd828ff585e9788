// Just enough of Kubernetes resource.Quantity for the injector: is it zero,
// and what whole number is it (device-plugin resources are counted in units).

const QUANTITY = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)(?:(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)|[eE]([+-]?\d{1,3}))?$/;

const BINARY: Record<string, bigint> = {
  Ki: 1n << 10n,
  Mi: 1n << 20n,
  Gi: 1n << 30n,
  Ti: 1n << 40n,
  Pi: 1n << 50n,
  Ei: 1n << 60n,
};
const DECIMAL_EXPONENT: Record<string, number> = { n: -9, u: -6, m: -3, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };

export interface ParsedQuantity {
  /** exact value as numerator / 10^scale */
  numerator: bigint;
  scale: number;
}

export function parseQuantity(text: string): ParsedQuantity | undefined {
  const match = QUANTITY.exec(text.trim());
  if (!match) return undefined;
  const [, sign, number, suffix, exponent] = match;
  const [whole = '', fraction = ''] = number!.split('.');
  let numerator = BigInt((whole || '0') + fraction) * (sign === '-' ? -1n : 1n);
  let scale = fraction.length;
  if (suffix && suffix in BINARY) numerator *= BINARY[suffix]!;
  const power = suffix && suffix in DECIMAL_EXPONENT ? DECIMAL_EXPONENT[suffix]! : exponent ? Number(exponent) : 0;
  if (power >= 0) numerator *= 10n ** BigInt(power);
  else scale -= power;
  return { numerator, scale };
}

export function isZeroQuantity(text: string): boolean {
  const parsed = parseQuantity(text);
  return parsed !== undefined && parsed.numerator === 0n;
}

/** The whole number a quantity stands for, or undefined when it is not one. */
export function wholeQuantity(text: string): bigint | undefined {
  const parsed = parseQuantity(text);
  if (!parsed) return undefined;
  const divisor = 10n ** BigInt(parsed.scale);
  return parsed.numerator % divisor === 0n ? parsed.numerator / divisor : undefined;
}

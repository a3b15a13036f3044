// Writes es6-numbers.txt next to this file: one line `hex-ieee,expected` per double (the
// line format of cyberphone's es6testfile100m.txt), where `expected` is what this Node's V8
// prints for the double: ECMAScript's Number::toString, which RFC 8785 §3.2.2.3 adopts for
// JCS. Edge values first, then random bit patterns and random short decimals from a fixed
// seed, so the file is the same on every run with the same V8.
//
//   node mmm-engine/tests/vectors/es6-numbers/generate.mjs
import { writeFileSync } from 'node:fs';

const RANDOM_BITS = 6000;
const RANDOM_DECIMALS = 6000;

const f64 = new Float64Array(1);
const u64 = new BigUint64Array(f64.buffer);
const bitsOf = (x) => { f64[0] = x; return u64[0]; };
const fromBits = (b) => { u64[0] = b; return f64[0]; };

// xorshift64*: small, seedable, good enough to scatter bit patterns.
let state = 0x2545f4914f6cdd1dn;
const MASK = (1n << 64n) - 1n;
function next() {
  state ^= state >> 12n;
  state ^= (state << 25n) & MASK;
  state ^= state >> 27n;
  return (state * 0x2545f4914f6cdd1dn) & MASK;
}
const below = (n) => Number(next() % BigInt(n));

const edges = [
  0, -0, 1, -1, 0.1, 0.2 + 0.1, 4.5, 2e-3, 1e-27, 333333333.3333333, 1e30,
  5e-324, -5e-324, 2.2250738585072014e-308, 2.225073858507201e-308,
  1.7976931348623157e308, -1.7976931348623157e308,
  2 ** 53, 2 ** 53 + 2, 2 ** 63, 2 ** 64, -(2 ** 31), 2 ** 32 - 1,
  1e20, 1e21, 999999999999999900000, 123456789012345680000, 1e23, 9.007199254740993e15,
  1e-6, 1e-7, 9.999999999999999e-7, 0.000001, 5e-7, 1.5e-9, 1e300, 1e-300,
  295147905179352830000, 4.940656458412465e-324, 1.1754943508222875e-38,
];

const seen = new Set();
const lines = [];
function add(x) {
  if (!Number.isFinite(x)) return;
  const hex = bitsOf(x).toString(16);
  if (seen.has(hex)) return;
  seen.add(hex);
  lines.push(`${hex},${String(x)}`);
}
edges.forEach(add);
for (let i = 0; i < RANDOM_BITS; i++) add(fromBits(next()));
for (let i = 0; i < RANDOM_DECIMALS; i++) {
  const digits = 1 + below(17);
  let mantissa = String(1 + below(9));
  for (let d = 1; d < digits; d++) mantissa += String(below(10));
  const exponent = below(640) - 330;
  add(Number(`${below(2) ? '-' : ''}${mantissa}e${exponent}`));
}
const out = new URL('es6-numbers.txt', import.meta.url);
writeFileSync(out, lines.join('\n') + '\n');
console.log(`${lines.length} lines (node ${process.version}) -> ${out.pathname}`);

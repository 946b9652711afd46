// npm_ref.mjs - what the reference scripts share: failing with a one-line
// reason, loading the npm packages tests/install-npm.sh installs (in
// $SHARD_NPM_DIR, else build/npm in this repository), and a seeded
// generator so that generated texts are the same on every run.

import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export const repo = path.resolve(
    path.dirname(fileURLToPath(import.meta.url)), '..');

const npmDir = process.env.SHARD_NPM_DIR
    ? path.resolve(process.env.SHARD_NPM_DIR) : path.join(repo, 'build/npm');
const modules = path.join(npmDir, 'node_modules');
const require = createRequire(import.meta.url);

// Returns die(msg) and load(package) for the script called `me`.
export function reference(me) {
    const die = (msg) => {
        process.stderr.write(`${me}: ${msg}\n`);
        process.exit(1);
    };
    const load = (what) => {
        try {
            return require(path.join(modules, what));
        } catch (e) {
            die(`cannot load ${what} from ${modules} (run: sh ` +
                `tests/install-npm.sh build/npm): ` +
                e.message.split('\n')[0]);
        }
    };
    return { die, load, modules };
}

// mulberry32: a generator of numbers in [0, 1) from a 32-bit seed.
export function rng(seed) {
    let a = seed >>> 0;
    return () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}

// n characters drawn from `alphabet` (a string; code points, not units).
export function randomFrom(alphabet, n, rand) {
    const chars = [...alphabet];
    let s = '';
    for (let i = 0; i < n; i++)
        s += chars[Math.floor(rand() * chars.length)];
    return s;
}

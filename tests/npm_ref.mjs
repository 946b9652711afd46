// npm_ref.mjs - what the reference scripts share: failing with a one-line
// reason, and loading the npm packages tests/install-npm.sh installs (in
// $HF_NPM_DIR, else build/npm in this repository).

import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export const repo = path.resolve(
    path.dirname(fileURLToPath(import.meta.url)), '..');

const npmDir = process.env.HF_NPM_DIR ? path.resolve(process.env.HF_NPM_DIR)
                                      : path.join(repo, 'build/npm');
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

// unicode_sweep.mjs TOKENIZER OUTDIR [STEP] - reference ids for a sweep of
// Unicode code points, for tests/cli/unicode_sweep.sh.
//
// Every STEP-th code point (default 1: all) from U+00A0 to U+323AF that
// Node's own Unicode tables call a letter, number, mark or white space,
// and every code point of the ranges where regex engines of different
// Unicode versions disagree, is put in four contexts on one line:
// `a<c>b <c>1 <c><c> 9<c>`.  TOKENIZER is a tiktoken encoding name (the
// reference is npm tiktoken, encode_ordinary) or a path to a
// tokenizer.json (the reference is npm tokenizers, addSpecialTokens
// false).  Writes OUTDIR/sweep.jsonl (one JSON string per line),
// OUTDIR/sweep.ids (one JSON array per line) and OUTDIR/sweep.cps (the
// code point of each line, in hex).

import fs from 'node:fs';
import path from 'node:path';
import { reference } from './npm_ref.mjs';

const { die, load } = reference('unicode_sweep.mjs');

const [spec, outDir, stepArg] = process.argv.slice(2);
if (!spec || !outDir)
    die('usage: node tests/unicode_sweep.mjs TOKENIZER OUTDIR [STEP]');
const step = Math.max(1, Number(stepArg) || 1);

// Unicode 15 and 16 additions that change how text splits.
const disputed = [
    [0x10d40, 0x10d49], [0x116d0, 0x116e3], [0x11bf0, 0x11bf9],
    [0x11f00, 0x11f59], [0x16130, 0x16139], [0x16d40, 0x16d79],
    [0x1ccf0, 0x1ccf9], [0x1d2c0, 0x1d2d3], [0x1e4d0, 0x1e4f9],
    [0x1e5d0, 0x1e5fa], [0x31350, 0x31360], [0x180e, 0x180e],
    [0xfeff, 0xfeff], [0x85, 0x85],
];

const cps = new Set();
for (let cp = 0xa0, i = 0; cp < 0x323b0; cp++) {
    if (cp >= 0xd800 && cp < 0xf900)
        continue;  // surrogates and private use
    if (/[\p{L}\p{N}\p{M}\s]/u.test(String.fromCodePoint(cp)) &&
        i++ % step === 0)
        cps.add(cp);
}
for (const [lo, hi] of disputed)
    for (let cp = lo; cp <= hi; cp++)
        cps.add(cp);
const list = [...cps].sort((a, b) => a - b);
const texts = list.map((cp) => {
    const c = String.fromCodePoint(cp);
    return `a${c}b ${c}1 ${c}${c} 9${c}`;
});

let ids;
if (spec.endsWith('.json')) {
    const { Tokenizer } = load('tokenizers');
    const tok = Tokenizer.fromFile(spec);
    ids = [];
    for (let i = 0; i < texts.length; i += 1024) {
        const batch = await tok.encodeBatch(texts.slice(i, i + 1024),
                                            { addSpecialTokens: false });
        batch.forEach((e) => ids.push(Array.from(e.getIds())));
    }
} else {
    const enc = load('tiktoken/tiktoken.cjs').get_encoding(spec);
    ids = texts.map((t) => Array.from(enc.encode_ordinary(t)));
}

fs.mkdirSync(outDir, { recursive: true });
const write = (f, lines) =>
    fs.writeFileSync(path.join(outDir, f), lines.join('\n') + '\n');
write('sweep.jsonl', texts.map((t) => JSON.stringify(t)));
write('sweep.ids', ids.map((a) => JSON.stringify(a)));
write('sweep.cps', list.map((cp) => cp.toString(16)));

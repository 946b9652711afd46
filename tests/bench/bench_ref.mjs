// bench_ref.mjs - the npm reference tokenizers on the bench corpus, and
// the id comparison.  Used by tests/bench/bench_tokenizer.sh.
//
//   node bench_ref.mjs tiktoken ENCODING CORPUS IDS
//       npm tiktoken (Rust core as WASM), encode_ordinary per document.
//   node bench_ref.mjs hf TOKENIZER_JSON LABEL CORPUS IDS
//       npm tokenizers (HF, native), encode per document without special
//       tokens; calls are awaited one at a time, so one thread encodes.
//   node bench_ref.mjs compare NAME_A IDS_A NAME_B IDS_B
//       Counts the documents whose ids differ and prints the first few.
//
// CORPUS holds documents separated by NUL bytes.  IDS gets, per document,
// a little-endian u32 count and u32 ids (bench_tokenizer.c writes the
// same).  The encoders print one line like bench_tokenizer's:
//   NAME ENCODING mixed BYTES TOKENS SECONDS MB/s
// Times are the process's CPU time (user + system, all threads): the
// machine is shared, and time spent waiting for a CPU is not the
// encoder's.  Packages come from $BENCH_NPM_DIR (default build/npm).
// Exits 1 with a one-line reason when something is missing.

import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)),
                          '../..');
const npmDir = process.env.BENCH_NPM_DIR || path.join(repo, 'build/npm');

function die(msg) {
    process.stderr.write(`bench_ref.mjs: ${msg}\n`);
    process.exit(1);
}

function load(pkg, file) {
    const dir = path.join(npmDir, 'node_modules', pkg);
    try {
        return require(path.join(dir, file));
    } catch (e) {
        die(`cannot load ${pkg} from ${npmDir} ` +
            `(run: sh tests/install-npm.sh build/npm): ` +
            e.message.split('\n')[0]);
    }
}

function readDocs(file) {
    const data = fs.readFileSync(file);
    const docs = [];
    let start = 0;
    for (;;) {
        let end = data.indexOf(0, start);
        if (end < 0)
            end = data.length;
        if (end > start)
            docs.push(data.subarray(start, end).toString('utf8'));
        if (end >= data.length)
            return { docs, bytes: docs.reduce(
                (n, d) => n + Buffer.byteLength(d), 0) };
        start = end + 1;
    }
}

// Writes per-document id lists in the IDS format.
function writeIds(file, lists) {
    const parts = [];
    for (const ids of lists) {
        const b = Buffer.alloc(4 + 4 * ids.length);
        b.writeUInt32LE(ids.length, 0);
        for (let i = 0; i < ids.length; i++)
            b.writeUInt32LE(ids[i], 4 + 4 * i);
        parts.push(b);
    }
    fs.writeFileSync(file, Buffer.concat(parts));
}

function readIds(file) {
    const b = fs.readFileSync(file);
    const lists = [];
    for (let at = 0; at < b.length;) {
        const n = b.readUInt32LE(at);
        const ids = new Uint32Array(n);
        for (let i = 0; i < n; i++)
            ids[i] = b.readUInt32LE(at + 4 + 4 * i);
        lists.push(ids);
        at += 4 + 4 * n;
    }
    return lists;
}

// CPU seconds used by the process so far.
function cpuSeconds() {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
}

function report(name, label, bytes, lists, seconds) {
    const tokens = lists.reduce((n, l) => n + l.length, 0);
    console.log(`${name} ${label} mixed ${bytes} ${tokens} ` +
                `${seconds.toFixed(4)} ${(bytes / seconds / 1e6).toFixed(2)}`);
}

function runTiktoken(encName, corpus, idsOut) {
    const tiktoken = load('tiktoken', 'tiktoken.cjs');
    const enc = tiktoken.get_encoding(encName);
    const { docs, bytes } = readDocs(corpus);
    const t0 = cpuSeconds();
    const lists = docs.map((d) => enc.encode_ordinary(d));
    const s = cpuSeconds() - t0;
    report('tiktoken-npm', encName, bytes, lists, s);
    writeIds(idsOut, lists);
    enc.free();
}

async function runHf(jsonPath, label, corpus, idsOut) {
    const { Tokenizer } = load('tokenizers', 'index.js');
    if (!fs.existsSync(jsonPath))
        die(`${jsonPath}: not found`);
    const tok = Tokenizer.fromFile(jsonPath);
    const { docs, bytes } = readDocs(corpus);
    const lists = [];
    const t0 = cpuSeconds();
    for (const d of docs) {
        const e = await tok.encode(d, null, { addSpecialTokens: false });
        lists.push(e.getIds());
    }
    const s = cpuSeconds() - t0;
    report('hf-tokenizers-npm', label, bytes, lists, s);
    writeIds(idsOut, lists);
}

function compare(nameA, fileA, nameB, fileB) {
    const a = readIds(fileA), b = readIds(fileB);
    let differ = 0, shown = 0;
    if (a.length !== b.length) {
        console.log(`compare ${nameA} ${nameB}: ${a.length} vs ${b.length} ` +
                    'documents');
        return;
    }
    for (let d = 0; d < a.length; d++) {
        const x = a[d], y = b[d];
        let i = 0;
        while (i < x.length && i < y.length && x[i] === y[i])
            i++;
        if (i === x.length && i === y.length)
            continue;
        differ++;
        if (shown++ < 5)
            console.log(`  document ${d}: ${x.length} vs ${y.length} ids, ` +
                        `first difference at id ${i}: ${x[i]} vs ${y[i]}`);
    }
    console.log(`compare ${nameA} ${nameB}: ${differ} of ${a.length} ` +
                'documents differ');
}

const [mode, ...args] = process.argv.slice(2);
if (mode === 'tiktoken' && args.length === 3)
    runTiktoken(...args);
else if (mode === 'hf' && args.length === 4)
    await runHf(...args);
else if (mode === 'compare' && args.length === 4)
    compare(...args);
else
    die('usage: bench_ref.mjs tiktoken ENC CORPUS IDS | hf JSON LABEL ' +
        'CORPUS IDS | compare NAME_A IDS_A NAME_B IDS_B');

// bench_compile_node.mjs - the usual way to tokenize feedback logs, as the
// baseline of `make bench-compile`: JSON.parse per line and npm tiktoken,
// writing Megatron-style .bin/.idx, one process per core.
//
//   node bench_compile_node.mjs pipeline OUTDIR JOBS FILE...
//       Splits FILE... round-robin over JOBS worker processes; worker k
//       writes OUTDIR/node-k.bin and OUTDIR/node-k.idx (Megatron-Core's
//       indexed dataset, int32 ids, one document per record; the layout
//       is docs/FORMAT.md "Megatron export").  Prints one JSON line:
//       {"jobs", "rows", "records", "tokens", "text_bytes", "peak_kb"}
//       where peak_kb sums the peak resident memory of every process.
//   node bench_compile_node.mjs texts OUTDIR JOBS FILE...
//       Same split; worker k writes OUTDIR/texts-k.txt instead: the texts
//       the compiler encodes, each ended by a NUL byte (a record's
//       prompt, unless it equals the previous record's, then its
//       response), for the tokenizer-only measure.
//
// Rows are what make_compile_corpus.py writes: canonical
// {context|prompt, response, label}, kto {messages, label} and
// sharegpt-dpo {conversations, chosen, rejected} (two records).  A record
// is rendered as `shard compile --template none` does (libshard/
// template.c): every context message's content followed by a blank line
// is the prompt; the response follows as it is; each is encoded with
// encode_ordinary (cl100k_base) and the ids concatenated.  Files ending
// .gz are read through zlib, .zst through the zstd command.  Packages come
// from $BENCH_NPM_DIR (default build/npm).

import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import zlib from 'node:zlib';
import { spawn, fork } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const self = fileURLToPath(import.meta.url);
const repo = path.resolve(path.dirname(self), '../..');
const npmDir = process.env.BENCH_NPM_DIR || path.join(repo, 'build/npm');

function die(msg) {
    process.stderr.write(`bench_compile_node.mjs: ${msg}\n`);
    process.exit(1);
}

function lines(file) {
    let input;
    if (file.endsWith('.zst')) {
        const p = spawn('zstd', ['-dc', file],
                        { stdio: ['ignore', 'pipe', 'inherit'] });
        p.on('exit', (code) => code && die(`${file}: zstd exit ${code}`));
        input = p.stdout;
    } else {
        input = fs.createReadStream(file);
        if (file.endsWith('.gz'))
            input = input.pipe(zlib.createGunzip());
    }
    return readline.createInterface({ input, crlfDelay: Infinity });
}

// The records of one row: [{context: [strings], response}].
function records(row) {
    if (row.conversations && row.chosen) {
        const ctx = row.conversations.map((m) => m.value);
        return [{ ctx, response: row.chosen.value },
                { ctx, response: row.rejected.value }];
    }
    if (row.messages) {
        const m = row.messages;
        return [{ ctx: m.slice(0, -1).map((x) => x.content),
                  response: m[m.length - 1].content }];
    }
    const ctx = row.context ? row.context.map((x) => x.content)
                            : [row.prompt];
    return [{ ctx, response: row.response }];
}

// Buffered writer of one output file.
class Out {
    constructor(file) {
        this.fd = fs.openSync(file, 'w');
        this.buf = Buffer.alloc(4 << 20);
        this.used = 0;
        this.bytes = 0;
    }
    write(b) {
        if (this.used + b.length > this.buf.length)
            this.flush();
        if (b.length > this.buf.length) {
            fs.writeSync(this.fd, b);
        } else {
            b.copy(this.buf, this.used);
            this.used += b.length;
        }
        this.bytes += b.length;
    }
    flush() {
        fs.writeSync(this.fd, this.buf, 0, this.used);
        this.used = 0;
    }
    close() {
        this.flush();
        fs.closeSync(this.fd);
    }
}

function writeIdx(file, lengths) {
    const n = lengths.length;
    const b = Buffer.alloc(9 + 8 + 1 + 8 + 8 + 4 * n + 8 * n + 8 * (n + 1));
    let o = b.write('MMIDIDX\0\0', 0, 'latin1');
    o = b.writeBigUInt64LE(1n, o);
    o = b.writeUInt8(4, o); // int32
    o = b.writeBigUInt64LE(BigInt(n), o);
    o = b.writeBigUInt64LE(BigInt(n + 1), o);
    for (const len of lengths)
        o = b.writeInt32LE(len, o);
    let ptr = 0;
    for (const len of lengths) {
        o = b.writeBigInt64LE(BigInt(ptr), o);
        ptr += 4 * len;
    }
    for (let i = 0; i <= n; i++)
        o = b.writeBigInt64LE(BigInt(i), o);
    fs.writeFileSync(file, b);
}

async function worker(mode, prefix, files) {
    const st = { rows: 0, records: 0, tokens: 0, text_bytes: 0 };
    const lengths = [];
    let enc = null;
    const out = new Out(prefix + (mode === 'texts' ? '.txt' : '.bin'));
    const nul = Buffer.alloc(1);
    let last = null;

    if (mode !== 'texts') {
        try {
            const { get_encoding } = require(
                path.join(npmDir, 'node_modules', 'tiktoken'));
            enc = get_encoding('cl100k_base');
        } catch (e) {
            die(`cannot load tiktoken from ${npmDir} (run: sh ` +
                `tests/install-npm.sh build/npm): ${e.message}`);
        }
    }
    for (const file of files) {
        for await (const line of lines(file)) {
            if (!line)
                continue;
            st.rows++;
            for (const r of records(JSON.parse(line))) {
                const prompt = r.ctx.map((c) => c + '\n\n').join('');
                st.records++;
                st.text_bytes += Buffer.byteLength(prompt) +
                                 Buffer.byteLength(r.response);
                if (mode === 'texts') {
                    if (prompt !== last)
                        out.write(Buffer.from(prompt)), out.write(nul);
                    out.write(Buffer.from(r.response)), out.write(nul);
                    last = prompt;
                    continue;
                }
                const a = enc.encode_ordinary(prompt);
                const b = enc.encode_ordinary(r.response);
                out.write(Buffer.from(a.buffer, a.byteOffset, a.byteLength));
                out.write(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
                lengths.push(a.length + b.length);
                st.tokens += a.length + b.length;
            }
        }
    }
    out.close();
    if (enc) {
        writeIdx(prefix + '.idx', lengths);
        enc.free();
    }
    st.peak_kb = process.resourceUsage().maxRSS;
    return st;
}

function pipeline(mode, outdir, jobs, files) {
    const sum = { jobs, rows: 0, records: 0, tokens: 0, text_bytes: 0,
                  peak_kb: process.resourceUsage().maxRSS };
    const name = mode === 'texts' ? 'texts' : 'node';
    let left = jobs;

    fs.mkdirSync(outdir, { recursive: true });
    for (let k = 0; k < jobs; k++) {
        const mine = files.filter((_, i) => i % jobs === k);
        const child = fork(self, ['worker', mode,
                                  path.join(outdir, `${name}-${k}`),
                                  ...mine]);
        child.on('message', (st) => {
            for (const key of ['rows', 'records', 'tokens', 'text_bytes',
                               'peak_kb'])
                sum[key] += st[key];
        });
        child.on('exit', (code) => {
            if (code)
                die(`worker ${k} exit ${code}`);
            if (--left === 0)
                console.log(JSON.stringify(sum));
        });
    }
}

const [cmd, ...args] = process.argv.slice(2);
if (cmd === 'worker') {
    const st = await worker(args[0], args[1], args.slice(2));
    process.send(st, () => process.exit(0));
} else if ((cmd === 'pipeline' || cmd === 'texts') && args.length >= 3 &&
           Number(args[1]) > 0) {
    pipeline(cmd, args[0], Number(args[1]), args.slice(2));
} else {
    die('usage: bench_compile_node.mjs pipeline|texts OUTDIR JOBS FILE...');
}

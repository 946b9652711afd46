// corpus_ref.mjs TOKENIZER OUTDIR [SIZE_MB] - reference ids for
// tests/cli/tokenizer_corpus.sh.  TOKENIZER is a tiktoken encoding name
// (the reference is npm tiktoken, tiktoken's Rust core) or a path to a
// tokenizer.json (the reference is npm tokenizers, HF's Rust core, native).
//
// Builds a deterministic corpus of texts and writes, in OUTDIR:
//   all.jsonl        every text, one JSON string per line
//   all.ids          the reference's ids for each, one JSON array per line,
//                    with special or added token strings in the text as
//                    their tokens (HF: encode with addSpecialTokens false;
//                    tiktoken: encode with every special allowed)
//   plain.jsonl      the texts that hold no such string
//   plain.ids        their ids (the same whatever the policy; tiktoken:
//                    encode_ordinary)
// The corpus: the edge cases of tests/data/tokenizer_edge.jsonl, long runs,
// the HH-RLHF, OASST and LLaMA-Factory texts from SHARED_DATA, Python
// sources of the system's python3 library, and generated text in a dozen
// scripts.  SIZE_MB (default 8) is the size of the code and generated
// parts together.
//
// Packages are looked up in $SHARD_NPM_DIR, else in build/npm next to this
// script's repository.  Exits non-zero with a one-line reason on stderr
// when anything is missing.

import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { randomFrom, reference, repo, rng } from './npm_ref.mjs';

const { die, load } = reference('corpus_ref.mjs');

const [tokPath, outDir, sizeArg] = process.argv.slice(2);
if (!tokPath || !outDir)
    die('usage: node tests/corpus_ref.mjs TOKENIZER OUTDIR ' +
        '[SIZE_MB]');
const budget = (Number(sizeArg) || 8) * (1 << 20);

const dataDir = process.env.SHARED_DATA || '../shared/data';

function pick(list, rand) {
    return list[Math.floor(rand() * list.length)];
}

function readText(p) {
    try {
        const raw = fs.readFileSync(p);
        return (p.endsWith('.gz') ? zlib.gunzipSync(raw) : raw)
            .toString('utf8');
    } catch (e) {
        die(`cannot read ${p}: ${e.message.split('\n')[0]}`);
    }
}

// Every string value anywhere inside a JSON value.
function strings(v, out) {
    if (typeof v === 'string')
        out.push(v);
    else if (Array.isArray(v))
        v.forEach((x) => strings(x, out));
    else if (v && typeof v === 'object')
        Object.values(v).forEach((x) => strings(x, out));
    return out;
}

function jsonLines(p) {
    return readText(p).split('\n').filter((l) => l.trim() !== '')
        .map((l, i) => {
            try {
                return JSON.parse(l);
            } catch (e) {
                die(`${p}:${i + 1}: bad JSON`);
            }
        });
}

function sharedTexts() {
    const texts = [];
    for (const row of jsonLines(path.join(dataDir,
                                          'hh-rlhf/harmless-base-test.jsonl.gz')))
        texts.push(row.chosen, row.rejected);
    for (const tree of jsonLines(path.join(dataDir, 'oasst/en_100_tree.jsonl')))
        strings(tree, []).filter((s) => s.length > 20)
            .forEach((s) => texts.push(s));
    for (const f of ['kto_en_demo.json', 'dpo_en_demo.json'])
        strings(JSON.parse(readText(path.join(dataDir, 'llama-factory', f))),
                []).forEach((s) => texts.push(s));
    return texts;
}

// Python sources of the system library, in sorted order, ~8 KB pieces.
function codeTexts(limit) {
    const dirs = fs.existsSync('/usr/lib') ? fs.readdirSync('/usr/lib')
        .filter((d) => /^python3\.\d+$/.test(d)).sort() : [];
    const texts = [];
    let size = 0;
    if (dirs.length === 0)
        return texts;
    const dir = path.join('/usr/lib', dirs[dirs.length - 1]);
    for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.py'))
        .sort()) {
        const src = fs.readFileSync(path.join(dir, f), 'utf8');
        for (let i = 0; i < src.length && size < limit; i += 8192) {
            texts.push(src.slice(i, i + 8192));
            size += Math.min(8192, src.length - i);
        }
    }
    return texts;
}

// Words in many scripts with mixed spacing, digits and punctuation.
const scripts = [
    'абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЖЗ', 'αβγδεζηθικλμνξοπρστυφχψωΑΒΓΔ',
    'ابتثجحخدذرزسشصضطظعغفقكلمنهوي', 'אבגדהוזחטיכלמנסעפצקרשת',
    'अआइईउऊएऐओऔकखगघचछजझटठडढणतथदधनपफबभमयरलवशषसह्ािीुूेैोौं',
    'กขคฆงจฉชซญฎฏฐฑฒณดตถทธนบปผพฟภมยรลวศษสหฬอฮะาิีึืุู่้๊๋',
    '的一是不了人我在有他这中大来上个国到说们为子和你地出道也时年',
    'あいうえおかきくけこさしすせそたちつてとなにぬねのアイウエオカキクケコ',
    '가나다라마바사아자차카타파하글한국어문장', 'ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÑÒÓÔÕÖØÙÚÛÜÝßàáâãäåæçèéêëìíîïñòóôõöøùúûüýÿ',
    'ąćęłńóśźżĄĆĘŁŃÓŚŹŻčďěňřšťůžČĎĚŇŘŠŤŮŽ', 'ṁṃṅṇṭḍḥśṣāīūṛḷ',
];
const seps = [' ', ' ', ' ', ' ', '\n', ', ', '. ', '  ', '\t', '\u3000',
              '\u00a0', '、', '。', ' - ', '\r\n', '! ', '? ', '\n\n'];

function generatedTexts(limit) {
    const rand = rng(2026);
    const texts = [];
    let size = 0;
    while (size < limit) {
        const script = pick(scripts, rand);
        let s = '';
        while (s.length < 2000) {
            const r = rand();
            if (r < 0.05)
                s += String(Math.floor(rand() * 1e6));
            else if (r < 0.08)
                s += pick(['😀', '👍🏽', '👨‍👩‍👧', '🇫🇷', '❤️', '∑', '→'], rand);
            else
                s += randomFrom(script, 1 + Math.floor(rand() * 9), rand);
            s += pick(seps, rand);
        }
        texts.push(s);
        size += Buffer.byteLength(s);
    }
    return texts;
}

function longTexts() {
    const rand = rng(42);
    const b64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    return [
        'a'.repeat(3000), ' '.repeat(1000), '\n'.repeat(500), '1'.repeat(2001),
        'ab'.repeat(1000), '!'.repeat(700), '\ud83d\ude42'.repeat(200),
        randomFrom(b64, 8000, rand), randomFrom('abcdefghijklmnopqrstuvwxyz',
                                              4000, rand),
        randomFrom('的一是不了人我在有他', 1500, rand),
        randomFrom(' \t\r\n\u00a0\u3000', 2000, rand) + 'end',
        'e\u0301'.repeat(500), 'A\u030a'.repeat(300),
    ];
}

// The code part is as large as the system's Python library allows, up to
// half the budget; generated text makes up the rest.
const code = codeTexts(budget / 2);
const codeBytes = code.reduce((n, t) => n + Buffer.byteLength(t), 0);
const edgePath = path.join(repo, 'tests/data/tokenizer_edge.jsonl');
const texts = [
    ...jsonLines(edgePath),
    ...longTexts(),
    ...sharedTexts(),
    ...code,
    ...generatedTexts(Math.max(budget / 4, budget - codeBytes)),
];
if (texts.some((t) => typeof t !== 'string'))
    die(`${edgePath}: every line must be a JSON string`);

let ids, added;
if (tokPath.endsWith('.json')) {
    const { Tokenizer } = load('tokenizers');
    let tok;
    try {
        tok = Tokenizer.fromFile(tokPath);
    } catch (e) {
        die(`${tokPath}: ${e.message.split('\n')[0]}`);
    }
    added = JSON.parse(readText(tokPath)).added_tokens.map((a) => a.content);
    ids = [];
    for (let i = 0; i < texts.length; i += 256) {
        const batch = await tok.encodeBatch(texts.slice(i, i + 256),
                                            { addSpecialTokens: false });
        batch.forEach((e) => ids.push(JSON.stringify(Array.from(e.getIds()))));
    }
} else {
    const { get_encoding } = load('tiktoken/tiktoken.cjs');
    let enc;
    try {
        enc = get_encoding(tokPath);
    } catch (e) {
        die(`tiktoken has no encoding ${tokPath}`);
    }
    added = Object.keys(load(`tiktoken/encoders/${tokPath}.json`)
        .special_tokens);
    ids = texts.map((t) => JSON.stringify(Array.from(enc.encode(t, 'all'))));
}

const plain = texts.map((t, i) => i)
    .filter((i) => !added.some((a) => texts[i].includes(a)));
fs.mkdirSync(outDir, { recursive: true });
const lines = (list) => list.join('\n') + '\n';
fs.writeFileSync(path.join(outDir, 'all.jsonl'),
                 lines(texts.map((t) => JSON.stringify(t))));
fs.writeFileSync(path.join(outDir, 'all.ids'), lines(ids));
fs.writeFileSync(path.join(outDir, 'plain.jsonl'),
                 lines(plain.map((i) => JSON.stringify(texts[i]))));
fs.writeFileSync(path.join(outDir, 'plain.ids'),
                 lines(plain.map((i) => ids[i])));
process.stdout.write(`${texts.length} texts, ${plain.length} without ` +
                     'added tokens\n');

// tokenizer_ref.mjs ENCODING OUT [SHARED_DATA] - writes reference token
// ids for tests/test_tokenizer.c, computed by the npm package tiktoken
// (tiktoken's Rust core built to WASM) with encode_ordinary().
//
// The reference package is looked up in $SHARD_NPM_DIR, else in
// build/npm next to this script's repository (tests/install-npm.sh puts it
// there).  Exits non-zero with a one-line reason on stderr when anything
// is missing.
//
// OUT format (little-endian):
//   "SHTKREF1", u32 name length, name bytes, u32 case count, then per case:
//   u32 label length, label, u32 text length, text (the bytes the C side
//   encodes), zero bytes up to a multiple of 4 from the start of the file,
//   u32 id count, u32 ids.
// The text of a case given as raw bytes may be invalid UTF-8; its ids are
// those of the text decoded with WHATWG replacement (one U+FFFD per
// maximal invalid subpart), which is what the C side must do.

import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';

import { randomFrom, reference, rng } from './npm_ref.mjs';

const { die, load } = reference('tokenizer_ref.mjs');

const [encName, outPath, dataArg] = process.argv.slice(2);
if (!encName || !outPath)
    die('usage: node tests/tokenizer_ref.mjs ENCODING OUT [SHARED_DATA]');

const tiktoken = load('tiktoken/tiktoken.cjs');

let enc;
try {
    enc = tiktoken.get_encoding(encName);
} catch (e) {
    die(`tiktoken has no encoding ${encName}`);
}

const dataDir = dataArg || process.env.SHARED_DATA || '../shared/data';
const hhPath = path.join(dataDir, 'hh-rlhf/harmless-base-test.jsonl.gz');
const decoder = new TextDecoder('utf-8');

const lower = 'abcdefghijklmnopqrstuvwxyz';
const b64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

// Hand-picked edge cases: contractions (including the long s, which
// case-insensitive 's matches), CR/LF mixes, white-space runs and the
// code points where regex engines disagree on \s, digit runs, scripts,
// emoji sequences, code, and special-token strings as plain text.
const edgeStrings = [
    '', ' ', '  ', '\n', '\r\n', '\r', '\t', 'a', 'hello world',
    'Hello World', 'HELLO WORLD', "don't", "DON'T", "I'm", "we'll",
    "they've", "you're", "he'd", "it's", "IT'S", "'s", "'S", "'\u017f",
    "it'\u017f", "dog'\u017f tail", '\u2019s curly', "x'LL", "x'Ll",
    "'re'", "''s", "'", "'''", "McDonald's O'Neil's", "ABCdef'S",
    'camelCaseXMLParser don\'t', 'XMLHttpRequest iPhone HTML5Parser',
    '1234567', '12 345 6789 0', '3.14159', '1,000,000', '٣٤٥ ١٢',
    '\u2460\u2461\u2462', '\u216b', 'x\u00b2', '\ud835\udfd9\ud835\udfda',
    '  hello   world  ', 'foo\n\n  bar\r\n', 'a\r\n\r\nb', '\r\n\r\n',
    ' \r\n \n', '\n\n\n', '\t\tindent', ' \tfoo', '\u3000abc',
    '\u3000\u3000x', 'a\u00a0b', 'a\u00a0 b', '\u2028\u2029',
    '\u0085x', 'x\u0085', '\u180e', 'a\u180eb', ' \u180e ', 'x \u180e\n',
    '\ufeffBOM', 'a\ufeff b', ' \ufeff', '\u200bzero width',
    '\u2003em space', '\u00a0\u00a0\u00a0', 'x\n \n \ny', 'a  \n  b',
    'trailing   ', '   leading', 'x \n', 'x\r', 'x\r\r\n\n',
    'http://a.b/c?d=1', 'foo/bar/baz', 'a // b //\n', '<|endoftext|>',
    '<|fim_prefix|>x<|fim_suffix|>', '<|endofprompt|> <|endoftext|>',
    '\ud83d\udc4d', '\ud83d\udc68\u200d\ud83d\udc69\u200d\ud83d\udc67' +
        '\u200d\ud83d\udc66',
    '\ud83c\udff3\ufe0f\u200d\ud83c\udf08', '\ud83d\udc4b\ud83c\udffd',
    '\ud83c\uddeb\ud83c\uddf7\ud83c\udde9\ud83c\uddea',
    'emoji 😀 text', '你好，世界', '日本語のテキスト', '한국어 텍스트',
    '中文123混合abc', 'مرحبا بالعالم', 'עברית', 'Русский текст', 'Ελληνικά',
    'हिन्दी', 'ไทย ภาษา',
    'e\u0301', 'caf\u00e9', 'na\u00efve \u00c7a', '\u01c5emal', '\u01c8',
    '\u02b0\u02b2', '\u00df \u1e9e', '\u0130stanbul \u0131i',
    'a' + '\u0300'.repeat(50), 'x\u0301\u0302 y',
    'def f(x):\n    return x**2\n', 'int main() {\n\treturn 0;\n}\n',
    'if (a && b || !c) { x += 1; }', '<div class="x">hi</div>',
    "SELECT * FROM t WHERE a='b';", '    \n    \n', '...!!!???',
    '---\n***\n', '$$$', '\u00a9 2024 \u2014 \u00abquoted\u00bb',
    '\u0000nul\u0001', 'tab\tsep\tvalues\n', '  \t  \n\t',
    // Contractions followed by letters, where only case folding decides
    // whether the contraction is a piece of its own.
    "it'\u017fok", "x'LLama", "x'Llama", "WE'VEgot", "he'Dbe", "'Sx",
    "'\u017f\u017f", "don'Tcare", "i'Mhere", "they'Rehere",
    // U+180E next to spaces: PCRE2's \s would split these differently.
    '  \u180e', '\u180e\u180e.x', "x \u180e'", '   \u180e\u180e',
    '\u180e.x \u180e', '\u3000\n  \u180e', " \u180e'.\u180e",
    ' \u180ex\u3000\u180e', '.\n\u3000\u3000\u180e', '1x \u180ex',
];

// Long single pieces and long runs.  They stay a few thousand bytes long
// because the reference's merge loop is quadratic in the piece length.
function longStrings() {
    const rand = rng(42);
    return [
        'a'.repeat(5000), ' '.repeat(2000), '\n'.repeat(1000),
        '1'.repeat(3001), 'ab'.repeat(2000), ' \n'.repeat(500),
        '!'.repeat(1000), '\t'.repeat(500) + 'x', '\ud83d\ude42'.repeat(300),
        randomFrom(b64, 20000, rand), randomFrom(lower, 8000, rand),
        randomFrom(lower.toUpperCase(), 3000, rand),
        randomFrom('\u4e00\u4e01\u4e03\u4e07\u4e08\u4e09', 2000, rand),
        randomFrom('0123456789', 5000, rand),
        randomFrom(' \t\r\n\u00a0\u3000', 3000, rand) + 'end',
    ];
}

// One long piece in each adversarial shape of issue 3, 50 KB each: a run
// of one letter, random base64, random letters, a run of one punctuation
// character, random CJK ideographs, a run of spaces and random digits.
// The reference merges each in quadratic time, so they stay this short;
// tests/test_tokenizer.c compares our strategies on longer ones.
function adversarialStrings() {
    const rand = rng(2026);
    const n = 50000;
    const cjk = [];
    for (let i = 0; i < n / 3; i++)
        cjk.push(String.fromCharCode(0x4e00 + Math.floor(rand() * 0x5200)));
    return [
        ['letter', 'a'.repeat(n)],
        ['base64', randomFrom(b64, n, rand)],
        ['letters', randomFrom(lower, n, rand)],
        ['punct', '!'.repeat(n)],
        ['cjk', cjk.join('')],
        ['space', ' '.repeat(n)],
        ['digits', randomFrom('0123456789', n, rand)],
        ['word-run', 'abc'.repeat(n / 3)],
    ];
}

// Invalid UTF-8, as raw bytes.
const edgeBytes = [
    [0xff], [0x61, 0xe2, 0x82, 0x62], [0xe0, 0x80, 0x80],
    [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xc0, 0xaf],
    [0x61, 0xf0, 0x9f, 0x98], [0x80, 0x80, 0x80],
    [0xf0, 0x9f, 0x98, 0x80, 0xff], [0x20, 0xc2], [0x61, 0x62, 0x63, 0xfe,
    0xfe, 0x20, 0x64, 0x65, 0x66], [0x27, 0xc5, 0x20, 0x73],
];

// Two lower-case letters x, y such that no token contains x followed by
// y.  No merge can then cross a boundary between a chunk ending in x and
// one starting with y, so the chunks merge independently and the ids of
// their concatenation are the concatenation of their ids.
function safeBoundary() {
    const seen = new Set();
    for (const bytes of enc.token_byte_values())
        for (let i = 0; i + 1 < bytes.length; i++)
            seen.add(bytes[i] * 256 + bytes[i + 1]);
    for (const x of lower)
        for (const y of lower)
            if (x !== y && !seen.has(x.charCodeAt(0) * 256 +
                                     y.charCodeAt(0)))
                return [x, y];
    die(`${encName}: no safe letter boundary for the 1 MB case`);
}

// About 1 MB of lower-case letters, one piece for every pattern; its
// reference comes chunk by chunk (see safeBoundary).
function megabyteCase() {
    const [x, y] = safeBoundary();
    const rand = rng(7);
    const text = [];
    const ids = [];
    let size = 0;
    while (size < 1 << 20) {
        const n = 500 + Math.floor(rand() * 2500);
        const chunk = y + randomFrom(lower, n - 2, rand) + x;
        text.push(chunk);
        ids.push(...enc.encode_ordinary(chunk));
        size += n;
    }
    return { label: `1mb-single-piece(${x}|${y})`,
             bytes: Buffer.from(text.join('')), ids };
}

function hhCases() {
    let raw;
    try {
        raw = zlib.gunzipSync(fs.readFileSync(hhPath)).toString('utf8');
    } catch (e) {
        die(`cannot read ${hhPath}: ${e.message.split('\n')[0]}`);
    }
    const cases = [];
    raw.split('\n').forEach((line, i) => {
        if (line.trim() === '')
            return;
        let row;
        try {
            row = JSON.parse(line);
        } catch (e) {
            die(`${hhPath}:${i + 1}: bad JSON`);
        }
        for (const field of ['chosen', 'rejected']) {
            if (typeof row[field] !== 'string')
                die(`${hhPath}:${i + 1}: no string '${field}'`);
            cases.push({ label: `hh-rlhf:${i + 1}:${field}`,
                         str: row[field] });
        }
    });
    if (cases.length !== 2 * 2312)
        die(`${hhPath}: ${cases.length / 2} rows, expected 2312`);
    return cases;
}

function encodeCase(c) {
    if (c.ids)
        return c;
    const bytes = c.bytes ? Buffer.from(c.bytes) : Buffer.from(c.str);
    const str = c.bytes ? decoder.decode(bytes) : c.str;
    return { label: c.label, bytes, ids: enc.encode_ordinary(str) };
}

function u32(v) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    return b;
}

function serialize(cases) {
    const parts = [Buffer.from('SHTKREF1'), u32(encName.length),
                   Buffer.from(encName), u32(cases.length)];
    let size = 16 + encName.length;
    for (const c of cases) {
        const label = Buffer.from(c.label);
        const ids = Buffer.from(Uint32Array.from(c.ids).buffer);
        size += 8 + label.length + c.bytes.length;
        const pad = Buffer.alloc((4 - size % 4) % 4);
        size += pad.length + 4 + ids.length;
        parts.push(u32(label.length), label, u32(c.bytes.length), c.bytes,
                   pad, u32(c.ids.length), ids);
    }
    return Buffer.concat(parts);
}

const cases = [
    ...edgeStrings.map((str, i) => ({ label: `edge:${i}`, str })),
    ...longStrings().map((str, i) => ({ label: `long:${i}`, str })),
    ...adversarialStrings().map(([name, str]) => ({
        label: `adversarial:${name}`, str })),
    ...edgeBytes.map((bytes, i) => ({ label: `bytes:${i}`, bytes })),
    megabyteCase(),
    ...hhCases(),
].map(encodeCase);

const tmp = `${outPath}.tmp${process.pid}`;
try {
    fs.mkdirSync(path.dirname(outPath), { recursive: true });
    fs.writeFileSync(tmp, serialize(cases));
    fs.renameSync(tmp, outPath);
} catch (e) {
    die(`cannot write ${outPath}: ${e.message.split('\n')[0]}`);
}

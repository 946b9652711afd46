#!/bin/sh
# templates.sh - chat templates against the models' own: the Llama-3 and
# Qwen3 chat templates (Jinja, from their tokenizer_config.json) rendered by
# @huggingface/jinja and tokenized by HF tokenizers, on the 300 multi-turn
# conversations of the LLaMA-Factory KTO demo; `shard tokenize --template`
# and the prompt_len and n_tokens that `shard compile` stores must agree.
. tests/cli_lib.sh


for pair in llama3:llama3 qwen3:chatml; do
    model=${pair%%:*} template=${pair#*:}
    ref=$TMP/$model
    if ! node tests/template_ref.mjs "$model" \
            "$VOCAB/$model.json" "$ref" > "$TMP/ref.out" 2>&1; then
        fail "$model:reference" "$(tail -1 "$TMP/ref.out")"
        continue
    fi

    "$SHARD" tokenize -t "$model" --template "$template" \
        "$ref/messages.jsonl" > "$ref/ours.jsonl"
    check "$model:$template:tokenize_equals_chat_template" \
        cmp "$ref/ours.jsonl" "$ref/expected.jsonl"

    "$SHARD" compile -q -t "$model" --template "$template" --format canonical \
        "$ref/records.jsonl" -o "$ref/ds"
    "$SHARD" cat "$ref/ds" --label neg > "$ref/cat.jsonl"
    check "$model:$template:compiled_prompt_len" node -e "
        const fs = require('fs');
        const read = (f) => fs.readFileSync(f, 'utf8').trim().split('\n')
            .map((l) => JSON.parse(l));
        const want = new Map();
        const rows = read('$ref/records.jsonl');
        read('$ref/expected.jsonl').forEach((e, i) => want.set(
            JSON.stringify([rows[i].context, rows[i].response]), e));
        const got = read('$ref/cat.jsonl');
        if (got.length !== rows.length) {
            console.error(got.length, 'records'); process.exit(1);
        }
        for (const r of got) {
            const e = want.get(JSON.stringify([r.context, r.response]));
            if (!e || e.prompt_len !== r.prompt_len ||
                e.ids.length !== r.n_tokens) {
                console.error('record', r.record_id); process.exit(1);
            }
        }"
done

# A tokenizer without the structural tokens gets their text, and a warning.
echo '[{"role": "user", "content": "hi"}, {"role": "assistant",
"content": "ok"}]' | tr -d '\n' > "$TMP/one.jsonl"
echo >> "$TMP/one.jsonl"
"$SHARD" tokenize -t cl100k_base --template chatml "$TMP/one.jsonl" \
    > "$TMP/one.out" 2> "$TMP/one.err"
check chatml_without_tokens_warns grep -q \
    'tokenizer cl100k_base has no <|im_start|> <|im_end|>; written as text' \
    "$TMP/one.err"
printf '"%s"\n' '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n' |
    "$SHARD" tokenize -t cl100k_base > "$TMP/prompt.ids"
check chatml_without_tokens_as_text node -e "
    const fs = require('fs');
    const r = JSON.parse(fs.readFileSync('$TMP/one.out', 'utf8'));
    const p = JSON.parse(fs.readFileSync('$TMP/prompt.ids', 'utf8'));
    if (r.prompt_len !== p.length ||
        JSON.stringify(r.ids.slice(0, p.length)) !== JSON.stringify(p))
        process.exit(1);"

"$SHARD" tokenize --template nosuch < /dev/null 2> "$TMP/err"
check unknown_template_refused grep -q 'unknown template "nosuch"' \
    "$TMP/err"

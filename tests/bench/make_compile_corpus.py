"""make_compile_corpus.py DIR [MEGABYTES] - the compile benchmark's corpus.

Writes about MEGABYTES (default 1000) of feedback rows, uncompressed, as
eight JSON lines files in DIR, deterministically (one machine always gets
the same bytes):
  - real rows from $SHARED_DATA (default ../shared/data): HH-RLHF
    harmless-base test pairs, OASST trees (rank 0 reply pos, the others
    neg), LLaMA-Factory KTO and DPO demos;
  - generated rows from the mixed text of make_corpus.py (prose, code and
    gettext catalogs in many scripts): the start of a document as the
    prompt, the rest as the response;
each row varied so that no two are equal: a case number in the prompt and
a few words of the response moved or repeated, drawn from a seeded
generator.  File k is in one schema: canonical (0, 2, 4, 6), kto (1, 5) or
sharegpt-dpo pairs (3, 7); files 1 and 5 are gzip-compressed, 3 and 7 zstd.
A pair goes into canonical and kto files as two rows.  No pair's two
responses are equal after white space is collapsed, so the compiler keeps
every record (no duplicate, no conflict).

DIR/corpus.json says what was built (megabytes, files, rows, records,
bytes); when it matches the request and is newer than this script the
corpus is reused.  Prints one summary line.
"""
import gzip
import json
import os
import random
import re
import subprocess
import sys

FILES = 8
SCHEMAS = ['canonical', 'kto', 'canonical', 'dpo',
           'canonical', 'kto', 'canonical', 'dpo']
SUFFIX = ['', '.gz', '', '.zst', '', '.gz', '', '.zst']
HERE = os.path.dirname(os.path.abspath(__file__))


def hh_turns(text):
    """HH-RLHF transcript -> [(role, content)], or None."""
    parts = re.split(r'\n\n(Human|Assistant):', text)
    if parts[0].strip():
        return None
    turns = []
    for k in range(1, len(parts) - 1, 2):
        role = 'user' if parts[k] == 'Human' else 'assistant'
        turns.append((role, parts[k + 1].strip()))
    return turns


def load_hh(data):
    items = []
    with gzip.open(os.path.join(data, 'hh-rlhf',
                                'harmless-base-test.jsonl.gz'), 'rt') as f:
        for line in f:
            row = json.loads(line)
            a, b = hh_turns(row['chosen']), hh_turns(row['rejected'])
            if not a or not b or a[:-1] != b[:-1] or \
                    a[-1][0] != 'assistant' or b[-1][0] != 'assistant':
                continue
            items.append((a[:-1], ('pair', a[-1][1], b[-1][1])))
    return items


def oasst_walk(node, path, items):
    role = 'user' if node['role'] == 'prompter' else 'assistant'
    path = path + [(role, node['text'])]
    replies = node.get('replies') or []
    ranked = [r for r in replies
              if r['role'] == 'assistant' and r.get('rank') is not None]
    for r in ranked:
        items.append((path, ('one', r['text'],
                             'pos' if r['rank'] == 0 else 'neg')))
    for r in replies:
        oasst_walk(r, path, items)


def load_oasst(data):
    items = []
    with open(os.path.join(data, 'oasst', 'en_100_tree.jsonl')) as f:
        for line in f:
            oasst_walk(json.loads(line)['prompt'], [], items)
    return items


def load_llama_factory(data):
    items = []
    base = os.path.join(data, 'llama-factory')
    with open(os.path.join(base, 'kto_en_demo.json')) as f:
        for row in json.load(f):
            m = [(x['role'], x['content']) for x in row['messages']]
            if m and m[-1][0] == 'assistant':
                items.append((m[:-1], ('one', m[-1][1],
                                       'pos' if row['label'] else 'neg')))
    role = {'human': 'user', 'gpt': 'assistant', 'system': 'system'}
    with open(os.path.join(base, 'dpo_en_demo.json')) as f:
        for row in json.load(f):
            if row.get('system'):
                continue
            m = [(role[x['from']], x['value']) for x in row['conversations']]
            items.append((m, ('pair', row['chosen']['value'],
                              row['rejected']['value'])))
    return items


def load_generated(out):
    """Rows from make_corpus.py's mixed documents (16 MB of them)."""
    path = os.path.join(out, 'mixed-16mb.txt')
    if not os.path.exists(path):
        subprocess.run([sys.executable, os.path.join(HERE, 'make_corpus.py'),
                        path, '16'], check=True, stdout=subprocess.DEVNULL)
    with open(path, 'rb') as f:
        docs = f.read().decode('utf-8').split('\0')
    items = []
    for i, d in enumerate(docs):
        cut = d.find('\n', 200)
        if cut < 0 or cut > 2000 or not d[cut:].strip():
            continue
        label = 'pos' if i % 3 else 'neg'
        items.append(([('user', 'Continue this text:\n' + d[:cut])],
                      ('one', d[cut + 1:], label)))
    return items


def squash(s):
    return ' '.join(s.split())


def vary(text, rng):
    """Moves a run of words to another place or repeats one, 1-3 times."""
    for _ in range(rng.randint(1, 3)):
        if len(text) < 40:
            return text + ' ' + str(rng.randint(0, 99))
        a = text.find(' ', rng.randrange(len(text)))
        b = text.find(' ', a + 1 + rng.randrange(30)) if a >= 0 else -1
        if b < 0:
            continue
        word, text = text[a:b], text[:a] + text[b:]
        at = text.find(' ', rng.randrange(len(text)))
        at = len(text) if at < 0 else at
        if rng.random() < 0.3:
            text = text[:a] + word + text[a:]
        text = text[:at] + word + text[at:]
    return text


def rows_of(item, n, schema, rng):
    """The JSON rows of one varied item, case number n."""
    ctx, resp = item
    ctx = [list(m) for m in ctx]
    if ctx:
        ctx[-1][1] = ctx[-1][1] + '\n(case %d)' % n
    else:
        ctx = [['user', 'case %d' % n]]
    if resp[0] == 'one':
        out = [(vary(resp[1], rng), resp[2])]
    else:
        a, b = vary(resp[1], rng), vary(resp[2], rng)
        if squash(a) == squash(b):
            return []
        if schema == 'dpo':
            conv = [{'from': 'gpt' if r == 'assistant' else 'human',
                     'value': c} for r, c in ctx]
            return [{'conversations': conv,
                     'chosen': {'from': 'gpt', 'value': a},
                     'rejected': {'from': 'gpt', 'value': b}}]
        out = [(a, 'pos'), (b, 'neg')]
    if schema == 'kto':
        return [{'messages': [{'role': r, 'content': c} for r, c in ctx] +
                 [{'role': 'assistant', 'content': t}],
                 'label': label == 'pos'} for t, label in out]
    return [{'context': [{'role': r, 'content': c} for r, c in ctx],
             'response': t, 'label': label} for t, label in out]


def open_out(path):
    """A file object writing path, compressed by its suffix."""
    if path.endswith(('.gz', '.zst')):
        cmd = ['gzip', '-6', '-n'] if path.endswith('.gz') else \
              ['zstd', '-q', '-3']
        f = open(path, 'wb')
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=f)
        f.close()
        return p.stdin, p
    return open(path, 'wb'), None


def write_file(path, schema, items, want, seed, counter):
    """Writes varied rows of items until want bytes; returns stats."""
    rng = random.Random(seed)
    pairs = [it for it in items if it[1][0] == 'pair']
    pool = pairs if schema == 'dpo' else items
    f, proc = open_out(path)
    size = rows = records = 0
    while size < want:
        counter[0] += 1
        for row in rows_of(rng.choice(pool), counter[0], schema, rng):
            line = (json.dumps(row, ensure_ascii=False) + '\n').encode()
            f.write(line)
            size += len(line)
            rows += 1
            records += 2 if schema == 'dpo' else 1
    f.close()
    if proc and proc.wait() != 0:
        sys.exit('make_compile_corpus.py: compressing %s failed' % path)
    return size, rows, records


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit('usage: make_compile_corpus.py DIR [MEGABYTES]')
    out = sys.argv[1]
    mb = int(sys.argv[2]) if len(sys.argv) == 3 else 1000
    stamp = os.path.join(out, 'corpus.json')
    if os.path.exists(stamp) and \
            os.path.getmtime(stamp) > os.path.getmtime(__file__):
        with open(stamp) as f:
            done = json.load(f)
        if done['megabytes'] == mb and \
                all(os.path.exists(os.path.join(out, p))
                    for p in done['files']):
            print('corpus: %s reused (%d MB)' % (stamp, mb))
            return
    os.makedirs(out, exist_ok=True)

    data = os.environ.get('SHARED_DATA', '../shared/data')
    items = load_hh(data) + load_oasst(data) + load_llama_factory(data) + \
        load_generated(out)
    names, bytes_, rows, records, counter = [], 0, 0, 0, [0]
    for k in range(FILES):
        name = 'rows-%d-%s.jsonl%s' % (k, SCHEMAS[k], SUFFIX[k])
        s, r, n = write_file(os.path.join(out, name), SCHEMAS[k], items,
                             mb * 1e6 / FILES, 1000 + k, counter)
        names.append(name)
        bytes_, rows, records = bytes_ + s, rows + r, records + n
    with open(stamp, 'w') as f:
        json.dump({'megabytes': mb, 'files': names, 'bytes': bytes_,
                   'rows': rows, 'records': records}, f, indent=1)
    print('corpus: %d files, %d rows, %d records, %d bytes of JSON lines '
          'in %s (%d source items)' % (FILES, rows, records, bytes_, out,
                                       len(items)))


main()

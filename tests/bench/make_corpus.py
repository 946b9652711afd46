"""make_corpus.py OUT [MEGABYTES] - builds the mixed benchmark corpus.

The corpus is made at bench time from files this machine already has, read
in sorted order so that one machine always gets the same bytes:
  - prose: the text files under /usr/share/doc (gzip-compressed ones
    decompressed), about half of the corpus;
  - code: the Python standard library (its path asked of the running
    interpreter) and the Perl modules on Perl's @INC, about a third;
  - multilingual text: the translated strings of the gettext catalogs
    under /usr/share/locale (Cyrillic, Greek, Arabic, Hebrew, CJK, Thai,
    ...), the rest.
Files that are not valid UTF-8 are skipped.  Each file is cut into
documents of about 8 KB (at line ends); documents are written to OUT
separated by NUL bytes, and the three kinds are interleaved so that every
prefix of the corpus is mixed.  Prints one summary line.
"""
import gzip
import os
import struct
import subprocess
import sys

DOC = 8192


def walk(root, accept):
    """Paths under root that accept() takes, sorted."""
    found = []
    for base, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(base, name)
            if os.path.isfile(path) and not os.path.islink(path) \
                    and accept(path):
                found.append(path)
    return found


def read_text(path):
    """The file as valid UTF-8 text without NUL, or None."""
    try:
        with open(path, 'rb') as f:
            raw = f.read(4 << 20)
        if path.endswith('.gz'):
            raw = gzip.decompress(raw)
        text = raw.decode('utf-8')
    except (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile):
        return None
    if '\0' in text:
        return None
    return text


def is_prose(path):
    name = os.path.basename(path)
    if name.endswith('.gz'):
        name = name[:-3]
    return name.endswith(('.txt', '.md', '.rst', 'README', 'NEWS',
                          'changelog', 'copyright', 'TODO', 'AUTHORS')) \
        or name.startswith(('README', 'NEWS', 'changelog', 'copyright'))


def code_roots():
    roots = [os.path.dirname(os.__file__)]
    try:
        inc = subprocess.run(['perl', '-e', 'print join("\\n", @INC)'],
                             capture_output=True, text=True, check=True)
        roots += [p for p in inc.stdout.split('\n') if os.path.isdir(p)]
    except (OSError, subprocess.CalledProcessError):
        pass
    return roots


def mo_strings(path):
    """Translated strings of a gettext .mo catalog, or None."""
    try:
        with open(path, 'rb') as f:
            data = f.read()
        magic = struct.unpack('<I', data[:4])[0]
        order = '<' if magic == 0x950412de else '>'
        n, _, trans = struct.unpack(order + 'III', data[8:20])
        out = []
        for i in range(1, n):
            length, off = struct.unpack(order + 'II',
                                        data[trans + 8 * i:trans + 8 * i + 8])
            out.append(data[off:off + length].decode('utf-8'))
        text = '\n'.join(s.replace('\0', '\n') for s in out)
    except (OSError, struct.error, UnicodeDecodeError):
        return None
    return text if text.strip() else None


def documents(texts, budget):
    """Cuts texts into ~DOC-byte documents until budget bytes."""
    docs, used = [], 0
    for text in texts:
        if text is None:
            continue
        lines = text.splitlines(keepends=True)
        cur, size = [], 0
        for line in lines:
            cur.append(line)
            size += len(line.encode('utf-8'))
            if size >= DOC:
                docs.append(''.join(cur))
                used += size
                cur, size = [], 0
                if used >= budget:
                    return docs
        if cur and ''.join(cur).strip():
            docs.append(''.join(cur))
            used += size
        if used >= budget:
            return docs
    return docs


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit('usage: make_corpus.py OUT [MEGABYTES]')
    total = int(float(sys.argv[2] if len(sys.argv) == 3 else 8) * 1e6)

    prose = walk('/usr/share/doc', is_prose)
    code = []
    for root in code_roots():
        code += walk(root, lambda p: p.endswith(('.py', '.pm', '.pl')))
    locales = walk('/usr/share/locale', lambda p: p.endswith('.mo'))
    # Catalogs are grouped by language; take them round-robin over
    # languages so that a small budget still spans many scripts.
    by_lang = {}
    for p in locales:
        by_lang.setdefault(p.split(os.sep)[4], []).append(p)
    ordered = []
    while any(by_lang.values()):
        for lang in sorted(by_lang):
            if by_lang[lang]:
                ordered.append(by_lang[lang].pop(0))

    kinds = [
        ('prose', documents((read_text(p) for p in prose), total * 5 // 10)),
        ('code', documents((read_text(p) for p in code), total * 3 // 10)),
        ('multilingual', documents((mo_strings(p) for p in ordered),
                                   total * 2 // 10)),
    ]
    mixed = []
    longest = max(len(d) for _, d in kinds)
    for i in range(longest):
        for _, docs in kinds:
            if i < len(docs):
                mixed.append(docs[i])

    with open(sys.argv[1] + '.tmp', 'wb') as f:
        f.write(b'\0'.join(d.encode('utf-8') for d in mixed))
    os.replace(sys.argv[1] + '.tmp', sys.argv[1])
    sizes = ', '.join('%s %.1f MB' % (k, sum(len(x.encode()) for x in d) / 1e6)
                      for k, d in kinds)
    print('corpus: %d documents (%s) in %s' % (len(mixed), sizes,
                                                sys.argv[1]))


main()

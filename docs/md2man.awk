# md2man.awk - turns docs/shard.1.md into the roff page docs/shard.1.
#
# Handles the subset the page uses: "# title", "## SECTION", "### sub",
# paragraphs, definition lists ("term" line, then ": text" lines), code
# blocks indented by four spaces, and `code` spans (set in bold).

function esc(s) {
    gsub(/\\/, "\\e", s)
    gsub(/^\./, "\\\\\\&.", s)
    gsub(/^'/, "\\\\\\&'", s)
    gsub(/-/, "\\-", s)
    return s
}

function inline(s,    out, i, parts, n) {
    s = esc(s)
    n = split(s, parts, "`")
    out = parts[1]
    for (i = 2; i <= n; i++)
        out = out ((i % 2 == 0) ? "\\fB" : "\\fR") parts[i]
    return out
}

BEGIN { code = 0 }

NR == 1 && /^# / {
    print ".TH SHARD 1 \"\" \"shard 0.1.0\" \"User Commands\""
    next
}

/^    / {
    if (!code) { print ".PP\n.nf\n.RS 4"; code = 1 }
    print esc(substr($0, 5))
    next
}

code && /^$/ { print ".RE\n.fi"; code = 0; next }
/^$/ { blank = 1; next }

/^## / { print ".SH " substr($0, 4); next }
/^### / { print ".SS " inline(substr($0, 5)); next }

/^: / { print inline(substr($0, 3)); blank = 0; next }
/^  / { print inline(substr($0, 3)); next }

{
    if (getline nextline > 0) {
        if (nextline ~ /^: /) {
            print ".TP\n" inline($0) "\n" inline(substr(nextline, 3))
            blank = 0
            next
        }
        if (blank) print ".PP"
        print inline($0)
        blank = 0
        $0 = nextline
        if ($0 ~ /^$/) { blank = 1; next }
        if ($0 ~ /^## /) { print ".SH " substr($0, 4); next }
        if ($0 ~ /^    /) { print ".PP\n.nf\n.RS 4"; code = 1;
                             print esc(substr($0, 5)); next }
        print inline($0)
        next
    }
    if (blank) print ".PP"
    print inline($0)
}

END { if (code) print ".RE\n.fi" }

#!/usr/bin/env python3
"""Build a ~50 000-passage Chinese eval set from text that Debian packages ship.

Usage:
    apt-get install --no-install-recommends libreoffice-help-zh-cn libreoffice-help-zh-tw \
        debian-reference-zh-cn debian-faq-zh-cn debian-edu-doc-zh-cn maint-guide-zh-cn \
        manpages-zh fortunes-zh
    testdata/tools/mkcorpus-debian.py OUT_DIR [-passages 50000] [-queries 1000]

Writes OUT_DIR/corpus.jsonl, queries.jsonl and qrels.tsv in the format of
../shared/eval/README.md (zhisou eval -data OUT_DIR). The corpus is not
committed (about 13 MB); this script rebuilds it byte for byte (fixed seed).

Passages: the text of the LibreOffice help (simplified and traditional), the
Debian reference, FAQ, Debian Edu manual and maintainers' guide (HTML), the
Chinese manual pages (roff, crudely stripped) and the fortune files, split
into paragraphs and cut at sentence ends into passages of 30-110 characters
that are at least half Chinese; titles are the page titles.

Queries are long questions (20+ characters) in everyday wording, built from a
passage: a 6-12 character span of it, inside one of a few question frames
("我想问一下，…这个应该怎么弄呢？"). The source passage is the one relevant
passage (a known-item set: it measures speed on long, function-word-heavy
questions, not answer quality on real users' questions).
"""

import argparse
import glob
import gzip
import html.parser
import json
import os
import random
import re
import sys

SENT_END = re.compile(r"(?<=[。！？；!?;])")
HAN = re.compile(r"[\u4e00-\u9fff]")


class TextHTML(html.parser.HTMLParser):
    """Collects the title and the text of block elements of an HTML page."""

    BLOCK = {"p", "div", "li", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "dd", "dt", "pre", "br", "tr", "title"}

    def __init__(self):
        super().__init__()
        self.title, self.paras, self.buf, self.skip, self.in_title = "", [], [], 0, False

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self.skip += 1
        if tag in self.BLOCK:
            self.flush()
        if tag == "title":
            self.in_title = True

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self.skip = max(0, self.skip - 1)
        if tag == "title":
            self.title = "".join(self.buf).strip()
            self.buf, self.in_title = [], False
        if tag in self.BLOCK:
            self.flush()

    def handle_data(self, data):
        if not self.skip:
            self.buf.append(data)

    def flush(self):
        if self.in_title:
            return
        t = re.sub(r"\s+", " ", "".join(self.buf)).strip()
        if t:
            self.paras.append(t)
        self.buf = []


def html_docs(paths):
    for p in paths:
        try:
            with open(p, encoding="utf-8", errors="replace") as f:
                h = TextHTML()
                h.feed(f.read())
                h.flush()
        except OSError:
            continue
        yield (h.title or os.path.basename(p)), h.paras


ROFF = re.compile(r"\\f[BIRP]|\\\(..|\\[&e-]|\\s[+-]?\d|\\\*.|\\.")


def man_docs(paths):
    for p in paths:
        try:
            with gzip.open(p, "rt", encoding="utf-8", errors="replace") as f:
                lines = f.read().splitlines()
        except (OSError, EOFError):
            continue
        title = os.path.basename(p).split(".")[0]
        paras, cur = [], []
        for ln in lines:
            if ln.startswith(".") or ln.startswith("'"):
                if ln[:3] in (".PP", ".SH", ".TP", ".LP", ".IP", ".SS", ".P") or ln.startswith(".br"):
                    if cur:
                        paras.append(" ".join(cur))
                        cur = []
                    if ln.startswith(".SH") or ln.startswith(".SS"):
                        continue
                continue
            cur.append(ROFF.sub("", ln).strip())
        if cur:
            paras.append(" ".join(cur))
        yield title, paras


def fortune_docs(paths):
    for p in paths:
        try:
            with open(p, encoding="utf-8", errors="replace") as f:
                items = f.read().split("\n%\n")
        except OSError:
            continue
        name = os.path.basename(p)
        for i, it in enumerate(items):
            lines = [l.strip() for l in it.splitlines() if l.strip()]
            if lines:
                yield f"{name} {i + 1}", ["".join(lines)]


def passages(paras, lo=30, hi=110):
    """Cuts paragraphs into passages of lo..hi characters at sentence ends."""
    cur = ""
    for para in paras:
        for s in SENT_END.split(para):
            s = s.strip()
            if not s:
                continue
            if len(cur) + len(s) > hi and len(cur) >= lo:
                yield cur
                cur = ""
            cur += s
            while len(cur) > hi:
                yield cur[:hi]
                cur = cur[hi:]
        if len(cur) >= lo:
            yield cur
            cur = ""
    if len(cur) >= lo:
        yield cur


def chinese_enough(t):
    return len(HAN.findall(t)) * 2 >= len(t)


FRAMES = [
    "我想问一下，{s}这个应该怎么弄呢？",
    "请问有没有人知道{s}是什么意思啊？",
    "我们这边遇到一个问题，就是{s}，该怎么处理比较好？",
    "能不能帮我解释一下{s}到底是怎么回事？",
    "{s}的时候需要注意哪些地方，有什么要求吗？",
    "老师说{s}，可是我还是不太明白为什么会这样？",
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("-passages", type=int, default=50000)
    ap.add_argument("-queries", type=int, default=1000)
    a = ap.parse_args()
    rng = random.Random(20261128)

    sources = []
    for lang in ("zh-CN", "zh-TW"):
        sources.append(("lo-" + lang, html_docs(sorted(glob.glob(f"/usr/share/libreoffice/help/{lang}/text/**/*.html", recursive=True)))))
    sources.append(("debref", html_docs(sorted(glob.glob("/usr/share/debian-reference/*.zh-cn.html")))))
    sources.append(("faq", html_docs(sorted(glob.glob("/usr/share/doc/debian/FAQ/zh-cn/*.html")))))
    sources.append(("edu", html_docs(sorted(glob.glob("/usr/share/doc/debian-edu-doc-zh-cn/*.html")))))
    sources.append(("maint", html_docs(sorted(glob.glob("/usr/share/doc/maint-guide-zh-cn/html/*.html")))))
    sources.append(("man", man_docs(sorted(glob.glob("/usr/share/man/zh_*/man*/*.gz")))))
    sources.append(("fortune", fortune_docs([p for p in sorted(glob.glob("/usr/share/games/fortunes/*")) if not p.endswith(".dat")])))

    corpus, seen = [], set()
    for name, docs in sources:
        n0 = len(corpus)
        for di, (title, paras) in enumerate(docs):
            for pi, t in enumerate(passages(paras)):
                if not chinese_enough(t) or t in seen:
                    continue
                seen.add(t)
                corpus.append({"id": f"{name}-{di}-{pi}", "title": title[:80], "text": t})
        print(f"{name}: {len(corpus) - n0} passages", file=sys.stderr)
    if not corpus:
        sys.exit("no passages: are the packages installed? (see the usage)")
    if len(corpus) > a.passages:
        corpus = rng.sample(corpus, a.passages)
        corpus.sort(key=lambda d: d["id"])

    queries, qrels = [], []
    for d in rng.sample(corpus, len(corpus)):
        if len(queries) == a.queries:
            break
        t = d["text"]
        # The span: 6-12 characters of a run of Chinese characters (no
        # punctuation), the longest run when none is long enough.
        run = max(re.findall(r"[\u4e00-\u9fff]+", t) or [""], key=len)
        if len(run) < 6:
            continue
        n = min(len(run), rng.randint(6, 12))
        st = rng.randrange(0, len(run) - n + 1)
        span = run[st:st + n]
        q = rng.choice(FRAMES).format(s=span)
        qid = f"q{len(queries)}"
        queries.append({"id": qid, "text": q})
        qrels.append(f"{qid}\t{d['id']}\t1")

    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "corpus.jsonl"), "w", encoding="utf-8") as f:
        for d in corpus:
            f.write(json.dumps(d, ensure_ascii=False) + "\n")
    with open(os.path.join(a.out, "queries.jsonl"), "w", encoding="utf-8") as f:
        for q in queries:
            f.write(json.dumps(q, ensure_ascii=False) + "\n")
    with open(os.path.join(a.out, "qrels.tsv"), "w", encoding="utf-8") as f:
        f.write("\n".join(qrels) + "\n")
    chars = sum(len(d["text"]) for d in corpus)
    print(f"{len(corpus)} passages ({chars} characters), {len(queries)} queries -> {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()

# Writes the text formats of the mixed ingest folder from the testdata courses
# (see mixed-folder.sh): plain text (.txt, headings without '#'), question
# banks (.csv; one question per section, its first sentence the right option
# and first sentences of other lessons the wrong ones), and subtitle files
# (.srt, .vtt; one cue per sentence, spoken by 讲师).
import os, re, sys, csv, random
src, out, n_txt, n_csv, n_srt, n_vtt = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:7])
rng = random.Random(5)
lessons = []
for course in sorted(os.listdir(src)):
    for f in sorted(os.listdir(f'{src}/{course}')):
        lessons.append((course, f[:-3], open(f'{src}/{course}/{f}', encoding='utf-8').read()))

def sections(md):
    head, body, out = None, [], []
    for l in md.split('\n'):
        m = re.match(r'^#{1,6}\s+(.*)$', l.strip())
        if m:
            if head and body: out.append((head, body))
            head, body = m.group(1), []
        elif l.strip() and not l.strip().startswith('|'):
            body.append(l.strip().lstrip('-* '))
    if head and body: out.append((head, body))
    return out

def sentences(lines):
    return [s for l in lines for s in re.findall(r'[^。！？]+[。！？]', l) if len(s) > 8]

firsts = [s for _, _, md in lessons for _, b in sections(md) for s in sentences(b)[:1]]

def write(kind, i, course, name, text):
    d = f'{out}/{kind}/{course}'
    os.makedirs(d, exist_ok=True)
    open(f'{d}/{name}.{kind}', 'w', encoding='utf-8', newline='').write(text)

def ts(sec, sep):
    return '%02d:%02d:%02d%s%03d' % (sec // 3600, sec // 60 % 60, sec % 60, sep, 0)

for i, (course, name, md) in enumerate(lessons):
    if i < n_txt:
        write('txt', i, course, name, re.sub(r'(?m)^#{1,6}\s+', '', md))
    if i < n_csv:
        rows = [['题干', '选项A', '选项B', '选项C', '选项D', '答案', '解析', '知识点']]
        for head, body in sections(md):
            s = sentences(body)
            if not s: continue
            wrong = rng.sample([f for f in firsts if f != s[0]], 3)
            rows.append([f'关于“{head}”，下列哪一项出自本节？', s[0], *wrong, 'A', s[0], head])
        import io
        buf = io.StringIO(); csv.writer(buf).writerows(rows)
        write('csv', i, course, name, buf.getvalue())
    if i < n_srt + n_vtt:
        s = sentences([l for _, b in sections(md) for l in b])
        if i < n_srt:
            cues = [f'{k+1}\n{ts(k*4, ",")} --> {ts(k*4+4, ",")}\n讲师：{x}\n' for k, x in enumerate(s)]
            write('srt', i, course, name, '\n'.join(cues))
        else:
            cues = [f'{ts(k*4, ".")} --> {ts(k*4+4, ".")}\n<v 讲师>{x}\n' for k, x in enumerate(s)]
            write('vtt', i, course, name, 'WEBVTT\n\n' + '\n'.join(cues))

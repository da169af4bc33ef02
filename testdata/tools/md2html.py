# Renders the testdata courses' Markdown as plain HTML (headings, paragraphs, lists,
# tables) for LibreOffice to convert; see courses-to-docx.sh.
import os, re, html, sys
src=sys.argv[1]; dst=sys.argv[2]
LI=re.compile(r'^[-*]\s+')
for course in sorted(os.listdir(src)):
    os.makedirs(f'{dst}/{course}', exist_ok=True)
    for f in sorted(os.listdir(f'{src}/{course}')):
        lines=open(f'{src}/{course}/{f}',encoding='utf-8').read().split('\n')
        out=['<html><head><meta charset="utf-8"></head><body>']
        inlist=False; intable=False
        for l in lines:
            s=l.strip()
            m=re.match(r'^(#{1,6})\s+(.*)$',s)
            if s.startswith('|'):
                cells=[c.strip() for c in s.strip('|').split('|')]
                if all(re.match(r'^:?-+:?$',c) for c in cells): continue
                if not intable: out.append('<table>'); intable=True
                out.append('<tr>'+''.join('<td>%s</td>' % html.escape(c) for c in cells)+'</tr>'); continue
            if intable: out.append('</table>'); intable=False
            if LI.match(s):
                if not inlist: out.append('<ul>'); inlist=True
                out.append('<li>%s</li>' % html.escape(LI.sub('',s))); continue
            if inlist: out.append('</ul>'); inlist=False
            if m: out.append('<h%d>%s</h%d>' % (len(m.group(1)), html.escape(m.group(2)), len(m.group(1))))
            elif s: out.append('<p>%s</p>' % html.escape(s))
        if inlist: out.append('</ul>')
        if intable: out.append('</table>')
        out.append('</body></html>')
        open(f'{dst}/{course}/{f[:-3]}.html','w',encoding='utf-8').write('\n'.join(out))

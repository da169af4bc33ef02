# Renders the testdata courses' Markdown as flat ODF presentations (.fodp) for
# LibreOffice to convert to PPTX; see courses-to-pptx.sh. One slide per
# heading: the heading is the slide's title placeholder, the section's
# paragraphs, list items and table rows (cells joined by " | ") its outline
# placeholder. LibreOffice exports a frame as a PPTX placeholder only when it
# has a presentation style (pr1 below).
import os, re, sys
from xml.sax.saxutils import escape
src=sys.argv[1]; dst=sys.argv[2]
HEAD='''<?xml version="1.0" encoding="UTF-8"?>
<office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
 xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0"
 xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"
 xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"
 xmlns:fo="urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0"
 xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0"
 xmlns:presentation="urn:oasis:names:tc:opendocument:xmlns:presentation:1.0"
 office:version="1.3" office:mimetype="application/vnd.oasis.opendocument.presentation">
<office:styles><style:presentation-page-layout style:name="AL1T1"><presentation:placeholder presentation:object="title" svg:x="1cm" svg:y="0.5cm" svg:width="26cm" svg:height="2.5cm"/><presentation:placeholder presentation:object="outline" svg:x="1cm" svg:y="3.2cm" svg:width="26cm" svg:height="12cm"/></style:presentation-page-layout></office:styles>
<office:automatic-styles>
 <style:style style:name="pr1" style:family="presentation"/>
 <style:page-layout style:name="PM1"><style:page-layout-properties fo:page-width="28cm" fo:page-height="15.75cm" style:print-orientation="landscape"/></style:page-layout>
</office:automatic-styles>
<office:master-styles>
 <style:master-page style:name="Default" style:page-layout-name="PM1">
  <draw:frame presentation:class="title" presentation:placeholder="true" draw:layer="backgroundobjects" svg:x="1cm" svg:y="0.5cm" svg:width="26cm" svg:height="2.5cm"><draw:text-box/></draw:frame>
  <draw:frame presentation:class="outline" presentation:placeholder="true" draw:layer="backgroundobjects" svg:x="1cm" svg:y="3.2cm" svg:width="26cm" svg:height="12cm"><draw:text-box/></draw:frame>
 </style:master-page>
</office:master-styles>
<office:body><office:presentation>
'''
TAIL='</office:presentation></office:body></office:document>\n'
def slide(n, title, body):
    s=['<draw:page draw:name="page%d" draw:master-page-name="Default" presentation:presentation-page-layout-name="AL1T1">' % n,
       '<draw:frame presentation:style-name="pr1" draw:layer="layout" presentation:class="title" svg:x="1cm" svg:y="0.5cm" svg:width="26cm" svg:height="2.5cm"><draw:text-box><text:p>%s</text:p></draw:text-box></draw:frame>' % escape(title)]
    if body:
        s.append('<draw:frame presentation:style-name="pr1" draw:layer="layout" presentation:class="outline" svg:x="1cm" svg:y="3.2cm" svg:width="26cm" svg:height="12cm"><draw:text-box>')
        s += ['<text:p>%s</text:p>' % escape(l) for l in body]
        s.append('</draw:text-box></draw:frame>')
    s.append('</draw:page>')
    return '\n'.join(s)
for course in sorted(os.listdir(src)):
    os.makedirs(f'{dst}/{course}', exist_ok=True)
    for f in sorted(os.listdir(f'{src}/{course}')):
        slides=[]; title=None; body=[]
        for l in open(f'{src}/{course}/{f}',encoding='utf-8').read().split('\n'):
            s=l.strip()
            m=re.match(r'^(#{1,6})\s+(.*)$',s)
            if m:
                if title is not None or body: slides.append((title or '', body))
                title, body = m.group(2), []
                continue
            if s.startswith('|'):
                cells=[c.strip() for c in s.strip('|').split('|')]
                if all(re.match(r'^:?-+:?$',c) for c in cells): continue
                s=' | '.join(cells)
            if s: body.append(s)
        if title is not None or body: slides.append((title or '', body))
        out=[HEAD]+[slide(i+1,t,b) for i,(t,b) in enumerate(slides)]+[TAIL]
        open(f'{dst}/{course}/{f[:-3]}.fodp','w',encoding='utf-8').write('\n'.join(out))

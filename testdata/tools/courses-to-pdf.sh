#!/usr/bin/env bash
# Converts the testdata courses to PDF with two real tools, through a plain
# HTML rendering of the Markdown (md2html.py), so that the PDF reader is
# checked on files they wrote:
#
#   OUTDIR/pdf      LibreOffice (Debian libreoffice-writer-nogui), bookmarks
#                   from the headings; LibreOffice 7.4 embeds the Chinese
#                   glyphs as simple TrueType subsets (256 glyphs each) with
#                   ToUnicode maps, not as CID fonts.
#   OUTDIR/pdf-cid  WeasyPrint (Debian weasyprint): Type 0 CID fonts,
#                   Identity-H, with ToUnicode maps; bookmarks from the headings.
#
# Both use WenQuanYi Micro Hei (fonts-wqy-microhei), named in a style sheet,
# so that the output does not depend on which other CJK fonts are installed.
#
#   apt-get install -y libreoffice-writer-nogui weasyprint fonts-wqy-microhei poppler-utils
#   testdata/tools/courses-to-pdf.sh OUTDIR
#   go run ./cmd/zhisou eval -data testdata/eval -corpus OUTDIR/pdf
#
# A few outputs are committed as fixtures in ingest/testdata/libreoffice.
set -euo pipefail
out=${1:?usage: courses-to-pdf.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out/html" "$out/styled" "$out/pdf" "$out/pdf-cid"
python3 "$here/md2html.py" "$here/../courses" "$out/html"
for course in "$out"/html/*/; do
  name=$(basename "$course")
  mkdir -p "$out/pdf/$name" "$out/pdf-cid/$name"
  # The HTML import filter of Writer (not Writer/Web), whose PDF export
  # writes the headings as bookmarks.
  mkdir -p "$out/styled/$name"
  for f in "$course"*.html; do
    sed 's|<head>|<head><style>body,h1,h2,h3,h4,h5,h6,p,li,td{font-family:"WenQuanYi Micro Hei"}</style>|' \
      "$f" >"$out/styled/$name/$(basename "$f")"
    weasyprint -e utf-8 "$out/styled/$name/$(basename "$f")" "$out/pdf-cid/$name/$(basename "$f" .html).pdf" 2>/dev/null
  done
  soffice --headless --infilter="HTML (StarWriter)" --convert-to pdf:writer_pdf_Export \
    --outdir "$out/pdf/$name" "$out/styled/$name/"*.html >/dev/null 2>&1
done
# One lesson without bookmarks, so that the outline comes from the numbering
# patterns in the text (the fixture 03-regulation-operations-nobookmarks.pdf).
mkdir -p "$out/pdf-nobookmarks"
soffice --headless --infilter="HTML (StarWriter)" \
  --convert-to 'pdf:writer_pdf_Export:{"ExportBookmarks":{"type":"boolean","value":"false"}}' \
  --outdir "$out/pdf-nobookmarks" "$out/styled/safety/03-regulation-operations.html" >/dev/null 2>&1
echo "wrote $(find "$out/pdf" -name '*.pdf' | wc -l) LibreOffice PDFs to $out/pdf" \
  "and $(find "$out/pdf-cid" -name '*.pdf' | wc -l) WeasyPrint PDFs to $out/pdf-cid"

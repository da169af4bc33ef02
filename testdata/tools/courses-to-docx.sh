#!/usr/bin/env bash
# Converts the testdata courses to DOCX with LibreOffice (Debian package
# libreoffice-writer-nogui), through a plain HTML rendering of the Markdown,
# so that the DOCX reader is checked on files a real tool wrote.
#
#   testdata/tools/courses-to-docx.sh OUTDIR
#   go run ./cmd/zhisou eval -data testdata/eval -corpus OUTDIR/docx
#
# Two of the outputs are committed as fixtures in ingest/testdata/libreoffice.
set -euo pipefail
out=${1:?usage: courses-to-docx.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out/html" "$out/docx"
python3 "$here/md2html.py" "$here/../courses" "$out/html"
for course in "$out"/html/*/; do
  name=$(basename "$course")
  mkdir -p "$out/docx/$name"
  soffice --headless --convert-to docx:"MS Word 2007 XML" --outdir "$out/docx/$name" "$course"*.html >/dev/null
done
echo "wrote $(find "$out/docx" -name '*.docx' | wc -l) DOCX files to $out/docx"

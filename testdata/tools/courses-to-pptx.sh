#!/usr/bin/env bash
# Converts the testdata courses to PPTX with LibreOffice (Debian package
# libreoffice-impress-nogui), through flat ODF presentations written from the
# Markdown (md2fodp.py: one slide per heading, the heading in the title
# placeholder), so that the PPTX reader is checked on files a real tool wrote.
#
#   testdata/tools/courses-to-pptx.sh OUTDIR
#   go run ./cmd/zhisou eval -data testdata/eval -corpus OUTDIR/pptx
#
# Two of the outputs are committed as fixtures in ingest/testdata/libreoffice.
set -euo pipefail
out=${1:?usage: courses-to-pptx.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out/fodp" "$out/pptx"
python3 "$here/md2fodp.py" "$here/../courses" "$out/fodp"
for course in "$out"/fodp/*/; do
  name=$(basename "$course")
  mkdir -p "$out/pptx/$name"
  soffice --headless --convert-to pptx:"Impress MS PowerPoint 2007 XML" --outdir "$out/pptx/$name" "$course"*.fodp >/dev/null 2>&1
done
echo "wrote $(find "$out/pptx" -name '*.pptx' | wc -l) PPTX files to $out/pptx"

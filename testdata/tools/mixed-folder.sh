#!/usr/bin/env bash
# Builds a folder of 200 mixed files from the testdata courses, each format in
# its own subfolder (so document ids do not collide): Markdown, text, HTML,
# DOCX, PPTX and PDF made by the other scripts here, CSV question banks and
# SRT/VTT transcripts written by mixed-extra.py, XLSX banks converted from
# those CSV files by LibreOffice Calc, and five bad files that must fail with
# clear errors (a scan, an encrypted PDF, a ZIP renamed .docx, a truncated
# .pptx, a CSV with GBK lines in UTF-8).
#
#   apt-get install -y libreoffice-writer-nogui libreoffice-impress-nogui libreoffice-calc-nogui \
#     weasyprint fonts-wqy-microhei
#   testdata/tools/mixed-folder.sh WORKDIR        # writes WORKDIR/mixed
#   go run ./cmd/zhisou ingest -store STORE WORKDIR/mixed
set -euo pipefail
work=${1:?usage: mixed-folder.sh WORKDIR}
here=$(cd "$(dirname "$0")" && pwd)
courses="$here/../courses"
[ -d "$work/pdf" ] || "$here/courses-to-pdf.sh" "$work" >/dev/null
[ -d "$work/docx" ] || "$here/courses-to-docx.sh" "$work" >/dev/null
[ -d "$work/pptx" ] || "$here/courses-to-pptx.sh" "$work" >/dev/null
mix="$work/mixed"
rm -rf "$mix"
mkdir -p "$mix"
# take KIND DIR EXT N: the first N lessons of DIR (in course order) as KIND.
take() {
  local kind=$1 dir=$2 ext=$3 n=$4
  find "$dir" -name "*.$ext" | sort | head -n "$n" | while read -r f; do
    rel=${f#"$dir"/}
    mkdir -p "$mix/$kind/$(dirname "$rel")"
    cp "$f" "$mix/$kind/$rel"
  done
}
take md "$courses" md 25
take html "$work/html" html 25
take docx "$work/docx" docx 25
take pptx "$work/pptx" pptx 25
take pdf "$work/pdf" pdf 15
take pdf-cid "$work/pdf-cid" pdf 10
python3 "$here/mixed-extra.py" "$courses" "$mix" 20 30 10 10
# Half of the banks as XLSX, converted by LibreOffice Calc (UTF-8 CSV).
find "$mix/csv" -name '*.csv' | sort | tail -n 15 | while read -r f; do
  rel=${f#"$mix/csv"/}
  mkdir -p "$mix/xlsx/$(dirname "$rel")"
  soffice --headless --infilter=CSV:44,34,76,1 --convert-to xlsx --outdir "$mix/xlsx/$(dirname "$rel")" "$f" >/dev/null 2>&1
  rm "$f"
done
mkdir -p "$mix/bad"
cp "$here/../../ingest/testdata/pdf/scanned.pdf" "$mix/bad/scanned.pdf"
cp "$here/../../ingest/testdata/pdf/encrypted-aes256.pdf" "$mix/bad/encrypted.pdf"
(cd "$here" && zip -q "$mix/bad/not-a-docx.docx" md2html.py)
head -c 3000 "$(find "$work/pptx" -name '*.pptx' | sort | head -n 1)" >"$mix/bad/truncated.pptx"
{ printf '题目,答案\n客户说太贵时第一步应该做什么？,确认预算\n'; printf '\xb7\xa2\xcf\xd6\xbb\xf0\xd4\xd6,\xb1\xa8\xbe\xaf\n'; } >"$mix/bad/mixed-encoding.csv"
echo "wrote $(find "$mix" -type f | wc -l) files to $mix:"
find "$mix" -type f | sed 's/.*\.//' | sort | uniq -c | sort -rn | tr '\n' ' '
echo

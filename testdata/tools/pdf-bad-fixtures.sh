#!/usr/bin/env bash
# Makes the small PDFs of ingest/testdata/pdf with real tools: a one-page
# LibreOffice PDF, encrypted by qpdf (AES-256 and RC4 with a user password,
# and AES-128 with only an owner password, which opens without one), and a
# "scan": the page rendered to an image by pdftoppm and put into a PDF with
# no text by WeasyPrint.
#
#   apt-get install -y libreoffice-writer-nogui qpdf poppler-utils weasyprint fonts-wqy-microhei
#   testdata/tools/pdf-bad-fixtures.sh ingest/testdata/pdf
set -euo pipefail
out=${1:?usage: pdf-bad-fixtures.sh OUTDIR}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
printf '<html><head><meta charset="utf-8"><style>body,h1,p{font-family:"WenQuanYi Micro Hei"}</style></head><body><h1>第一章 保密培训</h1><p>客户资料属于公司机密，不得外传。</p></body></html>' >"$tmp/tiny.html"
soffice --headless --infilter="HTML (StarWriter)" --convert-to pdf:writer_pdf_Export --outdir "$tmp" "$tmp/tiny.html" >/dev/null 2>&1
qpdf --encrypt secret owner 256 -- "$tmp/tiny.pdf" "$out/encrypted-aes256.pdf"
qpdf --allow-weak-crypto --encrypt secret owner 128 --use-aes=n -- "$tmp/tiny.pdf" "$out/encrypted-rc4.pdf"
qpdf --encrypt "" owner 128 --use-aes=y -- "$tmp/tiny.pdf" "$out/owner-password-only.pdf"
pdftoppm -png -r 40 -singlefile "$tmp/tiny.pdf" "$tmp/scan"
printf '<html><body style="margin:0"><img src="scan.png"></body></html>' >"$tmp/scan.html"
weasyprint "$tmp/scan.html" "$out/scanned.pdf"

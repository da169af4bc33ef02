package service

import (
	"encoding/base64"
	"strings"
	"unicode/utf8"
)

// pageTokenPrefix versions the page tokens: a token is opaque to callers,
// the base64 of the prefix and the last name or id of the previous page.
const pageTokenPrefix = "v1:"

func encodePageToken(after string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(pageTokenPrefix + after))
}

// pageParams checks a page size and token and returns the size to use and
// the name or id to list after.
func pageParams(size int, token string) (int, string, error) {
	switch {
	case size < 0:
		return 0, "", Invalid("page_size", "page_size %d is negative", size)
	case size > MaxPageSize:
		return 0, "", Invalid("page_size", "page_size %d is over the limit of %d", size, MaxPageSize)
	case size == 0:
		size = DefaultPageSize
	}
	if token == "" {
		return size, "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || !strings.HasPrefix(string(b), pageTokenPrefix) || !utf8.Valid(b) {
		return 0, "", Invalid("page_token", "page_token is malformed")
	}
	return size, strings.TrimPrefix(string(b), pageTokenPrefix), nil
}

package index

import (
	"slices"
	"time"
)

// Roles of an API key, each allowing what the ones before it allow.
const (
	RoleRead  = "read"  // search, read documents, lexicons and collections
	RoleWrite = "write" // also write documents and lexicons
	RoleAdmin = "admin" // also create and delete collections, manage keys, read metrics
)

// AllCollections in APIKey.Collections lets a key reach every collection.
const AllCollections = "*"

// APIKey describes an API key: never its secret, only the secret's hash. A
// key is written through the log (OpPutKey), so it is in every replica and
// survives a rebuild from the log.
type APIKey struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Role        string     `json:"role"`
	Collections []string   `json:"collections"`
	Created     time.Time  `json:"created"`
	Revoked     *time.Time `json:"revoked,omitempty"`
	Hash        string     `json:"hash"` // hex SHA-256 of the secret
}

// RoleRank orders roles: read 1, write 2, admin 3; 0 for anything else.
func RoleRank(role string) int {
	return slices.Index([]string{RoleRead, RoleWrite, RoleAdmin}, role) + 1
}

// Covers reports whether the key may reach collection name.
func (k *APIKey) Covers(name string) bool {
	return slices.Contains(k.Collections, AllCollections) || slices.Contains(k.Collections, name)
}

package trace

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
)

func sha64(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func sha12(b []byte) string { return sha64(b)[:12] }

func writeFile(path string, b []byte) error { return os.WriteFile(path, b, 0o644) }

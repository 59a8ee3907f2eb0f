package imagewrite

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/url"
	"path"
	"slices"
	"strings"

	"golang.org/x/crypto/blake2b"
	"golang.org/x/crypto/blake2s"

	"github.com/ferric-metal/ferric/shared/redact"
)

// hashes are the algorithms accepted, by their Python hashlib names (which
// Glance's os_hash_algo and Ironic's "algo:hex" use).
var hashes = map[string]func() hash.Hash{
	"md5":        md5.New,
	"sha1":       sha1.New,
	"sha224":     sha256.New224,
	"sha256":     sha256.New,
	"sha384":     sha512.New384,
	"sha512":     sha512.New,
	"sha512_224": sha512.New512_224,
	"sha512_256": sha512.New512_256,
	"sha3_224":   func() hash.Hash { return sha3.New224() },
	"sha3_256":   func() hash.Hash { return sha3.New256() },
	"sha3_384":   func() hash.Hash { return sha3.New384() },
	"sha3_512":   func() hash.Hash { return sha3.New512() },
	"blake2b":    func() hash.Hash { h, _ := blake2b.New512(nil); return h }, // errors only for a key
	"blake2s":    func() hash.Hash { h, _ := blake2s.New256(nil); return h },
}

// maxChecksumsFile bounds a checksums file; real ones are a few KiB.
const maxChecksumsFile = 1 << 20

// checksumSpec is what the image's checksum fields say, before a checksums
// file is fetched.
type checksumSpec struct {
	algo string   // "" when only a checksums file's value will tell (by its length)
	hex  string   // lower case; "" when url is set
	url  *url.URL // a checksums file to fetch
	from string   // the field it came from, for messages
}

// expectedDigest is the digest the image must have.
type expectedDigest struct {
	algo string
	hex  string
	from string
}

func (e *expectedDigest) newHash() hash.Hash { return hashes[e.algo]() }

// parseChecksum follows IPA's ImageDownload: the os_hash pair when its
// algorithm is supported, else image_checksum.
func parseChecksum(src Source, log *slog.Logger) (*checksumSpec, error) {
	algo := strings.ToLower(strings.TrimSpace(src.OSHashAlgo))
	value := strings.TrimSpace(src.OSHashValue)
	checksum := strings.TrimSpace(src.Checksum)
	if algo != "" || value != "" {
		if algo == "" || value == "" {
			return nil, fmt.Errorf("%w: image_os_hash_algo and image_os_hash_value must be set together", ErrInvalidChecksum)
		}
		if _, ok := hashes[algo]; ok {
			return specFromValue(algo, value, "image_os_hash_value")
		}
		if checksum == "" {
			return nil, fmt.Errorf("%w: image_os_hash_algo %s is not supported (%s) and there is no image_checksum",
				ErrInvalidChecksum, quote(algo), supportedAlgos())
		}
		log.Warn("image_os_hash_algo is not supported, using image_checksum", "algo", algo)
	}
	if checksum == "" {
		return nil, fmt.Errorf("%w: the image has no checksum: set image_checksum, or image_os_hash_algo and image_os_hash_value",
			ErrInvalidChecksum)
	}
	if isChecksumURL(checksum) {
		return specFromValue("", checksum, "image_checksum")
	}
	if a, h, ok := strings.Cut(checksum, ":"); ok {
		a = strings.ToLower(strings.TrimSpace(a))
		if _, known := hashes[a]; !known {
			return nil, fmt.Errorf("%w: image_checksum algorithm %s is not supported (%s)", ErrInvalidChecksum, quote(a), supportedAlgos())
		}
		return specFromValue(a, strings.TrimSpace(h), "image_checksum")
	}
	return specFromValue("", checksum, "image_checksum")
}

// specFromValue reads a hash value or a checksums file URL; algo "" means
// the value's length tells it.
func specFromValue(algo, value, field string) (*checksumSpec, error) {
	if isChecksumURL(value) {
		u, err := parseHTTPURL(value)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: checksums file URL: %w", ErrInvalidChecksum, field, err)
		}
		return &checksumSpec{algo: algo, url: u, from: field}, nil
	}
	algo, hexValue, err := checkHex(algo, value)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidChecksum, field, err)
	}
	return &checksumSpec{algo: algo, hex: hexValue, from: field}, nil
}

// checkHex validates a hex digest for algo, or infers algo from the length
// as IPA's _get_algorithm_by_length does (32 md5, 64 sha256, 128 sha512).
func checkHex(algo, value string) (string, string, error) {
	if !isHex(value) {
		return "", "", fmt.Errorf("%s is not a hex digest", quote(value))
	}
	if algo == "" {
		switch len(value) {
		case 32:
			algo = "md5"
		case 64:
			algo = "sha256"
		case 128:
			algo = "sha512"
		default:
			return "", "", fmt.Errorf("cannot tell the algorithm of a %d-digit checksum (32 md5, 64 sha256, 128 sha512; else write algo:hex)", len(value))
		}
	}
	if want := hashes[algo]().Size() * 2; len(value) != want {
		return "", "", fmt.Errorf("a %s digest has %d hex digits, not %d", algo, want, len(value))
	}
	return algo, strings.ToLower(value), nil
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func isChecksumURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

func supportedAlgos() string {
	names := make([]string, 0, len(hashes))
	for n := range hashes {
		names = append(names, n)
	}
	slices.Sort(names)
	return "supported: " + strings.Join(names, ", ")
}

// quote shows an untrusted value briefly.
func quote(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// resolve fetches the checksums file, if there is one, and returns the
// digest the image must have.
func (s *checksumSpec) resolve(ctx context.Context, f *fetcher, imageURL *url.URL) (*expectedDigest, error) {
	if s.url == nil {
		return &expectedDigest{algo: s.algo, hex: s.hex, from: s.from}, nil
	}
	shown := redact.URL(s.url.String())
	text, err := f.small(ctx, s.url, maxChecksumsFile)
	if err != nil {
		return nil, fmt.Errorf("checksums file: %w", err)
	}
	value, err := parseChecksumsFile(text, imageURL)
	if err != nil {
		return nil, fmt.Errorf("%w: checksums file %s: %w", ErrInvalidChecksum, shown, err)
	}
	algo, hexValue, err := checkHex(s.algo, value)
	if err != nil {
		return nil, fmt.Errorf("%w: checksums file %s: %w", ErrInvalidChecksum, shown, err)
	}
	return &expectedDigest{algo: algo, hex: hexValue, from: "checksums file " + shown}, nil
}

// small downloads a short file whole.
func (f *fetcher) small(ctx context.Context, u *url.URL, limit int64) (string, error) {
	d, err := f.open(ctx, u)
	if err != nil {
		return "", err
	}
	defer d.Close()
	if d.size > limit {
		return "", fmt.Errorf("%w: %s is %d bytes, more than %d", ErrInvalidChecksum, d.shown, d.size, limit)
	}
	b, err := io.ReadAll(io.LimitReader(d, limit+1))
	if err != nil {
		return "", err
	}
	if int64(len(b)) > limit {
		return "", fmt.Errorf("%w: %s is more than %d bytes", ErrInvalidChecksum, d.shown, limit)
	}
	return string(b), nil
}

// parseChecksumsFile picks the image's digest out of a checksums file as
// IPA's _fetch_checksum does: a file of one word is the digest itself;
// otherwise the first line naming the image's file (GNU "hash  name" or
// "hash *name", BSD "ALGO (name) = hash") gives it. Lines starting with #
// are comments.
func parseChecksumsFile(text string, imageURL *url.URL) (string, error) {
	var lines []string
	for l := range strings.SplitSeq(text, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return "", errors.New("the file is empty")
	}
	if len(lines) == 1 && !strings.Contains(lines[0], " ") {
		if isHex(lines[0]) && digestLength(len(lines[0])) {
			return lines[0], nil
		}
		return "", errors.New("the file holds no checksum")
	}
	names := imageNames(imageURL)
	for _, line := range lines {
		if strings.HasPrefix(line, "#") || !slices.ContainsFunc(names, func(n string) bool { return namesFile(line, n) }) {
			continue
		}
		if d := digestIn(line); d != "" {
			return d, nil
		}
	}
	return "", fmt.Errorf("no line for %s", quote(names[0]))
}

// imageNames is the image's file name as the URL spells it and unescaped.
func imageNames(u *url.URL) []string {
	names := []string{path.Base(u.EscapedPath())}
	if plain := path.Base(u.Path); plain != names[0] {
		names = append(names, plain)
	}
	return names
}

// namesFile reports whether line ends with whitespace, an optional '*' and
// name, or has "(name)" between whitespace.
func namesFile(line, name string) bool {
	if name == "" || name == "." || name == "/" {
		return false
	}
	if rest, ok := strings.CutSuffix(line, name); ok {
		rest = strings.TrimSuffix(rest, "*")
		if rest != "" && isSpace(rest[len(rest)-1]) {
			return true
		}
	}
	paren := "(" + name + ")"
	for i := 0; ; {
		j := strings.Index(line[i:], paren)
		if j < 0 {
			return false
		}
		at, end := i+j, i+j+len(paren)
		if at > 0 && isSpace(line[at-1]) && end < len(line) && isSpace(line[end]) {
			return true
		}
		i = at + 1
	}
}

// digestIn returns the 32, 64 or 128 hex digits that start a line before
// whitespace or end it after whitespace.
func digestIn(line string) string {
	n := 0
	for n < len(line) && isHex(line[n:n+1]) {
		n++
	}
	if digestLength(n) && n < len(line) && isSpace(line[n]) {
		return line[:n]
	}
	m := len(line)
	for m > 0 && isHex(line[m-1:m]) {
		m--
	}
	if digestLength(len(line)-m) && m > 0 && isSpace(line[m-1]) {
		return line[m:]
	}
	return ""
}

func digestLength(n int) bool { return n == 32 || n == 64 || n == 128 }

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' }

// hashingReader hashes every byte read through it.
type hashingReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func newHashingReader(r io.Reader, h hash.Hash) *hashingReader {
	return &hashingReader{r: r, h: h}
}

func (hr *hashingReader) Read(p []byte) (int, error) {
	n, err := hr.r.Read(p)
	hr.h.Write(p[:n])
	hr.n += int64(n)
	return n, err
}

func (hr *hashingReader) sum() string { return hex.EncodeToString(hr.h.Sum(nil)) }

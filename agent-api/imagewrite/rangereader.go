package imagewrite

import (
	"container/list"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"

	"github.com/ferric-metal/ferric/shared/redact"
)

const (
	// rangeBlockSize is the unit of range requests, of the cache and of the
	// hashes recorded in the verification pass.
	rangeBlockSize = 2 << 20
	// rangeCacheBlocks bounds the cache (16 MiB); rangeReadAhead blocks are
	// fetched ahead of a sequential reader, in parallel.
	rangeCacheBlocks = 8
	rangeReadAhead   = 3
)

// blockHasher records the SHA-256 of every rangeBlockSize block written
// to it.
type blockHasher struct {
	h    hash.Hash
	n    int
	sums [][sha256.Size]byte
}

func newBlockHasher() *blockHasher { return &blockHasher{h: sha256.New()} }

func (b *blockHasher) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		c := min(len(p), rangeBlockSize-b.n)
		b.h.Write(p[:c])
		b.n += c
		p = p[c:]
		if b.n == rangeBlockSize {
			b.flush()
		}
	}
	return total, nil
}

func (b *blockHasher) flush() {
	var s [sha256.Size]byte
	b.h.Sum(s[:0])
	b.sums = append(b.sums, s)
	b.h.Reset()
	b.n = 0
}

// finish records the last, partial block.
func (b *blockHasher) finish() [][sha256.Size]byte {
	if b.n > 0 {
		b.flush()
	}
	return b.sums
}

// rangeReader is an io.ReaderAt over HTTP range requests for a file whose
// blocks' hashes are known: every block fetched is checked against them,
// so what it returns is the file that was verified. Blocks are cached (a
// few, least recently used first out) and read ahead when reads move
// forward block by block. Safe for concurrent use; Close stops its
// fetches.
type rangeReader struct {
	ctx    context.Context
	cancel context.CancelFunc
	f      *fetcher
	url    *url.URL
	shown  string
	size   int64
	header http.Header // If-Match or If-Unmodified-Since
	sums   [][sha256.Size]byte

	wg      sync.WaitGroup
	fetched atomic.Int64

	mu     sync.Mutex
	blocks map[int64]*rangeBlock
	lru    list.List // of *rangeBlock, most recent first
	last   int64
	err    error // the first failure, which the qcow2 reader may quote without wrapping
}

type rangeBlock struct {
	idx   int64
	ready chan struct{} // closed when data or err is set
	data  []byte
	err   error
	elem  *list.Element
}

func newRangeReader(ctx context.Context, f *fetcher, u *url.URL, size int64, validator http.Header, sums [][sha256.Size]byte) *rangeReader {
	ctx, cancel := context.WithCancel(ctx)
	return &rangeReader{
		ctx: ctx, cancel: cancel, f: f, url: u, shown: redact.URL(u.String()), size: size,
		header: validator, sums: sums, blocks: make(map[int64]*rangeBlock), last: -2,
	}
}

// ReadAt implements io.ReaderAt.
func (r *rangeReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	n := 0
	for n < len(p) && off+int64(n) < r.size {
		pos := off + int64(n)
		b, err := r.block(pos / rangeBlockSize)
		if err != nil {
			return n, err
		}
		n += copy(p[n:], b.data[pos%rangeBlockSize:])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// block returns block idx once fetched, starting its fetch and those of
// the blocks after it as needed.
func (r *rangeReader) block(idx int64) (*rangeBlock, error) {
	r.mu.Lock()
	b := r.lookup(idx)
	if idx == r.last+1 {
		for ahead := idx + 1; ahead <= idx+rangeReadAhead && ahead*rangeBlockSize < r.size; ahead++ {
			r.lookup(ahead)
		}
	}
	r.last = idx
	r.mu.Unlock()
	select {
	case <-b.ready:
	case <-r.ctx.Done():
		return nil, r.ctx.Err()
	}
	if b.err != nil {
		r.mu.Lock()
		if r.err == nil {
			r.err = b.err
		}
		r.mu.Unlock()
		return nil, b.err
	}
	return b, nil
}

// lookup finds block idx or starts fetching it, evicting the least
// recently used blocks beyond the cache's size. Evicted blocks still being
// fetched finish unseen. Called with r.mu held.
func (r *rangeReader) lookup(idx int64) *rangeBlock {
	if b, ok := r.blocks[idx]; ok {
		r.lru.MoveToFront(b.elem)
		return b
	}
	b := &rangeBlock{idx: idx, ready: make(chan struct{})}
	b.elem = r.lru.PushFront(b)
	r.blocks[idx] = b
	for r.lru.Len() > rangeCacheBlocks {
		old := r.lru.Remove(r.lru.Back()).(*rangeBlock)
		delete(r.blocks, old.idx)
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		b.data, b.err = r.fetch(idx)
		close(b.ready)
	}()
	return b
}

// failure is the first error a read met, if any.
func (r *rangeReader) failure() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// fetch gets block idx, retrying broken transfers, and checks its hash.
func (r *rangeReader) fetch(idx int64) ([]byte, error) {
	start := idx * rangeBlockSize
	end := min(start+rangeBlockSize, r.size) // exclusive
	if idx >= int64(len(r.sums)) {
		return nil, fmt.Errorf("%w: block %d is beyond the verified file", ErrChecksumMismatch, idx)
	}
	header := r.header.Clone()
	header.Set("Range", fmt.Sprintf("bytes=%d-%d", start, end-1))
	var last error
	for attempt := 0; attempt <= r.f.retries; attempt++ {
		if attempt > 0 {
			if err := r.f.backoff(r.ctx, attempt); err != nil {
				return nil, err
			}
		}
		data, retry, err := r.fetchOnce(header, start, end)
		if err == nil {
			if sha256.Sum256(data) != r.sums[idx] {
				return nil, fmt.Errorf("%w: bytes %d-%d of %s changed on the server after they were verified",
					ErrChecksumMismatch, start, end-1, r.shown)
			}
			return data, nil
		}
		if !retry || r.ctx.Err() != nil {
			return nil, err
		}
		last = err
		r.f.log.Warn("range request failed, retrying", "url", r.shown, "offset", start, "error", err)
	}
	return nil, last
}

// fetchOnce sends one range request; retry tells whether a failure may
// pass on another try.
func (r *rangeReader) fetchOnce(header http.Header, start, end int64) (data []byte, retry bool, err error) {
	fail := func(status int, err error) error {
		return &DownloadError{URL: r.shown, StatusCode: status, Err: fmt.Errorf("bytes %d-%d: %w", start, end-1, err)}
	}
	resp, err := r.f.get(r.ctx, r.url, header)
	if err != nil {
		if r.ctx.Err() != nil {
			return nil, false, r.ctx.Err()
		}
		return nil, true, fail(0, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent:
	case resp.StatusCode == http.StatusOK:
		return nil, false, fmt.Errorf("%w: %s answered a range request with the whole file", ErrRangesUnsupported, r.shown)
	case resp.StatusCode == http.StatusPreconditionFailed:
		return nil, false, fail(resp.StatusCode, errors.New("the image changed on the server after it was verified"))
	case resp.StatusCode >= 500:
		return nil, true, fail(resp.StatusCode, statusError(resp))
	default:
		return nil, false, fail(resp.StatusCode, statusError(resp))
	}
	first, total, err := parseContentRange(resp.Header.Get("Content-Range"))
	if err != nil {
		return nil, false, fail(resp.StatusCode, err)
	}
	if first != start || total >= 0 && total != r.size {
		return nil, false, fail(resp.StatusCode, fmt.Errorf("the server sent Content-Range %q", resp.Header.Get("Content-Range")))
	}
	data = make([]byte, end-start)
	n, err := io.ReadFull(resp.Body, data)
	r.fetched.Add(int64(n))
	if err != nil {
		if r.ctx.Err() != nil {
			return nil, false, r.ctx.Err()
		}
		return nil, true, fail(resp.StatusCode, err)
	}
	return data, false, nil
}

// Close stops every fetch and waits for them.
func (r *rangeReader) Close() error {
	r.cancel()
	r.wg.Wait()
	return nil
}

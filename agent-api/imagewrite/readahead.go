package imagewrite

import "io"

const (
	readAheadSize  = 1 << 20
	readAheadCount = 4
)

// readAhead reads its source in a goroutine of its own, a few buffers
// ahead of the consumer, so that the network keeps flowing while the
// consumer hashes, decompresses and hands data to the disk: the hash, one
// core's work at best, is then the only serial step. Close stops the
// goroutine (by cancelling the source's requests) and waits for it.
type readAhead struct {
	full   chan filledBuffer
	free   chan []byte
	stop   chan struct{}
	done   chan struct{}
	cancel func() // makes a blocked read of the source return

	cur    []byte // unread part of the buffer being consumed
	curBuf []byte // that buffer, to give back
	err    error  // the source's error, io.EOF at its end
}

type filledBuffer struct {
	data []byte
	err  error
}

func newReadAhead(src io.Reader, cancel func()) *readAhead {
	ra := &readAhead{
		full:   make(chan filledBuffer, readAheadCount),
		free:   make(chan []byte, readAheadCount),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
		cancel: cancel,
	}
	for range readAheadCount {
		ra.free <- make([]byte, readAheadSize)
	}
	go ra.run(src)
	return ra
}

func (ra *readAhead) run(src io.Reader) {
	defer close(ra.done)
	for {
		var buf []byte
		select {
		case buf = <-ra.free:
		case <-ra.stop:
			return
		}
		n, err := fill(src, buf)
		select {
		case ra.full <- filledBuffer{data: buf[:n], err: err}:
		case <-ra.stop:
			return
		}
		if err != nil {
			return
		}
	}
}

func (ra *readAhead) Read(p []byte) (int, error) {
	for len(ra.cur) == 0 {
		if ra.curBuf != nil {
			ra.free <- ra.curBuf
			ra.curBuf = nil
		}
		if ra.err != nil {
			return 0, ra.err
		}
		b := <-ra.full
		ra.cur, ra.curBuf, ra.err = b.data, b.data[:cap(b.data)], b.err
	}
	n := copy(p, ra.cur)
	ra.cur = ra.cur[n:]
	return n, nil
}

// failure is the error the source failed with, if it did (not io.EOF).
func (ra *readAhead) failure() error {
	if ra.err == io.EOF {
		return nil
	}
	return ra.err
}

// Close stops reading; only then may the source be looked at.
func (ra *readAhead) Close() {
	select {
	case <-ra.stop:
	default:
		close(ra.stop)
	}
	ra.cancel()
	<-ra.done
}

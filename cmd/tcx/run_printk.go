package main

import (
	"io"
	"strings"
	"sync"
	"sync/atomic"
)

// printkLines is how many bpf_printk lines wait for the writer before
// more are dropped, and printkLineMax their longest (the engine's
// MAX_BPRINTF_BUF, a newline added).
const (
	printkLines   = 1024
	printkLineMax = 1024 + 1
)

// printkSink receives bpf_printk output: into the trace of the frame being
// traced (capture), or to a writer, a line per call. The engine formats
// each message without allocating and calls Write on the packet path;
// once started, Write copies the line into a free buffer and queues it
// for a goroutine that writes it, so a slow or blocked stderr or file
// never stalls a worker: when no buffer is free the line is dropped and
// counted, as the kernel's trace buffer loses what nobody reads.
type printkSink struct {
	w       io.Writer
	capture bool

	mu    sync.Mutex // capture mode, and writes before start
	lines []string
	buf   []byte

	queue, free chan []byte
	done        chan struct{}
	dropped     atomic.Uint64
	stopOnce    sync.Once
}

// start starts the writer goroutine; stop ends it.
func (p *printkSink) start() {
	p.queue = make(chan []byte, printkLines)
	p.free = make(chan []byte, printkLines)
	for range printkLines {
		p.free <- make([]byte, 0, printkLineMax)
	}
	p.done = make(chan struct{})
	go func() {
		defer close(p.done)
		for b := range p.queue {
			if b == nil {
				return
			}
			_, _ = p.w.Write(b) // a failing output loses printk lines, not frames
			p.free <- b[:0]
		}
	}()
}

// stop writes out the queued lines and returns how many were dropped. It
// may be called more than once. The queue is ended by a nil line, not
// closed, so a Write after stop cannot panic: its line is not written.
func (p *printkSink) stop() uint64 {
	if p.queue == nil {
		return 0
	}
	p.stopOnce.Do(func() {
		p.queue <- nil
		<-p.done
	})
	return p.dropped.Load()
}

func (p *printkSink) Write(b []byte) (int, error) {
	if p.queue != nil {
		select {
		case buf := <-p.free:
			p.queue <- printkLine(buf, b)
		default:
			p.dropped.Add(1)
		}
		return len(b), nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.capture {
		p.lines = append(p.lines, strings.TrimRight(string(b), "\n"))
		return len(b), nil
	}
	p.buf = printkLine(p.buf, b)
	if _, err := p.w.Write(p.buf); err != nil {
		return 0, err
	}
	return len(b), nil
}

// printkLine is b in buf as one line: one write per bpf_printk call, as
// trace_pipe shows them.
func printkLine(buf, b []byte) []byte {
	buf = append(buf[:0], b...)
	if len(b) == 0 || b[len(b)-1] != '\n' {
		buf = append(buf, '\n')
	}
	return buf
}

func (p *printkSink) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.lines
	p.lines = nil
	return l
}

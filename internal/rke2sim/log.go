package rke2sim

import (
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"
)

// logger writes logrus-style lines, as real RKE2 does, to stderr:
//
//	time="2025-01-02T03:04:05Z" level=info msg="Starting rke2 ..."
type logger struct {
	mu  sync.Mutex
	out io.Writer
	// last remembers the last message of each dedupe key, so that loops
	// retrying the same failure do not flood the journal.
	last map[string]string
}

func newLogger(out io.Writer) *logger {
	return &logger{out: out, last: map[string]string{}}
}

func (l *logger) emit(level, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.out, "time=%q level=%s msg=%s\n", time.Now().UTC().Format(time.RFC3339), level, strconv.Quote(msg))
}

func (l *logger) Infof(format string, args ...any)  { l.emit("info", format, args...) }
func (l *logger) Warnf(format string, args ...any)  { l.emit("warning", format, args...) }
func (l *logger) Errorf(format string, args ...any) { l.emit("error", format, args...) }
func (l *logger) Fatalf(format string, args ...any) { l.emit("fatal", format, args...) }

// Oncef logs at level unless the previous message logged under key was
// the same; a different message (or Reset) logs again.
func (l *logger) Oncef(key, level, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.mu.Lock()
	same := l.last[key] == msg
	l.last[key] = msg
	l.mu.Unlock()
	if !same {
		l.emit(level, "%s", msg)
	}
}

// Reset forgets the last message of key.
func (l *logger) Reset(key string) {
	l.mu.Lock()
	delete(l.last, key)
	l.mu.Unlock()
}

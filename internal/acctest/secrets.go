package acctest

// The secret sweep (issue 13, item 10): every secret the acceptance tests
// use is registered here (the peers' passwords, tokens and keys through
// testbed.OnSecret, values of sensitive attributes as the state and plan
// checks meet them, and whatever a test passes to Secret), and the end of
// the package run fails when one of them appeared in
//
//   - the trace log: every acceptance test runs with TF_ACC_LOG_PATH, so
//     OpenTofu's TRACE log and the in-process provider's TRACE log (every
//     log call, the framework's and terraform-plugin-go's, including each
//     diagnostic's summary and detail) land in one file per package;
//   - argv: a sampler reads every process's /proc/PID/cmdline every 100 ms
//     while the tests run;
//   - non-sensitive state, the plan, and the CLI's rendered diagnostics of
//     failing steps: the checks that Test adds to every step (sweepcheck.go).
//
// Secrets are never printed: findings name the place and the secret's kind.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/testbed"
)

// minAutoSecret is the shortest sensitive value registered automatically:
// shorter ones ("", "on", a port) would match everywhere by chance.
const minAutoSecret = 8

var sweep struct {
	mu       sync.Mutex
	secrets  map[string]string         // value -> kind
	findings map[string]map[string]int // place -> kind -> occurrences
	places   map[string]bool           // places searched
	argv     map[string]string         // distinct cmdlines seen -> process name
	samples  atomic.Int64
	logPath  string
	ownLog   bool // the log is ours to delete
	started  time.Time
	cpu      atomic.Int64 // sampler's busy time, ns
}

// Secret registers value, a secret of the given kind ("restic password"),
// for the sweep. Tests call it for secrets the testbed does not know about
// (a write-only value written in the configuration).
func Secret(kind, value string) {
	if value == "" {
		return
	}
	sweep.mu.Lock()
	defer sweep.mu.Unlock()
	if sweep.secrets == nil {
		sweep.secrets = map[string]string{}
	}
	if _, ok := sweep.secrets[value]; !ok {
		sweep.secrets[value] = kind
	}
	// A PEM private key is also looked for line by line: a leak may
	// print it reflowed or in part.
	if strings.Contains(value, "PRIVATE KEY-----") {
		for _, l := range strings.Split(value, "\n") {
			if l = strings.TrimSpace(l); len(l) >= 40 && !strings.HasPrefix(l, "-----") {
				if _, ok := sweep.secrets[l]; !ok {
					sweep.secrets[l] = kind + " (a line of it)"
				}
			}
		}
	}
}

// autoSecret registers the value of a sensitive attribute met in state or
// plan, when it is long enough to be told apart from ordinary values.
func autoSecret(kind, value string) {
	if len(value) >= minAutoSecret {
		Secret(kind, value)
	}
}

// secretsSnapshot returns the registered secrets, longest first.
func secretsSnapshot() (values []string, kinds map[string]string) {
	sweep.mu.Lock()
	defer sweep.mu.Unlock()
	kinds = make(map[string]string, len(sweep.secrets))
	for v, k := range sweep.secrets {
		values = append(values, v)
		kinds[v] = k
	}
	sort.Slice(values, func(i, j int) bool { return len(values[i]) > len(values[j]) })
	return values, kinds
}

// searched records that a place was searched.
func searched(place string) {
	sweep.mu.Lock()
	defer sweep.mu.Unlock()
	if sweep.places == nil {
		sweep.places = map[string]bool{}
	}
	sweep.places[place] = true
}

// found records an occurrence of a secret of kind in place.
func found(place, kind string) {
	sweep.mu.Lock()
	defer sweep.mu.Unlock()
	if sweep.findings == nil {
		sweep.findings = map[string]map[string]int{}
	}
	if sweep.findings[place] == nil {
		sweep.findings[place] = map[string]int{}
	}
	sweep.findings[place][kind]++
}

// scanText reports every registered secret in s as found in place and
// returns the kinds found.
func scanText(place, s string) []string {
	searched(place)
	values, kinds := secretsSnapshot()
	var hit []string
	for _, v := range values {
		if strings.Contains(s, v) {
			found(place, kinds[v])
			hit = append(hit, kinds[v])
		}
	}
	return hit
}

// startSweep prepares the per-package trace log, hooks the testbed's
// secrets and starts the argv sampler. It returns the function that stops
// the sampler.
func startSweep() (stop func()) {
	sweep.started = time.Now()
	testbed.OnSecret(Secret)
	if os.Getenv("TF_ACC_LOG_PATH") == "" && os.Getenv("TF_LOG_PATH_MASK") == "" && os.Getenv("HOMELAB_ACC_TRACE") != "0" {
		f, err := os.CreateTemp("", "homelab-acc-trace-*.log")
		if err != nil {
			fmt.Fprintf(os.Stderr, "secret sweep: creating the trace log: %v\n", err)
			os.Exit(1)
		}
		f.Close()
		sweep.logPath, sweep.ownLog = f.Name(), true
		os.Setenv("TF_ACC_LOG_PATH", f.Name())
		if os.Getenv("TF_ACC_LOG") == "" && os.Getenv("TF_LOG_CORE") == "" {
			os.Setenv("TF_ACC_LOG", "TRACE")
		}
	} else {
		sweep.logPath = os.Getenv("TF_ACC_LOG_PATH")
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			sampleArgv()
			select {
			case <-done:
				sampleArgv()
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// sampleArgv reads the command line of every process once.
func sampleArgv() {
	began := time.Now()
	defer func() { sweep.cpu.Add(int64(time.Since(began))) }()
	sweep.samples.Add(1)
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	var seen []string
	for _, e := range ents {
		name := e.Name()
		if name[0] < '0' || name[0] > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + name + "/cmdline")
		if err != nil || len(b) == 0 {
			continue
		}
		seen = append(seen, string(bytes.ReplaceAll(bytes.TrimRight(b, "\x00"), []byte{0}, []byte{' '})))
	}
	sweep.mu.Lock()
	defer sweep.mu.Unlock()
	if sweep.argv == nil {
		sweep.argv = map[string]string{}
	}
	for _, c := range seen {
		if _, ok := sweep.argv[c]; !ok {
			prog, _, _ := strings.Cut(c, " ")
			sweep.argv[c] = filepath.Base(prog)
		}
	}
}

// scanLog looks for every secret in the trace log, line by line. Entries
// of terraform-plugin-testing's own logger (sdk.helper_resource) are left
// out with their continuation lines: they echo the test's configuration,
// whose literals (a test's password) are the test's, not an output of the
// provider or the CLI.
func scanLog(path string) (size int64, skipped int64, err error) {
	searched("trace log")
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	values, kinds := secretsSnapshot()
	r := bufio.NewReaderSize(f, 1<<20)
	harness := false
	for {
		line, rerr := r.ReadString('\n')
		size += int64(len(line))
		if len(line) > 0 {
			if isLogEntryStart(line) {
				harness = strings.Contains(line, " sdk.helper_resource: ")
			}
			if harness {
				skipped += int64(len(line))
			} else {
				for _, v := range values {
					if n := strings.Count(line, v); n > 0 {
						for i := 0; i < n; i++ {
							found("trace log", kinds[v])
						}
					}
				}
			}
		}
		if rerr == io.EOF {
			return size, skipped, nil
		}
		if rerr != nil {
			return size, skipped, rerr
		}
	}
}

// isLogEntryStart reports whether a log line starts a new entry (an
// hclog timestamp, "2026-12-07T00:03:19.747Z [TRACE] ...") rather than
// continuing a multi-line value.
func isLogEntryStart(line string) bool {
	return len(line) > 24 && line[4] == '-' && line[7] == '-' && line[10] == 'T' && line[0] >= '0' && line[0] <= '9'
}

// finishSweep scans the trace log and the sampled command lines, prints the
// report and returns false when a secret was found anywhere.
func finishSweep(stop func()) bool {
	stop()
	var logSize, logSkipped int64
	if sweep.logPath != "" {
		var err error
		logSize, logSkipped, err = scanLog(sweep.logPath)
		if err != nil {
			fmt.Fprintf(os.Stderr, "secret sweep: reading the trace log %s: %v\n", sweep.logPath, err)
			return false
		}
	}
	sweep.mu.Lock()
	argv := sweep.argv
	sweep.mu.Unlock()
	searched("argv")
	values, kinds := secretsSnapshot()
	for c, prog := range argv {
		for _, v := range values {
			if strings.Contains(c, v) {
				found("argv of "+prog, kinds[v])
			}
		}
	}

	sweep.mu.Lock()
	defer sweep.mu.Unlock()
	kindSet := map[string]int{}
	for _, k := range kinds {
		kindSet[k]++
	}
	var kindList []string
	for k, n := range kindSet {
		kindList = append(kindList, fmt.Sprintf("%s x%d", k, n))
	}
	sort.Strings(kindList)
	var places []string
	for p := range sweep.places {
		places = append(places, p)
	}
	sort.Strings(places)
	total := 0
	var lines []string
	for p, ks := range sweep.findings {
		for k, n := range ks {
			total += n
			lines = append(lines, fmt.Sprintf("  %s: %d occurrence(s) of a %s", p, n, k))
		}
	}
	sort.Strings(lines)
	w := os.Stderr
	fmt.Fprintf(w, "secret sweep: %d secrets registered (%s)\n", len(values), strings.Join(kindList, ", "))
	fmt.Fprintf(w, "secret sweep: searched %s; trace log %s (%d bytes, %d of them the test framework's echo of the configuration, not searched); %d argv samples, %d distinct command lines (sampler busy %s of %s)\n",
		strings.Join(places, ", "), sweep.logPath, logSize, logSkipped, sweep.samples.Load(), len(argv),
		time.Duration(sweep.cpu.Load()).Round(time.Millisecond), time.Since(sweep.started).Round(time.Second))
	if total == 0 {
		fmt.Fprintf(w, "secret sweep: 0 occurrences\n")
		if sweep.ownLog {
			_ = os.Remove(sweep.logPath)
		}
		return true
	}
	fmt.Fprintf(w, "secret sweep: FAILED, %d occurrence(s) of registered secrets (values not shown):\n%s\n", total, strings.Join(lines, "\n"))
	if sweep.logPath != "" {
		fmt.Fprintf(w, "secret sweep: the trace log is kept at %s\n", sweep.logPath)
	}
	return false
}

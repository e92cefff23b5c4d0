package testbed

import (
	"os"
	"sync"
)

// The peers' secrets (passwords, tokens, private keys) are reported to a
// hook as they are created, so that the acceptance harness can look for
// them where they must never appear (logs, argv, diagnostics, state); see
// acctest's secret sweep.
var secretHook struct {
	mu sync.Mutex
	f  func(kind, value string)
}

// OnSecret sets the function that receives every secret a peer creates
// from now on: its kind ("BMC password (ipmi_sim)") and value.
func OnSecret(f func(kind, value string)) {
	secretHook.mu.Lock()
	defer secretHook.mu.Unlock()
	secretHook.f = f
}

// noteSecret reports a secret to the hook, if one is set.
func noteSecret(kind, value string) {
	secretHook.mu.Lock()
	f := secretHook.f
	secretHook.mu.Unlock()
	if f != nil && value != "" {
		f(kind, value)
	}
}

// noteSecretFile reports the content of a secret file (a private key).
func noteSecretFile(kind, path string) {
	if b, err := os.ReadFile(path); err == nil {
		noteSecret(kind, string(b))
	}
}

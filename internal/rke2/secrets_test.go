package rke2

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
)

// TestSecretReason is the documented list of what counts as a secret in
// config.yaml (README/docs of sensitive_config repeat it).
func TestSecretReason(t *testing.T) {
	secret := map[string]string{
		"token":                       "K10abc::server:0123456789",
		"agent-token":                 "0123456789abcdef",
		"etcd-s3-access-key":          "AKIAIOSFODNN7EXAMPLE",
		"etcd-s3-secret-key":          "wJalrXUtnFEMI/K7MDENG/bPxRfiCY",
		"etcd-s3-session-token":       "FQoGZXIvYXdzE",
		"some-password":               "hunter22",
		"registry-passwd":             "hunter22",
		"oidc-client-secret":          "s3cr3t",
		"webhook-token":               "abc",
		"encryption-key":              "base64stuff==",
		"datastore-endpoint":          "postgres://rke2:hunter22@db.lan:5432/kubernetes",
		"etcd-s3-proxy":               "http://user:pass@proxy.lan:3128",
		"kube-apiserver-arg":          "etcd-servers=https://x,password=hunter22",
		"kube-controller-manager-arg": "oidc-client-secret=s3cr3t",
	}
	for k, v := range secret {
		if SecretReason(k, v, true) == "" {
			t.Errorf("%s = %q: not recognised as a secret", k, v)
		}
	}
	for _, v := range []string{"rke2:hunter22@tcp(db.lan:3306)/kubernetes", "host=db user=rke2 password=hunter22 dbname=k"} {
		if SecretReason("datastore-endpoint", v, true) == "" {
			t.Errorf("datastore-endpoint %q: not recognised as a secret", v)
		}
	}
	plain := map[string]string{
		"node-ip":               "10.0.0.1",
		"write-kubeconfig-mode": "0644",
		"cni":                   "cilium",
		"datastore-endpoint":    "postgres://db.lan:5432/kubernetes", // no password
		"etcd-s3-endpoint":      "s3.lan:9000",
		"etcd-s3-bucket":        "backups",
		"datastore-keyfile":     "/etc/rke2/db.key",
		"tls-private-key":       "/etc/rke2/tls.key", // a file path, not a secret
		"kube-apiserver-arg":    "oidc-issuer-url=https://id.lan",
		"server-url":            "https://user@host.lan", // user, no password
	}
	for k, v := range plain {
		if r := SecretReason(k, v, true); r != "" {
			t.Errorf("%s = %q: taken for a secret (%s)", k, v, r)
		}
	}
	// Unknown at plan time: keys that may hold secrets are reported.
	for _, k := range []string{"etcd-s3-secret-key", "db-password", "datastore-endpoint"} {
		if SecretReason(k, "", false) == "" {
			t.Errorf("unknown value of %s: not reported", k)
		}
	}
	if SecretReason("node-ip", "", false) != "" {
		t.Error("unknown value of node-ip reported")
	}
	// The reason never repeats the value.
	for k, v := range secret {
		if r := SecretReason(k, v, true); strings.Contains(r, v) {
			t.Errorf("reason for %s holds the value: %s", k, r)
		}
	}
}

// TestSensitiveConfigRenderedAndHashed: sensitive_config values are
// written to config.yaml like config's (server-only keys to servers
// only), and no secret reaches the plain hash, which still sees a secret
// key added or removed, while the sensitive hash sees a secret changed.
func TestSensitiveConfigRenderedAndHashed(t *testing.T) {
	const s3 = "wJalrXUtnFEMI/K7MDENG/bPxRfiCY"
	spec := NodeSpec{Role: Server, Name: "cp1", Token: "tok3n-value",
		Cluster:          map[string]string{"etcd-s3": "true", "etcd-s3-bucket": "backups"},
		ClusterSensitive: map[string]string{"etcd-s3-secret-key": s3, "etcd-s3-access-key": "AKIAIOSFODNN7EXAMPLE"},
		Node:             map[string]string{"node-ip": "10.0.0.1"},
		NodeSensitive:    map[string]string{"node-external-ip": "203.0.113.7"},
	}
	c := Build(spec)
	data, err := Render(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"etcd-s3-secret-key: " + s3, "etcd-s3-access-key: AKIAIOSFODNN7EXAMPLE", "node-external-ip: 203.0.113.7", "etcd-s3-bucket: backups"} {
		mustContain(t, string(data), want)
	}
	if got := strings.Join(spec.SensitiveKeys(), ","); got != "etcd-s3-access-key,etcd-s3-secret-key,node-external-ip" {
		t.Errorf("SensitiveKeys = %s", got)
	}
	agent := spec
	agent.Role = Agent
	if a := Build(agent); a["etcd-s3-secret-key"] != nil || a["node-external-ip"] != "203.0.113.7" {
		t.Errorf("agent config: %v", a)
	}

	h, err := HashRendered(c, spec.SensitiveKeys()...)
	if err != nil {
		t.Fatal(err)
	}
	if h.Secrets == "" || h.Config == h.Secrets {
		t.Fatalf("hashes %+v", h)
	}
	// Read back from the node, the same file hashes the same way.
	if back, _ := HashFile(data, spec.SensitiveKeys()...); back != h {
		t.Fatalf("read back %+v, planned %+v", back, h)
	}
	// The plain hash is that of the config with placeholders: nothing
	// secret in it (checked by recomputing it from the redacted map).
	redacted := map[string]any{}
	for k, v := range c {
		redacted[k] = v
	}
	delete(redacted, KeyToken)
	for _, k := range []string{"etcd-s3-secret-key", "etcd-s3-access-key", "node-external-ip"} {
		redacted[k] = redactedValue
	}
	b, _ := json.Marshal(redacted)
	want := sha256.Sum256(b)
	if h.Config != "sha256:"+hex.EncodeToString(want[:]) {
		t.Fatal("the plain hash is not the hash of the redacted config")
	}
	// A secret changed on the node: only the sensitive hash moves.
	edited, _ := HashFile([]byte(strings.Replace(string(data), s3, "changed-on-the-node", 1)), spec.SensitiveKeys()...)
	if edited.Config != h.Config || edited.Secrets == h.Secrets {
		t.Fatalf("secret edited: %+v vs %+v", edited, h)
	}
	// A secret key removed: the plain hash moves.
	removed, _ := HashFile([]byte(strings.Replace(string(data), "etcd-s3-access-key: AKIAIOSFODNN7EXAMPLE\n", "", 1)), spec.SensitiveKeys()...)
	if removed.Config == h.Config {
		t.Fatal("a secret key removed did not change the plain hash")
	}
	// A secret-bearing key is redacted even when it was not declared
	// sensitive (an out-of-band edit, or state from an older version).
	hand := []byte("node-name: cp1\netcd-s3-secret-key: " + s3 + "\n")
	h1, _ := HashFile(hand)
	h2, _ := HashFile([]byte("node-name: cp1\netcd-s3-secret-key: other\n"))
	if h1.Config != h2.Config || h1.Secrets == h2.Secrets {
		t.Fatalf("undeclared secret key not redacted: %+v %+v", h1, h2)
	}
	// A config without secrets hashes as before sensitive_config existed
	// (JSON of the map without the token), so existing state does not drift.
	plain := Build(NodeSpec{Role: Agent, Name: "w1", Token: "t", Node: map[string]string{"node-ip": "10.0.0.2"}})
	hp, _ := HashRendered(plain)
	old, _ := json.Marshal(map[string]any{"node-name": "w1", "node-ip": "10.0.0.2"})
	oldSum := sha256.Sum256(old)
	if hp.Config != "sha256:"+hex.EncodeToString(oldSum[:]) || hp.Secrets != "" {
		t.Fatalf("plain config hash changed: %+v", hp)
	}
}

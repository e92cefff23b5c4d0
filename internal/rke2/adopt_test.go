package rke2

import (
	"reflect"
	"testing"
)

// A config.yaml as a user writes it by hand for a server and an agent.
func TestSplit(t *testing.T) {
	server, err := Parse([]byte(`token: hunter2-hunter2-hunter2
node-ip: 192.168.1.21
cni: calico
cluster-cidr: 10.52.0.0/16
tls-san:
  - k8s.lan
disable: rke2-ingress-nginx,rke2-metrics-server
node-label: ["zone=attic"]
etcd-s3-secret-key: abc
kubelet-arg: [max-pods=150, v=2]
`))
	if err != nil {
		t.Fatal(err)
	}
	f := Split(server, Server)
	if f.Name != "" || f.JoinURL != "" {
		t.Errorf("name %q, join %q", f.Name, f.JoinURL)
	}
	wantTyped := Config{"cni": "calico", "cluster-cidr": "10.52.0.0/16", "tls-san": []string{"k8s.lan"}, "disable": []string{"rke2-ingress-nginx", "rke2-metrics-server"}}
	if !reflect.DeepEqual(f.Typed, wantTyped) {
		t.Errorf("typed %#v, want %#v", f.Typed, wantTyped)
	}
	if !reflect.DeepEqual(f.Plain, map[string]string{"node-ip": "192.168.1.21", "kubelet-arg": "max-pods=150,v=2"}) {
		t.Errorf("plain %#v", f.Plain)
	}
	if !reflect.DeepEqual(f.Secret, map[string]string{"etcd-s3-secret-key": "abc"}) {
		t.Errorf("secret %#v", f.Secret)
	}
	if !reflect.DeepEqual(f.Labels, map[string]string{"zone": "attic"}) {
		t.Errorf("labels %#v", f.Labels)
	}

	agent, err := Parse([]byte("server: https://k8s.lan:9345\ntoken: K10abc::server:s3cr3t\nnode-name: worker-1\nnode-taint: [\"gpu=true:NoSchedule\"]\ncni: calico\n"))
	if err != nil {
		t.Fatal(err)
	}
	f = Split(agent, Agent)
	if f.Name != "worker-1" || f.JoinURL != "https://k8s.lan:9345" || !reflect.DeepEqual(f.Taints, []string{"gpu=true:NoSchedule"}) {
		t.Errorf("agent: %#v", f)
	}
	if len(f.Typed) != 0 || f.Plain["cni"] != "calico" {
		t.Errorf("agent typed %#v plain %#v", f.Typed, f.Plain)
	}
	if ep, err := EndpointOf(f.JoinURL); err != nil || ep != "k8s.lan" {
		t.Errorf("EndpointOf = %q, %v", ep, err)
	}
	if ep, err := EndpointOf("https://[fd00::5]:9345"); err != nil || ep != "fd00::5" {
		t.Errorf("EndpointOf v6 = %q, %v", ep, err)
	}
}

// A hand-written file without node-name hashes like the provider's file
// that names the node; one naming another node does not.
func TestHashFileOf(t *testing.T) {
	mine, _ := HashRendered(Config{"node-ip": "10.0.0.5", KeyNodeName: "cp1"})
	hand, err := HashFileOf([]byte("node-ip: 10.0.0.5\ntoken: s3cr3t\n"), "cp1")
	if err != nil || hand != mine {
		t.Fatalf("hand-written %v %v, want %v", hand, err, mine)
	}
	other, _ := HashFileOf([]byte("node-ip: 10.0.0.5\nnode-name: cp2\n"), "cp1")
	if other == mine {
		t.Fatal("a file naming another node hashed like this node's")
	}
}

package rke2sim

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `NAME:
   rke2 - Rancher Kubernetes Engine 2 SIMULATOR (not RKE2: no kubelet, no pods)

USAGE:
   rke2 [global options] command [command options]

COMMANDS:
   server   Run management server (simulated: etcd + kube-apiserver + node)
   agent    Run node agent (simulated: a Node kept Ready)
   version  Print the version

GLOBAL OPTIONS:
   --debug        Turn on debug logs (ignored)
   --version, -v  Print the version
   --help, -h     Show help
`

// Main runs the rke2 command line with args (without the program name)
// and returns the exit code. server and agent run until SIGTERM or SIGINT.
func Main(args []string) int {
	return run(args, os.Stdout, os.Stderr)
}

func run(args []string, stdout, stderr io.Writer) int {
	for len(args) > 0 && (args[0] == "--debug" || args[0] == "-debug") {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprint(stdout, usage)
		return 0
	}
	switch args[0] {
	case "--version", "-v", "version":
		fmt.Fprint(stdout, VersionText())
		return 0
	case "--help", "-h", "help":
		fmt.Fprint(stdout, usage)
		return 0
	case "server", "agent":
	default:
		fmt.Fprintf(stderr, "Incorrect Usage: unknown command %q\n\n%s", args[0], usage)
		return 1
	}
	command := args[0]
	log := newLogger(stderr)
	cfg, err := LoadConfig(command, args[1:], os.Getenv)
	if err != nil {
		log.Fatalf("%v", err)
		return 1
	}
	for _, w := range cfg.Warnings {
		log.Warnf("%s", w)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if command == "server" {
		return runServer(ctx, cfg, log)
	}
	return runAgent(ctx, cfg, log)
}

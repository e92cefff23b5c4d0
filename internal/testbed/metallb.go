package testbed

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// MetalLBVersion is the MetalLB release whose CRDs the testbed installs. The
// CRDs are read from MetalLB's Go module (through the module proxy), not
// copied into this repository.
const MetalLBVersion = "v0.15.2"

// metalLBModule is MetalLB's Go module.
const metalLBModule = "go.universe.tf/metallb"

// metalLBCRDGlob selects the CRD manifests inside the module.
const metalLBCRDGlob = "config/crd/bases/metallb.io_*.yaml"

// crdCollection is the API path of CustomResourceDefinitions.
const crdCollection = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"

// crdTimeout caps waiting for CRDs to become Established or to disappear,
// even when ctx has no deadline.
const crdTimeout = time.Minute

// MetalLBCRDs returns the YAML manifests of MetalLB's CustomResourceDefinitions
// (IPAddressPool, L2Advertisement, BGPPeer, ...) of MetalLBVersion, sorted by
// file name. The module is downloaded into the Go module cache on first use.
func MetalLBCRDs(ctx context.Context) ([][]byte, error) {
	files, err := metalLBCRDFiles(ctx)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, 0, len(files))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading MetalLB CRD: %w", err)
		}
		out = append(out, data)
	}
	return out, nil
}

// metalLBCRDFiles downloads MetalLB's module and lists its CRD manifests.
func metalLBCRDFiles(ctx context.Context) ([]string, error) {
	goBin, err := goCommand()
	if err != nil {
		return nil, err
	}
	mod := metalLBModule + "@" + MetalLBVersion
	env := goEnv()
	if InStartPhase(ctx) {
		// A peer's start may read the module cache but not download:
		// with GOPROXY=off a missing module fails at once.
		env = append(env, "GOPROXY=off")
	}
	// Outside any module, so that the repository's go.mod is not involved.
	out, err := runGoIn(ctx, goBin, os.TempDir(), env, "mod", "download", "-json", mod)
	if err != nil {
		return nil, fmt.Errorf("downloading %s: %w", mod, err)
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(out, &info); err != nil {
		return nil, fmt.Errorf("parsing `go mod download` output for %s: %w", mod, err)
	}
	if info.Error != "" || info.Dir == "" {
		return nil, fmt.Errorf("downloading %s: %s", mod, info.Error)
	}
	files, err := filepath.Glob(filepath.Join(info.Dir, metalLBCRDGlob))
	if err != nil {
		return nil, fmt.Errorf("listing MetalLB CRDs: %w", err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no CRDs matching %s in %s", metalLBCRDGlob, info.Dir)
	}
	sort.Strings(files)
	return files, nil
}

// crdName returns metadata.name of a CRD manifest. The manifests are
// controller-gen output in block-style YAML, so a small scanner for the
// top-level metadata mapping is enough and keeps YAML libraries out of the
// testbed: it takes the "name:" key at the first indentation level below
// "metadata:".
func crdName(manifest []byte) (string, error) {
	inMetadata, childIndent := false, -1
	sc := bufio.NewScanner(bytes.NewReader(manifest))
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " \t\r")
		trimmed := strings.TrimLeft(line, " ")
		if trimmed == "" || strings.HasPrefix(trimmed, "#") || line == "---" {
			continue
		}
		indent := len(line) - len(trimmed)
		if indent == 0 {
			inMetadata = trimmed == "metadata:"
			childIndent = -1
			continue
		}
		if !inMetadata {
			continue
		}
		if childIndent < 0 {
			childIndent = indent
		}
		if indent != childIndent {
			continue
		}
		if value, ok := strings.CutPrefix(trimmed, "name:"); ok {
			name := strings.Trim(strings.TrimSpace(value), `"'`)
			if name == "" {
				break
			}
			return name, nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("reading CRD manifest: %w", err)
	}
	return "", errors.New("CRD manifest has no metadata.name")
}

// metalLBCRDNames returns the manifests and their CRD names.
func metalLBCRDNames(ctx context.Context) ([][]byte, []string, error) {
	crds, err := MetalLBCRDs(ctx)
	if err != nil {
		return nil, nil, err
	}
	names := make([]string, len(crds))
	for i, c := range crds {
		if names[i], err = crdName(c); err != nil {
			return nil, nil, err
		}
	}
	return crds, names, nil
}

// InstallMetalLBCRDs creates MetalLB's CRDs (existing ones are left as
// they are) and waits until the API server serves all of them.
func (k *Kube) InstallMetalLBCRDs(ctx context.Context) error {
	crds, names, err := metalLBCRDNames(ctx)
	if err != nil {
		return fmt.Errorf("installing MetalLB CRDs: %w", err)
	}
	for i, c := range crds {
		status, resp, err := k.Do(ctx, http.MethodPost, crdCollection, c, "application/yaml")
		if err != nil {
			return fmt.Errorf("installing MetalLB CRD %s: %w", names[i], err)
		}
		if status != http.StatusCreated && status != http.StatusConflict {
			return kubeError("installing MetalLB CRD "+names[i], status, resp)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, crdTimeout)
	defer cancel()
	for _, name := range names {
		if err := k.waitCRDEstablished(ctx, name); err != nil {
			return fmt.Errorf("installing MetalLB CRDs: %w", err)
		}
	}
	return nil
}

// waitCRDEstablished polls the CRD until its Established condition is True.
func (k *Kube) waitCRDEstablished(ctx context.Context, name string) error {
	var last string
	for {
		status, resp, err := k.Do(ctx, http.MethodGet, crdCollection+"/"+url.PathEscape(name), nil, "")
		switch {
		case err != nil:
			last = err.Error()
		case status != http.StatusOK:
			last = kubeError("GET", status, resp).Error()
		default:
			established, why, perr := crdEstablished(resp)
			if perr != nil {
				return fmt.Errorf("CRD %s: %w", name, perr)
			}
			if established {
				return nil
			}
			last = why
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("CRD %s not established: %w (last: %s)", name, ctx.Err(), last)
		case <-time.After(kubePollInterval):
		}
	}
}

// crdEstablished reports whether a CRD object has Established=True, and
// otherwise describes its conditions.
func crdEstablished(obj []byte) (bool, string, error) {
	var crd struct {
		Status struct {
			Conditions []struct {
				Type, Status, Reason, Message string
			} `json:"conditions"`
		} `json:"status"`
	}
	if err := json.Unmarshal(obj, &crd); err != nil {
		return false, "", fmt.Errorf("decoding CRD: %w", err)
	}
	why := "no conditions yet"
	for _, c := range crd.Status.Conditions {
		if c.Type == "Established" && c.Status == "True" {
			return true, "", nil
		}
		why = fmt.Sprintf("%s=%s (%s: %s)", c.Type, c.Status, c.Reason, c.Message)
	}
	return false, why, nil
}

// DeleteMetalLBCRDs deletes MetalLB's CRDs and waits until they are gone.
// The API server deletes every object of those types first, so this also
// clears all MetalLB configuration. Missing CRDs are not an error.
func (k *Kube) DeleteMetalLBCRDs(ctx context.Context) error {
	_, names, err := metalLBCRDNames(ctx)
	if err != nil {
		return fmt.Errorf("deleting MetalLB CRDs: %w", err)
	}
	for _, name := range names {
		status, resp, err := k.Do(ctx, http.MethodDelete, crdCollection+"/"+url.PathEscape(name), nil, "")
		if err != nil {
			return fmt.Errorf("deleting MetalLB CRD %s: %w", name, err)
		}
		if status != http.StatusOK && status != http.StatusAccepted && status != http.StatusNotFound {
			return kubeError("deleting MetalLB CRD "+name, status, resp)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, crdTimeout)
	defer cancel()
	for _, name := range names {
		if err := k.waitGone(ctx, crdCollection+"/"+url.PathEscape(name)); err != nil {
			return fmt.Errorf("deleting MetalLB CRD %s: %w", name, err)
		}
	}
	return nil
}

// waitGone polls path until the API server answers 404.
func (k *Kube) waitGone(ctx context.Context, path string) error {
	var last error
	for {
		status, resp, err := k.Do(ctx, http.MethodGet, path, nil, "")
		switch {
		case err != nil:
			last = err
		case status == http.StatusNotFound:
			return nil
		case status == http.StatusOK:
			last = errors.New("still present")
		default:
			last = kubeError("GET "+path, status, resp)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s to disappear: %w (last: %v)", path, ctx.Err(), last)
		case <-time.After(kubePollInterval):
		}
	}
}

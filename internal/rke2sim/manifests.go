package rke2sim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
)

// fieldManager is the server-side apply field manager of everything the
// simulator writes.
const fieldManager = "rke2-simulator"

const (
	// manifestScanInterval is how often the manifests directory is read.
	manifestScanInterval = 3 * time.Second
	// crdWaitAttempts and crdWaitInterval bound how long one pass waits
	// for the kinds of CRDs it just applied to be served.
	crdWaitAttempts = 30
	crdWaitInterval = 500 * time.Millisecond
)

// deployer applies the files of the manifests directory, like RKE2's
// deploy controller: on startup and whenever a file changes; files that
// failed are retried on every scan. Deleting a file deletes nothing.
type deployer struct {
	dir    string
	client dynamic.Interface
	mapper *discoveryMapper
	log    *logger
	// applied holds the content hash of each file last applied in full.
	applied map[string][sha256.Size]byte
}

// run scans until ctx ends.
func (d *deployer) run(ctx context.Context) {
	for {
		d.scan(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(manifestScanInterval):
		}
	}
}

// manifestFiles lists the files to apply: *.yaml, *.yml and *.json below
// dir (recursively), skipping hidden files and those with a "<name>.skip"
// sibling, in lexical order.
func manifestFiles(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(path string, e os.DirEntry, err error) error {
		if err != nil {
			if path == dir && errors.Is(err, os.ErrNotExist) {
				return filepath.SkipDir
			}
			return err
		}
		name := e.Name()
		if path != dir && strings.HasPrefix(name, ".") {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if e.IsDir() {
			return nil
		}
		switch filepath.Ext(name) {
		case ".yaml", ".yml", ".json":
		default:
			return nil
		}
		if _, err := os.Stat(path + ".skip"); err == nil {
			return nil
		}
		out = append(out, path)
		return nil
	})
	sort.Strings(out)
	return out, err
}

func (d *deployer) scan(ctx context.Context) {
	files, err := manifestFiles(d.dir)
	if err != nil {
		d.log.Oncef("manifests", "error", "Reading manifests: %v", err)
		return
	}
	d.log.Reset("manifests")
	for _, f := range files {
		if ctx.Err() != nil {
			return
		}
		data, err := os.ReadFile(f)
		if err != nil {
			d.log.Oncef("manifest:"+f, "error", "Failed to read %s: %v", f, err)
			continue
		}
		sum := sha256.Sum256(data)
		if old, ok := d.applied[f]; ok && old == sum {
			continue
		}
		n, err := d.applyFile(ctx, data)
		if err != nil {
			if ctx.Err() == nil {
				d.log.Oncef("manifest:"+f, "error", "Failed to apply %s (will retry): %v", f, err)
			}
			continue
		}
		d.log.Reset("manifest:" + f)
		d.applied[f] = sum
		d.log.Infof("Applied %s (%d objects)", f, n)
	}
}

// splitManifest decodes the YAML (or JSON) documents of data, expanding
// List kinds and dropping empty documents.
func splitManifest(data []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []*unstructured.Unstructured
	for i := 1; ; i++ {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.IsList() {
			list, err := u.ToList()
			if err != nil {
				return nil, fmt.Errorf("document %d: %w", i, err)
			}
			for j := range list.Items {
				out = append(out, &list.Items[j])
			}
			continue
		}
		if u.GetAPIVersion() == "" || u.GetKind() == "" {
			return nil, fmt.Errorf("document %d: apiVersion and kind are required", i)
		}
		if u.GetName() == "" {
			return nil, fmt.Errorf("document %d (%s): metadata.name is required", i, u.GetKind())
		}
		out = append(out, u)
	}
}

// applyFile applies every object of one file with server-side apply. Kinds
// that are not served yet are retried for a while when the same pass
// applied a CRD (which may be theirs); otherwise the file fails and is
// retried on the next scan.
func (d *deployer) applyFile(ctx context.Context, data []byte) (int, error) {
	objs, err := splitManifest(data)
	if err != nil {
		return 0, err
	}
	pending := objs
	appliedCRD := false
	for attempt := 0; ; attempt++ {
		var retry []*unstructured.Unstructured
		var errs []error
		for _, o := range pending {
			err := d.apply(ctx, o)
			switch {
			case err == nil:
				if o.GetKind() == "CustomResourceDefinition" {
					appliedCRD = true
				}
			case errors.Is(err, errNoKindMatch):
				retry = append(retry, o)
				errs = append(errs, err)
			default:
				errs = append(errs, err)
			}
		}
		if len(errs) == 0 {
			return len(objs), nil
		}
		if len(retry) != len(errs) || !appliedCRD || attempt >= crdWaitAttempts {
			return 0, errors.Join(errs...)
		}
		for _, o := range retry {
			d.mapper.invalidate(o.GroupVersionKind().GroupVersion())
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(crdWaitInterval):
		}
		pending = retry
	}
}

// apply server-side applies one object (force, field manager
// rke2-simulator). Namespaced objects without a namespace go to default.
func (d *deployer) apply(ctx context.Context, o *unstructured.Unstructured) error {
	gvk := o.GroupVersionKind()
	info, err := d.mapper.resourceFor(ctx, gvk)
	if errors.Is(err, errNoKindMatch) {
		// The cached discovery may predate the CRD: look again once.
		d.mapper.invalidate(gvk.GroupVersion())
		info, err = d.mapper.resourceFor(ctx, gvk)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", gvk.Kind, o.GetName(), err)
	}
	var ri dynamic.ResourceInterface = d.client.Resource(info.gvr)
	if info.namespaced {
		if o.GetNamespace() == "" {
			o.SetNamespace(metav1.NamespaceDefault)
		}
		ri = d.client.Resource(info.gvr).Namespace(o.GetNamespace())
	} else {
		o.SetNamespace("")
	}
	actx, cancel := context.WithTimeout(ctx, kubeRequestTimeout)
	defer cancel()
	if _, err := ri.Apply(actx, o.GetName(), o, metav1.ApplyOptions{FieldManager: fieldManager, Force: true}); err != nil {
		return fmt.Errorf("%s %s: %w", gvk.Kind, qualifiedName(o), err)
	}
	return nil
}

func qualifiedName(o *unstructured.Unstructured) string {
	if o.GetNamespace() == "" {
		return o.GetName()
	}
	return o.GetNamespace() + "/" + o.GetName()
}

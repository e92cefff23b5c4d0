package rke2

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Artifact file names RKE2 publishes per release and architecture.
func TarballName(arch string) string   { return "rke2.linux-" + arch + ".tar.gz" }
func ImagesName(arch string) string    { return "rke2-images.linux-" + arch + ".tar.gz" }
func ChecksumsName(arch string) string { return "sha256sum-" + arch + ".txt" }

// Artifacts are the airgap files of one architecture in a local directory,
// checked against their checksum file.
type Artifacts struct {
	Dir  string
	Arch string
	// SHA256 maps the names of the files to install (tarball, images) to
	// their checksum, as listed in the checksum file and verified locally.
	SHA256 map[string]string
}

// Files lists the files to upload, the checksum file last.
func (a *Artifacts) Files() []string {
	return []string{TarballName(a.Arch), ImagesName(a.Arch), ChecksumsName(a.Arch)}
}

// ParseChecksums reads a sha256sum file: "<hex>  <name>" per line (a "*"
// before the name marks binary mode). Names are reduced to their base name.
func ParseChecksums(data []byte) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sum, name, ok := strings.Cut(line, " ")
		name = strings.TrimLeft(strings.TrimSpace(name), "*")
		if !ok || len(sum) != 64 || name == "" {
			return nil, fmt.Errorf("line %d is not \"<sha256>  <file>\": %q", n, line)
		}
		if _, err := hex.DecodeString(sum); err != nil {
			return nil, fmt.Errorf("line %d: %q is not a sha256 sum", n, sum)
		}
		out[filepath.Base(name)] = strings.ToLower(sum)
	}
	return out, sc.Err()
}

// LoadArtifacts finds the artifacts of arch in dir and checks the tarball
// and images against the checksum file, so that nothing incomplete or
// corrupt is uploaded.
func LoadArtifacts(dir, arch string) (*Artifacts, error) {
	sumsPath := filepath.Join(dir, ChecksumsName(arch))
	data, err := os.ReadFile(sumsPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s has no %s: put the airgap artifacts of the release there (%s, %s and %s from the RKE2 release page)",
			dir, ChecksumsName(arch), TarballName(arch), ImagesName(arch), ChecksumsName(arch))
	}
	if err != nil {
		return nil, err
	}
	sums, err := ParseChecksums(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", sumsPath, err)
	}
	a := &Artifacts{Dir: dir, Arch: arch, SHA256: map[string]string{}}
	for _, name := range []string{TarballName(arch), ImagesName(arch)} {
		want, ok := sums[name]
		if !ok {
			return nil, fmt.Errorf("%s does not list %s", sumsPath, name)
		}
		got, err := FileSHA256(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		if got != want {
			return nil, fmt.Errorf("%s: sha256 is %s, but %s lists %s; the file is corrupt or from another release",
				filepath.Join(dir, name), got, ChecksumsName(arch), want)
		}
		a.SHA256[name] = want
	}
	return a, nil
}

// FileSHA256 returns the hex SHA-256 of the file at path, as
// sha256sum-<arch>.txt lists it.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

package zfs

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Property sources, normalized across the JSON and tab-separated outputs.
const (
	SourceLocal     = "local"
	SourceDefault   = "default"
	SourceInherited = "inherited"
	SourceNone      = "none"
	SourceTemporary = "temporary"
	SourceReceived  = "received"
)

// Property is one property value and where it comes from.
type Property struct {
	Value  string
	Source string
	// From names the dataset an inherited value comes from.
	From string
}

// Local reports whether the value was set on this dataset (or received).
func (p Property) Local() bool { return p.Source == SourceLocal || p.Source == SourceReceived }

// Dataset is a filesystem, volume or snapshot with its properties.
type Dataset struct {
	Name  string
	Type  string // filesystem, volume, snapshot, bookmark
	Props map[string]Property
}

// Get returns a property's value ("" when absent).
func (d *Dataset) Get(name string) string { return d.Props[name].Value }

// normalizeSource maps "-", "local", "inherited from tank", "LOCAL", ... to
// the Source constants and the dataset inherited from.
func normalizeSource(s string) (source, from string) {
	ls := strings.ToLower(strings.TrimSpace(s))
	switch {
	case ls == "-" || ls == "" || ls == SourceNone:
		return SourceNone, ""
	case strings.HasPrefix(ls, "inherited from "):
		return SourceInherited, strings.TrimSpace(s[len("inherited from "):])
	}
	return ls, ""
}

// ParseGetTabs parses `zfs get -H -p -o name,property,value,source ...` or
// `zpool get -H -p -o name,property,value,source ...` output.
func ParseGetTabs(out []byte) (map[string]*Dataset, error) {
	sets := map[string]*Dataset{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" {
			continue
		}
		f := strings.SplitN(line, "\t", 4)
		if len(f) != 4 {
			return nil, fmt.Errorf("line %d of zfs get output has %d fields, want 4: %q", n, len(f), line)
		}
		d := sets[f[0]]
		if d == nil {
			d = &Dataset{Name: f[0], Props: map[string]Property{}}
			sets[f[0]] = d
		}
		src, from := normalizeSource(f[3])
		d.Props[f[1]] = Property{Value: f[2], Source: src, From: from}
		if f[1] == "type" {
			d.Type = f[2]
		}
	}
	return sets, sc.Err()
}

// jsonValue accepts a JSON string or number (--json-int prints numbers).
type jsonValue string

func (v *jsonValue) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*v = jsonValue(s)
		return nil
	}
	*v = jsonValue(strings.TrimSpace(string(b)))
	return nil
}

type jsonProperty struct {
	Value  jsonValue `json:"value"`
	Source struct {
		Type string `json:"type"`
		Data string `json:"data"`
	} `json:"source"`
}

func (p jsonProperty) property() Property {
	src, from := normalizeSource(p.Source.Type)
	if src == SourceInherited || strings.EqualFold(p.Source.Type, "INHERITED") {
		src, from = SourceInherited, p.Source.Data
	}
	return Property{Value: string(p.Value), Source: src, From: from}
}

// ParseGetJSON parses `zfs get -j -p ...` output.
func ParseGetJSON(out []byte) (map[string]*Dataset, error) {
	var doc struct {
		Datasets map[string]struct {
			Name       string                  `json:"name"`
			Type       string                  `json:"type"`
			Properties map[string]jsonProperty `json:"properties"`
		} `json:"datasets"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, fmt.Errorf("parsing zfs get JSON: %w", err)
	}
	sets := make(map[string]*Dataset, len(doc.Datasets))
	for key, jd := range doc.Datasets {
		name := jd.Name
		if name == "" {
			name = key
		}
		d := &Dataset{Name: name, Type: strings.ToLower(jd.Type), Props: make(map[string]Property, len(jd.Properties))}
		for k, p := range jd.Properties {
			d.Props[k] = p.property()
		}
		if t, ok := d.Props["type"]; ok && d.Type == "" {
			d.Type = t.Value
		}
		sets[name] = d
	}
	return sets, nil
}

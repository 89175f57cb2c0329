package job

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
)

// The keys a job file's blocks accept are the yaml tags of the structs they
// decode into: messages about unknown keys read them from there, so they
// cannot drift from the code.

var (
	unknownField    = regexp.MustCompile(`^field (\S+) not found in type (.+)$`)
	cannotUnmarshal = regexp.MustCompile(`^cannot unmarshal (!!\w+)( .*)? into (\S+)$`)
)

// goTypeWord names a Go type of a job spec's field in job-file words.
func goTypeWord(t string) string {
	switch {
	case t == "string":
		return "a string"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["):
		return "a mapping"
	case strings.HasPrefix(t, "int") || strings.HasPrefix(t, "uint"):
		return "an integer"
	case strings.HasPrefix(t, "float"):
		return "a number"
	case t == "bool":
		return "true or false"
	}
	return t
}

// friendlyYAML rewrites yaml.v3's messages that name Go types. target is
// the value being decoded (the type named in an unknown-key message is it
// or a type inside it).
func friendlyYAML(msg string, target any) string {
	if m := unknownField.FindStringSubmatch(msg); m != nil {
		t := findType(reflect.TypeOf(target), m[2], map[reflect.Type]bool{})
		if t == nil {
			return fmt.Sprintf("unknown key %q", m[1])
		}
		keys := yamlKeys(t)
		if near := nearestKey(m[1], keys); near != "" {
			return fmt.Sprintf("unknown key %q; did you mean %q? (keys here: %s)", m[1], near, strings.Join(keys, ", "))
		}
		return fmt.Sprintf("unknown key %q (want one of: %s)", m[1], strings.Join(keys, ", "))
	}
	if m := cannotUnmarshal.FindStringSubmatch(msg); m != nil {
		what := map[string]string{"!!seq": "a list", "!!map": "a mapping", "!!str": "a string", "!!int": "an integer", "!!float": "a number", "!!bool": "a boolean"}[m[1]]
		if what != "" && !strings.Contains(m[3], ".") {
			if v := strings.TrimSpace(m[2]); v != "" {
				return fmt.Sprintf("%s %s where %s is wanted", what, v, goTypeWord(m[3]))
			}
			return fmt.Sprintf("%s where %s is wanted", what, goTypeWord(m[3]))
		}
	}
	if strings.HasSuffix(msg, "into time.Duration") {
		return msg + " (want a duration such as 30s or 1m)"
	}
	return msg
}

// findType returns the struct type inside t (t itself, or reachable
// through fields, pointers, slices and maps) whose Go name is name.
func findType(t reflect.Type, name string, seen map[reflect.Type]bool) reflect.Type {
	for t != nil && (t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map) {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct || seen[t] {
		return nil
	}
	seen[t] = true
	if t.String() == name {
		return t
	}
	for i := range t.NumField() {
		if f := findType(t.Field(i).Type, name, seen); f != nil {
			return f
		}
	}
	return nil
}

// yamlKeys lists the keys a struct decodes, in field order.
func yamlKeys(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case tag == "-" || !f.IsExported():
		case tag != "":
			keys = append(keys, tag)
		default:
			keys = append(keys, strings.ToLower(f.Name))
		}
	}
	return keys
}

// nearestKey returns the key a misspelt one most likely meant: the same
// after folding case and '-' or ' ' to '_', else the one at the smallest
// edit distance if that is at most 2 and below half the key's length; ""
// if none is near.
func nearestKey(key string, keys []string) string {
	fold := func(s string) string { return strings.NewReplacer("-", "_", " ", "_").Replace(strings.ToLower(s)) }
	for _, k := range keys {
		if fold(k) == fold(key) {
			return k
		}
	}
	best, bestD := "", 3
	for _, k := range keys {
		if d := editDistance(fold(key), fold(k)); d < bestD && 2*d < len(key) {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = slices.Min([]int{prev[j] + 1, cur[j-1] + 1, prev[j-1] + cost})
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

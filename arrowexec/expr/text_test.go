package expr

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestTextYAML(t *testing.T) {
	var job struct {
		Filter Text `yaml:"filter"`
		Select []Text
	}
	src := "filter: name LIKE 'ab%' AND \"my col\" >= 3\nselect: [a * 2, 'CAST(b AS int8)']\n"
	if err := yaml.Unmarshal([]byte(src), &job); err != nil {
		t.Fatal(err)
	}
	if got, want := job.Filter.String(), `starts_with(name, 'ab') AND "my col" >= 3`; got != want {
		t.Errorf("filter = %s, want %s", got, want)
	}
	if len(job.Select) != 2 || job.Select[1].String() != "CAST(b AS int8)" {
		t.Errorf("select = %v", job.Select)
	}
	out, err := yaml.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `filter: starts_with(name, 'ab') AND "my col" >= 3`) {
		t.Errorf("marshal:\n%s", out)
	}
	err = yaml.Unmarshal([]byte("filter: a > )\n"), &job)
	if err == nil || !strings.Contains(err.Error(), `expr: 1:5: unexpected token ")"`) {
		t.Errorf("bad filter: %v", err)
	}
}

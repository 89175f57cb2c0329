// Package kafkaaddr parses Kafka bootstrap broker lists, the one way every
// riffle connector and tool reads them.
package kafkaaddr

import "strings"

// Split flattens broker lists: every entry may itself be comma-separated
// ("a:9092,b:9092"); blanks are trimmed and empty entries dropped.
func Split(lists ...string) []string {
	var out []string
	for _, l := range lists {
		for _, s := range strings.Split(l, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

package prometheus

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"
)

// Matcher is one label matcher of a selector: =, !=, =~ or !~.
type Matcher struct {
	Name, Op, Value string
	re              *regexp.Regexp
}

func (m Matcher) matches(v string) bool {
	switch m.Op {
	case "=":
		return v == m.Value
	case "!=":
		return v != m.Value
	case "=~":
		return m.re.MatchString(v)
	default:
		return !m.re.MatchString(v)
	}
}

// ParseSelector parses an instant vector selector: `name`, `name{l="v",...}`
// or `{__name__="name",...}`; the only query form the stand-in answers.
func ParseSelector(q string) ([]Matcher, error) {
	q = strings.TrimSpace(q)
	var out []Matcher
	i := strings.IndexByte(q, '{')
	name := q
	if i >= 0 {
		name = strings.TrimSpace(q[:i])
	}
	if name != "" {
		if !validName(name) {
			return nil, fmt.Errorf("unsupported query %q: only instant vector selectors (metric{label=\"value\",...}) are served", q)
		}
		out = append(out, Matcher{Name: "__name__", Op: "=", Value: name})
	}
	if i >= 0 {
		body, ok := strings.CutSuffix(strings.TrimSpace(q[i+1:]), "}")
		if !ok {
			return nil, fmt.Errorf("selector %q: missing closing }", q)
		}
		ms, err := parseMatchers(body)
		if err != nil {
			return nil, fmt.Errorf("selector %q: %w", q, err)
		}
		out = append(out, ms...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty selector")
	}
	for _, m := range out {
		if (m.Op == "=" && m.Value != "") || m.Op == "=~" && m.Value != "" && m.Value != ".*" {
			return out, nil
		}
	}
	return nil, fmt.Errorf("selector %q: vector selector must contain at least one non-empty matcher", q)
}

func validName(s string) bool {
	for i, r := range s {
		if !(r == '_' || r == ':' || unicode.IsLetter(r) || (i > 0 && unicode.IsDigit(r))) {
			return false
		}
	}
	return s != ""
}

func parseMatchers(s string) ([]Matcher, error) {
	var out []Matcher
	for {
		s = strings.TrimLeft(s, " ,\t")
		if s == "" {
			return out, nil
		}
		j := strings.IndexAny(s, "=!")
		if j <= 0 {
			return nil, fmt.Errorf("expected label matcher at %q", s)
		}
		name := strings.TrimSpace(s[:j])
		if !validName(name) {
			return nil, fmt.Errorf("invalid label name %q", name)
		}
		rest := s[j:]
		var op string
		for _, o := range []string{"=~", "!~", "!=", "="} {
			if strings.HasPrefix(rest, o) {
				op = o
				break
			}
		}
		if op == "" {
			return nil, fmt.Errorf("invalid operator at %q", rest)
		}
		rest = strings.TrimLeft(rest[len(op):], " ")
		if rest == "" || (rest[0] != '"' && rest[0] != '\'') {
			return nil, fmt.Errorf("label %s: value must be quoted", name)
		}
		quote := rest[0]
		var val strings.Builder
		k, closed := 1, false
		for ; k < len(rest); k++ {
			c := rest[k]
			if c == '\\' && k+1 < len(rest) {
				k++
				switch rest[k] {
				case 'n':
					val.WriteByte('\n')
				default:
					val.WriteByte(rest[k])
				}
				continue
			}
			if c == quote {
				closed = true
				break
			}
			val.WriteByte(c)
		}
		if !closed {
			return nil, fmt.Errorf("label %s: unterminated value", name)
		}
		m := Matcher{Name: name, Op: op, Value: val.String()}
		if op == "=~" || op == "!~" {
			re, err := regexp.Compile("^(?:" + m.Value + ")$")
			if err != nil {
				return nil, fmt.Errorf("label %s: %v", name, err)
			}
			m.re = re
		}
		out = append(out, m)
		s = rest[k+1:]
	}
}

// point is the latest sample of a series.
type point struct {
	labels map[string]string
	value  float64
	at     time.Time
}

// store keeps the latest sample of every series, grouped by the target that
// produced it (so a target's series go away with it).
type store struct {
	mu      sync.Mutex
	targets map[string]map[string]point // target key -> series key -> point
}

func newStore() *store { return &store{targets: map[string]map[string]point{}} }

func seriesKey(l map[string]string) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%q,", k, l[k])
	}
	return b.String()
}

// put replaces the series of target with those of its latest scrape.
func (s *store) put(target string, points []point) {
	m := make(map[string]point, len(points))
	for _, p := range points {
		m[seriesKey(p.labels)] = p
	}
	s.mu.Lock()
	s.targets[target] = m
	s.mu.Unlock()
}

// keep drops the series of targets that are no longer discovered.
func (s *store) keep(live map[string]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t := range s.targets {
		if !live[t] {
			delete(s.targets, t)
		}
	}
}

// query returns the series matching every matcher, sorted by labels.
func (s *store) query(ms []Matcher) []point {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []point
	for _, series := range s.targets {
	next:
		for _, p := range series {
			for _, m := range ms {
				if !m.matches(p.labels[m.Name]) {
					continue next
				}
			}
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return seriesKey(out[i].labels) < seriesKey(out[j].labels) })
	return out
}
